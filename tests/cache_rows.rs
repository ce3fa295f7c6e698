//! Row-level invalidation: a write through pgcached whose rows are pinned by equality drops only
//! the cached answers of reads pinned to those rows; everything it cannot be sure of falls back
//! to the whole table.
//!
//! How each case tells the two apart: every row is first changed *around* the proxy (directly in
//! Postgres), so a cached answer still shows the old value while a re-read shows the new one.
//! After a write through pgcached, a read of a row it wrote must be fresh (equal to Postgres
//! directly) and a read of a row it did not write must still be the cached, old answer.

mod common;

use common::{PgCluster, Proxy, connect, simple_one};

const SCHEMA: &str = "
    CREATE TABLE acct (id int PRIMARY KEY, owner text, bal int);
    INSERT INTO acct SELECT g, 'o' || g, 0 FROM generate_series(1, 10) g;
    CREATE TABLE named (name text PRIMARY KEY, v int);
    INSERT INTO named VALUES ('a', 0), ('b', 0);
    CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
    CREATE TABLE ci_named (name text COLLATE ci, v int);
    INSERT INTO ci_named VALUES ('a', 0);
    CREATE TABLE moved (id int PRIMARY KEY, v int);
    INSERT INTO moved VALUES (1, 0);
    CREATE FUNCTION move_it() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.id := NEW.id + 100; RETURN NEW; END $$;
    CREATE TRIGGER move_on_update BEFORE UPDATE ON moved FOR EACH ROW EXECUTE FUNCTION move_it();
    CREATE TABLE later (id int PRIMARY KEY, v int);
    INSERT INTO later VALUES (1, 0);
    CREATE TABLE later_log (id int);
    CREATE FUNCTION log_later() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO later_log VALUES (NEW.id); RETURN NEW; END $$;
    CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree ON DELETE CASCADE);
    INSERT INTO tree VALUES (1, NULL), (2, 1);
    CREATE TABLE parent (id int PRIMARY KEY);
    CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE);
    INSERT INTO parent VALUES (1);
    INSERT INTO child VALUES (1, 1);
";

struct Fixture {
    _pg: PgCluster,
    _proxy: Proxy,
    proxied: tokio_postgres::Client,
    direct: tokio_postgres::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let pg = PgCluster::start();
        pg.psql_db("app", SCHEMA);
        let proxy = Proxy::start(&pg).await;
        let proxied = connect(&proxy.url("postgres", "app")).await;
        let direct = connect(&pg.url("postgres", "app")).await;
        Fixture { _pg: pg, _proxy: proxy, proxied, direct }
    }

    /// Cache `read` through the proxy (read twice: the second is the cached answer).
    async fn cache(&self, read: &str) -> Option<String> {
        let first = simple_one(&self.proxied, read).await;
        assert_eq!(simple_one(&self.proxied, read).await, first, "`{read}` cached");
        first
    }

    /// Change the data around the proxy, then write `write` through it.
    async fn write(&self, around: &str, write: &str) {
        self.direct.batch_execute(around).await.unwrap();
        self.proxied.batch_execute(write).await.unwrap();
    }

    /// `read` through the proxy is what Postgres says now.
    async fn assert_fresh(&self, read: &str, why: &str) {
        let want = simple_one(&self.direct, read).await;
        assert_eq!(simple_one(&self.proxied, read).await, want, "{why}: `{read}` must be fresh");
    }

    /// `read` through the proxy is still the answer cached before (`cached`), not Postgres' now.
    async fn assert_kept(&self, read: &str, cached: &Option<String>, why: &str) {
        let now = simple_one(&self.direct, read).await;
        assert_ne!(&now, cached, "{why}: the change around the proxy must show in `{read}`");
        assert_eq!(&simple_one(&self.proxied, read).await, cached, "{why}: `{read}` must still be cached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_some_rows_keeps_the_answers_of_the_others() {
    let f = Fixture::new().await;
    let one = "SELECT bal FROM acct WHERE id = 1";
    let two = "SELECT bal FROM acct WHERE id = 2";
    let moved_to = "SELECT owner FROM acct WHERE id = 12";
    let inserted = "SELECT count(*) FROM acct WHERE id IN (20, 21)";
    let deleted = "SELECT owner FROM acct WHERE id = 5";
    let total = "SELECT sum(bal) FROM acct";
    let cached_one = f.cache(one).await;
    for read in [two, moved_to, inserted, deleted, total] {
        f.cache(read).await;
    }
    f.write("UPDATE acct SET bal = bal + 100", "UPDATE acct SET bal = bal + 1 WHERE id = 2").await;
    f.assert_fresh(two, "updated row").await;
    f.assert_fresh(total, "a read not pinned depends on every row").await;
    f.assert_kept(one, &cached_one, "row 1 was not written").await;
    // A key update moves the row: the new key's readers see it arrive.
    f.proxied.batch_execute("UPDATE acct SET id = 12 WHERE id = 3").await.unwrap();
    f.assert_fresh(moved_to, "row moved to 12").await;
    f.proxied.batch_execute("INSERT INTO acct (id, owner, bal) VALUES (21, 'new', 0)").await.unwrap();
    f.assert_fresh(inserted, "row 21 inserted").await;
    f.proxied.batch_execute("DELETE FROM acct WHERE id IN (5, 6)").await.unwrap();
    f.assert_fresh(deleted, "row 5 deleted").await;
    // In a transaction: the union of its writes, at COMMIT (a rolled-back savepoint included).
    let eight = "SELECT bal FROM acct WHERE id = 8";
    let nine = "SELECT bal FROM acct WHERE id = 9";
    f.cache(eight).await;
    f.cache(nine).await;
    f.proxied
        .batch_execute(
            "BEGIN; UPDATE acct SET bal = 8 WHERE id = 8; SAVEPOINT s; UPDATE acct SET bal = 9 WHERE id = 9; \
             ROLLBACK TO s; UPDATE acct SET owner = 'x' WHERE id = 9; COMMIT",
        )
        .await
        .unwrap();
    f.assert_fresh(eight, "written in the transaction").await;
    f.assert_fresh(nine, "written in the transaction").await;
    f.assert_kept(one, &cached_one, "row 1 was still not written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_pin_rows_like_literals_on_the_extended_protocol() {
    let f = Fixture::new().await;
    let read = "SELECT bal FROM acct WHERE id = $1";
    let bal = |rows: Vec<tokio_postgres::Row>| rows.first().map(|r| r.get::<_, i32>(0));
    let cached_four = bal(f.proxied.query(read, &[&4i32]).await.unwrap());
    let cached_seven = bal(f.proxied.query(read, &[&7i32]).await.unwrap());
    assert_eq!(bal(f.proxied.query(read, &[&7i32]).await.unwrap()), cached_seven);
    f.direct.batch_execute("UPDATE acct SET bal = bal + 100").await.unwrap();
    // Written by an integer string in simple Query: meets the binary parameter 4.
    f.proxied.batch_execute("UPDATE acct SET bal = bal + 1 WHERE id = '04'").await.unwrap();
    let direct_four = bal(f.direct.query(read, &[&4i32]).await.unwrap());
    assert_ne!(direct_four, cached_four);
    assert_eq!(bal(f.proxied.query(read, &[&4i32]).await.unwrap()), direct_four, "row 4 written");
    assert_eq!(bal(f.proxied.query(read, &[&7i32]).await.unwrap()), cached_seven, "row 7 not written");
    // Written by a parameter: the simple-protocol read of that row is fresh.
    let seven = "SELECT bal FROM acct WHERE id = 7";
    f.cache(seven).await;
    f.proxied.execute("UPDATE acct SET bal = $1 WHERE id = $2", &[&70i32, &7i32]).await.unwrap();
    f.assert_fresh(seven, "row 7 written by parameter").await;
    assert_eq!(bal(f.proxied.query(read, &[&7i32]).await.unwrap()), Some(70));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_keys_compare_exactly_and_collations_that_do_not_fall_back() {
    let f = Fixture::new().await;
    let a = "SELECT v FROM named WHERE name = 'a'";
    let cached_a = f.cache(a).await;
    f.write("UPDATE named SET v = v + 100", "UPDATE named SET v = v + 1 WHERE name = 'b'").await;
    f.assert_kept(a, &cached_a, "row 'b' is not row 'a'").await;
    f.proxied.batch_execute("UPDATE named SET v = 7 WHERE name = 'a'").await.unwrap();
    f.assert_fresh(a, "row 'a' written").await;
    // Case-insensitive collation: 'A' is 'a'.
    let ci = "SELECT v FROM ci_named WHERE name = 'a'";
    f.cache(ci).await;
    f.proxied.batch_execute("UPDATE ci_named SET v = 5 WHERE name = 'A'").await.unwrap();
    f.assert_fresh(ci, "'A' equals 'a' under a nondeterministic collation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_postgres_changes_on_the_writes_behalf_fall_back_to_the_table() {
    let f = Fixture::new().await;
    // A BEFORE trigger moves the updated row to another key.
    let moved = "SELECT v FROM moved WHERE id = 101";
    f.cache(moved).await;
    f.proxied.batch_execute("UPDATE moved SET v = 9 WHERE id = 1").await.unwrap();
    f.assert_fresh(moved, "the trigger moved row 1 to 101").await;
    // A self-referencing ON DELETE CASCADE deletes other rows of the same table.
    let leaf = "SELECT count(*) FROM tree WHERE id = 2";
    f.cache(leaf).await;
    f.proxied.batch_execute("DELETE FROM tree WHERE id = 1").await.unwrap();
    f.assert_fresh(leaf, "the cascade deleted row 2").await;
    // A cascade into another table, read by key there.
    let child = "SELECT count(*) FROM child WHERE id = 1";
    f.cache(child).await;
    f.proxied.batch_execute("DELETE FROM parent WHERE id = 1").await.unwrap();
    f.assert_fresh(child, "the cascade deleted child 1").await;
}

/// A session keeps what the catalog said of the table it writes (`session::catalog_memo`); DDL
/// made since — here by the same session — must reach its next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_made_after_a_sessions_writes_reaches_its_next_write() {
    let f = Fixture::new().await;
    f.proxied.batch_execute("UPDATE later SET v = 1 WHERE id = 1").await.unwrap();
    f.proxied
        .batch_execute("CREATE TRIGGER log_it AFTER UPDATE ON later FOR EACH ROW EXECUTE FUNCTION log_later()")
        .await
        .unwrap();
    let logged = "SELECT count(*) FROM later_log";
    let cached = f.cache(logged).await;
    // Cached indeed: a row logged around the proxy does not show.
    f.direct.batch_execute("INSERT INTO later_log VALUES (0)").await.unwrap();
    f.assert_kept(logged, &cached, "later_log was not written through pgcached").await;
    f.proxied.batch_execute("UPDATE later SET v = 9 WHERE id = 1").await.unwrap();
    f.assert_fresh(logged, "the new trigger logged the update").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_depends_on_its_driving_rows_and_on_the_other_tables_whole() {
    let f = Fixture::new().await;
    let join = "SELECT a.bal, n.v FROM acct a JOIN named n ON n.name = a.owner OR n.name = 'b' WHERE a.id = 1";
    let cached = f.cache(join).await;
    f.write("UPDATE acct SET bal = bal + 100", "UPDATE acct SET bal = bal + 1 WHERE id = 2").await;
    f.assert_kept(join, &cached, "acct row 2 is not the driving row").await;
    // The joined table is read whole: any row of it written reaches the join.
    f.proxied.batch_execute("UPDATE named SET v = 3 WHERE name = 'a'").await.unwrap();
    f.assert_fresh(join, "named written").await;
}
