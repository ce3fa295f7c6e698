//! The console's statistics commands: `SHOW QUERIES` (per fingerprint), `SHOW STATS` (per
//! database), `SHOW CACHE TABLES`, `SHOW SERVERS` (server connections), `SHOW POLICIES`, `SHOW REPLICATION`
//! (refusals per policy and rule). Each reads what the proxy already keeps; nothing here runs on the data path.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::result_set::{BOOL, FLOAT8, INT8, ResultSet, TEXT, text};
use crate::session::Shared;

/// Milliseconds, three decimals.
fn ms(d: Duration) -> Option<String> {
    Some(format!("{:.3}", d.as_secs_f64() * 1000.0))
}

fn time(t: SystemTime) -> Option<String> {
    text(humantime::format_rfc3339_millis(t))
}

/// `SHOW QUERIES`: one row per (database, fingerprint), most total time first; `<other>` holds
/// the queries folded out of the table (`stats.max_queries`). Literals are masked.
pub fn queries(shared: &Shared) -> Result<ResultSet, String> {
    let stats = shared.queries.as_ref().ok_or("per-query statistics are off (stats.enabled: false)")?;
    let mut rs = ResultSet::new(&[
        ("database", TEXT),
        ("user", TEXT),
        ("query_id", TEXT),
        ("query", TEXT),
        ("calls", INT8),
        ("hits", INT8),
        ("misses", INT8),
        ("forwarded", INT8),
        ("bypassed", INT8),
        ("bypass_reason", TEXT),
        ("refused", INT8),
        ("rows", INT8),
        ("bytes", INT8),
        ("total_ms", FLOAT8),
        ("mean_ms", FLOAT8),
        ("p50_ms", FLOAT8),
        ("p99_ms", FLOAT8),
        ("max_ms", FLOAT8),
        ("n_plus_one", INT8),
        ("first_seen", TEXT),
        ("last_seen", TEXT),
    ]);
    for q in stats.snapshot() {
        rs.row(vec![
            text(&q.database),
            (!q.is_other).then(|| q.user.clone()),
            (!q.is_other).then(|| format!("{:016x}", q.fingerprint_hash)),
            text(&q.fingerprint),
            text(q.calls),
            text(q.hits),
            text(q.misses),
            text(q.forwarded),
            text(q.bypassed),
            q.top_bypass.map(str::to_string),
            text(q.refused),
            text(q.rows),
            text(q.bytes),
            ms(q.total),
            ms(q.mean),
            ms(q.p50),
            ms(q.p99),
            ms(q.max),
            text(q.repeats),
            time(q.first_seen),
            time(q.last_seen),
        ]);
    }
    Ok(rs)
}

/// `SHOW STATS`: per database, transactions ended (an autocommit statement is one) and the sums
/// of `SHOW QUERIES` (every query counted, the folded ones too).
pub fn stats(shared: &Shared) -> Result<ResultSet, String> {
    let stats = shared.queries.as_ref().ok_or("per-query statistics are off (stats.enabled: false)")?;
    #[derive(Default)]
    struct Sums {
        calls: u64,
        hits: u64,
        misses: u64,
        refused: u64,
        rows: u64,
        bytes: u64,
        time: Duration,
        xacts: u64,
        xact_time: Duration,
        received: u64,
    }
    let mut by_database: BTreeMap<String, Sums> = BTreeMap::new();
    for (database, xacts, xact_time, received) in stats.transactions() {
        let s = by_database.entry(database).or_default();
        (s.xacts, s.xact_time, s.received) = (xacts, xact_time, received);
    }
    for q in stats.snapshot() {
        let s = by_database.entry(q.database).or_default();
        s.calls += q.calls;
        s.hits += q.hits;
        s.misses += q.misses;
        s.refused += q.refused;
        s.rows += q.rows;
        s.bytes += q.bytes;
        s.time += q.total;
    }
    let mut rs = ResultSet::new(&[
        ("database", TEXT),
        ("total_xact_count", INT8),
        ("total_query_count", INT8),
        ("total_cache_hits", INT8),
        ("total_cache_misses", INT8),
        ("total_refused", INT8),
        ("total_rows", INT8),
        ("total_received", INT8),
        ("total_sent", INT8),
        ("total_xact_time_ms", FLOAT8),
        ("total_query_time_ms", FLOAT8),
        ("avg_xact_time_ms", FLOAT8),
        ("avg_query_time_ms", FLOAT8),
        ("hit_ratio", FLOAT8),
    ]);
    for (database, s) in by_database {
        let mean =
            |total: Duration, n: u64| total.checked_div(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or_default();
        let lookups = s.hits + s.misses;
        let ratio = if lookups == 0 { 0.0 } else { s.hits as f64 / lookups as f64 };
        rs.row(vec![
            text(database),
            text(s.xacts),
            text(s.calls),
            text(s.hits),
            text(s.misses),
            text(s.refused),
            text(s.rows),
            text(s.received),
            text(s.bytes),
            ms(s.xact_time),
            ms(s.time),
            ms(mean(s.xact_time, s.xacts)),
            ms(mean(s.time, s.calls)),
            text(format!("{ratio:.3}")),
        ]);
    }
    Ok(rs)
}

/// `SHOW CACHE TABLES`: per table cached answers depend on (views and partitions by their base
/// tables too): entries, bytes, entries hit at least once, writes seen (through pgcached or
/// NOTIFY; summed over databases). A table written but never cached shows with no entries.
pub fn cache_tables(shared: &Shared) -> ResultSet {
    let usage = shared.cache.table_usage();
    let writes = shared.cache.versions().writes_by_table();
    let mut tables: Vec<&String> = usage.keys().chain(writes.keys()).collect();
    tables.sort();
    tables.dedup();
    let mut rs = ResultSet::new(&[
        ("table", TEXT),
        ("entries", INT8),
        ("bytes", INT8),
        ("entries_hit", INT8),
        ("writes_seen", INT8),
    ]);
    for table in tables {
        let (entries, bytes, hit) = usage.get(table).copied().unwrap_or_default();
        rs.row(vec![text(table), text(entries), text(bytes), text(hit), text(writes.get(table).copied().unwrap_or(0))]);
    }
    rs
}

/// `SHOW SERVERS`: the server connections, active (held by a client, named) or idle.
pub fn servers(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("database", TEXT),
        ("user", TEXT),
        ("state", TEXT),
        ("server_pid", INT8),
        ("client_id", INT8),
        ("age_s", FLOAT8),
        ("idle_s", FLOAT8),
    ]);
    for (info, _, server) in shared.cancels.clients() {
        if let Some(server) = server {
            rs.row(vec![
                text(&info.database),
                text(&info.user),
                text("active"),
                text(server.pid),
                text(info.id),
                None,
                None,
            ]);
        }
    }
    for (key, pid, age, idle) in shared.pools.idle_servers() {
        let secs = |d: Duration| text(format!("{:.1}", d.as_secs_f64()));
        rs.row(vec![text(&key.database), text(&key.user), text("idle"), text(pid), None, secs(age), secs(idle)]);
    }
    rs
}

/// `SHOW POLICIES`: each configured policy (whom it applies to) and its refusals by rule.
pub fn policies(shared: &Shared) -> ResultSet {
    let mut rs =
        ResultSet::new(&[("policy", TEXT), ("user", TEXT), ("database", TEXT), ("rule", TEXT), ("refusals", INT8)]);
    let counts = shared.traffic.refusal_counts();
    for p in &shared.config.policies {
        let name = p.name.clone();
        let mine: Vec<_> = counts.iter().filter(|(policy, ..)| *policy == name).collect();
        if mine.is_empty() {
            rs.row(vec![text(&name), p.user.clone(), p.database.clone(), None, text(0)]);
        }
        for (_, rule, n) in mine {
            rs.row(vec![text(&name), p.user.clone(), p.database.clone(), text(rule), text(n)]);
        }
    }
    rs
}

/// `SHOW REPLICATION`: per database followed (`cache.invalidation: replication`): whether its
/// stream is up, whether its answers are served, how far behind it is known fresh.
pub fn replication(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("database", TEXT),
        ("connected", BOOL),
        ("serving", BOOL),
        ("lag_ms", FLOAT8),
        ("max_lag_ms", FLOAT8),
        ("slot", TEXT),
        ("applied_lsn", TEXT),
        ("transactions", INT8),
        ("changes", INT8),
        ("sessions", INT8),
        ("losses", INT8),
        ("behind", INT8),
    ]);
    let max_lag = shared.config.cache.replication.max_lag.as_secs_f64() * 1000.0;
    let b = |v: bool| text(if v { "t" } else { "f" });
    for (db, st) in shared.replication.states() {
        rs.row(vec![
            text(&db),
            b(st.is_connected()),
            b(!st.is_held()),
            st.lag().and_then(|l| text(format!("{:.1}", l.as_secs_f64() * 1000.0))),
            text(format!("{max_lag:.1}")),
            text(st.slot()),
            text(crate::replication::decode::format_lsn(st.applied())),
            text(st.transactions()),
            text(st.changes()),
            text(st.sessions()),
            text(st.losses()),
            text(st.behind()),
        ]);
    }
    rs
}
