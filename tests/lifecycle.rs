//! Shutdown: stop accepting, let open transactions finish (up to `timeouts.shutdown`), close.

mod common;

use std::time::Duration;

use common::{PgCluster, Proxy, connect, try_connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_may_finish_after_shutdown_begins() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (x int)");
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.shutdown = Duration::from_secs(10)).await;
    let url = proxy.url("postgres", "app");
    let in_tx = connect(&url).await;
    let idle = connect(&url).await;
    in_tx.batch_execute("BEGIN; INSERT INTO t VALUES (1)").await.unwrap();

    proxy.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(try_connect(&url).await.is_err(), "no new clients during shutdown");
    let err = idle.simple_query("SELECT 1").await.unwrap_err();
    assert!(err.is_closed() || err.code().is_some_and(|c| c.code() == "57P01"), "idle client closed: {err}");

    in_tx.batch_execute("INSERT INTO t VALUES (2); COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await.expect("drained once the transaction ended");
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_deadline_closes_transactions_that_do_not_finish() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (x int)");
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.shutdown = Duration::from_millis(500)).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    c.batch_execute("BEGIN; INSERT INTO t VALUES (1)").await.unwrap();
    proxy.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await.expect("deadline enforced");
    // The abandoned transaction was rolled back by the server when its connection closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "0");
}
