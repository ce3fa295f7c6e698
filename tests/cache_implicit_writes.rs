//! Writes Postgres makes on a writer's behalf invalidate the cached answers they change: foreign
//! key actions, triggers (and what their functions write), rules, writes through views,
//! partitions — and what writes no shared table flushes nothing. Each case: a read cached
//! through pgcached, a write through pgcached, the read again, compared with Postgres directly.

mod common;

use common::{PgCluster, Proxy, connect, simple_one};

const SCHEMA: &str = "
    CREATE TABLE parent (id int PRIMARY KEY);
    CREATE TABLE child_cascade (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE);
    CREATE TABLE child_null (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE SET NULL);
    CREATE TABLE child_upd (id int PRIMARY KEY, pid int REFERENCES parent ON UPDATE CASCADE);
    INSERT INTO parent VALUES (1), (2), (3);
    INSERT INTO child_cascade VALUES (1, 1), (2, 2);
    INSERT INTO child_null VALUES (1, 1), (2, 2);
    INSERT INTO child_upd VALUES (1, 3);

    CREATE TABLE orders (id int PRIMARY KEY);
    CREATE TABLE audit (at_id int);
    CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END $$;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audit_it();

    CREATE TABLE logged (id int);
    CREATE TABLE logged_log (id int);
    CREATE RULE log_it AS ON INSERT TO logged DO ALSO INSERT INTO logged_log VALUES (NEW.id);

    CREATE TABLE base (id int);
    CREATE VIEW base_view AS SELECT id FROM base;

    CREATE TABLE hidden_base (id int);
    CREATE VIEW instead_view AS SELECT 0 AS id;
    CREATE FUNCTION instead_it() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO hidden_base VALUES (NEW.id); RETURN NEW; END $$;
    CREATE TRIGGER instead_ins INSTEAD OF INSERT ON instead_view FOR EACH ROW EXECUTE FUNCTION instead_it();

    CREATE TABLE measures (id int) PARTITION BY RANGE (id);
    CREATE TABLE measures_low PARTITION OF measures FOR VALUES FROM (0) TO (100);

    CREATE TABLE opaque_src (id int);
    CREATE TABLE opaque_dst (id int);
    CREATE FUNCTION write_dst(i int) RETURNS void LANGUAGE sql AS 'INSERT INTO opaque_dst VALUES (i)';
    CREATE FUNCTION opaque_it() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM write_dst(NEW.id); RETURN NEW; END $$;
    CREATE TRIGGER opaque_ins AFTER INSERT ON opaque_src FOR EACH ROW EXECUTE FUNCTION opaque_it();

    CREATE TABLE bystander (v text);
    INSERT INTO bystander VALUES ('before');
    CREATE SEQUENCE order_seq;
";

struct Case {
    /// What the write implicitly changes, read (and cached) before it.
    read: &'static str,
    write: &'static str,
}

const CASES: &[Case] = &[
    Case { read: "SELECT count(*) FROM child_cascade", write: "DELETE FROM parent WHERE id = 1" },
    Case { read: "SELECT count(*) FROM child_null WHERE pid IS NULL", write: "DELETE FROM parent WHERE id = 2" },
    Case { read: "SELECT pid FROM child_upd", write: "UPDATE parent SET id = 30 WHERE id = 3" },
    Case { read: "SELECT count(*) FROM audit", write: "INSERT INTO orders VALUES (1)" },
    Case { read: "SELECT count(*) FROM logged_log", write: "INSERT INTO logged VALUES (1)" },
    Case { read: "SELECT count(*) FROM base", write: "INSERT INTO base_view VALUES (1)" },
    Case { read: "SELECT count(*) FROM hidden_base", write: "INSERT INTO instead_view VALUES (1)" },
    Case { read: "SELECT count(*) FROM measures_low", write: "INSERT INTO measures VALUES (5)" },
    Case { read: "SELECT count(*) FROM measures", write: "INSERT INTO measures_low VALUES (6)" },
    Case { read: "SELECT count(*) FROM opaque_dst", write: "INSERT INTO opaque_src VALUES (1)" },
    Case { read: "SELECT count(*) FROM child_upd", write: "TRUNCATE parent CASCADE" },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_implicit_write_invalidates_what_it_changes() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let direct = connect(&pg.url("postgres", "app")).await;
    for (i, case) in CASES.iter().enumerate() {
        let before = simple_one(&c, case.read).await;
        assert_eq!(simple_one(&c, case.read).await, before, "case {i}: cached");
        // Autocommit, and inside a transaction (invalidated at COMMIT).
        if i % 2 == 0 {
            c.batch_execute(case.write).await.unwrap();
        } else {
            c.batch_execute(&format!("BEGIN; {}; COMMIT", case.write)).await.unwrap();
        }
        let want = simple_one(&direct, case.read).await;
        assert_ne!(want, before, "case {i}: the write changes what `{}` reads", case.read);
        assert_eq!(simple_one(&c, case.read).await, want, "case {i}: `{}` then `{}`", case.write, case.read);
    }
}

/// Statements that write no shared table leave other cached answers alone: a sequence's
/// `nextval` (Hibernate calls it for every insert), a temporary table, a notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_writes_no_shared_table_flushes_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let read = "SELECT v FROM bystander";
    assert_eq!(simple_one(&c, read).await.as_deref(), Some("before"));
    // Changed around the proxy: a cached answer still says 'before'.
    pg.psql_db("app", "UPDATE bystander SET v = 'after'");
    for statement in [
        "SELECT nextval('order_seq')",
        "SELECT setval('order_seq', 10)",
        "SELECT pg_notify('ch', 'x')",
        "CREATE TEMP TABLE scratch (x int)",
    ] {
        c.batch_execute(statement).await.unwrap();
        let other = connect(&proxy.url("postgres", "app")).await;
        assert_eq!(simple_one(&other, read).await.as_deref(), Some("before"), "after `{statement}`: still cached");
    }
    // A write that may change anything (a user function) still flushes.
    c.batch_execute("SELECT write_dst(1)").await.unwrap();
    let other = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(simple_one(&other, read).await.as_deref(), Some("after"));
}
