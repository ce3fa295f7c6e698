use std::sync::Arc;

use super::*;
use crate::sql::fingerprint::hash64;
use crate::sql::query_id::QueryId;

const MS: Duration = Duration::from_millis(1);

fn stats(max_queries: usize) -> QueryStats {
    QueryStats::new(QueryStatsSettings { max_queries, ..QueryStatsSettings::default() })
}

/// A statement of query `hash` in `app`, by `alice`, a hit returning one row of 10 bytes.
fn stmt(hash: u64, elapsed: Duration) -> Statement<'static> {
    Statement {
        fingerprint_hash: hash,
        fingerprint: "select * from t where id = ?",
        database: "app",
        user: "alice",
        outcome: Outcome::Hit,
        rows: 1,
        bytes: 10,
        elapsed,
    }
}

/// `n` fingerprint hashes that all land in shard `shard`.
fn hashes_in_shard(shard: usize, n: usize) -> Vec<u64> {
    (1u64..).filter(|h| shard_index(*h) == shard).take(n).collect()
}

fn row(rows: &[QueryRow], hash: u64) -> &QueryRow {
    rows.iter().find(|r| r.fingerprint_hash == hash && !r.is_other).expect("row of the hash")
}

#[test]
fn the_table_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<QueryStats>();
    shared::<QueryStatsCollector>();
}

#[test]
fn bypass_positions_index_the_counters() {
    for (i, why) in Bypass::ALL.iter().enumerate() {
        assert_eq!(*why as usize, i, "{why:?}");
    }
}

#[test]
fn statements_of_one_query_add_up() {
    let stats = stats(500);
    let outcomes = [
        Outcome::Hit,
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Forwarded,
        Outcome::Bypassed(Bypass::Locking),
        Outcome::Bypassed(Bypass::Function),
        Outcome::Bypassed(Bypass::Locking),
        Outcome::Refused,
    ];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let user = if i == 0 { "alice" } else { "bob" };
        stats.record(&Statement { outcome, user, ..stmt(42, MS * (i as u32 + 1)) });
    }
    let rows = stats.snapshot();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.database.as_str(), r.user.as_str(), r.fingerprint_hash, r.is_other), ("app", "alice", 42, false));
    assert_eq!(r.fingerprint, "select * from t where id = ?");
    assert_eq!((r.calls, r.hits, r.misses, r.forwarded, r.bypassed, r.refused), (8, 2, 1, 1, 3, 1));
    assert_eq!(r.top_bypass, Some("locking"));
    assert_eq!((r.rows, r.bytes), (8, 80));
    assert_eq!(r.total, MS * 36);
    assert_eq!(r.mean, MS * 36 / 8);
    assert_eq!((r.min, r.max), (MS, MS * 8));
    assert!(r.first_seen <= r.last_seen);
}

#[test]
fn a_query_without_bypasses_has_no_top_reason() {
    let stats = stats(500);
    stats.record(&stmt(1, MS));
    assert_eq!(stats.snapshot()[0].top_bypass, None);
}

#[test]
fn one_fingerprint_in_two_databases_is_two_rows() {
    let stats = stats(500);
    stats.record(&stmt(7, MS));
    stats.record(&Statement { database: "billing", ..stmt(7, MS * 2) });
    stats.record(&Statement { database: "billing", ..stmt(7, MS * 3) });
    let rows = stats.snapshot();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].database.as_str(), rows[0].calls), ("billing", 2));
    assert_eq!((rows[1].database.as_str(), rows[1].calls), ("app", 1));
}

/// Whether `got` is within the sketch's 1% (plus rank rounding) of `want`.
fn close(got: Duration, want: Duration) -> bool {
    (got.as_secs_f64() - want.as_secs_f64()).abs() <= want.as_secs_f64() * 0.02
}

#[test]
fn quantiles_of_a_uniform_distribution() {
    let stats = stats(500);
    // 1..=1000 ms in a scrambled order (7 is coprime with 1000).
    for i in 0..1000u32 {
        stats.record(&stmt(3, MS * ((i * 7) % 1000 + 1)));
    }
    let r = &stats.snapshot()[0];
    assert!(close(r.p50, MS * 500), "p50 {:?}", r.p50);
    assert!(close(r.p99, MS * 990), "p99 {:?}", r.p99);
    assert!(close(r.mean, Duration::from_micros(500_500)), "mean {:?}", r.mean);
}

#[test]
fn quantiles_of_a_bimodal_distribution() {
    let stats = stats(500);
    for i in 0..1000u32 {
        let elapsed = if i % 50 == 0 { Duration::from_secs(2) } else { Duration::from_micros(300) };
        stats.record(&stmt(3, elapsed));
    }
    let r = &stats.snapshot()[0];
    assert!(close(r.p50, Duration::from_micros(300)), "p50 {:?}", r.p50);
    assert!(close(r.p99, Duration::from_secs(2)), "p99 {:?}", r.p99);
    assert_eq!((r.min, r.max), (Duration::from_micros(300), Duration::from_secs(2)));
}

#[test]
fn eviction_folds_the_lightest_query_into_other() {
    // Two queries per shard.
    let stats = stats(2 * SHARDS);
    let [heavy, light, newcomer] = hashes_in_shard(5, 3)[..] else { unreachable!() };
    for _ in 0..3 {
        stats.record(&stmt(heavy, MS * 10));
    }
    stats.record(&Statement { outcome: Outcome::Bypassed(Bypass::Rule), ..stmt(light, MS) });
    stats.record(&stmt(light, MS));
    stats.record(&stmt(newcomer, MS * 2));

    let rows = stats.snapshot();
    assert!(rows.iter().all(|r| r.fingerprint_hash != light || r.is_other), "light was evicted: {rows:?}");
    assert_eq!(row(&rows, heavy).calls, 3);
    assert_eq!(row(&rows, newcomer).calls, 1);
    let other = rows.iter().find(|r| r.is_other).expect("an <other> row");
    assert_eq!((other.database.as_str(), other.fingerprint.as_str(), other.user.as_str()), ("app", "<other>", ""));
    assert_eq!((other.calls, other.hits, other.bypassed, other.top_bypass), (2, 1, 1, Some("rule")));
    assert_eq!((other.total, other.rows, other.bytes), (MS * 2, 2, 20));
    assert_eq!(other.p50, MS);
}

#[test]
fn bound_holds_and_calls_are_conserved_under_ten_times_the_distinct_queries() {
    let max = 50;
    let stats = stats(max);
    let mut recorded = 0u64;
    for round in 0..3u32 {
        for i in 0..10 * max as u32 {
            let text = format!("select * from t{i} where id = ?");
            let database = ["app", "billing"][i as usize % 2];
            stats.record(&Statement { fingerprint: &text, database, ..stmt(hash64(&text), MS * (i % 7 + round)) });
            recorded += 1;
        }
    }
    let rows = stats.snapshot();
    let queries = rows.iter().filter(|r| !r.is_other).count();
    assert!(queries <= max, "{queries} rows kept, bound {max}");
    assert!(queries >= max - SHARDS, "the shards are nearly full: {queries}");
    assert_eq!(rows.iter().filter(|r| r.is_other).count(), 2, "one <other> per database");
    assert_eq!(rows.iter().map(|r| r.calls).sum::<u64>(), recorded);
    let total: Duration = rows.iter().map(|r| r.total).sum();
    let expected: Duration = (0..3u32).flat_map(|round| (0..500u32).map(move |i| MS * (i % 7 + round))).sum();
    assert_eq!(total, expected);
}

#[test]
fn a_zero_bound_keeps_only_other_rows() {
    let stats = stats(0);
    stats.record(&stmt(1, MS));
    stats.record(&stmt(2, MS));
    let rows = stats.snapshot();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_other);
    assert_eq!(rows[0].calls, 2);
}

#[test]
fn snapshot_is_ordered_by_total_time_descending() {
    let stats = stats(500);
    for (hash, ms) in [(1, 5), (2, 50), (3, 1), (4, 20)] {
        stats.record(&stmt(hash, MS * ms));
    }
    let order: Vec<u64> = stats.snapshot().iter().map(|r| r.fingerprint_hash).collect();
    assert_eq!(order, vec![2, 4, 1, 3]);
}

#[test]
fn long_fingerprints_are_clipped() {
    let stats = stats(500);
    let long = "x".repeat(MAX_FINGERPRINT_CHARS + 10);
    stats.record(&Statement { fingerprint: &long, ..stmt(1, MS) });
    let kept = &stats.snapshot()[0].fingerprint;
    assert_eq!(kept.chars().count(), MAX_FINGERPRINT_CHARS);
    assert!(kept.ends_with('…'));
    assert_eq!(clip("é".repeat(5).as_str(), 5), "ééééé");
    assert_eq!(clip("é".repeat(6).as_str(), 5), "éééé…");
}

#[test]
fn only_statements_at_the_threshold_or_longer_count_as_slow() {
    let stats = QueryStats::new(QueryStatsSettings { slow_query: Some(MS * 100), ..QueryStatsSettings::default() });
    for ms in [1, 99, 100, 250, 50] {
        stats.record(&stmt(1, MS * ms));
    }
    assert_eq!(stats.slow_queries_total(), 2);

    let off = stats_without_slow_log();
    off.record(&stmt(1, Duration::from_secs(3600)));
    assert_eq!(off.slow_queries_total(), 0);
}

fn stats_without_slow_log() -> QueryStats {
    QueryStats::new(QueryStatsSettings::default())
}

#[test]
fn repeats_count_on_their_row_and_in_total() {
    let stats = QueryStats::new(QueryStatsSettings { repeat_limit: Some(2), ..QueryStatsSettings::default() });
    stats.record(&stmt(9, MS));
    stats.report_repeat("app", "alice", 9, "select * from t where id = ?", 3);
    stats.report_repeat("app", "alice", 9, "select * from t where id = ?", 3);
    // A query the table does not hold counts in the total only.
    stats.report_repeat("app", "alice", 10, "select 1", 3);
    assert_eq!(stats.n_plus_one_total(), 3);
    let rows = stats.snapshot();
    assert_eq!(rows.len(), 1);
    assert_eq!(row(&rows, 9).repeats, 2);

    let mut detector = stats.repeat_detector().expect("a limit is set");
    let now = std::time::Instant::now();
    let said: Vec<_> = (0..4).map(|_| detector.observe(9, now)).collect();
    assert_eq!(said, vec![None, None, Some(3), None]);
    assert!(stats_without_slow_log().repeat_detector().is_none());
}

#[test]
fn the_collector_exposes_only_the_top_queries() {
    let stats = Arc::new(QueryStats::new(QueryStatsSettings { slow_query: Some(MS * 40), ..Default::default() }));
    let long = format!("select {} from t", "a, ".repeat(100));
    for (hash, ms) in [(0xa1, 10), (0xb2, 50), (0xc3, 1), (0xd4, 30)] {
        let fingerprint = if hash == 0xb2 { long.as_str() } else { "select ?" };
        stats.record(&Statement { fingerprint, ..stmt(hash, MS * ms) });
    }
    stats.record(&stmt(0xd4, MS * 30));
    stats.report_repeat("app", "alice", 0xd4, "select ?", 4);
    let registry = prometheus::Registry::new();
    registry.register(Box::new(QueryStatsCollector::new(stats.clone(), 2).unwrap())).unwrap();
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();

    let clipped = clip(&long, QUERY_LABEL_CHARS);
    assert_eq!(clipped.chars().count(), QUERY_LABEL_CHARS);
    let b2 = format!("database=\"app\",query=\"{clipped}\",query_id=\"00000000000000b2\"");
    let d4 = "database=\"app\",query=\"select ?\",query_id=\"00000000000000d4\"";
    for line in [
        format!("pgcached_query_calls_total{{{b2}}} 1"),
        format!("pgcached_query_calls_total{{{d4}}} 2"),
        format!("pgcached_query_seconds_total{{{d4}}} 0.06"),
        format!("pgcached_query_cache_hits_total{{{d4}}} 2"),
        format!("pgcached_query_rows_total{{{b2}}} 1"),
        "pgcached_slow_queries_total 1".to_string(),
        "pgcached_n_plus_one_total 1".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing in:\n{text}");
    }
    assert!(!text.contains("00000000000000a1") && !text.contains("00000000000000c3"), "beyond the top 2:\n{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("pgcached_query_calls_total{")).count(), 2);

    // A second scrape follows the table: 0xa1 (110 ms) overtakes 0xd4 (60 ms) and 0xb2 (50 ms).
    stats.record(&stmt(0xa1, MS * 100));
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
    assert!(text.contains("query_id=\"00000000000000a1\""), "{text}");
    assert!(text.contains("query_id=\"00000000000000d4\""), "{text}");
    assert!(!text.contains("query_id=\"00000000000000b2\""), "{text}");
    assert!(text.lines().any(|l| l == "pgcached_slow_queries_total 2"), "{text}");
}

fn id(hash: u64, text: &str) -> QueryId {
    QueryId { hash, text: text.into() }
}

#[test]
fn a_session_run_is_in_every_snapshot_and_equals_the_statements_one_by_one() {
    let table = Arc::new(stats(100));
    let direct = stats(100);
    let session = table.session(&Traffic::new().unwrap(), "app", "alice");
    let queries: Vec<QueryId> = (1..=RUN_QUERIES as u64 + 2).map(|h| id(h, &format!("select {h}"))).collect();
    let start = std::time::Instant::now();
    // Long runs of one query (past what a run holds), then more queries taking turns than a
    // run holds at once, then a few of them.
    let mut plan: Vec<&QueryId> = vec![&queries[0]; 3];
    plan.extend(vec![&queries[1]; RUN_SAMPLES + 5]);
    plan.extend(vec![&queries[0]; 2 * RUN_SAMPLES]);
    plan.extend((0..10 * queries.len()).map(|i| &queries[i % queries.len()]));
    plan.extend((0..3 * RUN_SAMPLES).map(|i| &queries[i % 2 + 2]));
    for (n, q) in (1u32..).zip(plan) {
        let (elapsed, outcome) = (MS * (n % 13 + 1), if n % 3 == 0 { Outcome::Miss } else { Outcome::Hit });
        session.record(Some(q), outcome, 2, 20, elapsed, start + MS * n, None, 0);
        direct.record(&Statement {
            fingerprint_hash: q.hash,
            fingerprint: &q.text,
            outcome,
            rows: 2,
            bytes: 20,
            ..stmt(q.hash, elapsed)
        });
        if n % 50 == 0 {
            // A reader in the middle of a run sees every statement so far.
            assert_eq!(table.snapshot().iter().map(|r| r.calls).sum::<u64>(), u64::from(n));
        }
    }
    let (buffered, one_by_one) = (table.snapshot(), direct.snapshot());
    assert_eq!(buffered.len(), queries.len());
    for q in &queries {
        let (b, d) = (row(&buffered, q.hash), row(&one_by_one, q.hash));
        assert_eq!(
            (b.calls, b.hits, b.misses, b.rows, b.bytes, b.total, b.min, b.max, b.p50, b.p99),
            (d.calls, d.hits, d.misses, d.rows, d.bytes, d.total, d.min, d.max, d.p50, d.p99),
            "query {}",
            q.text
        );
        assert_eq!(b.fingerprint, q.text.as_ref());
        assert!(b.first_seen <= b.last_seen);
    }
    assert_eq!(row(&buffered, 1).calls, 3 + 2 * RUN_SAMPLES as u64 + 10);
}

#[test]
fn a_session_that_ends_leaves_its_run_in_the_table() {
    let table = Arc::new(stats(100));
    {
        let session = table.session(&Traffic::new().unwrap(), "app", "bob");
        session.record(Some(&id(5, "select ?")), Outcome::Forwarded, 1, 9, MS, std::time::Instant::now(), None, 0);
    }
    let mut live = 0;
    table.runs.each(|_| live += 1);
    assert_eq!(live, 0, "an ended session's run is no longer listed");
    let rows = table.snapshot();
    assert_eq!((row(&rows, 5).calls, row(&rows, 5).forwarded, row(&rows, 5).user.as_str()), (1, 1, "bob"));
}

#[test]
fn a_session_repeat_is_counted_on_its_buffered_query() {
    let table = Arc::new(stats(100));
    let session = table.session(&Traffic::new().unwrap(), "app", "alice");
    let q = id(9, "select ?");
    session.record(Some(&q), Outcome::Hit, 1, 1, MS, std::time::Instant::now(), None, 0);
    session.report_repeat(&q, 3);
    assert_eq!(row(&table.snapshot(), 9).repeats, 1, "the run was added before the burst was counted");
}
