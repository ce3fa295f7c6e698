//! `cache.invalidation: notify` through the proxy, against a real Postgres: a write made around
//! the proxy (directly to Postgres, or through another pgcached) is seen within 1 s once the
//! triggers are installed; losing the listener's connection flushes and reconnects. Hits are
//! observed from the outside: a table *without* the trigger, changed directly in Postgres,
//! still reads old through the proxy.

mod common;

use std::time::{Duration, Instant};

use common::{PgCluster, Proxy, connect};
use pgcached::config::InvalidationMode;
use pgcached::invalidate::install_triggers;
use tokio_postgres::Client;

/// `watched` gets the trigger, `plain` does not.
const SETUP: &str = "CREATE TABLE watched (k int PRIMARY KEY, v text);
                     CREATE TABLE plain (k int PRIMARY KEY, v text);
                     INSERT INTO watched VALUES (1, 'old');
                     INSERT INTO plain VALUES (1, 'old');";

const FRESH_WITHIN: Duration = Duration::from_secs(1);

async fn value(c: &Client, table: &str) -> String {
    c.query_one(&format!("SELECT v FROM {table} WHERE k = $1"), &[&1i32]).await.unwrap().get(0)
}

/// Poll `table` through `c` until it reads `want`; how long that took (panics past `within`).
async fn fresh_within(c: &Client, table: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = value(c, table).await;
        if got == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{table} still reads {got:?}, not {want:?}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sneak(pg: &PgCluster, table: &str, v: &str) {
    pg.psql_db("app", &format!("UPDATE {table} SET v = '{v}' WHERE k = 1"));
}

/// The pids of the backends LISTENing for pgcached.
fn listener_pids(pg: &PgCluster) -> Vec<String> {
    let out = pg.psql_db(
        "app",
        "SELECT pid FROM pg_stat_activity
          WHERE application_name = 'pgcached-invalidate' AND query LIKE 'LISTEN %' ORDER BY pid",
    );
    out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Wait until `n` listeners (other than `except`) are LISTENing, then a moment more: the
/// listener flushes its database right after LISTEN, which must not race the test's fills.
async fn wait_listening(pg: &PgCluster, n: usize, except: &[String]) -> Vec<String> {
    let start = Instant::now();
    loop {
        let pids: Vec<String> = listener_pids(pg).into_iter().filter(|p| !except.contains(p)).collect();
        if pids.len() >= n {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return pids;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{n} listener(s) not LISTENing: {pids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn notify_proxy(pg: &PgCluster) -> Proxy {
    Proxy::start_with(pg, |c| {
        c.cache.invalidation = InvalidationMode::Notify;
        c.cache.default_ttl = Duration::from_secs(600);
    })
    .await
}

async fn install(pg: &PgCluster) {
    let mut admin = connect(&pg.url("postgres", "app")).await;
    let done = install_triggers(&mut admin, &["watched"], &[]).await.unwrap();
    assert_eq!(done.tables, ["public.watched"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_without_notify_a_direct_write_stays_unseen() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    install(&pg).await;
    let proxy = Proxy::start_with(&pg, |c| c.cache.default_ttl = Duration::from_secs(600)).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&c, "watched").await, "old");
    sneak(&pg, "watched", "new");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(value(&c, "watched").await, "old", "invalidation: proxy ignores the triggers' NOTIFYs");
    assert!(listener_pids(&pg).is_empty(), "no listener without notify mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_notify_a_direct_write_is_seen_within_one_second() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    install(&pg).await;
    let proxy = notify_proxy(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    wait_listening(&pg, 1, &[]).await;

    assert_eq!(value(&c, "plain").await, "old");
    assert_eq!(value(&c, "watched").await, "old");
    // Still a cache: a table without the trigger reads old (a hit).
    sneak(&pg, "plain", "new");
    assert_eq!(value(&c, "plain").await, "old", "plain has no trigger: served from the cache");
    // With the trigger, fresh within 1 s.
    sneak(&pg, "watched", "new");
    fresh_within(&c, "watched", "new", FRESH_WITHIN).await;
    // And cached again afterwards (a hit, then another direct write seen).
    assert_eq!(value(&c, "watched").await, "new");
    pg.psql_db("app", "DELETE FROM watched; INSERT INTO watched VALUES (1, 'newer')");
    fresh_within(&c, "watched", "newer", FRESH_WITHIN).await;
    drop(c);
    proxy.shutdown().await;
    assert!(listener_pids(&pg).is_empty(), "the listener stops with the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_see_each_others_writes_within_one_second() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    install(&pg).await;
    let proxy_a = notify_proxy(&pg).await;
    let proxy_b = notify_proxy(&pg).await;
    let a = connect(&proxy_a.url("postgres", "app")).await;
    let b = connect(&proxy_b.url("postgres", "app")).await;
    wait_listening(&pg, 2, &[]).await;

    for c in [&a, &b] {
        assert_eq!(value(c, "watched").await, "old");
        assert_eq!(value(c, "plain").await, "old");
    }
    // Without the trigger, B never hears of A's write: it is caching.
    a.execute("UPDATE plain SET v = 'via a' WHERE k = 1", &[]).await.unwrap();
    assert_eq!(value(&a, "plain").await, "via a", "A invalidated its own entry");
    assert_eq!(value(&b, "plain").await, "old", "B's entry: a hit");
    // With it, B's entry goes within 1 s; and the other way round.
    a.execute("UPDATE watched SET v = 'via a' WHERE k = 1", &[]).await.unwrap();
    fresh_within(&b, "watched", "via a", FRESH_WITHIN).await;
    b.execute("UPDATE watched SET v = 'via b' WHERE k = 1", &[]).await.unwrap();
    fresh_within(&a, "watched", "via b", FRESH_WITHIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_listener_flushes_the_cache_and_it_reconnects() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    install(&pg).await;
    let proxy = notify_proxy(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let first = wait_listening(&pg, 1, &[]).await;

    assert_eq!(value(&c, "plain").await, "old");
    sneak(&pg, "plain", "new");
    assert_eq!(value(&c, "plain").await, "old", "a hit before the loss");

    let killed = pg.psql_db(
        "app",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = 'pgcached-invalidate' AND query LIKE 'LISTEN %'",
    );
    assert_eq!(killed.trim(), "1");
    // The loss flushed the cache: the next read is fresh (even of the table without trigger).
    fresh_within(&c, "plain", "new", Duration::from_secs(2)).await;

    // Reconnected (a new backend), and direct writes are picked up again.
    let second = wait_listening(&pg, 1, &first).await;
    assert_ne!(first, second);
    assert_eq!(value(&c, "watched").await, "old");
    assert_eq!(value(&c, "plain").await, "new");
    sneak(&pg, "plain", "newer");
    assert_eq!(value(&c, "plain").await, "new", "caching again after the reconnect");
    sneak(&pg, "watched", "new");
    fresh_within(&c, "watched", "new", FRESH_WITHIN).await;
}

/// DDL made around the proxy (here: a view redefined, which writes no row and so fires no table
/// trigger) reaches a notify-mode proxy through the event trigger `install_triggers` puts in
/// place as a superuser: the database's answers and the catalog's memos are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_around_the_proxy_is_seen_within_one_second() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    pg.psql_db("app", "CREATE VIEW shown AS SELECT k, v FROM plain");
    let mut admin = connect(&pg.url("postgres", "app")).await;
    let done = install_triggers(&mut admin, &["watched"], &[]).await.unwrap();
    assert!(done.ddl, "a superuser installs the DDL event trigger");
    let proxy = notify_proxy(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    wait_listening(&pg, 1, &[]).await;
    assert_eq!(value(&c, "shown").await, "old");
    assert_eq!(value(&c, "shown").await, "old", "cached");
    pg.psql_db("app", "CREATE OR REPLACE VIEW shown AS SELECT k, 'redefined'::text AS v FROM plain");
    fresh_within(&c, "shown", "redefined", FRESH_WITHIN).await;
}
