//! The memory budget, measured on the real `pgcached` process (its peak resident set, `VmHWM`):
//! rows far larger than any buffer stream through in bounded chunks and are never recorded past
//! `cache.max_entry_size`.
//!
//! Bounds are generous against the budget (README, "Memory") and far below what holding a row
//! whole would cost: a debug build's resident baseline is ~20–30 MB.

mod common;

use std::time::Duration;

use common::binary::Binary;
use common::http::{get, sample};
use common::raw::RawClient;
use common::{PgCluster, free_port};

const MIB: u64 = 1024 * 1024;

/// The binary in front of `pg` with the admin endpoint on a free port and `extra` YAML.
async fn start(pg: &PgCluster, extra: &str) -> (Binary, u16) {
    let admin = free_port();
    let p = Binary::start(pg, &format!("admin:\n  http_listen: 127.0.0.1:{admin}\n{extra}")).await;
    (p, admin)
}

async fn metric(admin: u16, series: &str) -> f64 {
    let (_, body) = get(admin, "/metrics").await;
    sample(&body, series).unwrap_or(0.0)
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
