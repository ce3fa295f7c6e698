//! A server connection that dies under a client, compared with Postgres itself: a client in a
//! transaction gets exactly one FATAL and a close, as it would directly; a client in autocommit
//! holds no server connection, so it hears nothing at all and its next statement runs on
//! another one (issue 18).

mod common;

use std::time::Duration;

use common::raw::{RawClient, RecvError};
use common::{PgCluster, Proxy};

/// What a client idle in a transaction receives when its backend is terminated: the messages
/// until the connection closes (or 3 s pass), summarised.
async fn after_termination(pg: &PgCluster, port: u16) -> Vec<String> {
    let mut c = RawClient::connect(port, "postgres", "app").await;
    c.query("BEGIN").flush().await;
    c.until_ready().await;
    c.query("SELECT pg_backend_pid()").flush().await;
    let answer = c.until_ready().await;
    let row = answer.iter().find(|m| m.tag == 'D').expect("a row");
    // DataRow: column count (2 bytes), length (4), then the text.
    let pid = std::str::from_utf8(&row.body[6..]).unwrap().to_string();
    pg.psql(&format!("SELECT pg_terminate_backend({pid})"));
    let mut got = Vec::new();
    loop {
        match c.recv_within(Duration::from_secs(3)).await {
            Ok(m) => got.push(format!("{} {}", m.tag, m.code().unwrap_or_default())),
            Err(RecvError::Closed) => {
                got.push("closed".to_string());
                return got;
            }
            Err(RecvError::Timeout) => {
                got.push("still open".to_string());
                return got;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_a_transaction_gets_one_fatal_then_a_close_as_directly() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let direct = after_termination(&pg, pg.port()).await;
    assert_eq!(direct, vec!["E 57P01".to_string(), "closed".to_string()], "Postgres itself");
    let through = after_termination(&pg, proxy.port).await;
    assert_eq!(through, direct, "through pgcached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_autocommit_hears_nothing_and_goes_on() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.cache.enabled = false).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    c.query("SELECT 1").flush().await;
    c.until_ready().await;
    // Every server connection of the pool dies (transaction mode: the client holds none).
    let killed = pg.psql_db(
        "app",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = 'app' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    );
    assert!(killed.trim().parse::<u32>().unwrap() >= 1, "a pooled connection was there: {killed}");
    match c.recv_within(Duration::from_millis(500)).await {
        Err(RecvError::Timeout) => {}
        other => panic!("an idle client in autocommit hears nothing, got {other:?}"),
    }
    c.query("SELECT 2").flush().await;
    let answer = common::raw::summaries(&c.until_ready().await);
    assert!(!answer.iter().any(|m| m.starts_with('E')), "the next statement runs elsewhere: {answer:?}");
    assert!(answer.iter().any(|m| m.starts_with('D')), "{answer:?}");
}
