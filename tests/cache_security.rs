//! The cache never crosses a security boundary: rows filtered by row-level security, a
//! `security_barrier` view or a view over the clock are shared between sessions only when the
//! key holds everything they depend on (the role), and a session whose settings changed where
//! the proxy cannot see (inside a function) is not served answers keyed by its old ones.

mod common;

use common::{PgCluster, Proxy, connect};
use pgcached::config::PoolMode;
use tokio_postgres::Client;

const TENANTS: &str = "
    CREATE TABLE orders (id int PRIMARY KEY, tenant int, item text);
    INSERT INTO orders VALUES (1, 1, 'apple'), (2, 2, 'pear');
    CREATE ROLE app_user LOGIN;
    GRANT SELECT ON orders TO app_user;
    ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant ON orders USING (tenant = current_setting('app.tenant', true)::int);
    CREATE FUNCTION set_tenant(t int) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN PERFORM set_config('app.tenant', t::text, false); END $$;
    GRANT EXECUTE ON FUNCTION set_tenant(int) TO app_user;
    CREATE TABLE notes (id int PRIMARY KEY, owner name, body text);
    INSERT INTO notes VALUES (1, 'app_user', 'mine'), (2, 'other_user', 'theirs');
    CREATE ROLE other_user LOGIN;
    GRANT SELECT ON notes TO app_user, other_user;
    ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON notes USING (owner = current_user);
";

async fn items(c: &Client, sql: &str) -> Vec<String> {
    c.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

/// The usual multi-tenant pattern: a policy on a setting that a function sets. Tenant 2 must
/// never be answered tenant 1's cached rows: in session pooling (as in the report) with the
/// setting made once per session, and in transaction pooling with it made in each transaction
/// (a setting made inside a function cannot follow a client from one transaction to the next
/// there: README, pooling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_one_tenant_never_reach_another_through_the_cache() {
    let pg = PgCluster::start();
    pg.psql_db("app", TENANTS);
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let proxy = Proxy::start_with(&pg, |c| c.pool.mode = mode).await;
        let mut one = connect(&proxy.url("app_user", "app")).await;
        let mut two = connect(&proxy.url("app_user", "app")).await;
        for _ in 0..3 {
            assert_eq!(tenant_items(&mut one, 1).await, ["apple"], "{mode:?}");
            assert_eq!(tenant_items(&mut two, 2).await, ["pear"], "{mode:?}");
        }
        if mode == PoolMode::Session {
            one.batch_execute("SELECT set_tenant(1)").await.unwrap();
            two.batch_execute("SELECT set_tenant(2)").await.unwrap();
            for _ in 0..3 {
                assert_eq!(items(&one, "SELECT item FROM orders").await, ["apple"]);
                assert_eq!(items(&two, "SELECT item FROM orders").await, ["pear"]);
            }
        }
        drop((one, two));
        proxy.shutdown().await;
    }
}

/// The tenant's items, read in a transaction that sets the tenant first.
async fn tenant_items(c: &mut Client, tenant: i32) -> Vec<String> {
    let tx = c.transaction().await.unwrap();
    tx.execute("SELECT set_tenant($1)", &[&tenant]).await.unwrap();
    let rows = tx.query("SELECT item FROM orders", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    tx.commit().await.unwrap();
    rows
}

/// A policy on the role alone is safe to cache: the role is in the key. Each role keeps
/// seeing its own rows, and a repeated read is a hit (a change made around the proxy is not
/// seen until the entry goes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_filtered_by_the_role_alone_are_cached_per_role() {
    let pg = PgCluster::start();
    pg.psql_db("app", TENANTS);
    let proxy = Proxy::start(&pg).await;
    let mine = connect(&proxy.url("app_user", "app")).await;
    let theirs = connect(&proxy.url("other_user", "app")).await;
    let read = "SELECT body FROM notes ORDER BY id";
    assert_eq!(items(&mine, read).await, ["mine"]);
    assert_eq!(items(&theirs, read).await, ["theirs"]);
    pg.psql_db("app", "UPDATE notes SET body = 'changed around the proxy'");
    assert_eq!(items(&mine, read).await, ["mine"], "a hit");
    assert_eq!(items(&theirs, read).await, ["theirs"], "a hit of its own");
}

/// A view over the clock is not cached: its rows change without any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_the_clock_is_not_cached() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE events (id int, at timestamptz);
         INSERT INTO events VALUES (1, now() + interval '1 hour');
         CREATE VIEW upcoming AS SELECT id FROM events WHERE at > now();",
    );
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let count = "SELECT count(*) FROM upcoming";
    assert_eq!(c.query_one(count, &[]).await.unwrap().get::<_, i64>(0), 1);
    pg.psql_db("app", "UPDATE events SET at = now() - interval '1 hour'");
    assert_eq!(c.query_one(count, &[]).await.unwrap().get::<_, i64>(0), 0, "not a cached answer");
}

/// A function that changes `search_path` inside its body: the proxy cannot see the new value,
/// so the session's later reads are not answered from entries keyed by the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_changed_inside_a_function_stops_the_sessions_cache() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE kv (v text); INSERT INTO kv VALUES ('public');
         CREATE SCHEMA other; CREATE TABLE other.kv (v text); INSERT INTO other.kv VALUES ('other');
         CREATE FUNCTION use_other() RETURNS void LANGUAGE plpgsql AS $$
             BEGIN PERFORM set_config('search_path', 'other', false); END $$;",
    );
    let proxy = Proxy::start_with(&pg, |c| c.pool.mode = PoolMode::Session).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let read = "SELECT v FROM kv";
    assert_eq!(items(&c, read).await, ["public"]);
    assert_eq!(items(&c, read).await, ["public"]);
    c.batch_execute("SELECT use_other()").await.unwrap();
    assert_eq!(items(&c, read).await, ["other"], "as directly: the function's search_path");
    let fresh = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(items(&fresh, read).await, ["public"], "another session keeps its own");
}
