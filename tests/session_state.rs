//! Session state through pgcached that must end where Postgres ends it: savepoints (what a
//! rolled-back savepoint undoes, and only that), what a pinned client leaves on its server
//! connection, settings by value, the end of a session (Terminate after pipelined messages, a
//! client that vanishes after COMMIT), RESET ALL, and the backend PID in session mode.
//!
//! Each test would fail on the bug it names (checked against the code before the fix).

mod common;

use common::raw::{RawClient, summaries};
use common::{PgCluster, Proxy, connect, simple_one};
use pgcached::config::PoolMode;
use tokio_postgres::Client;

const SETUP: &str = "CREATE TABLE kv (k int PRIMARY KEY, v text);
                     INSERT INTO kv VALUES (1, 'one'), (2, 'two');";

async fn value(c: &Client, k: i32) -> String {
    c.query_one("SELECT v FROM kv WHERE k = $1", &[&k]).await.unwrap().get(0)
}

async fn show(c: &Client, name: &str) -> String {
    c.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0)
}

/// pgjdbc `autosave`, Django and psycopg nested transactions: an error inside a savepoint,
/// ROLLBACK TO, COMMIT. The write before the savepoint is committed; Postgres tags ROLLBACK TO
/// as `ROLLBACK`, which pgcached took for a whole rollback: cached reads stayed stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_before_a_rolled_back_savepoint_invalidates_at_commit() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let reader = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&reader, 1).await, "one");
    assert_eq!(simple_one(&reader, "SELECT v FROM kv WHERE k = 2").await.as_deref(), Some("two"));

    // Simple protocol, statement by statement.
    c.batch_execute("BEGIN; UPDATE kv SET v = 'uno' WHERE k = 1; SAVEPOINT s").await.unwrap();
    assert!(c.batch_execute("SELECT 1/0").await.is_err());
    c.batch_execute("ROLLBACK TO SAVEPOINT s").await.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&reader, 1).await, "uno");

    // Extended protocol (tokio-postgres savepoints), the write inside the savepoint undone.
    let mut c = c;
    let mut tx = c.transaction().await.unwrap();
    tx.execute("UPDATE kv SET v = 'dos' WHERE k = 2", &[]).await.unwrap();
    {
        let sp = tx.savepoint("sp_inner").await.unwrap();
        sp.execute("UPDATE kv SET v = 'never' WHERE k = 1", &[]).await.unwrap();
        assert!(sp.execute("SELECT 1/0", &[]).await.is_err());
        sp.rollback().await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(simple_one(&reader, "SELECT v FROM kv WHERE k = 2").await.as_deref(), Some("dos"));
    assert_eq!(value(&reader, 1).await, "uno");
    assert_eq!(pg.psql_db("app", "SELECT v FROM kv ORDER BY k").trim(), "uno\ndos");

    // An extended-protocol pipeline, every segment sent before any answer: the error comes in a
    // later segment than the write that stays.
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    for sql in ["BEGIN", "UPDATE kv SET v = 'eins' WHERE k = 1", "SAVEPOINT s"] {
        raw.parse("", sql).bind("", "", &[], 0).execute("", 0);
    }
    raw.sync();
    for sql in ["UPDATE kv SET v = 'nope' WHERE k = 2", "SELECT 1/0"] {
        raw.parse("", sql).bind("", "", &[], 0).execute("", 0);
    }
    raw.sync();
    for sql in ["ROLLBACK TO SAVEPOINT s", "COMMIT"] {
        raw.parse("", sql).bind("", "", &[], 0).execute("", 0);
    }
    raw.sync();
    raw.flush().await;
    for _ in 0..3 {
        raw.until_ready().await;
    }
    assert_eq!(value(&reader, 1).await, "eins");
    assert_eq!(simple_one(&reader, "SELECT v FROM kv WHERE k = 2").await.as_deref(), Some("dos"));
}

/// A SET before a savepoint that is rolled back stays, one inside it is undone, as in
/// Postgres; and a SET that stays is never seen by another client of the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_follow_savepoints_as_postgres_does() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    a.batch_execute("BEGIN; SET search_path TO pg_catalog, public; SAVEPOINT s; SET TimeZone = 'Asia/Tokyo'")
        .await
        .unwrap();
    assert!(a.batch_execute("SELECT 1/0").await.is_err());
    a.batch_execute("ROLLBACK TO SAVEPOINT s; COMMIT").await.unwrap();
    assert_eq!(show(&b, "search_path").await, "\"$user\", public", "a's setting did not leak to b");
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public", "the SET before the savepoint stays");
    assert_ne!(show(&a, "TimeZone").await, "Asia/Tokyo", "the SET inside it is undone");
    // A whole transaction rolled back takes its settings with it.
    a.batch_execute("BEGIN; SET search_path TO public; ROLLBACK").await.unwrap();
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
    // An error in an implicit transaction (a multi-statement Query) undoes its SET too.
    assert!(a.batch_execute("SET search_path TO public; SELECT 1/0").await.is_err());
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
}

/// A pinned client leaves its temporary table, SQL prepared statement, LISTEN, advisory lock
/// and WITH HOLD cursor on its server connection (also when a DO block or a function made
/// them); none of it may reach the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_pinned_client_leaves_never_reaches_the_next_client() {
    pinned_state_stays_with_its_client(true).await;
}

/// The same in pure pass-through (no cache, no policy), where statements are not analysed
/// unless a keyword scan says they may matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_pinned_client_leaves_never_reaches_the_next_client_in_pure_pass_through() {
    pinned_state_stays_with_its_client(false).await;
}

async fn pinned_state_stays_with_its_client(cache: bool) {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    pg.psql_db(
        "app",
        "CREATE FUNCTION make_scratch() RETURNS int LANGUAGE plpgsql AS
           $$ BEGIN CREATE TEMP TABLE IF NOT EXISTS scratch (x int); RETURN 1; END $$;
         CREATE EXTENSION pg_trgm;",
    );
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.cache.enabled = cache;
    })
    .await;
    let count = |sql: &str| format!("SELECT count(*) FROM {sql}");
    // (what the first client runs, one Query each; what the next client must not see)
    let temp_relations = count("pg_class WHERE relnamespace = pg_my_temp_schema()");
    let search_path_set = count("pg_settings WHERE name = 'search_path' AND setting = 'pg_catalog'");
    let cases: [(&[&str], String); 14] = [
        // Left by code the proxy does not see into: a DO block, a function.
        (&["DO $$ BEGIN CREATE TEMP TABLE dt (x int); END $$"], temp_relations.clone()),
        (&["DO $$ BEGIN PERFORM set_config('search_path', 'pg_catalog', false); END $$"], search_path_set),
        (&["SELECT make_scratch()"], temp_relations.clone()),
        // An extension's C function known to keep a setting (pg_trgm's set_limit).
        (
            &["SELECT set_limit(0.5)"],
            count("pg_settings WHERE name = 'pg_trgm.similarity_threshold' AND setting = '0.5'"),
        ),
        (
            &["CREATE TEMP TABLE kv (k int, v text)", "INSERT INTO kv VALUES (1, 'temporary')"],
            count("kv WHERE v = 'temporary'"),
        ),
        // Temporary without TEMP (tokio-postgres's own tests make `pg_temp.foo`), and the
        // other temporary kinds: they were not seen as the session's own.
        (&["CREATE TABLE pg_temp.kv (k int, v text)"], temp_relations.clone()),
        (&["CREATE TEMP VIEW tv AS SELECT 1 AS x"], temp_relations.clone()),
        // Made in the temporary schema because the path put it first.
        (&["SET search_path = pg_temp, public", "CREATE TABLE sp (x int)"], temp_relations.clone()),
        (&["CREATE TEMPORARY SEQUENCE ts"], temp_relations),
        (
            &["CREATE DOMAIN pg_temp.td AS text"],
            count("pg_type WHERE typnamespace = pg_my_temp_schema() AND typtype = 'd'"),
        ),
        (&["PREPARE p AS SELECT 42"], count("pg_prepared_statements WHERE name = 'p'")),
        (&["LISTEN channel_a"], count("pg_listening_channels()")),
        (&["SELECT pg_advisory_lock(7)"], count("pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")),
        (&["BEGIN", "DECLARE held CURSOR WITH HOLD FOR SELECT 1", "COMMIT"], count("pg_cursors")),
    ];
    for (statements, leftover) in cases {
        {
            let a = connect(&proxy.url("postgres", "app")).await;
            for sql in statements {
                a.batch_execute(sql).await.unwrap();
            }
            assert_eq!(simple_one(&a, &leftover).await.as_deref(), Some("1"), "{statements:?} took effect");
        }
        // One server connection: b gets the one a used.
        let b = connect(&proxy.url("postgres", "app")).await;
        assert_eq!(simple_one(&b, &leftover).await.as_deref(), Some("0"), "cache {cache}: {statements:?} leaked");
        assert_eq!(value(&b, 1).await, "one", "the real table, never a temporary one (nor its cached rows)");
    }
    let locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'";
    assert_eq!(pg.psql_db("app", locks).trim(), "0", "the advisory lock was released");
}

/// A `search_path` that names `pg_temp`, set through Bind parameters (`set_config($1, $2,
/// false)`, as a driver or ORM sends it): the next `CREATE TABLE` makes a temporary table that
/// no statement names as one. It must not reach the next client on that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_path_naming_pg_temp_set_by_bind_parameters_pins_its_client() {
    let pg = PgCluster::start();
    let temp_relations = "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()";
    for cache in [true, false] {
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.max_size = 1;
            c.cache.enabled = cache;
        })
        .await;
        {
            let a = connect(&proxy.url("postgres", "app")).await;
            a.query("SELECT set_config($1, $2, false)", &[&"search_path", &"pg_temp, public"]).await.unwrap();
            a.batch_execute("CREATE TABLE made_by_path (x int)").await.unwrap();
            assert_eq!(simple_one(&a, temp_relations).await.as_deref(), Some("1"), "a temporary table");
        }
        let b = connect(&proxy.url("postgres", "app")).await;
        assert_eq!(simple_one(&b, temp_relations).await.as_deref(), Some("0"), "cache {cache}: it leaked");
        drop(b);
        proxy.shutdown().await;
    }
}

/// An extension's C functions (pgcrypto's `digest`, PostGIS's `st_*`) keep no session state:
/// calling one pinned the client to its connection (the catalog took every C function for one
/// that may set settings), so a pool of one had nothing for the next client (53300).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_function_does_not_pin_its_caller() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE EXTENSION pgcrypto");
    for cache in [true, false] {
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.max_size = 1;
            c.pool.acquire_timeout = std::time::Duration::from_secs(1);
            c.cache.enabled = cache;
        })
        .await;
        let url = proxy.url("postgres", "app");
        let a = connect(&url).await;
        let sql = "SELECT encode(digest('abc', 'sha256'), 'hex')";
        assert_eq!(simple_one(&a, sql).await.as_deref().map(|h| &h[..8]), Some("ba7816bf"));
        a.query_one(sql, &[]).await.unwrap();
        // a is still connected; with one server connection, b gets it only if a was not pinned.
        let b = connect(&url).await;
        assert_eq!(simple_one(&b, "SELECT 1").await.as_deref(), Some("1"), "cache {cache}: a kept its connection");
        drop((a, b));
        proxy.shutdown().await;
    }
}

/// A read of `pg_temp.x` names the session's own object: one client's rows there were cached
/// and served to another client, which has no such table (directly: 42P01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_the_temporary_schema_is_never_another_clients_answer() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 2).await;
    let url = proxy.url("postgres", "app");
    let a = connect(&url).await;
    // Made where the proxy does not see it (a DO block's body): the read is what tells.
    a.batch_execute("DO $$ BEGIN CREATE TABLE pg_temp.c (v int); INSERT INTO pg_temp.c VALUES (7); END $$")
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(simple_one(&a, "SELECT v FROM pg_temp.c").await.as_deref(), Some("7"));
        let row = a.query_one("SELECT v FROM pg_temp.c", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
    }
    let b = connect(&url).await;
    for _ in 0..2 {
        let err = b.simple_query("SELECT v FROM pg_temp.c").await.expect_err("b has no pg_temp.c");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE), "{err:?}");
        let err = b.query("SELECT v FROM pg_temp.c", &[]).await.expect_err("b has no pg_temp.c");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE), "{err:?}");
    }
    // a keeps its table on its own connection meanwhile.
    assert_eq!(simple_one(&a, "SELECT v FROM pg_temp.c").await.as_deref(), Some("7"));
}

/// `SET app.tenant_id = '5'` by one client: directly, another session has never heard of the
/// setting (`current_setting(…, true)` is NULL). A connection where it was defined says '' —
/// the usual tenant pattern `current_setting('app.tenant_id', true)::int` then fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_setting_of_one_client_is_undefined_for_the_next() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    a.batch_execute("SET app.tenant_id = '5'").await.unwrap();
    assert_eq!(simple_one(&a, "SELECT current_setting('app.tenant_id', true)").await.as_deref(), Some("5"));
    let b = connect(&proxy.url("postgres", "app")).await;
    let tenant = "SELECT current_setting('app.tenant_id', true)::int";
    assert_eq!(simple_one(&b, tenant).await, None, "NULL, as on a connection of its own");
    let row = b.query_one("SELECT current_setting('app.tenant_id', true) IS NULL", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(simple_one(&a, "SELECT current_setting('app.tenant_id', true)").await.as_deref(), Some("5"));
}

/// The same when a function defines the setting (`SELECT set_tenant(5)`), under a name its
/// body gives or one it computes: the client keeps its connection while it is connected (the
/// value is not the proxy's to follow), and no reset undefines a placeholder, so another client
/// never gets a connection where one of those may be defined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_setting_a_function_defines_is_undefined_for_the_next() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE FUNCTION set_tenant(t int) RETURNS text LANGUAGE sql AS
           $$ SELECT set_config('app.tenant_id', t::text, false) $$;
         CREATE FUNCTION set_any(n text, v text) RETURNS text LANGUAGE sql AS
           $$ SELECT set_config(n, v, false) $$;",
    );
    // Also in pure pass-through (no cache, no policy: the proxy looks at a statement only
    // when it names something that may change the session — such as these functions).
    for cache in [true, false] {
        // One server connection: whoever comes next gets the one the last client used.
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.max_size = 1;
            c.cache.enabled = cache;
        })
        .await;
        let url = proxy.url("postgres", "app");
        let tenant = "SELECT current_setting('app.tenant_id', true)";
        let other = "SELECT current_setting('app.other', true)";
        for round in 0..2 {
            let at = format!("cache {cache}, round {round}");
            let a = connect(&url).await;
            a.batch_execute("SELECT set_tenant(5)").await.unwrap();
            assert_eq!(simple_one(&a, tenant).await.as_deref(), Some("5"), "{at}: its own setting");
            drop(a);
            let b = connect(&url).await;
            assert_eq!(simple_one(&b, tenant).await, None, "{at}: NULL, as on a connection of its own");
            b.query("SELECT set_any('app.other', 'x')", &[]).await.unwrap();
            assert_eq!(simple_one(&b, other).await.as_deref(), Some("x"), "{at}: its own setting");
            drop(b);
            let c = connect(&url).await;
            assert_eq!(simple_one(&c, other).await, None, "{at}: a computed name");
            assert_eq!(simple_one(&c, tenant).await, None, "{at}");
        }
        proxy.shutdown().await;
    }
}

/// psycopg's `execute("select set_config(%s, %s, false)", (name, value))`: the name is a Bind
/// parameter. pgcached recorded a setting literally named `$1`, failed to replay it and broke
/// other clients' checkouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_config_with_a_bound_name_is_followed_by_value() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 2).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    a.query("SELECT set_config($1, $2, false)", &[&"search_path", &"pg_catalog, public"]).await.unwrap();
    a.query("SELECT set_config($1, $2, false)", &[&"app.tenant", &"7"]).await.unwrap();
    // Hold one connection elsewhere so that a's next transactions move between both.
    let url = proxy.url("postgres", "app");
    let others: Vec<Client> = futures::future::join_all((0..4).map(|_| connect(&url))).await;
    for (i, o) in others.iter().enumerate() {
        assert_eq!(show(o, "search_path").await, "\"$user\", public", "client {i}");
        o.batch_execute("SELECT 1").await.expect("other clients keep working");
    }
    for _ in 0..4 {
        assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
        assert_eq!(simple_one(&a, "SELECT current_setting('app.tenant')").await.as_deref(), Some("7"));
    }
}

/// A setting Postgres accepted once but refuses on another connection (here a role dropped in
/// between): only the client it belongs to gets the error, its settings go back to its startup
/// values, and it goes on; no other client notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_that_cannot_be_restored_fails_only_its_own_client() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE ROLE fleeting");
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 2).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    a.batch_execute("SET ROLE fleeting").await.unwrap();
    assert_eq!(simple_one(&a, "SELECT current_user").await.as_deref(), Some("fleeting"));
    pg.psql_db("app", "DROP ROLE fleeting");
    // Keep a's last connection busy so that its next statement lands on another one.
    let other = connect(&proxy.url("postgres", "app")).await;
    let mut busy = other;
    let tx = busy.transaction().await.unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();
    let mut errors = 0;
    for _ in 0..3 {
        // Not answerable from the cache (`current_user` alone is: the role is in its key).
        match a.simple_query("SELECT current_user, random()").await {
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
                assert!(message.contains("settings could not be restored"), "{e:?}");
            }
        }
    }
    assert!(errors <= 1, "the client recovers after one error, got {errors}");
    assert_eq!(simple_one(&a, "SELECT current_user").await.as_deref(), Some("postgres"));
    tx.batch_execute("SELECT 2").await.expect("the other client never noticed");
    tx.commit().await.unwrap();
}

/// Postgres runs the messages a client sent before Terminate. pgcached dropped them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_pipelined_before_terminate_run_as_on_postgres() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    raw.query("INSERT INTO kv VALUES (3, 'three')");
    raw.parse("", "INSERT INTO kv VALUES (4, 'four')").bind("", "", &[], 0).execute("", 0).sync();
    raw.out.extend_from_slice(b"X\0\0\0\x04");
    raw.flush().await;
    drop(raw);
    let c = connect(&proxy.url("postgres", "app")).await;
    for _ in 0..50 {
        if pg.psql_db("app", "SELECT count(*) FROM kv").trim() == "4" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pg.psql_db("app", "SELECT string_agg(v, ',' ORDER BY k) FROM kv").trim(), "one,two,three,four");
    assert_eq!(simple_one(&c, "SELECT count(*) FROM kv").await.as_deref(), Some("4"));
}

/// A client that sends COMMIT and vanishes before the answer: the commit happens on the
/// server, so its writes must be invalidated as if the client had seen it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_client_vanished_still_invalidates() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let reader = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&reader, 1).await, "one");
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    raw.query("BEGIN; UPDATE kv SET v = 'gone' WHERE k = 1");
    raw.flush().await;
    raw.until_ready().await;
    // A slow commit (a deferred pg_sleep would do too): the client is gone long before it ends.
    raw.query("SELECT pg_sleep(0.3); COMMIT");
    raw.flush().await;
    drop(raw);
    for _ in 0..50 {
        if pg.psql_db("app", "SELECT v FROM kv WHERE k = 1").trim() == "gone" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(pg.psql_db("app", "SELECT v FROM kv WHERE k = 1").trim(), "gone");
    assert_eq!(value(&reader, 1).await, "gone");
}

/// `RESET ALL` and `DISCARD ALL` return a setting to the value the client started with
/// (`options=-c …`), not to the server's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_all_and_discard_all_restore_startup_values() {
    let pg = PgCluster::start();
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.mode = mode;
            // Transaction mode: the other client below lands on the same connection.
            c.pool.max_size = if mode == PoolMode::Session { 2 } else { 1 };
        })
        .await;
        let url = format!("{}?options=-c%20search_path%3Dpg_catalog", proxy.url("postgres", "app"));
        let c = match common::try_connect(&url).await {
            Ok(c) => c,
            Err(e) => panic!("{mode:?}: {e:?}"),
        };
        assert_eq!(show(&c, "search_path").await, "pg_catalog", "{mode:?}");
        c.batch_execute("SET search_path TO public").await.unwrap();
        c.batch_execute("RESET ALL").await.unwrap();
        assert_eq!(show(&c, "search_path").await, "pg_catalog", "{mode:?}: after RESET ALL");
        c.batch_execute("SET search_path TO public").await.unwrap();
        c.batch_execute("RESET search_path").await.unwrap();
        assert_eq!(show(&c, "search_path").await, "pg_catalog", "{mode:?}: after RESET");
        c.batch_execute("SET search_path TO public").await.unwrap();
        c.batch_execute("DISCARD ALL").await.unwrap();
        assert_eq!(show(&c, "search_path").await, "pg_catalog", "{mode:?}: after DISCARD ALL");
        let other = connect(&proxy.url("postgres", "app")).await;
        assert_eq!(show(&other, "search_path").await, "\"$user\", public", "{mode:?}: not another client's");
        drop(other);
        drop(c);
        proxy.shutdown().await;
    }
}

/// In session mode the client's backend is its server's: the PID in BackendKeyData is
/// `pg_backend_pid()` (libpq's `PQbackendPID`, psycopg's `info.backend_pid`), as directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_reports_the_servers_real_backend_pid() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.mode = PoolMode::Session).await;
    let (pid, mut stream) = backend_key_pid(proxy.port).await;
    // That connection's backend, asked through the proxy.
    use tokio::io::AsyncWriteExt;
    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT pg_backend_pid()", &mut out).unwrap();
    stream.write_all(&out).await.unwrap();
    let rows = read_until_ready(&mut stream).await;
    let backend: i32 = rows.iter().find_map(|m| m.strip_prefix("D:")).expect("a row").parse().unwrap();
    assert_eq!(pid, backend, "BackendKeyData's PID is the server's");
    // Cancel still works with the proxy's secret.
    let c = connect(&proxy.url("postgres", "app")).await;
    let token = c.cancel_token();
    let running = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(10), running).await.unwrap().unwrap();
    assert_eq!(res.unwrap_err().code().unwrap().code(), "57014");
}

/// Log in over a bare socket; the PID of the BackendKeyData, and the stream.
async fn backend_key_pid(port: u16) -> (i32, tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message([("user", "postgres"), ("database", "app")], &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    let greeting = read_until_ready(&mut stream).await;
    let key = greeting.iter().find_map(|m| m.strip_prefix("K:")).expect("BackendKeyData");
    (key.parse().unwrap(), stream)
}

/// Messages up to ReadyForQuery, as `tag:text` (`K:` the key's PID, `D:` a one-column row).
async fn read_until_ready(stream: &mut tokio::net::TcpStream) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut msgs = Vec::new();
    loop {
        let tag = stream.read_u8().await.unwrap();
        let len = stream.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        stream.read_exact(&mut body).await.unwrap();
        msgs.push(match tag {
            b'K' => format!("K:{}", i32::from_be_bytes(body[..4].try_into().unwrap())),
            b'D' => format!("D:{}", String::from_utf8_lossy(&body[6..])),
            t => (t as char).to_string(),
        });
        if tag == b'Z' {
            return msgs;
        }
    }
}

/// The unnamed statement belongs to the client that parsed it: another client landing on the
/// same server connection has none (26000), and the client still has its own in a later
/// transaction, wherever it lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unnamed_statement_is_its_clients_own() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let mut a = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut b = RawClient::connect(proxy.port, "postgres", "app").await;
    a.parse("", "SELECT 42").sync().flush().await;
    a.until_ready().await;
    b.bind("", "", &[], 0).execute("", 0).sync().flush().await;
    let refused = b.until_ready().await;
    assert_eq!(refused.iter().find(|m| m.tag == 'E').and_then(|m| m.code()).as_deref(), Some("26000"), "{refused:?}");
    a.bind("", "", &[], 0).execute("", 0).sync().flush().await;
    let rows = a.until_ready().await;
    let row = rows.iter().find(|m| m.tag == 'D').unwrap_or_else(|| panic!("a row: {rows:?}"));
    assert!(row.body.ends_with(b"42"), "{row:?}");
    // A simple Query destroys it, as on Postgres.
    a.query("SELECT 1").flush().await;
    a.until_ready().await;
    a.bind("", "", &[], 0).execute("", 0).sync().flush().await;
    let gone = a.until_ready().await;
    assert_eq!(gone.iter().find(|m| m.tag == 'E').and_then(|m| m.code()).as_deref(), Some("26000"), "{gone:?}");
}

/// psycopg's pool `configure` callbacks set `default_transaction_read_only`: a session setting
/// like any other, followed to whichever connection the client lands on (Postgres reports it
/// since 14, which once made pgcached take it for the server's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_transaction_read_only_follows_its_client() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 2).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    a.batch_execute("SET default_transaction_read_only = on").await.unwrap();
    let url = proxy.url("postgres", "app");
    let others: Vec<Client> = futures::future::join_all((0..3).map(|_| connect(&url))).await;
    for o in &others {
        assert_eq!(show(o, "default_transaction_read_only").await, "off");
    }
    for _ in 0..4 {
        assert_eq!(show(&a, "default_transaction_read_only").await, "on");
        let err = a.batch_execute("CREATE TABLE nope (x int)").await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "25006");
    }
}

/// A client that leaves in the middle of COPY FROM STDIN (psycopg's `execute("copy … from
/// stdin")` raises and closes): Postgres ends the COPY at its EOF. The proxy must not wait for
/// data that will never come, holding the table's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_during_copy_in_releases_everything() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    for terminate in [false, true] {
        let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
        raw.query("BEGIN; LOCK TABLE kv; COPY kv FROM STDIN");
        raw.flush().await;
        assert_eq!(raw.recv().await.tag, 'C');
        assert_eq!(raw.recv().await.tag, 'C');
        assert_eq!(raw.recv().await.tag, 'G', "CopyInResponse");
        if terminate {
            raw.out.extend_from_slice(b"X\0\0\0\x04");
            raw.flush().await;
        }
        drop(raw);
        let c = connect(&proxy.url("postgres", "app")).await;
        let count =
            tokio::time::timeout(std::time::Duration::from_secs(10), c.query_one("SELECT count(*) FROM kv", &[]))
                .await
                .expect("the lock was released")
                .unwrap();
        assert_eq!(count.get::<_, i64>(0), 2, "terminate: {terminate}");
    }
}

/// Statements a client pipelines right behind `RESET ALL` / `DISCARD ALL` (Npgsql sends its
/// pooled connection's `DISCARD ALL` in the same write as the next command) run with the
/// client's startup values, as directly — not with the server connection's defaults, which the
/// hidden restore used to follow only once the reset was answered. And that restore ran after
/// whatever the client had sent meanwhile: inside a block the client then rolled back, which
/// undid it while the proxy took the connection for restored. Each pipeline runs directly
/// and through pgcached; the answers are compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_pipelined_behind_a_reset_run_with_the_startup_values() {
    let pg = PgCluster::start();
    let params = [("user", "postgres"), ("database", "app"), ("options", "-c search_path=pg_catalog")];
    let run = |port: u16| async move {
        let mut c = RawClient::connect_with(port, &params).await;
        let mut seen = Vec::new();
        // Simple protocol: the reset, then a read in the same write.
        c.query("SET search_path TO public");
        c.query("RESET ALL").query("SHOW search_path").flush().await;
        for _ in 0..3 {
            seen.extend(summaries(&c.until_ready().await));
        }
        // Extended protocol, Npgsql's way: DISCARD ALL, Sync, the command, Sync.
        c.query("SET search_path TO public");
        c.parse("", "DISCARD ALL").bind("", "", &[], 0).execute("", 0).sync();
        c.parse("", "SHOW search_path").bind("", "", &[], 0).execute("", 0).sync().flush().await;
        for _ in 0..3 {
            seen.extend(summaries(&c.until_ready().await));
        }
        // A block opened right behind the reset and rolled back: the startup values stay.
        c.query("SET search_path TO public");
        c.query("DISCARD ALL").query("BEGIN").flush().await;
        for _ in 0..3 {
            seen.extend(summaries(&c.until_ready().await));
        }
        c.query("SELECT 1").query("ROLLBACK").query("SHOW search_path").flush().await;
        for _ in 0..3 {
            seen.extend(summaries(&c.until_ready().await));
        }
        seen
    };
    let direct = run(pg.port()).await;
    assert_eq!(direct.iter().filter(|m| m.contains("pg_catalog")).count(), 3, "{direct:#?}");
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let proxy = Proxy::start_with(&pg, |c| {
            c.pool.mode = mode;
            c.pool.max_size = 1;
        })
        .await;
        assert_eq!(run(proxy.port).await, direct, "{mode:?}");
        proxy.shutdown().await;
    }
}
