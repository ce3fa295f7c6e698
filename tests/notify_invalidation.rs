//! NOTIFY-based invalidation against a private Postgres: triggers installed by pgcached turn a
//! write made directly to the database (around the proxy) into a version bump, and losing the
//! listener's connection flushes the cache and reconnects.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::PgCluster;
use pgcached::cache::{CacheKey, FillSpec, InvalidationCause, Lookup, ResultCache};
use pgcached::config::CacheConfig;
use pgcached::invalidate::{ListenerHandle, install_triggers, spawn_listener};
use tokio_postgres::NoTls;

async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn listening(pg: &PgCluster, cache: &Arc<ResultCache>) -> ListenerHandle {
    let h = spawn_listener(pg.url("postgres", "app").parse().unwrap(), NoTls, "app".into(), cache.clone(), None);
    let state = h.state().clone();
    eventually("listener connected", Duration::from_secs(10), || state.is_connected()).await;
    h
}

fn fill(cache: &ResultCache, key: u128, table: &str) {
    let tables = [table];
    let spec = FillSpec { database: "app", tables: &tables, rows: None, ttl: Duration::from_secs(600), query: None };
    let Lookup::Fill(mut rec) = cache.lookup(CacheKey(key), &spec) else { panic!("expected a fill") };
    for f in [&b"T\0\0\0\x06\0\0"[..], b"C\0\0\0\x0dSELECT 0\0"] {
        rec.record(f);
    }
    cache.complete(rec).unwrap();
    assert!(cache.get(&CacheKey(key)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_write_invalidates_within_one_second() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t(id int); CREATE TABLE u(id int);");
    let mut admin = common::connect(&pg.url("postgres", "app")).await;
    let installed = install_triggers(&mut admin, &["t", "u"], &[]).await.unwrap();
    assert_eq!(installed.tables, vec!["public.t", "public.u"]);
    let cache = Arc::new(ResultCache::new(&CacheConfig::default()));
    let _h = listening(&pg, &cache).await;

    fill(&cache, 1, "t");
    fill(&cache, 2, "public.u");
    pg.psql_db("app", "INSERT INTO t VALUES (1)");
    eventually("entry of t invalidated", Duration::from_secs(1), || cache.get(&CacheKey(1)).is_none()).await;
    assert!(cache.get(&CacheKey(2)).is_some(), "u was not written");
    assert!(cache.stats().snapshot().invalidations(InvalidationCause::Notify) >= 1);

    // TRUNCATE too, and a write to a qualified name invalidates a bare-name read.
    fill(&cache, 3, "u");
    pg.psql_db("app", "TRUNCATE public.u");
    eventually("entry of u invalidated", Duration::from_secs(1), || cache.get(&CacheKey(3)).is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_write_invalidates_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t(id int); CREATE TABLE marker(id int);");
    let mut admin = common::connect(&pg.url("postgres", "app")).await;
    install_triggers(&mut admin, &["t", "marker"], &[]).await.unwrap();
    let cache = Arc::new(ResultCache::new(&CacheConfig::default()));
    let _h = listening(&pg, &cache).await;

    fill(&cache, 1, "t");
    fill(&cache, 2, "marker");
    pg.psql_db("app", "BEGIN; INSERT INTO t VALUES (1); ROLLBACK;");
    // Notifications arrive in commit order: once the marker's is in, the rollback's would be.
    pg.psql_db("app", "INSERT INTO marker VALUES (1)");
    eventually("marker invalidated", Duration::from_secs(1), || cache.get(&CacheKey(2)).is_none()).await;
    assert!(cache.get(&CacheKey(1)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_cover_every_table_of_a_schema_with_quoted_names() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE SCHEMA s; CREATE TABLE s.\"Mixed Case\"(id int);
         CREATE TABLE s.parted(id int) PARTITION BY RANGE (id);
         CREATE TABLE s.parted_1 PARTITION OF s.parted FOR VALUES FROM (0) TO (100);
         CREATE VIEW s.v AS SELECT 1;",
    );
    let mut admin = common::connect(&pg.url("postgres", "app")).await;
    let installed = install_triggers(&mut admin, &[], &["s"]).await.unwrap();
    assert_eq!(installed.tables, vec!["s.\"Mixed Case\"", "s.parted", "s.parted_1"]);
    // Idempotent.
    install_triggers(&mut admin, &[], &["s"]).await.unwrap();
    let err = install_triggers(&mut admin, &["s.v"], &[]).await.unwrap_err();
    assert!(err.to_string().contains("not a table"), "{err}");

    let cache = Arc::new(ResultCache::new(&CacheConfig::default()));
    let _h = listening(&pg, &cache).await;
    fill(&cache, 1, "\"Mixed Case\"");
    pg.psql_db("app", "UPDATE s.\"Mixed Case\" SET id = 2");
    eventually("quoted table invalidated", Duration::from_secs(1), || cache.get(&CacheKey(1)).is_none()).await;
    fill(&cache, 2, "s.parted");
    pg.psql_db("app", "INSERT INTO s.parted VALUES (5)");
    eventually("partitioned table invalidated", Duration::from_secs(1), || cache.get(&CacheKey(2)).is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_listener_connection_flushes_everything_and_reconnects() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t(id int);");
    let mut admin = common::connect(&pg.url("postgres", "app")).await;
    install_triggers(&mut admin, &["t"], &[]).await.unwrap();
    let cache = Arc::new(ResultCache::new(&CacheConfig::default()));
    let h = listening(&pg, &cache).await;
    let state = h.state().clone();

    fill(&cache, 1, "unrelated");
    let killed = pg.psql_db(
        "app",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgcached-invalidate'",
    );
    assert_eq!(killed.trim(), "1");
    eventually("flush on loss", Duration::from_secs(5), || cache.get(&CacheKey(1)).is_none()).await;
    assert!(cache.stats().snapshot().invalidations(InvalidationCause::ListenerLost) >= 1);
    eventually("reconnected", Duration::from_secs(10), || state.is_connected() && state.sessions() >= 2).await;
    assert!(state.losses() >= 1);

    // Listening again: a direct write still invalidates.
    fill(&cache, 2, "t");
    pg.psql_db("app", "DELETE FROM t");
    eventually("invalidated after reconnect", Duration::from_secs(1), || cache.get(&CacheKey(2)).is_none()).await;
    h.shutdown().await;
}
