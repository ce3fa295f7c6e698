//! Every divergence the protocol fuzzer (tests/common/fuzz) found between Postgres and
//! pgcached in session state — settings and placeholders, temporary tables, COPY, portals,
//! transactions, invalidation — shrunk, as a fixed scenario run both ways: each would fail
//! again if its bug came back. Divergences in what a statement name stands for are in
//! tests/statement_regressions.rs. New ones are pasted from the fuzzer's report (`shrunk:`).

mod common;

use common::fuzz::build::*;
use common::fuzz::{Setup, regression};

regression!(
    /// `RESET app.tenant` defines the placeholder (empty): `current_setting(…, true)::int` then
    /// fails as it does directly, on whichever server connection the next statement runs.
    reset_of_a_custom_setting_defines_it_empty,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![q("SELECT owner FROM acct WHERE id = 1; RESET app.tenant")])),
            step(0, send(vec![execute("", 0), sync()])),
            step(1, send(vec![parse("", "UPDATE doc SET body = body || '!'"), bind("", "", &[]), sync()])),
        ],
    }
);

regression!(
    /// An Execute during COPY FROM STDIN: Postgres ends the session with a FATAL, and so does
    /// pgcached — without an error of its own after it.
    protocol_violation_during_copy_ends_the_session_as_postgres_does,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![step(
            0,
            send(vec![parse("", "COPY item (acct_id, note) FROM STDIN"), bind("p1", "", &[]), execute("p1", 2), execute("p1", 0), sync()]),
        )],
    }
);

regression!(
    /// A trigger's write (audit) is invalidated with the write that fired it (the catalog's
    /// write closure; see `vocab::IMPLICIT_WRITES`).
    trigger_write_is_invalidated,
    Setup::session(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![q("SELECT what FROM audit ORDER BY n")])),
            step(0, send(vec![parse("", "SELECT set_config('app.tenant', '1', false)"), bind("", "", &[]), parse("s1", "INSERT INTO acct VALUES (5, 'eve', 500) ON CONFLICT DO NOTHING"), bind("", "s1", &[]), execute("", 0), parse("s2", "COMMIT"), bind("p1", "s2", &[]), bind("", "", &[]), parse("", "INSERT INTO item (acct_id, note) VALUES ($1, $2)"), bind("", "", &[Some("5"), Some("p5")]), execute("", 0), sync()])),
            step(1, send(vec![q("SELECT what FROM audit ORDER BY n")])),
        ],
    }
);

regression!(
    /// After a client vanished, the next one on its server connection Executes the unnamed
    /// portal it never bound.
    execute_of_an_unbound_portal_after_a_vanished_client,
    Setup::session(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("", "SELECT pg_notify('ch', 'fn')"), bind("", "", &[]), parse("", "SELECT set_tenant(2)"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(2, vanish()),
            step(2, send(vec![execute("", 0), parse("", "DEALLOCATE ALL"), bind("p1", "", &[]), execute("p1", 0), sync(), parse("s1", "UPDATE doc SET body = body || '!'"), bind("", "s1", &[]), execute("", 0), parse("", "SAVEPOINT b"), bind("", "", &[]), execute("", 0), parse("s2", "SELECT date '2024-03-01', 1.5::float8"), describe(b'S', "s2"), bind("", "s2", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A client that left in session mode after defining a custom setting through a function:
    /// the next client must not get a connection where it is defined.
    custom_setting_of_a_client_that_left_in_session_mode,
    Setup::session(),
Scenario {
    clients: 3,
    steps: vec![
        step(1, send(vec![bind("", "s1", &[Some("2")]), execute("", 0), parse("s1", "SELECT pg_notify('ch', 'fn')"), bind("", "s1", &[]), execute("", 0), close(b'S', "s1"), sync(), parse("", "RELEASE SAVEPOINT a"), bind("p1", "", &[]), execute("p1", 0), sync(), parse("s2", "SELECT id, owner, balance FROM acct ORDER BY id"), bind("p1", "s2", &[]), execute("p1", 2), execute("p1", 0), parse("s2", "SELECT set_config('app.tenant', '1', false)"), bind("p1", "s2", &[]), describe(b'P', "p1"), execute("p1", 0), parse("", "COPY item (acct_id, note) FROM STDIN"), bind("p1", "", &[]), execute("p1", 0), copy_data("x\ty\n"), copy_fail("fuzz says no"), sync()])),
        step(0, send(vec![parse("", "COPY item (acct_id, note) FROM STDIN"), bind("", "", &[]), execute("", 0), copy_data("x\ty\n"), copy_done(), parse("", "SELECT generate_series(1, 5) AS n"), bind("p1", "", &[]), execute("p1", 0), parse("s2", "BEGIN"), bind("", "s2", &[]), execute("", 0), sync()])),
        step(2, send(vec![parse("", "SELECT set_tenant(2)"), describe(b'S', ""), bind("", "", &[]), execute("", 0), flush(), close(b'S', ""), parse("", "SELECT pg_try_advisory_lock(7)"), bind("", "", &[]), execute("", 0), parse("s1", "COPY item (acct_id, note) FROM STDIN"), bind("", "s1", &[]), execute("", 0), copy_data("9\tno fk\n"), copy_done(), sync(), parse("", "SELECT pg_notify('ch', 'fn')"), describe(b'S', ""), bind("", "", &[]), execute("", 0), parse("", "SELECT set_tenant(2)"), bind("p1", "", &[]), execute("p1", 2), execute("p1", 0), parse("", "SAVEPOINT a"), bind("", "", &[]), execute("", 0), sync()])),
        step(1, send(vec![parse("", "SELECT id, acct_id, note FROM item ORDER BY id"), bind("", "", &[]), execute("", 0), sync()])),
        step(1, send(vec![parse("", "SET search_path = other, public"), bind("p1", "", &[]), describe(b'P', "p1"), execute("p1", 0), bind("", "s1", &[]), execute("", 0), sync(), parse("s2", "SELECT current_setting('app.tenant', true)"), describe(b'S', "s2"), bind("p1", "s2", &[]), execute("p1", 0), close(b'P', "p1"), sync(), parse("s1", "SELECT pg_try_advisory_xact_lock(8)"), describe(b'S', "s1"), bind("", "s1", &[]), execute("", 0), flush(), parse("", "SELECT set_tenant(2)"), bind("", "", &[]), execute("", 0), sync()])),
        step(1, terminate(vec![])),
        step(1, send(vec![parse("s1", "SELECT balance FROM acct WHERE id = 2"), bind("", "s1", &[]), execute("", 0), flush(), sync(), parse("", "ROLLBACK"), describe(b'S', ""), bind("p1", "", &[]), execute("p1", 0), flush(), sync()])),
        step(1, send(vec![q("INSERT INTO doc VALUES (9, 2, 't2 new') ON CONFLICT (id) DO UPDATE SET body = 'upsert'")])),
    ],
}
);

regression!(
    /// A function sets a custom setting at session level (`set_config(…, false)` in its body,
    /// the usual multi-tenant helper): its value is not the proxy's to see, so under
    /// transaction pooling the client keeps its server connection, and its next transaction
    /// reads the setting, as directly. Found by the long run, seed 1030.
    a_setting_set_by_a_function_stays_with_its_client,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("", "SELECT set_tenant(2)"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![q("BEGIN")])),
            step(2, send(vec![parse("", "SELECT current_setting('app.tenant', true)"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(2, send(vec![q("SELECT count(*) FROM doc")])),
            step(0, send(vec![q("SELECT current_setting('app.tenant', true)"), q("COMMIT")])),
        ],
    }
);

regression!(
    /// A `SET app.tenant` an earlier error skipped defines nothing: the client's next
    /// connection is not given the setting (empty) either, so a policy reading
    /// `current_setting('app.tenant', true)::int` sees NULL, as directly. Found by the long
    /// run, seed 2015.
    a_skipped_set_defines_no_custom_setting,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "SELEC 1"), parse("", "SET app.tenant = '1'"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![q("SELECT id, body FROM doc ORDER BY id")])),
            step(0, send(vec![q("SELECT current_setting('app.tenant', true)")])),
        ],
    }
);

regression!(
    /// A Bind the proxy answers itself (wrong parameter count, 08P01) after a Parse under a
    /// taken name that fails earlier in the same segment: skipped, as Postgres skips it, and the
    /// Query the proxy sent to fail the transaction is skipped too — the session waited for its
    /// answer forever. Found by the long run, seed 2015.
    a_local_error_skipped_by_an_earlier_one_in_the_pipeline,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
        step(2, send(vec![parse("s1", "COMMIT"), bind("", "s1", &[]), parse("s2", "SELECT pg_advisory_lock(7)"), execute("p1", 0), close(b'P', "p1"), parse("", "UPDATE other.acct SET balance = balance + 1 WHERE id = 1"), bind("", "", &[]), execute("", 0), sync(), parse("s2", "INSERT INTO item (acct_id, note) VALUES ($1, $2)"), describe(b'S', "s2"), bind("p1", "s2", &[Some("9"), Some("no fk")]), describe(b'P', "p1"), execute("p1", 0), parse("", "SAVEPOINT a"), bind("", "", &[]), execute("", 0), sync()])),
        step(2, send(vec![close(b'S', "s1"), parse("s1", "SET LOCAL app.tenant = '2'"), bind("", "s1", &[]), execute("", 0), parse("", "SELECT date '2024-03-01', 1.5::float8"), bind("p1", "", &[]), execute("p1", 2), execute("p1", 0), sync(), parse("s1", "COMMIT"), bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// `DISCARD ALL` and then `CREATE TEMP TABLE` in one pipeline: the temporary table pins the
    /// client to its server connection, but the DISCARD's completion (which arrives after the
    /// CREATE was sent) cleared every pin, so the connection went back to the pool with the
    /// table on it and the next client to get it saw "relation already exists" (42P07) — one
    /// client's state in another's session. Found by the fuzzer (transaction pooling, seed
    /// 7177).
    seed_7177_a_temp_table_created_after_a_discard_all_in_the_pipeline_keeps_its_pin,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("", "DISCARD ALL"), bind("", "", &[]), execute("", 0), bind("", "", &[]), parse("", "CREATE TEMP TABLE tmp (x int)"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![parse("", "CREATE TEMP TABLE tmp (x int)"), bind("p1", "", &[]), execute("p1", 0), sync()])),
        ],
    }
);

regression!(
    /// START TRANSACTION READ ONLY and BEGIN in one extended-protocol pipeline: Postgres warns
    /// (25001) on the BEGIN. Found by the fuzzer (transaction pooling, seed 52080).
    seed_52080_start_transaction_then_begin_in_one_pipeline,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "START TRANSACTION READ ONLY"), bind("", "", &[]), execute("", 0), parse("", "BEGIN"), bind("", "", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// `SET LOCAL app.tenant` outside a block (a warning, no value) still defines the custom
    /// setting: for that client `current_setting('app.tenant', true)` is '' where another
    /// client's is NULL. Both reads had the same cache key, so the second client got the
    /// first one's cached ''. Found by the fuzzer (transaction pooling, seed 61228).
    seed_61228_a_custom_setting_defined_without_a_value_is_in_the_cache_key,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s2", "COMMIT"), parse("s1", "SET LOCAL app.tenant = '2'"), bind("", "s1", &[]), execute("", 0), sync()])),
            step(1, send(vec![q("SELECT current_setting('app.tenant', true)")])),
            step(2, send(vec![q("SELECT current_setting('app.tenant', true)")])),
        ],
    }
);

regression!(
    /// A Bind the proxy refuses itself (the wrong number of parameters) in a block that set
    /// `application_name`: Postgres sends the error, then the ParameterStatus of the rolled-back
    /// setting. pgcached failed the server's block first and sent its error after that
    /// ParameterStatus. Found by the fuzzer (transaction pooling, seed 73014).
    seed_73014_a_refused_bind_errs_before_the_rolled_back_setting_is_reported,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("s1", "BEGIN"), bind("", "s1", &[]), parse("", "START TRANSACTION READ ONLY"), execute("", 0), parse("", "SET application_name = 'fz_app'"), bind("", "", &[]), execute("", 0), sync(), bind("", "s1", &[Some("5")]), sync()])),
        ],
    }
);

regression!(
    /// `RESET app.tenant` defines the custom setting, empty, for its client: its next statement,
    /// on whichever server connection, must see '' (here `''::int` fails 22P02 in the row-level
    /// security policy), not NULL (which fails the policy, 42501). Found by the fuzzer
    /// (transaction pooling, seed 73034).
    seed_73034_a_reset_custom_setting_is_defined_on_the_next_connection,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "RESET app.tenant"), bind("", "", &[]), execute("", 0), sync()])),
            step(1, send(vec![execute("", 0), parse("", "RESET app.tenant"), bind("p1", "", &[]), sync()])),
            step(0, send(vec![parse("s1", "INSERT INTO doc VALUES (9, 2, 't2 new') ON CONFLICT (id) DO UPDATE SET body = 'upsert'"), bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// During COPY FROM STDIN the client sends a Bind and more, then Terminate: Postgres answers
    /// the Bind with 08P01 and a FATAL before it reads the Terminate. pgcached closed at the
    /// Terminate (a copy waits for data that never comes) and the client got neither. Found by
    /// the fuzzer (transaction pooling, seed 73059).
    seed_73059_messages_during_copy_in_then_terminate_get_their_errors,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, terminate(vec![parse("s1", "COPY item (acct_id, note) FROM STDIN"), describe(b'P', ""), copy_data("x\ty\n"), copy_done(), flush(), bind("p1", "s1", &[]), execute("p1", 0), sync(), bind("p1", "s1", &[]), execute("p1", 0), parse("", "SELECT id, owner, balance FROM acct ORDER BY id"), bind("", "", &[]), describe(b'P', ""), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A failed block ended by `COMMIT; SET search_path = …` in one Query: the COMMIT is a
    /// rollback, and the SET runs after it in a transaction of its own and stays. The proxy
    /// kept the block's failure past its end and dropped the SET with it: on the next server
    /// connection the COPY read `acct` through the default search_path (wrong rows). Found by
    /// the fuzzer (transaction pooling, seed 110384).
    seed_110384_a_set_after_a_failed_blocks_commit_in_one_query_stays,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![q("UPDATE acct SET balance = balance + 1 WHERE id = 1")])),
            step(1, send(vec![parse("", "SELECT current_setting('app.tenant', true)"), bind("", "", &[]), parse("", "UPDATE acct SET balance = balance + $1 WHERE id = $2"), bind("", "", &[Some("100"), Some("1")]), execute("", 0), sync()])),
            step(0, send(vec![parse("s2", "BEGIN"), bind("p1", "s2", &[]), execute("p1", 0), execute("p1", 0), sync()])),
            step(0, send(vec![q("COMMIT; SET search_path = other, public")])),
            step(0, send(vec![execute("", 0), parse("s1", "RELEASE SAVEPOINT a"), sync()])),
            step(0, send(vec![parse("", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), bind("", "", &[]), describe(b'P', ""), execute("", 0), sync(), parse("s1", "ROLLBACK"), describe(b'S', "s1"), bind("", "s1", &[]), execute("", 0), parse("s1", "COMMIT"), bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A Terminate while the server is in COPY FROM STDIN and nothing else is behind it:
    /// Postgres reads it as a stray copy message and answers 08P01 and a FATAL before it
    /// closes; pgcached closed at once, and a client reading on got neither. Found by the fuzzer
    /// (transaction pooling, seed 170355).
    seed_170355_a_terminate_during_copy_in_gets_the_servers_answers,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), bind("", "", &[]), parse("s1", "COPY item (acct_id, note) FROM STDIN"), parse("s1", "BEGIN")])),
            step(0, terminate(vec![sync(), parse("", "UPDATE acct SET balance = balance + $1 WHERE id = $2"), bind("", "", &[Some("-5"), Some("3")]), parse("", "SELECT pg_try_advisory_xact_lock(8)"), bind("", "s1", &[]), execute("", 0)])),
        ],
    }
);
