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

/// Use database `scratch` through the proxy as an app does (a write, cached reads: pooled server
/// connections and the catalog's control-plane ones), then leave.
async fn use_and_leave(proxy: &Proxy, db: &str) {
    let c = connect(&proxy.url("postgres", db)).await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a') ON CONFLICT DO NOTHING")
        .await
        .unwrap();
    for _ in 0..2 {
        let row = c.query_one("SELECT v FROM t WHERE id = $1", &[&1i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "a");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_database_succeeds_once_its_clients_have_left_as_directly() {
    // The pool's idle connections to a database are sessions no client opened: Postgres would
    // refuse DROP DATABASE (55006, after waiting 5 s) while they stay open.
    let pg = PgCluster::start();
    for mode in [pgcached::config::PoolMode::Transaction, pgcached::config::PoolMode::Session] {
        pg.psql("CREATE DATABASE scratch");
        let proxy = Proxy::start_with(&pg, |c| c.pool.mode = mode).await;
        use_and_leave(&proxy, "scratch").await;
        let admin = connect(&proxy.url("postgres", "app")).await;
        let started = std::time::Instant::now();
        // A copy from it as template, a rename and a drop: each needs it free of other sessions.
        admin
            .batch_execute("CREATE DATABASE copied TEMPLATE scratch")
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        use_and_leave(&proxy, "scratch").await;
        admin
            .batch_execute("ALTER DATABASE scratch RENAME TO scratch2")
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        use_and_leave(&proxy, "scratch2").await;
        admin.batch_execute("DROP DATABASE scratch2").await.unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        // The extended protocol's Parse too.
        use_and_leave(&proxy, "copied").await;
        admin.execute("DROP DATABASE copied", &[]).await.unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        assert!(started.elapsed() < Duration::from_secs(4), "{mode:?}: no waiting ({:?})", started.elapsed());
        assert_eq!(
            pg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch%' OR datname = 'copied'").trim(),
            "0"
        );
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_database_fails_as_directly_while_a_client_of_it_stays() {
    let pg = PgCluster::start();
    pg.psql("CREATE DATABASE scratch");
    let proxy = Proxy::start(&pg).await;
    use_and_leave(&proxy, "scratch").await;
    // Connected, idle, holding no server connection (transaction pooling): directly it would
    // be a session of the database.
    let stays = connect(&proxy.url("postgres", "scratch")).await;
    let admin = connect(&proxy.url("postgres", "app")).await;
    let err = admin.batch_execute("DROP DATABASE scratch").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55006"), "{err:?}");
    let row = stays.query_one("SELECT v FROM t WHERE id = 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "a", "the client that stayed goes on");
    drop(stays);
    admin.batch_execute("DROP DATABASE scratch").await.unwrap();
}
