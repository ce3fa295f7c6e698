//! Functions are what `pg_proc` says they are (`session::calls`), against a real Postgres: a
//! stable or immutable function the built-in list does not know writes nothing (no flush), a
//! volatile user function writes (flush, never cached) even when it shares a built-in's name,
//! qualified or reached through the search path.

mod common;

use common::{PgCluster, Proxy, connect, simple_one};
use tokio_postgres::Client;

const SETUP: &str = "
    CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');
    CREATE TABLE log (n serial, what text);
    CREATE SCHEMA app;
    CREATE FUNCTION app.lower(text) RETURNS text VOLATILE LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO log (what) VALUES ($1); RETURN pg_catalog.lower($1); END$$;
    CREATE FUNCTION app.answer() RETURNS int STABLE LANGUAGE sql AS 'SELECT 42';";

async fn cached_value(c: &Client) -> String {
    simple_one(c, "SELECT v FROM kv WHERE k = 1").await.unwrap()
}

fn logged(pg: &PgCluster) -> String {
    pg.psql_db("app", "SELECT count(*) FROM log").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_and_immutable_functions_flush_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(cached_value(&c).await, "one");
    pg.psql_db("app", "UPDATE kv SET v = 'behind' WHERE k = 1");
    // Not in the built-in list; stable or immutable in pg_proc. (psql's \d, pgjdbc metadata.)
    for sql in [
        "SELECT pg_typeof(1)",
        "SELECT pg_get_userbyid(10)",
        "SELECT pg_size_pretty(1024::bigint)",
        "SELECT pg_table_is_visible('kv'::regclass)",
        "SELECT app.answer()",
    ] {
        c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(cached_value(&c).await, "one", "{sql} flushed the cache");
    }
    // A volatile user function may write: its database is flushed.
    c.simple_query("SELECT app.lower('X')").await.unwrap();
    assert_eq!(cached_value(&c).await, "behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volatile_user_function_with_a_built_in_name_is_never_cached() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    for _ in 0..2 {
        assert_eq!(simple_one(&c, "SELECT app.lower('A')").await.as_deref(), Some("a"));
    }
    assert_eq!(logged(&pg), "2", "qualified: both calls ran");
    // Through the search path, before pg_catalog: the bare name is the user's function.
    c.batch_execute("SET search_path = app, pg_catalog, public").await.unwrap();
    for _ in 0..2 {
        assert_eq!(simple_one(&c, "SELECT lower('B')").await.as_deref(), Some("b"));
        c.query_one("SELECT lower($1::text)", &[&"C"]).await.unwrap();
    }
    assert_eq!(logged(&pg), "6", "bare: every call ran");
}

/// Functions in a view's body run on the reader's behalf: a volatile user function there may
/// write, so reading the view invalidates like calling it; a volatile built-in that writes
/// nothing (`random()`) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_whose_body_calls_a_writing_function_invalidates_what_it_writes() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        &format!(
            "{SETUP};
             CREATE FUNCTION app.audit(t text) RETURNS boolean VOLATILE LANGUAGE plpgsql AS
               $$BEGIN INSERT INTO log (what) VALUES (t); RETURN true; END$$;
             CREATE VIEW audited AS SELECT k, v FROM kv WHERE app.audit(v);
             CREATE VIEW sampled AS SELECT k, v FROM kv WHERE random() >= 0;"
        ),
    );
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(simple_one(&c, "SELECT count(*) FROM log").await.unwrap(), "0");
    assert_eq!(cached_value(&c).await, "one");
    pg.psql_db("app", "UPDATE kv SET v = 'behind' WHERE k = 1");
    c.simple_query("SELECT * FROM sampled").await.unwrap();
    assert_eq!(cached_value(&c).await, "one", "random() in a view writes nothing: still cached");
    c.simple_query("SELECT * FROM audited").await.unwrap();
    assert_eq!(
        simple_one(&c, "SELECT count(*) FROM log").await.unwrap(),
        "1",
        "the view's function wrote a row: the cached count is gone"
    );
    assert_eq!(cached_value(&c).await, "behind", "an unknown writer flushes its database");
}

/// What may be cached besides immutable built-ins: a user function `pg_proc` says is immutable,
/// and stable built-ins the key determines (the role, the settings, catalog look-ups) — not the
/// clock, not the login user, and not a built-in name a user function may shadow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_user_functions_and_key_determined_stable_built_ins_are_cached() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        &format!(
            "{SETUP};
             CREATE FUNCTION app.shout(text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT upper($1)';
             CREATE FUNCTION app.pg_typeof(anyelement) RETURNS text STABLE LANGUAGE sql AS 'SELECT ''app''';"
        ),
    );
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    c.batch_execute("SET app.tenant = 'one'").await.unwrap();
    let cached = [
        "SELECT app.shout(v) FROM kv WHERE k = 1",
        "SELECT v || current_user || current_setting('app.tenant') || to_char(1.5, '9.9') FROM kv WHERE k = 1",
        "SELECT v || format_type(23, NULL) || pg_table_is_visible('kv'::regclass)::text FROM kv WHERE k = 1",
    ];
    let fresh = [
        "SELECT v || (now() > '2000-01-01')::text FROM kv WHERE k = 1",
        "SELECT v || session_user FROM kv WHERE k = 1",
        // A user function named like the built-in exists: the call may be it.
        "SELECT v || pg_typeof(1)::text FROM kv WHERE k = 1",
    ];
    let mut before = Vec::new();
    for sql in cached.iter().chain(&fresh) {
        before.push(simple_one(&c, sql).await.unwrap_or_else(|| panic!("{sql}")));
    }
    pg.psql_db("app", "UPDATE kv SET v = 'two' WHERE k = 1");
    for (sql, was) in cached.iter().zip(&before) {
        assert_eq!(&simple_one(&c, sql).await.unwrap(), was, "answered from the cache: {sql}");
    }
    for (sql, was) in fresh.iter().zip(&before[cached.len()..]) {
        let now = simple_one(&c, sql).await.unwrap();
        assert_ne!(&now, was, "not cached: {sql}");
        assert!(now.starts_with("two"), "{sql}: {now}");
    }
    // The setting is part of the key: another value is another answer.
    c.batch_execute("SET app.tenant = 'other'").await.unwrap();
    let other = simple_one(&c, cached[1]).await.unwrap();
    assert!(other.starts_with("two") && other.contains("other"), "{other}");
}
