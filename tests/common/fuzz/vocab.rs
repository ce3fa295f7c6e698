//! What the fuzzer says: a schema with the things that make invalidation and session state hard
//! (a cascade, a trigger, a view, a second schema of the same table names, row-level security
//! keyed on a setting a function sets) and the statements it sends — reads, writes, transaction
//! control with savepoints, SETs in every form, errors, everything that pins a server connection,
//! COPY. Only deterministic statements: every answer must be the same directly and through
//! pgcached, so an ordered read, a fixed clock-free value.

/// Run as the superuser in the template database, once per cluster. Clients log in as `fz`, who
/// owns nothing, so the row-level security of `doc` applies to them; `lock_timeout` (a role
/// setting, the same directly and through pgcached) turns a lock wait on a row another client
/// holds into an error instead of a hang of the lock-step run.
pub const SCHEMA: &str = r#"
CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL);
INSERT INTO acct VALUES (1, 'ann', 100), (2, 'bob', 200), (3, 'cy', 300), (4, 'di', 400);
CREATE TABLE item (id serial PRIMARY KEY, acct_id int NOT NULL REFERENCES acct (id) ON DELETE CASCADE, note text);
INSERT INTO item (acct_id, note) VALUES (1, 'a1'), (2, 'b1'), (4, 'd1');
CREATE TABLE audit (n serial PRIMARY KEY, what text);
CREATE FUNCTION audit_item() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES (TG_OP || ' ' || NEW.note); RETURN NEW; END$$;
CREATE TRIGGER item_audit AFTER INSERT ON item FOR EACH ROW EXECUTE FUNCTION audit_item();
CREATE VIEW rich AS SELECT id, owner FROM acct WHERE balance >= 300;
CREATE SCHEMA other;
CREATE TABLE other.acct (id int PRIMARY KEY, owner text, balance int);
INSERT INTO other.acct VALUES (1, 'zed', 1), (2, 'yan', 2);
CREATE TABLE doc (id int PRIMARY KEY, tenant int NOT NULL, body text);
INSERT INTO doc VALUES (1, 1, 't1 doc'), (2, 2, 't2 doc'), (3, 1, 't1 more');
ALTER TABLE doc ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_tenant ON doc USING (tenant = current_setting('app.tenant', true)::int);
CREATE FUNCTION set_tenant(t int) RETURNS text LANGUAGE sql AS
  $$ SELECT set_config('app.tenant', t::text, false) $$;
GRANT USAGE ON SCHEMA other TO fz;
GRANT ALL ON ALL TABLES IN SCHEMA public, other TO fz;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO fz;
"#;

/// Run once per cluster, as the superuser, before the template database is made.
pub const ROLE: &str = "CREATE ROLE fz LOGIN; ALTER ROLE fz SET lock_timeout = '200ms';";

/// What the run reads back from each database at the end: the data must be the same.
pub const FINAL_STATE: &[&str] = &[
    "SELECT id, owner, balance FROM acct ORDER BY id",
    "SELECT id, acct_id, note FROM item ORDER BY id",
    "SELECT n, what FROM audit ORDER BY n",
    "SELECT id, owner, balance FROM other.acct ORDER BY id",
    "SELECT id, tenant, body FROM doc ORDER BY id",
];

/// A statement the fuzzer may send.
#[derive(Clone, Copy, Debug)]
pub struct Stmt {
    pub sql: &'static str,
    /// Parameter sets for the extended protocol (empty: the statement has no `$n`).
    pub params: &'static [&'static [&'static str]],
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Tx,
    Set,
    Error,
    /// Leaves session state a pooled connection must not hand on (pgcached pins the client).
    Pin,
    /// Uses what a pinning statement left (or fails the same way without it).
    Session,
    /// COPY … FROM STDIN: data follows.
    CopyIn,
    CopyOut,
}

const fn s(sql: &'static str, kind: Kind) -> Stmt {
    Stmt { sql, params: &[], kind }
}

const fn p(sql: &'static str, params: &'static [&'static [&'static str]], kind: Kind) -> Stmt {
    Stmt { sql, params, kind }
}

use Kind::*;

pub const STATEMENTS: &[Stmt] = &[
    // Reads: each one a cache candidate.
    s("SELECT id, owner, balance FROM acct ORDER BY id", Read),
    s("SELECT balance FROM acct WHERE id = 2", Read),
    p("SELECT balance FROM acct WHERE id = $1", &[&["1"], &["2"], &["5"]], Read),
    s("SELECT count(*), sum(balance) FROM acct", Read),
    s("SELECT id, acct_id, note FROM item ORDER BY id", Read),
    p("SELECT count(*) FROM item WHERE acct_id = $1", &[&["1"], &["5"]], Read),
    s("SELECT what FROM audit ORDER BY n", Read),
    s("SELECT id, owner FROM rich ORDER BY id", Read),
    s("SELECT id, body FROM doc ORDER BY id", Read),
    s("SELECT current_setting('app.tenant', true)", Read),
    s("SELECT owner FROM acct WHERE id = 1", Read),
    s("SELECT date '2024-03-01', 1.5::float8", Read),
    s("SHOW search_path", Read),
    s("SHOW application_name", Read),
    s("SELECT generate_series(1, 5) AS n", Read),
    s("SELECT x FROM tmp ORDER BY x", Session),
    // Writes: cascades, triggers, the view's table, the other schema, RLS.
    s("UPDATE acct SET balance = balance + 1 WHERE id = 1", Write),
    p("UPDATE acct SET balance = balance + $1 WHERE id = $2", &[&["10", "2"], &["-5", "3"], &["100", "1"]], Write),
    s("INSERT INTO item (acct_id, note) VALUES (2, 'fz')", Write),
    p("INSERT INTO item (acct_id, note) VALUES ($1, $2)", &[&["1", "p1"], &["5", "p5"], &["9", "no fk"]], Write),
    s("INSERT INTO acct VALUES (5, 'eve', 500) ON CONFLICT DO NOTHING", Write),
    s("DELETE FROM acct WHERE id = 5", Write),
    s("INSERT INTO acct VALUES (1, 'dup', 0)", Write),
    s("UPDATE other.acct SET balance = balance + 1 WHERE id = 1", Write),
    s("UPDATE doc SET body = body || '!'", Write),
    s("INSERT INTO doc VALUES (9, 2, 't2 new') ON CONFLICT (id) DO UPDATE SET body = 'upsert'", Write),
    s("INSERT INTO tmp VALUES (1)", Session),
    // Transactions and savepoints.
    s("BEGIN", Tx),
    s("BEGIN", Tx),
    s("COMMIT", Tx),
    s("COMMIT", Tx),
    s("ROLLBACK", Tx),
    s("SAVEPOINT a", Tx),
    s("ROLLBACK TO SAVEPOINT a", Tx),
    s("RELEASE SAVEPOINT a", Tx),
    s("SAVEPOINT b", Tx),
    s("ROLLBACK TO b", Tx),
    s("BEGIN ISOLATION LEVEL REPEATABLE READ", Tx),
    s("START TRANSACTION READ ONLY", Tx),
    // Settings, by every road.
    s("SET search_path = other, public", Set),
    s("SET search_path = public", Set),
    s("SET LOCAL search_path = other, public", Set),
    s("SET app.tenant = '1'", Set),
    s("SET LOCAL app.tenant = '2'", Set),
    s("SELECT set_config('app.tenant', '1', false)", Set),
    p(
        "SELECT set_config($1, $2, $3::bool)",
        &[
            &["app.tenant", "2", "false"],
            &["search_path", "other, public", "true"],
            &["application_name", "fz_bound", "false"],
        ],
        Set,
    ),
    s("SELECT set_tenant(2)", Set),
    s("RESET ALL", Set),
    s("RESET search_path", Set),
    s("RESET app.tenant", Set),
    s("DISCARD ALL", Set),
    s("SET application_name = 'fz_app'", Set),
    s("SET DateStyle = 'SQL, DMY'", Set),
    // Errors.
    s("SELECT 1/0", Error),
    s("SELEC 1", Error),
    s("SELECT * FROM nope", Error),
    s("SELECT current_setting('app.nope')", Error),
    // Session state that pins.
    s("CREATE TEMP TABLE tmp (x int)", Pin),
    s("PREPARE pq AS SELECT balance FROM acct WHERE id = 1", Pin),
    s("EXECUTE pq", Session),
    s("DEALLOCATE pq", Session),
    s("DEALLOCATE ALL", Session),
    s("LISTEN ch", Pin),
    s("UNLISTEN *", Session),
    s("NOTIFY ch, 'hi'", Write),
    s("SELECT pg_notify('ch', 'fn')", Write),
    s("SELECT pg_advisory_lock(7)", Pin),
    s("SELECT pg_try_advisory_lock(7)", Pin),
    s("SELECT pg_advisory_unlock(7)", Session),
    s("SELECT pg_try_advisory_xact_lock(8)", Read),
    s("DECLARE cur CURSOR WITH HOLD FOR SELECT id FROM acct ORDER BY id", Pin),
    s("FETCH 2 FROM cur", Session),
    s("CLOSE cur", Session),
    s("DECLARE tcur CURSOR FOR SELECT id FROM acct ORDER BY id", Session),
    // COPY both ways.
    s("COPY item (acct_id, note) FROM STDIN", CopyIn),
    s("COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT", CopyOut),
];

/// Statements that see (or make) writes Postgres does on the client's behalf — the trigger's
/// audit rows, the cascade from `acct` to `item` — invalidated through the catalog's write
/// closure. In the vocabulary unless `FUZZ_IMPLICIT_WRITES=0`.
pub const IMPLICIT_WRITES: &[&str] = &["SELECT what FROM audit ORDER BY n", "DELETE FROM acct WHERE id = 5"];

/// What a COPY FROM STDIN gets: good rows, a row that breaks a constraint, garbage.
pub const COPY_DATA: &[&str] = &["3\tcopied\n", "1\tc1\n2\tc2\n", "9\tno fk\n", "x\ty\n"];

/// Long enough to be cancelled.
pub const SLOW: &str = "SELECT pg_sleep(5)";
