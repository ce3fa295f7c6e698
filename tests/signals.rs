//! The `pgcached` process and signals: SIGHUP (`systemctl reload`, logrotate hooks) reloads the
//! configuration file without dropping a client; SIGTERM and SIGINT drain; a second one stops
//! at once.

mod common;

use std::time::{Duration, Instant};

use common::binary::Binary;
use common::{PgCluster, connect, simple_one};

/// The binary in front of `pg` with `timeouts.shutdown` = `shutdown`.
async fn start(pg: &PgCluster, shutdown: &str) -> Binary {
    Binary::start(pg, &format!("timeouts:\n  shutdown: {shutdown}\n")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_configuration_and_sigterm_stops() {
    let pg = PgCluster::start();
    pg.psql("CREATE TABLE kv (k int); INSERT INTO kv VALUES (1)");
    let mut p = start(&pg, "5s").await;
    let c = connect(&p.url()).await;
    assert_eq!(simple_one(&c, "SELECT k FROM kv").await.as_deref(), Some("1"));

    // The same file plus a policy; then one that is not valid.
    let running = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(&p.config, format!("{running}policies:\n  - name: locked\n    deny_tables: [kv]\n")).unwrap();
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    let refusal = loop {
        match c.simple_query("SELECT k FROM kv").await {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "SIGHUP did not reload: {}", p.log()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refusal.code().map(|c| c.code()), Some("42501"), "{refusal}");
    assert!(p.exit_within(Duration::from_millis(200)).await.is_none(), "SIGHUP must not stop pgcached: {}", p.log());
    assert_eq!(simple_one(&c, "SELECT 2").await.as_deref(), Some("2"), "the client kept its session");
    assert!(p.log().contains("configuration reloaded"), "the reload is logged: {}", p.log());

    std::fs::write(&p.config, "listen: [broken").unwrap();
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.log().contains("configuration reload refused") {
        assert!(Instant::now() < deadline, "an invalid file is logged: {}", p.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = connect(&p.url()).await;
    assert!(other.simple_query("SELECT k FROM kv").await.is_err(), "the running policy is kept");
    assert_eq!(simple_one(&other, "SELECT 3").await.as_deref(), Some("3"), "new clients are served");

    drop((c, other));
    p.signal("TERM");
    let status = p.exit_within(Duration::from_secs(5)).await.expect("SIGTERM stops it");
    assert!(status.success(), "a drained stop exits 0: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_signal_stops_at_once() {
    let pg = PgCluster::start();
    let mut p = start(&pg, "60s").await;
    let c = connect(&p.url()).await;
    c.batch_execute("BEGIN").await.unwrap();

    // SIGINT drains like SIGTERM: the open transaction holds the stop.
    p.signal("INT");
    assert!(p.exit_within(Duration::from_millis(700)).await.is_none(), "draining waits for the transaction");
    p.signal("TERM");
    let status = p.exit_within(Duration::from_secs(3)).await.expect("the second signal stops it at once");
    assert_eq!(status.code(), Some(1), "{}", p.log());
    assert!(p.log().contains("second signal received"), "{}", p.log());
}
