//! New login defaults (`ALTER DATABASE … SET`, `ALTER ROLE … SET`) made through pgcached reach
//! the clients that connect after them, as they reach new sessions directly: pooled server
//! connections logged in before are retired, answers recorded on them are not stored, and new
//! clients are not greeted with the old parameters (`Pools::new_login_defaults`). And what else
//! a login says: the notices applying the startup parameters raises. Each scenario runs
//! directly against Postgres first; pgcached must show the same.

mod common;

use common::raw::RawClient;
use common::{PgCluster, Proxy, connect, simple_one};
use pgcached::config::PoolMode;

/// The one value of `sql`, in the simple protocol and then the extended one (the second time
/// the same statement may be a cache hit).
async fn both_protocols(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let simple = simple_one(c, sql).await.unwrap_or_default();
    let extended: String = c.query_one(sql, &[]).await.unwrap().get(0);
    vec![simple, extended]
}

/// What clients of `url` see around new defaults made by another client: one in a block since
/// before them (its session's old defaults), then clients that connect after them.
async fn around_new_defaults(port: u16) -> Vec<String> {
    let url = &format!("postgres://postgres@127.0.0.1:{port}/app");
    let work_mem = "SELECT current_setting('work_mem')";
    let mut seen = Vec::new();
    seen.push(greeted_time_zone(port).await);
    let old = connect(url).await;
    seen.extend(both_protocols(&old, work_mem).await);
    // In a block that holds its server connection (random() is never cached).
    old.batch_execute("BEGIN").await.unwrap();
    old.query_one("SELECT random()", &[]).await.unwrap();
    let admin = connect(url).await;
    admin.batch_execute("ALTER DATABASE app SET work_mem = '7MB'").await.unwrap();
    // The old session's own defaults: recorded on a connection logged in before the change.
    seen.extend(both_protocols(&old, work_mem).await);
    seen.extend(both_protocols(&old, work_mem).await);
    old.batch_execute("COMMIT").await.unwrap();
    for _ in 0..2 {
        let new = connect(url).await;
        seen.extend(both_protocols(&new, work_mem).await);
    }
    // A reported parameter: a new client is greeted with the new value and keeps it.
    admin.batch_execute("ALTER ROLE postgres IN DATABASE app SET timezone = 'Asia/Tokyo'").await.unwrap();
    for _ in 0..2 {
        seen.push(greeted_time_zone(port).await);
        let new = connect(url).await;
        seen.extend(both_protocols(&new, "SELECT current_setting('TimeZone')").await);
        seen.push(simple_one(&new, "SHOW TimeZone").await.unwrap_or_default());
    }
    seen
}

/// The TimeZone a new client is told at login.
async fn greeted_time_zone(port: u16) -> String {
    let raw = RawClient::connect(port, "postgres", "app").await;
    let told = raw.reported.iter().find(|(name, _)| name == "TimeZone").map(|(_, v)| v.clone());
    format!("greeted with TimeZone {told:?}")
}

fn reset_defaults(pg: &PgCluster) {
    pg.psql_db("app", "ALTER DATABASE app RESET ALL; ALTER ROLE postgres IN DATABASE app RESET ALL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_login_defaults_reach_the_clients_that_connect_after_them() {
    let pg = PgCluster::start();
    let direct = around_new_defaults(pg.port()).await;
    assert_ne!(direct[3], direct[7], "the scenario changes work_mem: {direct:?}");
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        reset_defaults(&pg);
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.mode = mode;
            // Few, so that new clients are offered the connections earlier ones gave back.
            c.pool.max_size = if mode == PoolMode::Session { 6 } else { 3 };
        })
        .await;
        let through = around_new_defaults(proxy.port).await;
        assert_eq!(through, direct, "{mode:?}");
        proxy.shutdown().await;
    }
}

/// The same defaults changed around pgcached (directly: event triggers do not fire for them,
/// so NOTIFY invalidation cannot carry them): new clients get them within a few seconds — the
/// proxy polls a fingerprint of `pg_db_role_setting` — where they kept the old ones on pooled
/// connections for as long as those lived, and the cached `current_setting` for its TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_login_defaults_made_around_pgcached_reach_new_clients_soon() {
    let pg = PgCluster::start();
    let work_mem = "SELECT current_setting('work_mem')";
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        reset_defaults(&pg);
        let admin = common::free_port();
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.mode = mode;
            c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
        })
        .await;
        let url = proxy.url("postgres", "app");
        let old = ["4MB".to_string(), "4MB".to_string()];
        for _ in 0..2 {
            // The second time from the cache (and the pool's idle connection).
            let c = connect(&url).await;
            assert_eq!(both_protocols(&c, work_mem).await, old, "{mode:?}");
        }
        let greeted_before = greeted_time_zone(proxy.port).await;
        // pgcached has read what the defaults were (right after its first pool appeared): a
        // change from now on is one it can tell.
        let first = r#"pgcached_login_defaults_checks_total{outcome="first"}"#;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while common::http::metric(admin, first).await < 1.0 {
            assert!(std::time::Instant::now() < deadline, "{mode:?}: the login defaults were never read");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        pg.psql_db("app", "ALTER ROLE postgres IN DATABASE app SET work_mem = '7MB'");
        pg.psql_db("app", "ALTER DATABASE app SET TimeZone = 'Asia/Tokyo'");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let c = connect(&url).await;
            let seen = both_protocols(&c, work_mem).await;
            let greeted = greeted_time_zone(proxy.port).await;
            if seen == ["7MB", "7MB"] && greeted.contains("Asia/Tokyo") {
                let changed = r#"pgcached_login_defaults_checks_total{outcome="changed"}"#;
                assert!(common::http::metric(admin, changed).await >= 1.0, "{mode:?}: counted");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{mode:?}: still {seen:?}, {greeted} (before: {greeted_before}) 15 s after the change"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        proxy.shutdown().await;
    }
}

/// A startup parameter Postgres warns about at login (an `application_name` longer than 63
/// bytes: 42622 "identifier … will be truncated"): the client gets the notice, as directly
/// (tokio-postgres's own `notices` test counts it). pgcached applies startup parameters with a
/// hidden statement and dropped what it raised — also for later clients greeted from the
/// welcome cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_raised_at_login_reaches_the_client() {
    let pg = PgCluster::start();
    let long_name = "x".repeat(70);
    let params = [("user", "postgres"), ("database", "app"), ("application_name", long_name.as_str())];
    let direct = RawClient::connect_with(pg.port(), &params).await.login_notices;
    assert_eq!(direct.len(), 1, "{direct:?}");
    assert!(direct[0].starts_with("N:42622:"), "{direct:?}");
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let proxy = Proxy::start_with(&pg, |c| c.pool.mode = mode).await;
        for nth in 0..2 {
            let through = RawClient::connect_with(proxy.port, &params).await.login_notices;
            assert_eq!(through, direct, "{mode:?}, client {nth}");
        }
        proxy.shutdown().await;
    }
}
