//! Reads inside transaction blocks (`session::isolation`) and blocks the proxy holds off the
//! server (`session::held`), against a real Postgres. A hit is seen from the outside: a row is
//! changed directly in Postgres (around the proxy), so an answer from the cache still shows the
//! old value, and an answer from Postgres the new one.

mod common;

use common::http::{get, sample};
use common::raw::{RawClient, summaries};
use common::{PgCluster, Proxy, connect, free_port, simple_one};
use tokio_postgres::{Client, GenericClient, IsolationLevel};

const SETUP: &str = "CREATE TABLE kv (k int PRIMARY KEY, v text);
                     INSERT INTO kv VALUES (1, 'one'), (2, 'two');
                     CREATE TABLE other (k int PRIMARY KEY, v text);
                     INSERT INTO other VALUES (1, 'first');
                     CREATE ROLE rr LOGIN SUPERUSER;
                     ALTER ROLE rr SET default_transaction_isolation = 'repeatable read';";

async fn value(c: &impl GenericClient, table: &str, k: i32) -> String {
    let sql = format!("SELECT v FROM {table} WHERE k = $1");
    c.query_one(sql.as_str(), &[&k]).await.unwrap().get(0)
}

/// Change a row behind the proxy's back.
fn sneak(pg: &PgCluster, table: &str, k: i32, v: &str) {
    pg.psql_db("app", &format!("UPDATE {table} SET v = '{v}' WHERE k = {k}"));
}

/// Backends of database `app` in a transaction block (idle in it, or running).
fn open_blocks(pg: &PgCluster) -> String {
    pg.psql_db(
        "app",
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = 'app' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
    )
    .trim()
    .to_string()
}

/// A private Postgres with `SETUP`, and pgcached in front of it with its metrics on the port
/// returned.
async fn setup() -> (PgCluster, Proxy, u16) {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let admin = free_port();
    let proxy = Proxy::start_with(&pg, |c| c.admin.http_listen = Some(format!("127.0.0.1:{admin}"))).await;
    (pg, proxy, admin)
}

async fn in_block(c: &mut Client, table: &str, k: i32) -> String {
    let tx = c.transaction().await.unwrap();
    let v = value(&tx, table, k).await;
    tx.commit().await.unwrap();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_a_read_committed_block_are_answered_and_recorded_by_the_cache() {
    let (pg, proxy, _) = setup().await;
    let mut a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(in_block(&mut a, "kv", 1).await, "one", "a miss in a block records the answer");
    common::simple_one(&a, "SELECT v FROM kv WHERE k = 1").await;
    sneak(&pg, "kv", 1, "behind");
    assert_eq!(in_block(&mut a, "kv", 1).await, "one", "a hit in a block");
    assert_eq!(value(&b, "kv", 1).await, "one", "the answer recorded in a block is everyone's");
    // psycopg / SQLAlchemy style: the whole block in the simple protocol.
    a.batch_execute("BEGIN").await.unwrap();
    let inside = common::simple_one(&a, "SELECT v FROM kv WHERE k = 1").await;
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(inside.as_deref(), Some("one"), "simple protocol: a hit in a block");
    // A write through the proxy invalidates for reads in blocks as for any.
    b.execute("UPDATE kv SET v = 'new' WHERE k = 1", &[]).await.unwrap();
    assert_eq!(in_block(&mut a, "kv", 1).await, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeatable_read_and_serializable_blocks_read_from_postgres() {
    let (pg, proxy, admin) = setup().await;
    let mut c = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&c, "kv", 1).await, "one");
    sneak(&pg, "kv", 1, "truth");
    assert_eq!(value(&c, "kv", 1).await, "one", "autocommit: the cached answer");

    for level in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
        let tx = c.build_transaction().isolation_level(level).start().await.unwrap();
        assert_eq!(value(&tx, "kv", 1).await, "truth", "{level:?} by BEGIN");
        tx.commit().await.unwrap();
    }
    c.batch_execute("BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    assert_eq!(value(&c, "kv", 1).await, "truth", "by SET TRANSACTION");
    c.batch_execute("COMMIT").await.unwrap();

    c.batch_execute("SET default_transaction_isolation = 'serializable'").await.unwrap();
    assert_eq!(in_block(&mut c, "kv", 1).await, "truth", "by the session's default");
    c.batch_execute("RESET default_transaction_isolation").await.unwrap();
    assert_eq!(in_block(&mut c, "kv", 1).await, "one", "READ COMMITTED again");

    c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    assert_eq!(in_block(&mut c, "kv", 1).await, "truth", "by SET SESSION CHARACTERISTICS");
    // It is `default_transaction_isolation` (pgjdbc's setTransactionIsolation sends it): followed
    // like that setting, so going back to READ COMMITTED uses the cache again.
    assert_eq!(simple_one(&c, "SHOW default_transaction_isolation").await.as_deref(), Some("repeatable read"));
    c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED").await.unwrap();
    // (A new setting value: a new key, so a miss first, then hits.)
    assert_eq!(in_block(&mut c, "kv", 1).await, "truth");
    sneak(&pg, "kv", 1, "later");
    assert_eq!(in_block(&mut c, "kv", 1).await, "truth", "READ COMMITTED again: cached");
    sneak(&pg, "kv", 1, "truth");

    // The role's default (ALTER ROLE … SET), read from the catalog.
    let mut rr = connect(&proxy.url("rr", "app")).await;
    assert_eq!(value(&rr, "kv", 2).await, "two");
    sneak(&pg, "kv", 2, "truth");
    assert_eq!(value(&rr, "kv", 2).await, "two", "autocommit: cached");
    assert_eq!(in_block(&mut rr, "kv", 2).await, "truth", "the role's default level");
    // The client's startup options.
    let mut opt = RawClient::connect_with(
        proxy.port,
        &[("user", "postgres"), ("database", "app"), ("options", "-c default_transaction_isolation=serializable")],
    )
    .await;
    opt.query("BEGIN").flush().await;
    opt.until_ready().await;
    opt.query("SELECT v FROM kv WHERE k = 1").flush().await;
    let rows = opt.until_ready().await;
    assert!(summaries(&rows).iter().any(|m| m.contains("truth")), "startup options: {rows:?}");

    let (_, metrics) = get(admin, "/metrics").await;
    let bypassed = sample(&metrics, "pgcached_cache_bypassed_total{reason=\"transaction_isolation\"}");
    assert!(bypassed.is_some_and(|n| n >= 5.0), "counted by reason: {bypassed:?}\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_reads_its_own_writes_and_settings_from_postgres() {
    let (pg, proxy, admin) = setup().await;
    let mut c = connect(&proxy.url("postgres", "app")).await;
    for (table, k) in [("kv", 1), ("other", 1)] {
        value(&c, table, k).await;
        sneak(&pg, table, k, "truth");
    }
    let tx = c.transaction().await.unwrap();
    tx.execute("UPDATE kv SET v = 'mine' WHERE k = 2", &[]).await.unwrap();
    assert_eq!(value(&tx, "kv", 1).await, "truth", "a table the block wrote: from Postgres");
    assert_eq!(value(&tx, "kv", 2).await, "mine", "its own write");
    assert_eq!(value(&tx, "other", 1).await, "first", "a table it did not write: from the cache");
    tx.execute("SET LOCAL work_mem = '1MB'", &[]).await.unwrap();
    assert_eq!(value(&tx, "other", 1).await, "truth", "after a setting changed in the block");
    tx.rollback().await.unwrap();
    assert_eq!(value(&c, "kv", 2).await, "two", "rolled back");
    assert_eq!(value(&c, "other", 1).await, "first", "autocommit: cached again");

    let (_, metrics) = get(admin, "/metrics").await;
    for reason in ["written_in_transaction", "settings_in_transaction"] {
        let n = sample(&metrics, &format!("pgcached_cache_bypassed_total{{reason=\"{reason}\"}}"));
        assert!(n.is_some_and(|n| n >= 1.0), "{reason}: {n:?}\n{metrics}");
    }
}

/// Each step through the proxy and directly: the same messages, statuses and tags.
async fn same(via: &mut RawClient, direct: &mut RawClient, sql: &str) -> Vec<String> {
    via.query(sql).flush().await;
    direct.query(sql).flush().await;
    let (got, want) = (summaries(&via.until_ready().await), summaries(&direct.until_ready().await));
    assert_eq!(got, want, "{sql}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_answered_from_the_cache_takes_no_server_and_ends_as_in_postgres() {
    let (pg, proxy, _) = setup().await;
    let mut via = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut direct = RawClient::connect(pg.port(), "postgres", "app").await;
    let read = "SELECT v FROM kv WHERE k = 1";
    same(&mut via, &mut direct, read).await;
    // READ ONLY blocks' answers are keyed apart (they see `transaction_read_only` on).
    for step in ["BEGIN READ ONLY", read, "COMMIT"] {
        same(&mut via, &mut direct, step).await;
    }
    for (begin, end) in [
        ("BEGIN", "COMMIT"),
        ("START TRANSACTION", "ROLLBACK"),
        ("begin work", "end"),
        ("BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY", "ABORT"),
        ("BEGIN", "COMMIT AND NO CHAIN"),
    ] {
        assert_eq!(same(&mut via, &mut direct, begin).await.last().unwrap(), "Z:T");
        same(&mut via, &mut direct, read).await;
        // Directly, this client's own backend is in a block; through the proxy none is.
        assert_eq!(open_blocks(&pg), "1", "{begin}: only the direct client's block");
        assert_eq!(same(&mut via, &mut direct, end).await.last().unwrap(), "Z:I");
    }
    // A block that needs Postgres gets there, begun before its first statement.
    same(&mut via, &mut direct, "BEGIN").await;
    same(&mut via, &mut direct, read).await;
    same(&mut via, &mut direct, "SELECT count(*) FROM kv").await;
    assert_eq!(open_blocks(&pg), "2", "both blocks reached Postgres");
    // (No row is locked: the two clients' blocks must not wait for each other.)
    same(&mut via, &mut direct, "UPDATE kv SET v = 'x' WHERE k = 3").await;
    same(&mut via, &mut direct, "ROLLBACK").await;
    same(&mut via, &mut direct, "SELECT v FROM kv WHERE k = 2").await;
    // COMMIT AND CHAIN keeps a block open: it goes to Postgres.
    same(&mut via, &mut direct, "BEGIN").await;
    assert_eq!(same(&mut via, &mut direct, "COMMIT AND CHAIN").await.last().unwrap(), "Z:T");
    same(&mut via, &mut direct, "ROLLBACK").await;
    // An error in a held block fails it: 25P02 until it ends, and COMMIT says ROLLBACK.
    same(&mut via, &mut direct, "BEGIN").await;
    same(&mut via, &mut direct, "SELECT 1/0").await;
    same(&mut via, &mut direct, read).await;
    assert_eq!(same(&mut via, &mut direct, "COMMIT").await, ["C:ROLLBACK\0", "Z:I"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_in_a_held_block_fails_the_block_on_the_server_too() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE secrets (k int); CREATE TABLE items (k int); INSERT INTO items VALUES (1);");
    let policies = "
- name: guarded
  user: postgres
  deny_tables: [secrets]
";
    let proxy = Proxy::start_with(&pg, |c| c.policies = serde_yaml::from_str(policies).expect("policies")).await;
    let mut via = RawClient::connect(proxy.port, "postgres", "app").await;
    via.query("BEGIN").flush().await;
    assert_eq!(summaries(&via.until_ready().await), ["C:BEGIN\0", "Z:T"]);
    via.query("SELECT * FROM secrets").flush().await;
    let refused = via.until_ready().await;
    assert_eq!(refused[0].code().as_deref(), Some("42501"));
    assert_eq!(refused.last().unwrap().body, b"E");
    // The next statement needs the server: the block there is failed as the client's is.
    via.query("SELECT k FROM items").flush().await;
    let next = via.until_ready().await;
    assert_eq!(next[0].code().as_deref(), Some("25P02"), "{next:?}");
    via.query("COMMIT").flush().await;
    assert_eq!(summaries(&via.until_ready().await), ["C:ROLLBACK\0", "Z:I"]);
    via.query("SELECT k FROM items").flush().await;
    assert!(summaries(&via.until_ready().await).contains(&"D:\0\u{1}\0\0\0\u{1}1".to_string()));
}

/// `pgbench -M extended` and drivers that send every statement in the extended protocol: the
/// same block, message for message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_protocol_block_answered_from_the_cache_takes_no_server() {
    let (pg, proxy, _) = setup().await;
    let mut via = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut direct = RawClient::connect(pg.port(), "postgres", "app").await;
    let mut step = async |sql: &str, params: &[Option<&str>]| {
        for c in [&mut via, &mut direct] {
            c.parse("", sql).bind("", "", params, 0).describe(b'P', "").execute("", 0).sync().flush().await;
        }
        let (got, want) = (summaries(&via.until_ready().await), summaries(&direct.until_ready().await));
        assert_eq!(got, want, "{sql}");
        got
    };
    let read = "SELECT v FROM kv WHERE k = $1::int";
    step(read, &[Some("1")]).await;
    for end in ["COMMIT", "ROLLBACK"] {
        assert_eq!(step("BEGIN", &[]).await.last().unwrap(), "Z:T");
        step(read, &[Some("1")]).await;
        assert_eq!(open_blocks(&pg), "1", "only the direct client's block");
        assert_eq!(step(end, &[]).await.last().unwrap(), "Z:I");
    }
    // A miss in the block: it reaches Postgres, and ends there.
    step("BEGIN", &[]).await;
    step(read, &[Some("2")]).await;
    assert_eq!(open_blocks(&pg), "2");
    step("COMMIT", &[]).await;
    assert_eq!(open_blocks(&pg), "0");
}

/// Send what `write` writes to both clients; the answers, message for message, must be equal.
async fn both(via: &mut RawClient, direct: &mut RawClient, what: &str, write: impl Fn(&mut RawClient)) {
    for c in [&mut *via, &mut *direct] {
        write(c);
        c.flush().await;
    }
    let (got, want) = (summaries(&via.until_ready().await), summaries(&direct.until_ready().await));
    assert_eq!(got, want, "{what}");
}

/// pgjdbc with autocommit off: the block's BEGIN goes in one batch with its first statement.
/// When that statement is a hit, the batch is answered whole and the block takes no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begin_pipelined_with_a_hit_takes_no_server() {
    let (pg, proxy, _) = setup().await;
    let (mut via, mut direct) = (
        RawClient::connect(proxy.port, "postgres", "app").await,
        RawClient::connect(pg.port(), "postgres", "app").await,
    );
    let begin_and_read = |c: &mut RawClient| {
        c.parse("", "BEGIN").bind("", "", &[], 0).execute("", 0);
        c.parse("", "SELECT v FROM kv WHERE k = $1::int").bind("", "", &[Some("1")], 0).describe(b'P', "");
        c.execute("", 0).sync();
    };
    for end in ["COMMIT", "ROLLBACK"] {
        let end_block = |c: &mut RawClient| {
            c.parse("", end).bind("", "", &[], 0).execute("", 0).sync();
        };
        // A miss the first time (to Postgres, BEGIN and all), then a hit answered whole.
        both(&mut via, &mut direct, "BEGIN + a miss", begin_and_read).await;
        both(&mut via, &mut direct, end, end_block).await;
        both(&mut via, &mut direct, "BEGIN + a hit", begin_and_read).await;
        assert_eq!(open_blocks(&pg), "1", "only the direct client's block");
        both(&mut via, &mut direct, end, end_block).await;
    }
    // The block held so reaches Postgres with its first statement that needs it.
    both(&mut via, &mut direct, "BEGIN + a hit", begin_and_read).await;
    both(&mut via, &mut direct, "count", |c| {
        c.query("SELECT count(*) FROM kv");
    })
    .await;
    assert_eq!(open_blocks(&pg), "2");
}

/// pgjdbc after a few uses of a statement (`prepareThreshold`, 5 by default, 1 in Spring
/// setups that lower it) names it: the block's `BEGIN READ ONLY` and `COMMIT` come as a Bind of
/// a statement parsed earlier, and COMMIT with a row limit of 1. A block of hits still takes no
/// server, and every answer is Postgres's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_begin_and_commit_statements_hold_the_block_too() {
    let (pg, proxy, _) = setup().await;
    let (mut via, mut direct) = (
        RawClient::connect(proxy.port, "postgres", "app").await,
        RawClient::connect(pg.port(), "postgres", "app").await,
    );
    both(&mut via, &mut direct, "prepare", |c| {
        c.parse("S_1", "BEGIN READ ONLY").parse("S_2", "SELECT v FROM kv WHERE k = $1::int").parse("S_3", "COMMIT");
        c.sync();
    })
    .await;
    let begin_and_read = |c: &mut RawClient| {
        c.bind("", "S_1", &[], 0).execute("", 0);
        c.bind("", "S_2", &[Some("1")], 0).describe(b'P', "").execute("", 0).sync();
    };
    let commit = |c: &mut RawClient| {
        c.bind("", "S_3", &[], 0).execute("", 1).sync();
    };
    both(&mut via, &mut direct, "BEGIN + a miss", begin_and_read).await;
    both(&mut via, &mut direct, "COMMIT", commit).await;
    for _ in 0..2 {
        both(&mut via, &mut direct, "BEGIN + a hit", begin_and_read).await;
        assert_eq!(open_blocks(&pg), "1", "only the direct client's block");
        both(&mut via, &mut direct, "COMMIT", commit).await;
    }
    // A named BEGIN on its own (pgbench -M prepared) is not held (DECISIONS 41): the block is
    // on the server, every answer still Postgres's.
    both(&mut via, &mut direct, "BEGIN", |c| {
        c.bind("", "S_1", &[], 0).execute("", 0).sync();
    })
    .await;
    both(&mut via, &mut direct, "a hit", |c| {
        c.bind("", "S_2", &[Some("1")], 0).execute("", 0).sync();
    })
    .await;
    assert_eq!(open_blocks(&pg), "2");
    both(&mut via, &mut direct, "COMMIT", commit).await;
}

/// pgjdbc's `setSavepoint()` at the start of a block: its named BEGIN pipelined with the
/// SAVEPOINT. Not holdable with it (the savepoint needs the server): every answer is Postgres's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_begin_pipelined_with_a_savepoint_runs_on_the_server() {
    let (pg, proxy, _) = setup().await;
    let (mut via, mut direct) = (
        RawClient::connect(proxy.port, "postgres", "app").await,
        RawClient::connect(pg.port(), "postgres", "app").await,
    );
    both(&mut via, &mut direct, "prepare", |c| {
        c.parse("S_1", "BEGIN").parse("S_2", "SELECT v FROM kv WHERE k = $1::int").parse("S_3", "COMMIT");
        c.sync();
    })
    .await;
    for _ in 0..3 {
        both(&mut via, &mut direct, "BEGIN + SAVEPOINT", |c| {
            c.bind("", "S_1", &[], 0).execute("", 0);
            c.parse("", "SAVEPOINT sp1").bind("", "", &[], 0).execute("", 1).sync();
        })
        .await;
        both(&mut via, &mut direct, "read", |c| {
            c.bind("", "S_2", &[Some("1")], 0).describe(b'P', "").execute("", 0).sync();
        })
        .await;
        both(&mut via, &mut direct, "COMMIT", |c| {
            c.bind("", "S_3", &[], 0).execute("", 1).sync();
        })
        .await;
    }
}

/// A failed block ended by `COMMIT; UPDATE …` in one Query: the COMMIT is a rollback, the UPDATE
/// runs after it in a transaction of its own and commits — its answers must go from the cache
/// (the proxy once kept the block's failure past its end and forgot the write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_failed_blocks_commit_in_one_query_is_invalidated() {
    let (_pg, proxy, _) = setup().await;
    let reader = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(value(&reader, "kv", 1).await, "one");
    assert_eq!(value(&reader, "kv", 1).await, "one"); // cached
    let writer = connect(&proxy.url("postgres", "app")).await;
    writer.batch_execute("BEGIN").await.unwrap();
    assert!(writer.batch_execute("SELECT 1/0").await.is_err());
    writer.batch_execute("COMMIT; UPDATE kv SET v = 'new' WHERE k = 1").await.unwrap();
    assert_eq!(value(&reader, "kv", 1).await, "new", "no stale answer after the acknowledged UPDATE");
}

/// A block's own characteristics (`DEFERRABLE`, `ISOLATION LEVEL READ UNCOMMITTED`…) show in
/// `current_setting('transaction_…')`, which no cache key holds: its reads are not shared with
/// other blocks' (psycopg's `set_deferrable` & co. test this; the cache answered one block with
/// another's value). `READ ONLY` blocks still share (DECISIONS 53).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocks_own_characteristics_are_not_answered_from_another_blocks_reads() {
    let (_pg, proxy, _) = setup().await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let in_block = |begin: &'static str, setting: &'static str| {
        let c = &c;
        async move {
            c.batch_execute(begin).await.unwrap();
            let v: String = c.query_one("SELECT current_setting($1)", &[&setting]).await.unwrap().get(0);
            c.batch_execute("COMMIT").await.unwrap();
            v
        }
    };
    for _ in 0..2 {
        assert_eq!(in_block("BEGIN ISOLATION LEVEL READ COMMITTED", "transaction_isolation").await, "read committed");
        assert_eq!(
            in_block("BEGIN ISOLATION LEVEL READ UNCOMMITTED", "transaction_isolation").await,
            "read uncommitted"
        );
        assert_eq!(in_block("BEGIN", "transaction_deferrable").await, "off");
        assert_eq!(in_block("BEGIN ISOLATION LEVEL SERIALIZABLE, DEFERRABLE", "transaction_deferrable").await, "on");
        assert_eq!(in_block("BEGIN READ WRITE", "transaction_read_only").await, "off");
    }
}

/// The first column of the first DataRow in `msgs`, as text.
fn first_value(msgs: &[common::raw::Msg]) -> String {
    let row = msgs.iter().find(|m| m.tag == 'D').unwrap_or_else(|| panic!("a row: {:?}", summaries(msgs)));
    // DataRow: column count (2 bytes), length (4), then the value.
    String::from_utf8(row.body[6..].to_vec()).unwrap()
}

/// A `READ ONLY` block's reads see `transaction_read_only` on. Their answers are keyed apart:
/// shared among READ ONLY blocks (Spring's read-only transactions hit), never with other
/// blocks, autocommit reads, or a session whose `default_transaction_read_only` differs —
/// whichever way the block begins (a simple `BEGIN` the proxy holds, or pgjdbc's pipeline of
/// `BEGIN READ ONLY` and the block's first read). psycopg's own
/// `test_set_transaction_param_implicit[read_only-True]` got another block's 'off'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_blocks_reads_are_keyed_apart_and_shared_among_themselves() {
    let (pg, proxy, _) = setup().await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    let setting = "SELECT current_setting('transaction_read_only')";
    for round in 0..2 {
        let at = |what: &str| format!("round {round}: {what}");
        assert_eq!(simple_one(&c, setting).await.as_deref(), Some("off"), "{}", at("autocommit, simple"));
        let v: String = c.query_one(setting, &[]).await.unwrap().get(0);
        assert_eq!(v, "off", "{}", at("autocommit, extended"));
        raw.parse("", setting).bind("", "", &[], 0).describe(b'P', "").execute("", 0).sync().flush().await;
        assert_eq!(first_value(&raw.until_ready().await), "off", "{}", at("autocommit, text format"));
        for (begin, expected) in [("BEGIN", "off"), ("BEGIN READ ONLY", "on"), ("START TRANSACTION READ ONLY", "on")] {
            c.batch_execute(begin).await.unwrap();
            let simple = simple_one(&c, setting).await;
            let v: String = c.query_one(setting, &[]).await.unwrap().get(0);
            c.batch_execute("COMMIT").await.unwrap();
            assert_eq!(simple.as_deref(), Some(expected), "{}", at(&format!("{begin}, simple")));
            assert_eq!(v, expected, "{}", at(&format!("{begin}, extended")));
        }
        // pgjdbc: the block's BEGIN pipelined with its first read (a fill, then a hit).
        raw.parse("", "BEGIN READ ONLY").bind("", "", &[], 0).execute("", 0);
        raw.parse("", setting).bind("", "", &[], 0).describe(b'P', "").execute("", 0).sync().flush().await;
        assert_eq!(first_value(&raw.until_ready().await), "on", "{}", at("pgjdbc's BEGIN READ ONLY pipeline"));
        raw.query("COMMIT").flush().await;
        raw.until_ready().await;
    }
    // READ ONLY blocks share among themselves: a change made around the proxy is not seen in
    // the second one (a hit), while an autocommit read, keyed apart, reads it.
    async fn ro_value(c: &Client) -> String {
        c.batch_execute("BEGIN READ ONLY").await.unwrap();
        let v = value(c, "kv", 1).await;
        c.batch_execute("COMMIT").await.unwrap();
        v
    }
    assert_eq!(ro_value(&c).await, "one");
    sneak(&pg, "kv", 1, "behind");
    assert_eq!(ro_value(&c).await, "one", "a READ ONLY block's answer is another READ ONLY block's hit");
    assert_eq!(value(&c, "kv", 1).await, "behind", "autocommit reads are keyed apart from READ ONLY blocks'");
    // A session whose default is read-only: its autocommit reads are keyed apart too.
    let d = connect(&proxy.url("postgres", "app")).await;
    d.batch_execute("SET default_transaction_read_only = on").await.unwrap();
    for (client, expected) in [(&c, "off"), (&d, "on"), (&c, "off")] {
        assert_eq!(simple_one(client, setting).await.as_deref(), Some(expected));
        let default = "SELECT current_setting('default_transaction_read_only')";
        assert_eq!(simple_one(client, default).await.as_deref(), Some(expected));
    }
}
