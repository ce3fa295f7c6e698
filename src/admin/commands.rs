//! The admin console's commands (see [`super::console`]): each answers with one result set of
//! typed columns — named as PgBouncer names the same concept — or a command tag.
//!
//! `SHOW HELP | VERSION | CLIENTS | POOLS | DATABASES | CACHE | CONFIG | QUERIES | STATS |
//! SERVERS | POLICIES | REPLICATION`, `INVALIDATE ALL |
//! DATABASE db | TABLE name [IN DATABASE db]`, `EXPLAIN CACHE statement`, `RELOAD`, `PAUSE [db]`, `RESUME [db]`,
//! `KILL CLIENT id`, `SHUTDOWN`. An unknown command is
//! 42601 naming `SHOW HELP`.

use std::time::Duration;

use bytes::{BufMut, BytesMut};

use crate::cache::InvalidationCause;
use crate::session::Shared;
use crate::session::live::Live;
use crate::wire::build::{self, Severity};
use tracing::info;

use super::result_set::{BOOL, FLOAT8, INT8, ResultSet, TEXT, text};
use super::show_stats;

/// Every command, as `SHOW HELP` lists them.
const HELP: &[(&str, &str)] = &[
    ("SHOW HELP", "this list"),
    ("SHOW VERSION", "the version of pgcached"),
    ("SHOW CLIENTS", "connected clients: who, from where, doing what"),
    ("SHOW POOLS", "per database and user: clients active and waiting, server connections in use and idle"),
    ("SHOW DATABASES", "the upstream and each database's pool"),
    ("SHOW CACHE", "result cache: entries, bytes, hits, misses, evictions, invalidations by cause"),
    ("SHOW CACHE TABLES", "per table: cached entries, bytes, entries hit, writes seen"),
    ("SHOW CONFIG", "the configuration in effect"),
    (
        "SHOW QUERIES",
        "per query (literals masked): calls, cache hits and misses, bypasses, refusals, rows, time, p50/p99",
    ),
    ("SHOW STATS", "per database: transactions, queries, cache hits, rows, bytes received and sent, time"),
    ("SHOW SERVERS", "server connections: active (which client) or idle"),
    ("SHOW POLICIES", "each policy, whom it applies to, and its refusals by rule"),
    ("SHOW REPLICATION", "per database followed: stream connected, answers served, lag, slot, transactions applied"),
    ("INVALIDATE ALL", "drop every cached answer"),
    ("INVALIDATE DATABASE db", "drop the cached answers of one database"),
    ("INVALIDATE TABLE name [IN DATABASE db]", "drop the cached answers that read a table (every database by default)"),
    ("EXPLAIN CACHE statement", "whether a statement may be cached, under which rule and TTL, what it depends on"),
    ("RELOAD", "read the configuration file again; new transactions use it (no client is dropped)"),
    ("PAUSE [db]", "let transactions in progress finish, close the server connections, hold new transactions"),
    ("RESUME [db]", "let held transactions go on after PAUSE"),
    ("KILL CLIENT id", "end one client session (its transaction in progress is lost), as pg_terminate_backend"),
    ("SHUTDOWN", "stop as SIGTERM does: no new clients, open transactions may finish for timeouts.shutdown"),
];

/// Run every `;`-separated command of `query`, writing their answers to `out`; the first error
/// ends the query, as in Postgres.
pub async fn run(live: &Live, query: &str, out: &mut BytesMut) {
    let commands: Vec<&str> = query.split(';').map(str::trim).filter(|c| !c.is_empty()).collect();
    if commands.is_empty() {
        // EmptyQueryResponse.
        out.put_u8(b'I');
        out.put_u32(4);
        return;
    }
    for command in commands {
        if let Err(e) = one(live, command, out).await {
            build::error_response(out, Severity::Error, e.code, &e.message);
            return;
        }
    }
}

/// A command that failed: its SQLSTATE and message.
struct Failed {
    code: &'static str,
    message: String,
}

impl From<String> for Failed {
    /// A command not understood (42601).
    fn from(message: String) -> Failed {
        Failed { code: "42601", message }
    }
}

async fn one(live: &Live, command: &str, out: &mut BytesMut) -> Result<(), Failed> {
    let shared = &*live.shared();
    let words: Vec<String> = command.split_whitespace().map(str::to_ascii_lowercase).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["show", "help"] => help().write(out),
        ["show", "version"] => {
            let mut rs = ResultSet::new(&[("version", TEXT)]);
            rs.row(vec![text(format!("pgcached {}", env!("CARGO_PKG_VERSION")))]);
            rs.write(out);
        }
        ["show", "clients"] => clients(shared).write(out),
        ["show", "pools"] => pools(shared).write(out),
        ["show", "databases"] => databases(shared).write(out),
        ["show", "cache"] => cache(shared).write(out),
        ["show", "config"] => config(shared).write(out),
        ["show", "cache", "tables"] => show_stats::cache_tables(shared).write(out),
        ["show", "queries"] => show_stats::queries(shared)?.write(out),
        ["show", "stats"] => show_stats::stats(shared)?.write(out),
        ["show", "servers"] => show_stats::servers(shared).write(out),
        ["show", "policies"] => show_stats::policies(shared).write(out),
        ["show", "replication"] => show_stats::replication(shared).write(out),
        ["invalidate", "all"] => {
            shared.cache.flush_all(InvalidationCause::Admin);
            build::command_complete(out, "INVALIDATE");
        }
        ["invalidate", "database", _] => {
            shared.cache.flush_database(&fold(last_word(command)), InvalidationCause::Admin);
            build::command_complete(out, "INVALIDATE");
        }
        ["invalidate", "table", _] | ["invalidate", "table", _, "in", "database", _] => {
            let raw: Vec<&str> = command.split_whitespace().collect();
            let table = fold(raw[2]);
            let table = table.rsplit('.').next().unwrap_or(&table).to_string();
            let databases = match raw.get(5) {
                Some(db) => vec![fold(db)],
                None => known_databases(shared),
            };
            for db in &databases {
                shared.cache.invalidate_tables(db, [table.as_str()], InvalidationCause::Admin);
            }
            build::command_complete(out, "INVALIDATE");
        }
        ["explain", "cache", ..] => {
            let statement = command.splitn(3, char::is_whitespace).nth(2).unwrap_or_default().trim();
            explain(shared, statement).write(out);
        }
        ["pause"] | ["pause", _] => {
            let database = (words.len() == 2).then(|| fold(last_word(command)));
            info!(database = database.as_deref().unwrap_or("(all)"), "PAUSE: waiting for transactions in progress");
            shared.pools.pause(database.as_deref()).await;
            info!(database = database.as_deref().unwrap_or("(all)"), "paused: no server connection open");
            build::command_complete(out, "PAUSE");
        }
        ["resume"] | ["resume", _] => {
            let database = (words.len() == 2).then(|| fold(last_word(command)));
            shared.pools.resume(database.as_deref());
            info!(database = database.as_deref().unwrap_or("(all)"), "resumed");
            build::command_complete(out, "RESUME");
        }
        ["kill", "client", id] => {
            let known = id.parse::<u64>().ok().filter(|id| shared.shutdown_wakers.kill(*id));
            if known.is_none() {
                let message = format!("no client session with id {id} (SHOW CLIENTS lists them)");
                return Err(Failed { code: "42704", message });
            }
            info!(client = id, "KILL CLIENT");
            build::command_complete(out, "KILL");
        }
        ["shutdown"] => {
            info!("SHUTDOWN from the admin console: draining");
            let _ = live.stop.send(true);
            build::command_complete(out, "SHUTDOWN");
        }
        ["reload"] => match crate::reload::reload(live).await {
            Ok(report) => {
                for line in &report.applied {
                    build::notice_response(out, "00000", line);
                }
                for setting in &report.restart_needed {
                    let message =
                        format!("{setting} changed in the file: it takes effect at a restart (kept as it runs)");
                    build::notice_response(out, "01000", &message);
                }
                build::command_complete(out, "RELOAD");
            }
            // config_file_error, as Postgres names a configuration file it cannot use.
            Err(e) => return Err(Failed { code: "F0000", message: e.to_string() }),
        },
        _ => return Err(format!("unknown admin command \"{command}\" (SHOW HELP lists them)").into()),
    }
    Ok(())
}

fn last_word(command: &str) -> &str {
    command.split_whitespace().last().unwrap_or_default()
}

/// A name as Postgres folds it: unquoted parts lower case, `"quoted"` ones as written.
fn fold(name: &str) -> String {
    name.split('.')
        .map(|part| match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => part.to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The databases pgcached has a pool for (where cached answers may exist).
fn known_databases(shared: &Shared) -> Vec<String> {
    let mut dbs: Vec<String> = shared.pools.status().into_iter().map(|(k, _)| k.database).collect();
    dbs.dedup();
    dbs
}

fn help() -> ResultSet {
    let mut rs = ResultSet::new(&[("command", TEXT), ("description", TEXT)]);
    for (command, what) in HELP {
        rs.row(vec![text(command), text(what)]);
    }
    rs
}

fn clients(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("id", INT8),
        ("user", TEXT),
        ("database", TEXT),
        ("state", TEXT),
        ("addr", TEXT),
        ("port", INT8),
        ("application_name", TEXT),
        ("tls", BOOL),
        ("connect_time", TEXT),
        ("server_pid", INT8),
    ]);
    for (info, state, server) in shared.cancels.clients() {
        let connected = humantime::format_rfc3339_seconds(info.connected_at);
        rs.row(vec![
            text(info.id),
            text(&info.user),
            text(&info.database),
            text(state.label()),
            text(info.addr.addr_text()),
            text(info.addr.port()),
            text(&info.application_name),
            text(info.tls),
            text(connected),
            server.map(|s| s.pid.to_string()),
        ]);
    }
    rs
}

fn pools(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("database", TEXT),
        ("user", TEXT),
        ("cl_active", INT8),
        ("cl_waiting", INT8),
        ("cl_idle", INT8),
        ("sv_active", INT8),
        ("sv_idle", INT8),
        ("pool_size", INT8),
        ("checkouts_waiting", INT8),
        ("pool_mode", TEXT),
    ]);
    let clients = shared.cancels.clients();
    let mode = format!("{:?}", shared.config.pool.mode).to_lowercase();
    for (key, status) in shared.pools.status() {
        let count = |want: crate::client::cancel::ClientState| {
            clients
                .iter()
                .filter(|(info, state, _)| info.database == key.database && info.user == key.user && *state == want)
                .count()
        };
        use crate::client::cancel::ClientState::{Active, Idle, Waiting};
        rs.row(vec![
            text(&key.database),
            text(&key.user),
            text(count(Active)),
            text(count(Waiting)),
            text(count(Idle)),
            text(status.size - status.available),
            text(status.available),
            text(status.max_size),
            text(status.waiting),
            text(&mode),
        ]);
    }
    rs
}

fn databases(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("name", TEXT),
        ("host", TEXT),
        ("port", INT8),
        ("pool_size", INT8),
        ("min_pool_size", INT8),
        ("pool_mode", TEXT),
        ("current_connections", INT8),
        ("paused", BOOL),
    ]);
    let target = shared.pools.target();
    let cfg = &shared.config.pool;
    let mode = format!("{:?}", cfg.mode).to_lowercase();
    let status = shared.pools.status();
    for db in known_databases(shared) {
        let connections: usize = status.iter().filter(|(k, _)| k.database == db).map(|(_, s)| s.size).sum();
        rs.row(vec![
            text(&db),
            text(&target.host),
            text(target.port),
            text(cfg.max_size),
            text(cfg.min_idle),
            text(&mode),
            text(connections),
            text(shared.pools.is_paused(&db)),
        ]);
    }
    rs
}

fn cache(shared: &Shared) -> ResultSet {
    let stats = shared.cache.stats().snapshot();
    let lookups = stats.hits + stats.misses;
    let ratio = if lookups == 0 { 0.0 } else { stats.hits as f64 / lookups as f64 };
    let mut columns: Vec<(&'static str, u32)> = vec![
        ("enabled", BOOL),
        ("entries", INT8),
        ("bytes", INT8),
        ("max_bytes", INT8),
        ("hits", INT8),
        ("misses", INT8),
        ("hit_ratio", FLOAT8),
        ("fills", INT8),
        ("evictions", INT8),
        ("expirations", INT8),
    ];
    let mut row = vec![
        text(shared.cache.enabled()),
        text(stats.entries),
        text(stats.bytes),
        text(shared.config.cache.max_memory.as_u64()),
        text(stats.hits),
        text(stats.misses),
        text(format!("{ratio:.3}")),
        text(stats.fills),
        text(stats.evictions),
        text(stats.expirations),
    ];
    for (cause, n) in &stats.invalidations {
        columns.push((invalidation_column(*cause), INT8));
        row.push(text(n));
    }
    let mut rs = ResultSet::new(&columns);
    rs.row(row);
    rs
}

/// The `SHOW CACHE` column of invalidations with `cause`.
fn invalidation_column(cause: InvalidationCause) -> &'static str {
    match cause {
        InvalidationCause::Write => "invalidations_write",
        InvalidationCause::RowWrite => "invalidations_row_write",
        InvalidationCause::Ddl => "invalidations_ddl",
        InvalidationCause::Unknown => "invalidations_unknown",
        InvalidationCause::Notify => "invalidations_notify",
        InvalidationCause::ListenerLost => "invalidations_listener_lost",
        InvalidationCause::Admin => "invalidations_admin",
        InvalidationCause::StaleEntry => "invalidations_stale_entry",
        InvalidationCause::Replication => "invalidations_replication",
        InvalidationCause::ReplicationLost => "invalidations_replication_lost",
    }
}

fn config(shared: &Shared) -> ResultSet {
    let c = &shared.config;
    let secs = |d: Duration| humantime::format_duration(d).to_string();
    let opt_secs = |d: Option<Duration>| d.map_or_else(|| "none".to_string(), secs);
    let mut rs = ResultSet::new(&[("key", TEXT), ("value", TEXT)]);
    let rows: Vec<(&str, String)> = vec![
        ("listen", c.listen.clone()),
        ("unix_socket_dir", c.unix_socket_dir.as_ref().map_or_else(|| "none".to_string(), |d| d.display().to_string())),
        ("upstream.url", redact(&c.upstream.url)),
        ("upstream.tls", format!("{:?}", c.upstream.tls).to_lowercase()),
        ("pool.mode", format!("{:?}", c.pool.mode).to_lowercase()),
        ("pool.max_size", c.pool.max_size.to_string()),
        ("pool.min_idle", c.pool.min_idle.to_string()),
        ("pool.acquire_timeout", secs(c.pool.acquire_timeout)),
        ("auth.method", format!("{:?}", c.auth.method).to_lowercase()),
        ("cache.enabled", c.cache.enabled.to_string()),
        ("cache.max_memory", c.cache.max_memory.to_string()),
        ("cache.max_entry_size", c.cache.max_entry_size.to_string()),
        ("cache.default_ttl", secs(c.cache.default_ttl)),
        ("cache.catalogs", c.cache.catalogs.to_string()),
        ("cache.invalidation", format!("{:?}", c.cache.invalidation).to_lowercase()),
        ("cache.replication.publication", c.cache.replication.publication.clone()),
        ("cache.replication.slot", c.cache.replication.slot.clone().unwrap_or_else(|| "(temporary)".into())),
        ("cache.replication.max_lag", secs(c.cache.replication.max_lag)),
        ("cache.rules", c.cache.rules.len().to_string()),
        ("policies", c.policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")),
        ("limits.max_clients", c.limits.max_clients.to_string()),
        ("limits.max_message_size", c.limits.max_message_size.to_string()),
        ("timeouts.login", secs(c.timeouts.login)),
        ("timeouts.query", opt_secs(c.timeouts.query)),
        ("timeouts.idle_in_transaction", opt_secs(c.timeouts.idle_in_transaction)),
        ("timeouts.client_idle", opt_secs(c.timeouts.client_idle)),
        ("timeouts.shutdown", secs(c.timeouts.shutdown)),
        ("log.level", c.log.level.clone()),
        ("admin.database", c.admin.database.clone()),
        ("admin.users", c.admin.users.join(", ")),
        ("admin.http_listen", c.admin.http_listen.clone().unwrap_or_else(|| "none".into())),
        ("stats.enabled", c.stats.enabled.to_string()),
        ("stats.max_queries", c.stats.max_queries.to_string()),
        ("stats.metrics_top", c.stats.metrics_top.to_string()),
        ("stats.slow_query", c.stats.slow_query.map_or("off".into(), secs)),
        ("stats.n_plus_one", c.stats.n_plus_one.to_string()),
        ("stats.n_plus_one_window", secs(c.stats.n_plus_one_window)),
    ];
    for (key, value) in rows {
        rs.row(vec![text(key), text(value)]);
    }
    rs
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `EXPLAIN CACHE statement`: what the analysis, the rules and the configuration say of it.
fn explain(shared: &Shared, statement: &str) -> ResultSet {
    let mut rs = ResultSet::new(&[("property", TEXT), ("value", TEXT)]);
    let analysis = crate::sql::analyze(statement);
    rs.row(vec![text("fingerprint"), text(&analysis.fingerprint)]);
    let verdict = crate::session::cacheability(&analysis, shared.config.cache.catalogs);
    match verdict {
        Err(why) => {
            rs.row(vec![text("cacheable"), text("no")]);
            rs.row(vec![text("reason"), text(why)]);
        }
        Ok(s) => {
            let read: Vec<String> = s.tables_read.iter().map(ToString::to_string).collect();
            let names: Vec<&str> = s.tables_read.iter().map(|t| t.name.as_str()).collect();
            let decision = shared.rules.decide(statement, &names, Some(&s.fingerprint));
            let cacheable = shared.cache.enabled() && decision.cache;
            rs.row(vec![text("cacheable"), text(if cacheable { "yes" } else { "no" })]);
            if !shared.cache.enabled() {
                rs.row(vec![text("reason"), text("cache.enabled is false")]);
            } else if !decision.cache {
                rs.row(vec![text("reason"), text(format!("{:?}", decision.source))]);
            } else {
                rs.row(vec![text("ttl"), text(humantime::format_duration(decision.ttl))]);
                rs.row(vec![text("decided_by"), text(format!("{:?}", decision.source))]);
            }
            rs.row(vec![text("tables"), text(read.join(", "))]);
            let rows = s.rows.as_ref().map_or_else(
                || "whole tables".to_string(),
                |r| {
                    let columns: Vec<&str> = r.columns.iter().map(|c| c.column.as_str()).collect();
                    format!("{} pinned by {}", r.table, columns.join(", "))
                },
            );
            rs.row(vec![text("depends_on"), text(rows)]);
            let calls: Vec<&str> = s.functions.iter().map(|f| f.name.as_str()).collect();
            if !calls.is_empty() {
                rs.row(vec![text("functions"), text(calls.join(", "))]);
            }
            rs.row(vec![
                text("also_decided_per_session"),
                text("transaction isolation and writes in the block, settings, row-level security, views' bodies, function volatility in pg_proc"),
            ]);
        }
    }
    // What each policy does with it (unqualified tables read as in `public`).
    for policy in shared.policies.all().iter().filter(|p| !p.is_empty()) {
        let verdict = match crate::sql::guard(Some(policy), statement) {
            Err(refusal) => format!("refused ({}): {}", refusal.sqlstate, refusal.message),
            Ok(v) => match v.rewrite.and_then(|r| r.text) {
                Some(rewritten) => format!("rewritten: {rewritten}"),
                None => "allowed as is".to_string(),
            },
        };
        rs.row(vec![text(format!("policy {}", policy.name())), text(verdict)]);
    }
    rs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_and_urls_lose_their_password() {
        assert_eq!(fold("Public.\"Orders\""), "public.Orders");
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
    }
}
