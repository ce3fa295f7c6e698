//! Policies end to end through the proxy: a BI user under a policy reads what it may, gets
//! capped results (with a notice), and is refused everything else with the right SQLSTATE and
//! message — in the simple and extended protocols, for every statement of a multi-statement
//! string, inside transactions (aborted as Postgres would report it) — and its session stays
//! usable; an app user under no policy sees no difference; lexing settings cannot be changed.

mod common;

use common::raw::{Msg, RawClient};
use common::{PgCluster, Proxy, connect, try_connect};
use tokio_postgres::{Client, SimpleQueryMessage};

const SETUP: &str = "
    CREATE ROLE bi LOGIN; CREATE ROLE app LOGIN; CREATE ROLE etl LOGIN;
    CREATE TABLE items (id int PRIMARY KEY, name text, price int);
    INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 100) g;
    CREATE TABLE users (id int PRIMARY KEY, name text, ssn text);
    INSERT INTO users VALUES (1, 'ann', '111-11'), (2, 'bob', '222-22');
    CREATE TABLE secrets (k text); INSERT INTO secrets VALUES ('s3cret');
    CREATE TABLE t (x int);
    ANALYZE;
    GRANT ALL ON ALL TABLES IN SCHEMA public TO bi, app, etl;
    ALTER TABLE t OWNER TO app;
    CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO t VALUES (666); RETURN 1; END $$;";

const POLICIES: &str = "
- name: bi
  user: bi
  read_only: true
  deny_tables: [secrets]
  deny_columns: [users.ssn]
  max_statements: 3
  on_parse_error: reject
  max_cost: 5000
  limit: {inject: 5, max: 10, notice: true}
- name: etl
  user: etl
  require_where: true
- name: app
  user: app
";

/// A 1,000,000-row join: far above `max_cost: 5000`.
const COSTLY: &str = "SELECT count(*) FROM items a, items b, items c";

async fn setup() -> (PgCluster, Proxy) {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start_with(&pg, |c| c.policies = serde_yaml::from_str(POLICIES).expect("policies")).await;
    (pg, proxy)
}

/// Rows of a simple query (all statements), as text of the first column.
async fn simple_rows(c: &Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect()
}

/// (SQLSTATE, message) of a refused simple query.
async fn simple_error(c: &Client, sql: &str) -> (String, String) {
    let e = c.simple_query(sql).await.err().unwrap_or_else(|| panic!("{sql}: expected an error"));
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// (SQLSTATE, message) of a refused extended-protocol query.
async fn extended_error(c: &Client, sql: &str) -> (String, String) {
    let e = c.query(sql, &[]).await.err().unwrap_or_else(|| panic!("{sql}: expected an error"));
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

async fn still_usable(c: &Client) {
    assert_eq!(simple_rows(c, "SELECT 40 + 2").await, ["42"]);
    let row = c.query_one("SELECT 41 + 1", &[]).await.expect("extended still works");
    assert_eq!(row.get::<_, i32>(0), 42);
}

fn data_rows(msgs: &[Msg]) -> usize {
    msgs.iter().filter(|m| m.tag == 'D').count()
}

fn notices(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().filter(|m| m.tag == 'N').map(|m| m.message().unwrap_or_default()).collect()
}

/// What the BI policy refuses: statement, SQLSTATE, and the message it must contain.
const REFUSED: &[(&str, &str, &str)] = &[
    ("DELETE FROM items WHERE id = 1", "42501", "DELETE may write; it is denied (read_only) by policy \"bi\""),
    ("UPDATE items SET price = 0 WHERE id = 1", "42501", "(read_only) by policy \"bi\""),
    ("WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d", "42501", "by policy \"bi\""),
    ("SELECT * FROM secrets", "42501", "table \"secrets\" is denied by policy \"bi\""),
    ("SELECT * FROM users", "42501", "column \"users.ssn\" is denied by policy \"bi\""),
    ("SELECT u.* FROM users u", "42501", "column \"users.ssn\" is denied by policy \"bi\""),
    ("SELECT row_to_json(u) FROM users u", "42501", "column \"users.ssn\" is denied by policy \"bi\""),
    ("SELECT name FROM users WHERE ssn = '111-11'", "42501", "column \"users.ssn\" is denied by policy \"bi\""),
    ("SELECT pg_read_file('/etc/passwd')", "42501", "function \"pg_read_file\" is denied by policy \"bi\""),
    ("SELECT pg_ls_dir('.')", "42501", "function \"pg_ls_dir\" is denied by policy \"bi\""),
    ("SELECT * FROM items WHERE", "42601", "could not be analyzed"),
    (COSTLY, "54000", "exceeds max_cost 5000 of policy \"bi\""),
    ("SET standard_conforming_strings = off", "42501", "by policy \"bi\""),
    ("SELECT set_config('standard_conforming_strings', 'off', false)", "42501", "by policy \"bi\""),
    ("SET client_encoding = 'LATIN1'", "42501", "by policy \"bi\""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_reads_what_it_may() {
    let (_pg, proxy) = setup().await;
    let c = connect(&proxy.url("bi", "app")).await;
    assert_eq!(simple_rows(&c, "SELECT name FROM users ORDER BY id").await, ["ann", "bob"]);
    assert_eq!(simple_rows(&c, "SELECT count(*) FROM items").await, ["100"]);
    let rows = c.query("SELECT id, name FROM items WHERE price > $1 ORDER BY id", &[&500i32]).await.unwrap();
    assert_eq!(rows.len(), 5, "LIMIT 5 injected in the extended protocol too");
    assert_eq!(rows[0].get::<_, i32>(0), 51);
    // A cheap join is under max_cost.
    assert_eq!(simple_rows(&c, "SELECT count(*) FROM items a JOIN users u ON u.id = a.id").await, ["2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_results_are_capped_with_a_notice() {
    let (_pg, proxy) = setup().await;
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    let cases = [
        ("SELECT id FROM items ORDER BY id", 5, "result limited to 5 rows by policy \"bi\" (LIMIT 5 added)"),
        ("SELECT id FROM items ORDER BY id LIMIT 50", 10, "LIMIT 50 capped to 10 rows by policy \"bi\""),
        ("SELECT id FROM items ORDER BY id LIMIT ALL;", 10, "result limited to 10 rows by policy \"bi\""),
        ("SELECT id FROM items ORDER BY id -- trailing comment", 5, "(LIMIT 5 added)"),
    ];
    // Twice each: the second answer may come from the cache, and says the same.
    for (sql, rows, notice) in cases.into_iter().flat_map(|c| [c, c]) {
        raw.query(sql).flush().await;
        let msgs = raw.until_ready().await;
        assert_eq!(data_rows(&msgs), rows, "{sql}");
        let n = notices(&msgs);
        assert!(n.len() == 1 && n[0].contains(notice), "{sql}: notices {n:?}");
    }
    // A limit added but not reached: nothing was cut, no notice (twice: miss, then hit).
    for _ in 0..2 {
        raw.query("SELECT id FROM items WHERE id <= 3 ORDER BY id").flush().await;
        let msgs = raw.until_ready().await;
        assert_eq!((data_rows(&msgs), notices(&msgs).len()), (3, 0));
    }
    // A limit within bounds, and an aggregate: untouched, no notice.
    raw.query("SELECT id FROM items ORDER BY id LIMIT 3").flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!((data_rows(&msgs), notices(&msgs).len()), (3, 0));
    raw.query("SELECT count(*) FROM items").flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!((data_rows(&msgs), notices(&msgs).len()), (1, 0));
    // Extended protocol: the notice comes with the Execute whose rows reached the limit, right
    // before its CommandComplete; one that returned fewer rows has none.
    for (sql, rows, notes) in [("SELECT id FROM items ORDER BY id", 5, 1), ("SELECT id FROM items WHERE id < 3", 2, 0)]
    {
        raw.parse("s", sql).bind("p", "s", &[], 0).execute("p", 0).sync().flush().await;
        let msgs = raw.until_ready().await;
        assert_eq!((data_rows(&msgs), notices(&msgs).len()), (rows, notes), "{sql}");
        if notes == 1 {
            let at = msgs.iter().position(|m| m.tag == 'N').unwrap();
            assert_eq!(msgs[at + 1].tag, 'C', "{msgs:?}");
        }
        raw.bind("", "s", &[], 0).execute("", 0).close(b'S', "s").sync().flush().await;
        let msgs = raw.until_ready().await;
        assert_eq!(notices(&msgs).len(), notes, "bound again: {sql}");
    }
}

/// Metadata is never cut: a read of system catalogs only gets no LIMIT and no notice (psql `\d`,
/// driver reflection and BI field sync would otherwise show a wrong schema without an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reads_are_left_whole_under_a_limit_policy() {
    let (pg, proxy) = setup().await;
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    let sql = "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";
    let direct: usize = pg.psql_db("app", &format!("SELECT count(*) FROM ({sql}) s")).trim().parse().unwrap();
    assert!(direct > 10, "more catalog rows than the policy's limit: {direct}");
    raw.query(sql).flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!((data_rows(&msgs), notices(&msgs).len()), (direct, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_parameters_are_capped_at_bind() {
    let (_pg, proxy) = setup().await;
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    let sql = "SELECT id FROM items ORDER BY id LIMIT $1";
    for (value, rows) in [(Some("1000"), 10), (None, 10), (Some("3"), 3), (Some(" 10 "), 10), (Some("0x64"), 10)] {
        raw.parse("", sql).bind("", "", &[value], 0).execute("", 0).sync().flush().await;
        let msgs = raw.until_ready().await;
        assert!(msgs.iter().all(|m| m.tag != 'E'), "{value:?}: {msgs:?}");
        assert_eq!(data_rows(&msgs), rows, "unnamed statement, LIMIT {value:?}");
    }
    // A named statement bound twice (renamed to a shared server statement in transaction mode).
    raw.parse("s1", sql).sync().flush().await;
    raw.until_ready().await;
    for (value, rows) in [("500", 10), ("2", 2)] {
        raw.bind("", "s1", &[Some(value)], 0).execute("", 0).sync().flush().await;
        assert_eq!(data_rows(&raw.until_ready().await), rows, "named statement, LIMIT {value}");
    }
    // tokio-postgres sends an int8 in binary format.
    let c = connect(&proxy.url("bi", "app")).await;
    assert_eq!(c.query(sql, &[&1_000_000i64]).await.unwrap().len(), 10);
    assert_eq!(c.query(sql, &[&4i64]).await.unwrap().len(), 4);
    let rows = c.query("SELECT id FROM items WHERE id > $1 ORDER BY id LIMIT $2", &[&90i32, &1000i64]).await.unwrap();
    assert_eq!(rows.len(), 10);
    // The app is not capped.
    let app = connect(&proxy.url("app", "app")).await;
    assert_eq!(app.query(sql, &[&1000i64]).await.unwrap().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_is_refused_with_the_right_sqlstate_and_message_in_both_protocols() {
    let (_pg, proxy) = setup().await;
    let c = connect(&proxy.url("bi", "app")).await;
    for (sql, code, message) in REFUSED {
        let (got_code, got_message) = simple_error(&c, sql).await;
        assert_eq!(got_code, *code, "simple: {sql}: {got_message}");
        assert!(got_message.starts_with("pgcached: ") && got_message.contains(message), "simple: {sql}: {got_message}");
        still_usable(&c).await;
        let (got_code, got_message) = extended_error(&c, sql).await;
        assert_eq!(got_code, *code, "extended: {sql}: {got_message}");
        assert!(got_message.contains(message), "extended: {sql}: {got_message}");
        still_usable(&c).await;
    }
    // A whole gathered batch (Parse/Bind/Execute/Sync, the shape the result cache answers) is
    // refused too, every time, and nothing is cached from it.
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    for _ in 0..2 {
        raw.parse("", COSTLY).bind("", "", &[], 0).execute("", 0).sync().flush().await;
        let msgs = raw.until_ready().await;
        assert_eq!(msgs[0].code().as_deref(), Some("54000"), "{msgs:?}");
        assert_eq!((msgs.len(), msgs[1].body.as_slice()), (2, &b"I"[..]), "{msgs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_a_multi_statement_string_is_checked() {
    let (pg, proxy) = setup().await;
    let c = connect(&proxy.url("bi", "app")).await;
    assert_eq!(simple_rows(&c, "SELECT 1; SELECT 2; SELECT 3").await, ["1", "2", "3"]);
    let (code, message) = simple_error(&c, "SELECT 1; SELECT 2; SELECT 3; SELECT 4").await;
    assert_eq!(code, "54000");
    assert!(message.contains("4 statements in one query string exceed max_statements 3"), "{message}");
    for sql in [
        "SELECT id FROM items LIMIT 1; DELETE FROM items",
        "SELECT 1; SELECT * FROM secrets",
        "SELECT 1; SELECT ssn FROM users",
        &format!("SELECT 1; {COSTLY}"),
    ] {
        let (code, _) = simple_error(&c, sql).await;
        assert!(code == "42501" || code == "54000", "{sql}: {code}");
    }
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM items").trim(), "100", "nothing was deleted");
    still_usable(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_inside_a_transaction_aborts_it_as_postgres_would() {
    let (pg, proxy) = setup().await;
    // Simple protocol: BEGIN; refused; 25P02 until ROLLBACK.
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    let mut direct = RawClient::connect(pg.port(), "bi", "app").await;
    raw.query("BEGIN").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"T");
    raw.query("SELECT * FROM secrets").flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!(msgs[0].code().as_deref(), Some("42501"));
    assert_eq!(msgs.last().unwrap().body, b"E", "transaction failed");
    // Directly, a failing statement in a transaction gives the same follow-up messages.
    direct.query("BEGIN").flush().await;
    direct.until_ready().await;
    direct.query("SELECT 1/0").flush().await;
    direct.until_ready().await;
    for sql in ["SELECT 1", "SELECT id FROM items"] {
        raw.query(sql).flush().await;
        direct.query(sql).flush().await;
        let (via, want) = (raw.until_ready().await, direct.until_ready().await);
        assert_eq!(common::raw::summaries(&via), common::raw::summaries(&want), "{sql}");
        assert_eq!(via[0].code().as_deref(), Some("25P02"));
    }
    for c in [&mut raw, &mut direct] {
        c.query("ROLLBACK").flush().await;
    }
    let (via, want) = (raw.until_ready().await, direct.until_ready().await);
    assert_eq!(common::raw::summaries(&via), common::raw::summaries(&want));
    assert_eq!(via.last().unwrap().body, b"I");

    // Extended protocol: a refused Parse inside a transaction, then Sync.
    raw.query("BEGIN").flush().await;
    raw.until_ready().await;
    raw.parse("", COSTLY).bind("", "", &[], 0).execute("", 0).sync().flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!(msgs[0].code().as_deref(), Some("54000"), "{msgs:?}");
    assert_eq!(msgs.last().unwrap().body, b"E");
    raw.parse("", "SELECT 1").bind("", "", &[], 0).execute("", 0).sync().flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!(msgs[0].code().as_deref(), Some("25P02"), "{msgs:?}");
    raw.query("ROLLBACK").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"I");

    // tokio-postgres: the transaction object sees the same.
    let mut c = connect(&proxy.url("bi", "app")).await;
    let tx = c.transaction().await.unwrap();
    assert_eq!(tx.query("SELECT pg_read_file('x')", &[]).await.unwrap_err().code().unwrap().code(), "42501");
    assert_eq!(tx.query("SELECT 1", &[]).await.unwrap_err().code().unwrap().code(), "25P02");
    tx.rollback().await.unwrap();
    still_usable(&c).await;
}

/// A refused Query pipelined behind a `BEGIN` whose ReadyForQuery has not come back: the
/// refusal fails the block the `BEGIN` opened (status `E`, and 25P02 next), as when it is sent
/// after — not `I` with the server's block still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_pipelined_behind_a_begin_fails_the_block() {
    let (_pg, proxy) = setup().await;
    let mut raw = RawClient::connect(proxy.port, "bi", "app").await;
    // Not a BEGIN the proxy answers itself: it goes to Postgres.
    raw.query("BEGIN ISOLATION LEVEL SERIALIZABLE").query("SELECT * FROM secrets").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"T");
    let refused = raw.until_ready().await;
    assert_eq!(refused[0].code().as_deref(), Some("42501"), "{:?}", common::raw::summaries(&refused));
    assert_eq!(refused.last().unwrap().body, b"E", "the block is failed");
    raw.query("SELECT 1").flush().await;
    let next = raw.until_ready().await;
    assert_eq!(next[0].code().as_deref(), Some("25P02"), "{:?}", common::raw::summaries(&next));
    raw.query("ROLLBACK").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"I");

    // The same for a refusal by cost, and with more pipelined behind it.
    raw.query("BEGIN ISOLATION LEVEL SERIALIZABLE").query(COSTLY).query("SELECT 1").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"T");
    let refused = raw.until_ready().await;
    assert_eq!(refused[0].code().as_deref(), Some("54000"), "{:?}", common::raw::summaries(&refused));
    assert_eq!(refused.last().unwrap().body, b"E");
    let next = raw.until_ready().await;
    assert_eq!(next[0].code().as_deref(), Some("25P02"), "{:?}", common::raw::summaries(&next));
    raw.query("ROLLBACK").flush().await;
    assert_eq!(raw.until_ready().await.last().unwrap().body, b"I");
    still_usable(&connect(&proxy.url("bi", "app")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_where_applies_to_update_and_delete() {
    let (pg, proxy) = setup().await;
    let c = connect(&proxy.url("etl", "app")).await;
    let (code, message) = simple_error(&c, "UPDATE items SET price = 0").await;
    assert_eq!(code, "42501");
    assert!(message.contains("UPDATE without WHERE is denied (require_where) by policy \"etl\""), "{message}");
    let (code, _) = extended_error(&c, "DELETE FROM items").await;
    assert_eq!(code, "42501");
    c.execute("UPDATE items SET price = 1 WHERE id = 1", &[]).await.unwrap();
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM items WHERE price > 1").trim(), "99");
    // etl has no limit rule: its reads are not limited.
    assert_eq!(c.query("SELECT id FROM items", &[]).await.unwrap().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_under_no_policy_sees_no_difference() {
    let (pg, proxy) = setup().await;
    let c = connect(&proxy.url("app", "app")).await;
    let direct = connect(&pg.url("app", "app")).await;
    for sql in [
        "SELECT id FROM items ORDER BY id",
        "SELECT id FROM items ORDER BY id LIMIT 50",
        "SELECT * FROM secrets",
        "SELECT ssn FROM users ORDER BY id",
        "SELECT row_to_json(u)::text FROM users u ORDER BY id",
        COSTLY,
        "SELECT 1; SELECT 2; SELECT 3; SELECT 4",
    ] {
        assert_eq!(simple_rows(&c, sql).await, simple_rows(&direct, sql).await, "{sql}");
    }
    let mut raw = RawClient::connect(proxy.port, "app", "app").await;
    raw.query("SELECT id FROM items").flush().await;
    let msgs = raw.until_ready().await;
    assert_eq!((data_rows(&msgs), notices(&msgs).len()), (100, 0));
    // Its errors are Postgres's own.
    let (code, _) = simple_error(&c, "SELECT pg_read_file('/nonexistent')").await;
    assert_eq!(code, "42501", "permission denied by Postgres itself (not a superuser)");
    c.batch_execute("UPDATE items SET price = price").await.unwrap();
    c.batch_execute("SET standard_conforming_strings = off; RESET standard_conforming_strings").await.unwrap();
}

/// The verified attack: with standard_conforming_strings off, this is one SELECT to an
/// analyzer that assumes it on, and `SELECT 'x'''; DROP TABLE t;` to Postgres.
const ATTACK: &str = r"SELECT 'x\'' ; DROP TABLE t; -- '";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lexing_settings_cannot_be_changed_under_a_guarded_policy() {
    let (pg, proxy) = setup().await;
    let bi = connect(&proxy.url("bi", "app")).await;
    for sql in [
        "SET standard_conforming_strings = off",
        "SET standard_conforming_strings TO 'off'",
        "SET SESSION standard_conforming_strings = false",
        "SET LOCAL standard_conforming_strings = off",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT set_config('standard_conforming_strings', 'of' || 'f', false)",
        "SET client_encoding = 'SJIS'",
        "SELECT set_config('client_encoding', 'LATIN1', false)",
    ] {
        assert_eq!(simple_error(&bi, sql).await.0, "42501", "simple: {sql}");
        assert_eq!(extended_error(&bi, sql).await.0, "42501", "extended: {sql}");
    }
    assert_eq!(simple_rows(&bi, "SHOW standard_conforming_strings").await, ["on"]);
    // Startup options: the login itself is refused.
    let url = format!("{}?options=-c%20standard_conforming_strings%3Doff", proxy.url("bi", "app"));
    let err = try_connect(&url).await.expect_err("login refused");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert!(db.message().contains("by policy \"bi\""), "{}", db.message());
    // With the setting unchangeable, the payload is the one harmless SELECT it looks like.
    assert_eq!(simple_rows(&bi, ATTACK).await, [r"x\' ; DROP TABLE t; -- "]);
    assert_eq!(pg.psql_db("app", "SELECT to_regclass('t') IS NOT NULL").trim(), "t");
    // …while the payload is live for a session that may turn the setting off (no policy):
    // Postgres runs the DROP. This is why the settings are locked.
    let app = connect(&format!("{}?options=-c%20standard_conforming_strings%3Doff", proxy.url("app", "app"))).await;
    app.simple_query(ATTACK).await.expect("the attack runs for the unguarded app");
    assert_eq!(pg.psql_db("app", "SELECT to_regclass('t') IS NOT NULL").trim(), "f");
}

/// A write hidden in a function (the analysis sees only a read): a `read_only` session is
/// read-only on the server too, so Postgres itself refuses it (25006), in both protocols and
/// both pooling modes; other users' sessions are not read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sessions_are_read_only_on_the_server() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    for mode in [pgcached::config::PoolMode::Transaction, pgcached::config::PoolMode::Session] {
        let proxy = Proxy::start_with(&pg, |c| {
            c.policies = serde_yaml::from_str(POLICIES).expect("policies");
            c.pool.mode = mode;
            c.pool.max_size = 2;
        })
        .await;
        let bi = connect(&proxy.url("bi", "app")).await;
        let (code, _) = simple_error(&bi, "SELECT sneaky_write()").await;
        assert_eq!(code, "25006", "{mode:?}");
        let (code, _) = extended_error(&bi, "SELECT sneaky_write()").await;
        assert_eq!(code, "25006", "{mode:?}");
        let (code, _) = simple_error(&bi, "RESET ALL").await;
        assert_eq!(code, "42501", "{mode:?}");
        still_usable(&bi).await;
        let app = connect(&proxy.url("app", "app")).await;
        assert_eq!(simple_rows(&app, "SELECT sneaky_write()").await, ["1"], "{mode:?}: app may write");
        assert_eq!(simple_rows(&app, "SHOW default_transaction_read_only").await, ["off"], "{mode:?}");
        drop((bi, app));
        proxy.shutdown().await;
    }
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t WHERE x = 666").trim(), "2");
}

/// `schema.*` table rules read an unqualified name where the session's own `search_path` takes
/// it, not as `public`: a client cannot step around `allow_tables: [public.*]` (or into a
/// denied schema) by changing its search_path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rules_follow_the_sessions_search_path() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE shelf (item text); INSERT INTO shelf VALUES ('public');
         CREATE SCHEMA vault; CREATE TABLE vault.shelf (item text); INSERT INTO vault.shelf VALUES ('vault');
         CREATE ROLE reader LOGIN; CREATE ROLE auditor LOGIN;
         GRANT USAGE ON SCHEMA vault TO reader, auditor;
         GRANT SELECT ON shelf, vault.shelf TO reader, auditor;",
    );
    let policies = "
- {name: public_only, user: reader, allow_tables: ['public.*']}
- {name: no_vault, user: auditor, deny_tables: ['vault.*']}";
    let proxy = Proxy::start_with(&pg, |c| c.policies = serde_yaml::from_str(policies).unwrap()).await;
    for user in ["reader", "auditor"] {
        let c = connect(&proxy.url(user, "app")).await;
        assert_eq!(simple_rows(&c, "SELECT item FROM shelf").await, ["public"], "{user}");
        c.batch_execute("SET search_path TO vault, public").await.unwrap();
        let (code, message) = simple_error(&c, "SELECT item FROM shelf").await;
        assert_eq!(code, "42501", "{user}: {message}");
        assert!(message.contains("\"shelf\""), "{user}: {message}");
        let (code, _) = extended_error(&c, "SELECT item FROM shelf").await;
        assert_eq!(code, "42501", "{user}");
        assert_eq!(simple_rows(&c, "SELECT item FROM public.shelf").await, ["public"], "{user}");
        c.batch_execute("SET search_path TO public").await.unwrap();
        assert_eq!(simple_rows(&c, "SELECT item FROM shelf").await, ["public"], "{user}");
    }
}

/// What tools generate — a long flat `OR` list, a `CASE` of many branches, a `UNION ALL` of
/// many arms, `ROWS FROM` — is analysed (not refused as unreadable) under a guarded policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_generated_statements_pass_a_guarded_policy() {
    let (_pg, proxy) = setup().await;
    let c = connect(&proxy.url("bi", "app")).await;
    let list = |n: usize, f: &dyn Fn(usize) -> String, sep: &str| (0..n).map(f).collect::<Vec<_>>().join(sep);
    for sql in [
        format!("SELECT id FROM items WHERE {} ORDER BY id", list(1500, &|i| format!("id = {i}"), " OR ")),
        format!("SELECT CASE {} END FROM items ORDER BY id", list(1500, &|i| format!("WHEN id = {i} THEN {i}"), " ")),
        format!("SELECT id FROM ({}) u ORDER BY id", list(1200, &|i| format!("SELECT {i} AS id"), " UNION ALL ")),
        "SELECT a FROM ROWS FROM (generate_series(1, 3), generate_series(1, 2)) AS t(a, b) ORDER BY a".to_string(),
    ] {
        let rows = simple_rows(&c, &sql).await;
        assert_eq!(rows.len(), if sql.contains("ROWS FROM") { 3 } else { 5 }, "{sql:.60}: limited, not refused");
    }
}

/// `COPY (query) TO STDOUT` is limited like the query itself: a BI tool cannot pull every row
/// through COPY where its SELECT would be cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_of_a_query_is_limited_like_the_query() {
    let (_pg, proxy) = setup().await;
    let c = connect(&proxy.url("bi", "app")).await;
    for (sql, want) in [
        ("COPY (SELECT id FROM items ORDER BY id) TO STDOUT", 5),
        ("COPY (SELECT id FROM items ORDER BY id LIMIT 50) TO STDOUT", 10),
        ("COPY (SELECT id FROM items ORDER BY id LIMIT 3) TO STDOUT", 3),
    ] {
        use futures::StreamExt;
        let stream = c.copy_out(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let chunks: Vec<_> = std::pin::pin!(stream).collect().await;
        let data: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(data.iter().filter(|b| **b == b'\n').count(), want, "{sql}");
    }
}
