//! The result cache through the proxy, against a real Postgres. A hit is observed from the
//! outside: the table is changed *directly* in Postgres (around the proxy), so a cached answer
//! still shows the old value, and a write *through* the proxy must make the new value visible.

mod common;

use std::time::Duration;

use common::raw::RawClient;
use common::{PgCluster, Proxy, connect};
use tokio_postgres::Client;

const SETUP: &str = "CREATE TABLE kv (k int PRIMARY KEY, v text);
                     INSERT INTO kv VALUES (1, 'one'), (2, 'two');";

async fn value(c: &Client, k: i32) -> String {
    c.query_one("SELECT v FROM kv WHERE k = $1", &[&k]).await.unwrap().get(0)
}

async fn simple_value(c: &Client, sql: &str) -> String {
    match &c.simple_query(sql).await.unwrap()[1] {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
        other => panic!("expected a row, got {other:?}"),
    }
}

/// Change a row behind the proxy's back.
fn sneak(pg: &PgCluster, k: i32, v: &str) {
    pg.psql_db("app", &format!("UPDATE kv SET v = '{v}' WHERE k = {k}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_read_is_served_from_the_cache_in_both_protocols() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&c, 1).await, "one");
    assert_eq!(simple_value(&c, "SELECT v FROM kv WHERE k = 1").await, "one");
    sneak(&pg, 1, "changed behind the proxy");
    assert_eq!(value(&c, 1).await, "one", "extended protocol: hit");
    assert_eq!(simple_value(&c, "SELECT v FROM kv WHERE k = 1").await, "one", "simple protocol: hit");
    // Different parameters are a different entry.
    assert_eq!(value(&c, 2).await, "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_the_proxy_is_seen_by_the_same_and_other_clients() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&a, 1).await, "one");
    assert_eq!(value(&b, 1).await, "one");
    a.execute("UPDATE kv SET v = 'uno' WHERE k = 1", &[]).await.unwrap();
    assert_eq!(value(&a, 1).await, "uno");
    assert_eq!(value(&b, 1).await, "uno");
    // Schema-qualified writes invalidate unqualified reads too.
    b.batch_execute("UPDATE public.kv SET v = 'eins' WHERE k = 1").await.unwrap();
    assert_eq!(value(&a, 1).await, "eins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_sees_its_own_write_and_invalidates_at_commit_only() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let mut a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&b, 1).await, "one");

    let tx = a.transaction().await.unwrap();
    tx.execute("UPDATE kv SET v = 'mine' WHERE k = 1", &[]).await.unwrap();
    let mine: String = tx.query_one("SELECT v FROM kv WHERE k = $1", &[&1]).await.unwrap().get(0);
    assert_eq!(mine, "mine", "a transaction reads its own write");
    assert_eq!(value(&b, 1).await, "one", "not committed: others still see the old value");
    tx.rollback().await.unwrap();
    assert_eq!(value(&b, 1).await, "one", "rolled back: still the old value");

    let tx = a.transaction().await.unwrap();
    tx.execute("UPDATE kv SET v = 'committed' WHERE k = 1", &[]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(value(&b, 1).await, "committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_racing_a_committed_write_is_never_stored_stale() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    // A slow view over kv: the filling read takes ~1 s, during which a write commits.
    pg.psql_db("app", "CREATE VIEW slow_kv AS SELECT k, v FROM kv, pg_sleep(1) AS s");
    let proxy = Proxy::start(&pg).await;
    let reader = connect(&proxy.url("postgres", "app")).await;
    let writer = connect(&proxy.url("postgres", "app")).await;
    let slow = tokio::spawn(async move {
        let r = reader.query_one("SELECT v FROM slow_kv WHERE k = 1", &[]).await.unwrap().get::<_, String>(0);
        (reader, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.execute("UPDATE kv SET v = 'after' WHERE k = 1", &[]).await.unwrap();
    let (reader, first) = slow.await.unwrap();
    assert_eq!(first, "one", "the slow read started before the write");
    let again: String = reader.query_one("SELECT v FROM slow_kv WHERE k = 1", &[]).await.unwrap().get(0);
    assert_eq!(again, "after", "the stale fill was discarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_a_view_are_invalidated_by_writes_to_its_base_table() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    pg.psql_db("app", "CREATE VIEW kv_view AS SELECT * FROM kv");
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let read = || c.query_one("SELECT v FROM kv_view WHERE k = 2", &[]);
    assert_eq!(read().await.unwrap().get::<_, String>(0), "two");
    c.execute("UPDATE kv SET v = 'deux' WHERE k = 2", &[]).await.unwrap();
    assert_eq!(read().await.unwrap().get::<_, String>(0), "deux");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_differ_by_search_path_timezone_and_result_format() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    pg.psql_db("app", "CREATE SCHEMA other; CREATE TABLE other.kv (k int PRIMARY KEY, v text); INSERT INTO other.kv VALUES (1, 'other');");
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&c, 1).await, "one");
    c.batch_execute("SET search_path TO other").await.unwrap();
    assert_eq!(value(&c, 1).await, "other", "same text, other search_path: other entry");
    c.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(value(&c, 1).await, "one");

    let ts = "SELECT '2024-01-01 12:00:00+00'::timestamptz::text";
    let utc = simple_value(&c, ts).await;
    c.batch_execute("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    let tokyo = simple_value(&c, ts).await;
    assert_ne!(utc, tokyo, "same text, other TimeZone: other entry");
    assert!(tokyo.ends_with("+09"), "{tokyo}");

    // Text (simple) and binary (extended) answers of the same text are separate entries.
    let text = simple_value(&c, "SELECT 7::int8 AS n").await;
    let bin: i64 = c.query_one("SELECT 7::int8 AS n", &[]).await.unwrap().get(0);
    assert_eq!((text.as_str(), bin), ("7", 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_and_stable_functions_are_never_cached() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE SEQUENCE seq");
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let one = |sql: &'static str| {
        let c = &c;
        async move { simple_value(c, sql).await }
    };
    assert_ne!(one("SELECT nextval('seq')").await, one("SELECT nextval('seq')").await);
    assert_ne!(one("SELECT random()").await, one("SELECT random()").await);
    let t1 = one("SELECT clock_timestamp()::text").await;
    let n1 = one("SELECT now()::text").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ne!(t1, one("SELECT clock_timestamp()::text").await);
    assert_ne!(n1, one("SELECT now()::text").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_roles_never_see_each_others_rows() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;
         CREATE TABLE docs (owner text, body text);
         INSERT INTO docs VALUES ('alice', 'alice secret'), ('bob', 'bob secret');
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON docs USING (owner = current_user);
         GRANT SELECT ON docs TO alice, bob;",
    );
    let proxy = Proxy::start(&pg).await;
    let alice = connect(&proxy.url("alice", "app")).await;
    let bob = connect(&proxy.url("bob", "app")).await;
    for _ in 0..2 {
        let a: Vec<String> =
            alice.query("SELECT body FROM docs", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        let b: Vec<String> = bob.query("SELECT body FROM docs", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(a, vec!["alice secret"]);
        assert_eq!(b, vec!["bob secret"]);
    }
    // SET ROLE changes the effective role, and so the key.
    let admin = connect(&proxy.url("postgres", "app")).await;
    admin.batch_execute("SET ROLE bob").await.unwrap();
    let b: Vec<String> = admin.query("SELECT body FROM docs", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(b, vec!["bob secret"]);
    admin.batch_execute("SET ROLE alice").await.unwrap();
    let a: Vec<String> = admin.query("SELECT body FROM docs", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(a, vec!["alice secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_through_the_proxy_stops_cached_reads() {
    let pg = PgCluster::start();
    pg.psql_db("app", &format!("{SETUP} CREATE ROLE carol LOGIN; GRANT SELECT ON kv TO carol;"));
    let proxy = Proxy::start(&pg).await;
    let carol = connect(&proxy.url("carol", "app")).await;
    let admin = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&carol, 1).await, "one");
    admin.batch_execute("REVOKE SELECT ON kv FROM carol").await.unwrap();
    let err = carol.query_one("SELECT v FROM kv WHERE k = $1", &[&1]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_results_are_replayed_byte_for_byte() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE b (id int, x bytea, f float8, ts timestamptz, a int[]);
                       INSERT INTO b VALUES (1, '\\x00ff80', 0.1, '2024-02-29 01:02:03+00', '{1,NULL,3}');",
    );
    let proxy = Proxy::start(&pg).await;
    let direct = connect(&pg.url("postgres", "app")).await;
    let through = connect(&proxy.url("postgres", "app")).await;
    let sql = "SELECT id, x, f, ts, a FROM b";
    let expected = raw_rows(&direct, sql).await;
    let miss = raw_rows(&through, sql).await;
    pg.psql_db("app", "UPDATE b SET x = '\\x01'"); // behind the proxy: the next read is a hit
    let hit = raw_rows(&through, sql).await;
    assert_eq!(miss, expected);
    assert_eq!(hit, expected, "the hit replays exactly what Postgres sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_the_entry_size_cap_are_streamed_but_not_cached() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE big AS SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, 200) g");
    let proxy = Proxy::start_with(&pg, |c| c.cache.max_entry_size = bytesize::ByteSize::kib(64)).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let sql = "SELECT count(*) FROM (SELECT * FROM big) s";
    assert_eq!(c.query("SELECT id, pad FROM big", &[]).await.unwrap().len(), 200, "streamed in full");
    pg.psql_db("app", "DELETE FROM big WHERE id > 100");
    assert_eq!(c.query("SELECT id, pad FROM big", &[]).await.unwrap().len(), 100, "~200 kB answer was not cached");
    // A small answer is cached under the same cap.
    let n: i64 = c.query_one(sql, &[]).await.unwrap().get(0);
    pg.psql_db("app", "DELETE FROM big WHERE id > 50");
    assert_eq!(c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_turns_the_cache_off() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start_with(&pg, |c| c.cache.enabled = false).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&c, 1).await, "one");
    sneak(&pg, 1, "fresh");
    assert_eq!(value(&c, 1).await, "fresh");
}

async fn raw_rows(c: &Client, sql: &str) -> Vec<Vec<Option<Vec<u8>>>> {
    struct Raw(Vec<u8>);
    impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
        fn from_sql(
            _: &tokio_postgres::types::Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Raw(raw.to_vec()))
        }
        fn accepts(_: &tokio_postgres::types::Type) -> bool {
            true
        }
    }
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Option<Raw>>(i).map(|x| x.0)).collect())
        .collect()
}

/// An answer cached for a prepared statement is not served to a statement prepared after the
/// result type changed behind the proxy's back: the client would decode the old rows with its
/// new row description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_before_a_result_type_change_is_not_served_to_a_statement_prepared_after_it() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE rt (v int); INSERT INTO rt VALUES (7)");
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    let sql = "SELECT v FROM rt";
    c.parse("s", sql).describe(b'S', "s").sync().flush().await;
    c.until_ready().await;
    for _ in 0..2 {
        // A miss, then a hit; binary results: an int4.
        c.bind("", "s", &[], 1).execute("", 0).sync().flush().await;
        let out = c.until_ready().await;
        assert_eq!(out[1].body, [0, 1, 0, 0, 0, 4, 0, 0, 0, 7]);
    }
    pg.psql_db("app", "ALTER TABLE rt ALTER v TYPE bigint");
    // Prepared again: the first try may meet the old server statement, which Postgres refuses.
    let mut described = false;
    for _ in 0..2 {
        c.close(b'S', "s").parse("s", sql).describe(b'S', "s").sync().flush().await;
        let out = c.until_ready().await;
        if let Some(t) = out.iter().find(|m| m.tag == 'T') {
            assert_eq!(&t.body[t.body.len() - 12..t.body.len() - 8], &20u32.to_be_bytes(), "int8: {t:?}");
            described = true;
            break;
        }
    }
    assert!(described, "the statement could be prepared again");
    c.bind("", "s", &[], 1).execute("", 0).sync().flush().await;
    let out = c.until_ready().await;
    assert_eq!(out[1].body, [0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7], "an int8, not the cached int4");
}

/// The same text and Bind bytes prepared with other parameter types is another answer:
/// `SELECT $1` with `01` is the int4 1 or the text `01`.
#[tokio::test]
async fn parameter_types_of_a_parse_are_part_of_the_key() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    for (round, (types, value)) in
        [(&[23u32][..], "1"), (&[25u32][..], "01"), (&[23u32][..], "1")].into_iter().enumerate()
    {
        c.parse_typed("", "SELECT $1", types).bind("", "", &[Some("01")], 0).execute("", 0).sync().flush().await;
        let out = c.until_ready().await;
        let row = out.iter().find(|m| m.tag == 'D').unwrap_or_else(|| panic!("round {round}: no row in {out:?}"));
        assert_eq!(&row.body[6..], value.as_bytes(), "round {round}, types {types:?}");
    }
}

/// A session's login defaults (`ALTER ROLE … SET`) follow its login user, not the role it takes
/// with `SET ROLE`: two login users acting as one role do not share answers that may show them
/// (`current_setting('work_mem')`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_defaults_follow_the_login_user_under_set_role() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol;
         GRANT carol TO alice, bob; ALTER ROLE alice SET work_mem = '7MB';",
    );
    let proxy = Proxy::start(&pg).await;
    for (user, expected) in [("alice", "7MB"), ("bob", "4MB"), ("alice", "7MB")] {
        let c = connect(&proxy.url(user, "app")).await;
        c.batch_execute("SET ROLE carol").await.unwrap();
        for _ in 0..2 {
            let got = simple_value(&c, "SELECT current_setting('work_mem')").await;
            assert_eq!(got, expected, "{user} as carol");
        }
    }
}

/// Settings the key leaves out so that applications share answers (`application_name`) are
/// still each client's own where a statement may read them: `current_setting()` (by name or by
/// parameter) and `pg_settings` answer every client with its own value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignored_setting_read_by_name_is_each_clients_own() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE shared (v text); INSERT INTO shared VALUES ('cached')");
    let proxy = Proxy::start(&pg).await;
    let url = |app: &str| format!("{}?application_name={app}", proxy.url("postgres", "app"));
    for (round, app) in ["first", "second", "first"].into_iter().enumerate() {
        let c = connect(&url(app)).await;
        for _ in 0..2 {
            let by_name = simple_value(&c, "SELECT current_setting('application_name')").await;
            let by_param: String =
                c.query_one("SELECT current_setting($1)", &[&"application_name"]).await.unwrap().get(0);
            let view = simple_value(&c, "SELECT setting FROM pg_settings WHERE name = 'application_name'").await;
            assert_eq!([by_name, by_param, view], [app, app, app]);
        }
        // Answers that cannot show it are still shared: after the first application's fill, a
        // change made around the proxy is not seen by the others (a hit).
        assert_eq!(simple_value(&c, "SELECT v FROM shared").await, "cached", "{app}");
        if round == 0 {
            pg.psql_db("app", "UPDATE shared SET v = 'changed'");
        }
    }
}
