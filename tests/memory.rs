//! The memory budget, measured on the real `pgcached` process (its peak resident set, `VmHWM`):
//! rows far larger than any buffer stream through in bounded chunks and are never recorded past
//! `cache.max_entry_size`; a client that stops reading holds bounded buffers and is cut at
//! `timeouts.client_write`, its server connection closed; 10,000 distinct statements under a
//! 16 MiB cache keep the process within the cache, the analysis memo and the working budget.
//!
//! Bounds are generous against the budget (README, "Memory") and far below what holding a row
//! whole would cost: a debug build's resident baseline is ~20–30 MB.

mod common;

use std::time::{Duration, Instant};

use common::binary::Binary;
use common::http::metric;
use common::raw::{RawClient, RecvError};
use common::{PgCluster, connect, free_port, simple_one};

const MIB: u64 = 1024 * 1024;

/// The binary in front of `pg` with the admin endpoint on a free port and `extra` YAML.
async fn start(pg: &PgCluster, extra: &str) -> (Binary, u16) {
    let admin = free_port();
    let p = Binary::start(pg, &format!("admin:\n  http_listen: 127.0.0.1:{admin}\n{extra}")).await;
    (p, admin)
}

/// One row of `mib` MiB through a raw client that reads and drops it as it comes: the lengths
/// of the messages of the answer.
async fn fetch_big_row(port: u16, mib: u64) -> Vec<(char, usize)> {
    let mut raw = RawClient::connect(port, "postgres", "postgres").await;
    raw.query(&format!("SELECT repeat('x', {mib} * 1024 * 1024) AS big"));
    raw.flush().await;
    let answer = raw.skim_until_ready(Duration::from_secs(60)).await;
    let row = answer.iter().find(|(tag, _)| *tag == 'D').unwrap_or_else(|| panic!("no row in {answer:?}"));
    assert!(row.1 as u64 > mib * MIB, "the whole row arrived: {answer:?}");
    assert!(answer.iter().any(|(tag, _)| *tag == 'C'), "{answer:?}");
    answer
}

/// A 300 MiB row (cache on, `max_entry_size` 8 MiB) goes through twice in bounded chunks: the
/// proxy's peak RSS stays far below the row, and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_mib_row_streams_through_without_being_held() {
    let pg = PgCluster::start();
    let (p, admin) = start(&pg, "cache:\n  max_entry_size: 8MiB\n").await;
    for _ in 0..2 {
        fetch_big_row(p.port, 300).await;
    }
    let peak = p.peak_rss();
    eprintln!("300 MiB row twice: peak RSS {} MiB, now {} MiB", peak / MIB, p.rss() / MIB);
    assert!(peak < 100 * MIB, "peak RSS {} MiB for a 300 MiB row", peak / MIB);
    assert_eq!(metric(admin, "pgcached_cache_fills_total").await, 0.0, "a row over max_entry_size is not stored");
    assert_eq!(metric(admin, "pgcached_cache_hits_total").await, 0.0);
    assert!(metric(admin, "pgcached_cache_misses_total").await >= 2.0, "both were cacheable lookups");
}

/// Five clients fetch 100 MiB rows at the same moment: each streams, none is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_fetching_100_mib_rows_at_once_stay_bounded() {
    let pg = PgCluster::start();
    let (p, _admin) = start(&pg, "").await;
    let port = p.port;
    let clients: Vec<_> = (0..5).map(|_| tokio::spawn(fetch_big_row(port, 100))).collect();
    for c in clients {
        c.await.unwrap();
    }
    let peak = p.peak_rss();
    eprintln!("5 x 100 MiB rows: peak RSS {} MiB", peak / MIB);
    assert!(peak < 100 * MIB, "peak RSS {} MiB for five 100 MiB rows", peak / MIB);
}

/// 10,000 distinct statements (half of one shape with new literals, half of new shapes) under a
/// 16 MiB cache and an 8 MiB analysis memo: the memo reports what it holds, within its setting,
/// and the process stays within the cache, the memo and its baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_statements_under_a_16_mib_cache_stay_bounded() {
    let pg = PgCluster::start();
    pg.psql(
        "CREATE TABLE acc (id int PRIMARY KEY, balance int, owner text, opened timestamptz DEFAULT now());
         INSERT INTO acc SELECT g, g * 10, 'owner ' || g FROM generate_series(1, 10000) g;",
    );
    let (p, admin) = start(&pg, "cache:\n  max_memory: 16MiB\nlimits:\n  analysis_memo: 8MiB\n").await;
    let c = connect(&p.url()).await;
    let baseline = p.rss();
    for i in 1..=10_000 {
        let sql = if i % 2 == 0 {
            format!("SELECT id, balance, owner, opened FROM acc WHERE id = {i} AND balance >= {} ORDER BY id", i * 10)
        } else {
            let list: Vec<String> = (i..i + 20).map(|n| n.to_string()).collect();
            format!(
                "SELECT a.id AS id_{i}, a.balance + {i} AS b, upper(a.owner) AS o, lower(b.owner) AS l, \
                 a.opened, b.opened AS o2, coalesce(a.balance, b.balance, 0) AS c, count(*) OVER () AS n \
                 FROM acc a JOIN acc b ON b.id = a.id LEFT JOIN acc c ON c.id = b.id + 1 \
                 WHERE a.id IN ({}) AND b.owner LIKE 'owner %' AND c.balance IS DISTINCT FROM {i}",
                list.join(", ")
            )
        };
        assert!(simple_one(&c, &sql).await.is_some(), "{sql}");
    }
    let peak = p.peak_rss();
    let memo = metric(admin, "pgcached_analysis_memo_bytes").await;
    let cache = metric(admin, "pgcached_cache_bytes").await;
    eprintln!(
        "10,000 statements: peak RSS {} MiB (baseline {} MiB), memo {} MiB, cache {} MiB",
        peak / MIB,
        baseline / MIB,
        memo as u64 / MIB,
        cache as u64 / MIB
    );
    assert!(memo > MIB as f64, "the memo holds analyses and says so: {memo}");
    assert!(memo <= (8 * MIB) as f64, "the memo stays within limits.analysis_memo: {memo}");
    // The cache's own weighed size, as the cache reports it (evictions run behind inserts).
    assert!(cache <= (16 * MIB) as f64 * 1.02, "{cache}");
    // What the cache and the memo hold over the baseline, plus allocator slack.
    let bound = baseline + (cache + memo) as u64 + 20 * MIB;
    assert!(peak < bound, "peak RSS {} MiB over a baseline of {} MiB", peak / MIB, baseline / MIB);
}

/// A client asks for 400 rows of 1 MiB and reads none of them: the proxy holds about
/// `limits.session_buffer` for it while the server waits unread, and after
/// `timeouts.client_write` closes the client and that server connection (mid-answer: it is not
/// given back), and serves everyone else as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_after_client_write_and_its_server_closed() {
    let pg = PgCluster::start();
    let (p, _admin) = start(&pg, "timeouts:\n  client_write: 2s\n").await;
    let direct = connect(&pg.url("postgres", "postgres")).await;
    let mut raw = RawClient::connect(p.port, "postgres", "postgres").await;
    raw.query("SELECT repeat('z', 1048576) AS blob_for_the_stalled_client FROM generate_series(1, 400)");
    raw.flush().await;
    let running = "SELECT count(*)::text FROM pg_stat_activity WHERE query LIKE '%blob_for_the_stalled_client%' \
                   AND pid <> pg_backend_pid()";
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(simple_one(&direct, running).await.as_deref(), Some("1"), "the server is held, not done");
    assert!(!p.log().contains("timeouts.client_write"), "not cut yet: {}", p.log());
    // Past the timeout, still reading nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held = p.peak_rss();
    let end = loop {
        match raw.recv_within(Duration::from_secs(10)).await {
            Ok(m) if m.tag == 'Z' => panic!("a client that did not read got the whole answer"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(end, RecvError::Closed, "the proxy closed the client");
    let deadline = Instant::now() + Duration::from_secs(5);
    while simple_one(&direct, running).await.as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "the server connection was closed: {}", p.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("non-reading client: peak RSS {} MiB", held / MIB);
    assert!(held < 60 * MIB, "peak RSS {} MiB while 400 MiB waited upstream", held / MIB);
    assert!(p.log().contains("timeouts.client_write"), "the cut is logged: {}", p.log());
    let other = connect(&p.url()).await;
    assert_eq!(simple_one(&other, "SELECT 7").await.as_deref(), Some("7"));
}

/// A spike gives its memory back: 80 answers of 1 MiB fill the cache (the process grows by
/// about that much), then expire (an 8 s TTL: filling takes over 2 s on a loaded machine, and
/// the first answers must still be there when the cache is weighed); once the cache has let them
/// go, the resident set is back near where it started — the allocator returns freed pages to
/// the system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_to_the_baseline_after_a_spike() {
    let pg = PgCluster::start();
    let (p, admin) = start(&pg, "cache:\n  max_memory: 256MiB\n  max_entry_size: 4MiB\n  default_ttl: 8s\n").await;
    let c = connect(&p.url()).await;
    simple_one(&c, "SELECT 1").await;
    let baseline = p.rss();
    let filled_from = Instant::now();
    for i in 0..80 {
        simple_one(&c, &format!("SELECT repeat('x', 1024 * 1024) || '{i}' AS big")).await;
    }
    let grown = p.rss();
    let cached = metric(admin, "pgcached_cache_bytes").await;
    eprintln!("spike: baseline {} MiB, with 80 MiB cached {} MiB", baseline / MIB, grown / MIB);
    assert!(cached >= (80 * MIB) as f64, "the answers were cached: {cached}");
    assert!(grown > baseline + 60 * MIB, "the spike is there: {} -> {} MiB", baseline / MIB, grown / MIB);
    tokio::time::sleep_until((filled_from + Duration::from_millis(8500)).into()).await;
    // Expired entries go with the cache's maintenance, which statements drive.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut now = p.rss();
    while now > baseline + 16 * MIB && Instant::now() < deadline {
        simple_one(&c, "SELECT 2").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = p.rss();
    }
    eprintln!("after expiry: {} MiB (cache {} bytes)", now / MIB, metric(admin, "pgcached_cache_bytes").await);
    assert!(now <= baseline + 16 * MIB, "RSS {} MiB, baseline {} MiB", now / MIB, baseline / MIB);
}
