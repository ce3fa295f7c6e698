//! Pooling: many clients over few server connections, a clear error when the pool is
//! exhausted, and recovery after the upstream restarts.

mod common;

use std::time::Duration;

use common::{PgCluster, Proxy, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_share_a_pool_of_five_in_transaction_mode() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE hits (client int, n int)");
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 5;
        c.pool.acquire_timeout = Duration::from_secs(30);
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = proxy.url("postgres", "app");
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&url).await;
            for n in 0..10 {
                let tx = c.transaction().await.unwrap();
                tx.execute("INSERT INTO hits VALUES ($1, $2)", &[&i, &n]).await.unwrap();
                let row = tx.query_one("SELECT count(*) FROM hits WHERE client = $1", &[&i]).await.unwrap();
                assert_eq!(row.get::<_, i64>(0), n as i64 + 1, "a transaction sees its own writes");
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM hits").trim(), "500");
    let backends: i64 = pg
        .psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND backend_type = 'client backend'
                AND application_name <> 'pgcached control'",
        )
        .trim()
        .parse()
        .unwrap();
    // The control plane's catalog look-ups (its own small pool) are not the data path's.
    assert!(backends <= 5, "at most pool.max_size server connections, saw {backends}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_53300_naming_the_pool() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.pool.acquire_timeout = Duration::from_millis(300);
    })
    .await;
    let holder = connect(&proxy.url("postgres", "app")).await;
    holder.batch_execute(common::BEGIN_ON_SERVER).await.unwrap(); // holds the only server connection
    let waiter = connect(&proxy.url("postgres", "app")).await;
    let err = waiter.simple_query("SELECT 1").await.unwrap_err();
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "53300");
    assert!(db.message().contains("app/postgres"), "message names the pool: {}", db.message());
    // Extended protocol too, and the session stays usable once the pool frees up.
    let err = waiter.query("SELECT $1::int", &[&1i32]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "53300");
    holder.batch_execute("COMMIT").await.unwrap();
    let row = waiter.query_one("SELECT $1::int", &[&5i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_succeed_again_after_the_upstream_restarts() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 3).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    for _ in 0..3 {
        c.simple_query("SELECT 1").await.unwrap();
    }
    pg.restart();
    // The pooled connections are dead; the proxy notices before handing one out, so not
    // even the first query after the restart fails.
    assert_eq!(c.query_one("SELECT 2", &[]).await.unwrap().get::<_, i32>(0), 2);
    let fresh = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(fresh.query_one("SELECT 3", &[]).await.unwrap().get::<_, i32>(0), 3);
}
