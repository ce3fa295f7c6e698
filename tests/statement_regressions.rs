//! Every divergence the protocol fuzzer (tests/common/fuzz) found between Postgres and
//! pgcached in what a client's statement names stand for — Parse under taken names, Close,
//! `DISCARD ALL` / `DEALLOCATE ALL` in pipelines, the copies of renamed statements on each
//! server connection, their parameter counts and result types — shrunk, as a fixed scenario
//! run both ways: each would fail again if its bug came back. New ones are pasted from the
//! fuzzer's report (`shrunk:`).

mod common;

use common::fuzz::build::*;
use common::fuzz::{Setup, regression};

regression!(
    /// Bind to a statement with the wrong number of parameters after a Parse under a taken name
    /// failed.
    wrong_parameter_count_after_taken_name,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s2", "COMMIT"), parse("s2", "SET app.tenant = '1'"), close(b'S', "s2"), sync()])),
            step(1, send(vec![parse("", "COMMIT"), bind("p1", "", &[]), bind("", "s2", &[Some("-5"), Some("3")]), sync()])),
        ],
    }
);

regression!(
    /// A named statement that pins its client when bound (a temporary table): the Bind still
    /// reaches the statement under its server name.
    a_statement_that_pins_is_still_found,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "CREATE TEMP TABLE tmp (x int)"), bind("", "s2", &[]), sync()])),
            step(2, send(vec![parse("s2", "LISTEN ch"), bind("", "s2", &[]), sync()])),
            step(0, send(vec![parse("s1", "SELECT pg_advisory_lock(7)"), bind("p1", "s1", &[]), sync()])),
        ],
    }
);

regression!(
    /// A Parse in a pipeline without Sync, a Query, then a Parse of the same name.
    parse_without_sync_then_query,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s2", "SELECT id, owner, balance FROM acct ORDER BY id")])),
            step(1, send(vec![q("CREATE TEMP TABLE tmp (x int)")])),
            step(1, send(vec![parse("s2", "SELECT id, body FROM doc ORDER BY id"), sync()])),
        ],
    }
);

regression!(
    /// A Parse and a Close of one name skipped after an error: the name stays free.
    parse_and_close_skipped_after_an_error,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![execute("p1", 0), parse("s2", "UPDATE acct SET balance = balance + $1 WHERE id = $2"), close(b'S', "s2"), sync()])),
            step(2, send(vec![parse("s2", "SELECT id, body FROM doc ORDER BY id"), sync()])),
            step(2, send(vec![execute("", 0), parse("s1", "START TRANSACTION READ ONLY"), close(b'S', "s1"), sync(), bind("p1", "s1", &[]), sync()])),
        ],
    }
);

regression!(
    /// Two Parses under taken names in one segment: the error names the first.
    two_taken_names_in_one_segment,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "SELECT id, acct_id, note FROM item ORDER BY id"), parse("", "SELECT set_tenant(2)"), bind("p1", "", &[]), bind("", "", &[]), parse("s1", "BEGIN ISOLATION LEVEL REPEATABLE READ"), sync()])),
            step(0, send(vec![bind("", "s1", &[]), parse("s2", "RESET app.tenant"), parse("s1", "SHOW application_name"), bind("p1", "s1", &[]), describe(b'P', "p1"), execute("p1", 0), sync()])),
        ],
    }
);

regression!(
    /// Named statements parsed without Sync, then used in the next pipeline with a temporary
    /// table created on the way (the client pins mid-pipeline).
    statements_parsed_before_a_pin,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("s1", "SELECT current_setting('app.tenant', true)")])),
            step(2, send(vec![parse("", "SELECT id, body FROM doc ORDER BY id"), bind("", "", &[]), parse("s2", "SET application_name = 'fz_app'"), sync()])),
            step(2, send(vec![bind("", "", &[]), parse("s2", "INSERT INTO item (acct_id, note) VALUES ($1, $2)"), parse("s1", "SELECT id, owner, balance FROM acct ORDER BY id"), bind("", "", &[]), execute("", 0), flush(), parse("", "CREATE TEMP TABLE tmp (x int)"), bind("p1", "", &[]), describe(b'P', "p1"), execute("p1", 0), close(b'P', "p1"), flush(), sync()])),
        ],
    }
);

regression!(
    /// A Bind with the wrong number of parameters to a renamed statement inside a transaction
    /// another statement began on a connection where a placeholder was defined.
    wrong_parameter_count_inside_a_transaction,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "SAVEPOINT a"), sync()])),
            step(1, send(vec![q("SELECT owner FROM acct WHERE id = 1; RESET app.tenant")])),
            step(0, send(vec![parse("", "BEGIN"), bind("", "", &[]), execute("", 0)])),
            step(0, send(vec![execute("", 0), sync()])),
            step(0, send(vec![bind("", "s2", &[Some("10"), Some("2")]), sync(), parse("", "SET application_name = 'fz_app'"), bind("", "", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A Describe of a renamed statement that returns no rows, in a failed transaction, on a
    /// connection that does not hold it: Postgres describes it all the same.
    describe_of_a_no_data_statement_in_a_failed_transaction,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "SET application_name = 'fz_app'"), sync()])),
            step(1, send(vec![q("SELECT owner FROM acct WHERE id = 1; RESET app.tenant")])),
            step(0, send(vec![q("BEGIN; SELECT 1/0")])),
            step(0, send(vec![describe(b'S', "s2"), bind("", "s2", &[]), sync(), q("ROLLBACK")])),
        ],
    }
);

regression!(
    /// After `DEALLOCATE ALL` earlier in the same pipeline, a Bind, Describe and Close of a name
    /// the client had see it gone, as Postgres does; a Parse in the next pipeline, sent before
    /// the first is answered, finds the name free.
    statements_dropped_earlier_in_the_pipeline_are_gone,
    Setup::transaction(),
    Scenario {
        clients: 2,
        steps: vec![
            step(0, send(vec![parse("s1", "SELECT id FROM acct ORDER BY id"), parse("s2", "SELECT 1"), sync()])),
            step(0, send(vec![q("DEALLOCATE ALL"), parse("s1", "SELECT 2"), bind("", "s1", &[]), execute("", 0), sync()])),
            step(0, send(vec![parse("", "DEALLOCATE ALL"), bind("", "", &[]), execute("", 0), describe(b'S', "s1"), sync()])),
            step(0, send(vec![parse("s2", "SELECT 3"), bind("", "s2", &[]), execute("", 0), close(b'S', "s1"), sync()])),
            step(0, send(vec![bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// `DISCARD ALL` inside a transaction block fails: the Parse after it is skipped, and the
    /// name still stands for the statement it had.
    a_failed_discard_all_keeps_the_statements,
    Setup::transaction(),
    Scenario {
        clients: 2,
        steps: vec![
            step(0, send(vec![parse("s1", "SELECT id FROM acct ORDER BY id"), sync()])),
            step(0, send(vec![q("BEGIN")])),
            step(0, send(vec![parse("", "DISCARD ALL"), bind("", "", &[]), execute("", 0), parse("s1", "SELECT 2"), sync()])),
            step(0, send(vec![q("ROLLBACK")])),
            step(0, send(vec![bind("", "s1", &[]), execute("", 0), sync()])),
            step(1, send(vec![parse("s1", "SELECT 5"), bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// `DISCARD ALL` run by Execute, then a Parse of a name the client had, in the same pipeline
    /// before any Sync: the name is free again (the proxy learns of the DISCARD ALL only from
    /// its CommandComplete, so it notes it when sent). Found by the long run, seed 1022.
    parse_after_discard_all_in_the_same_pipeline,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "DEALLOCATE pq"), execute("p1", 0), sync()])),
            step(0, send(vec![parse("", "DISCARD ALL"), bind("", "", &[]), execute("", 0), parse("s2", "SELECT set_tenant(2)"), execute("p1", 0), sync()])),
        ],
    }
);

regression!(
    /// In a failed transaction, a Bind of a statement this connection lacks sends a Parse that
    /// fails (25P02); a Bind in the next segment, sent before that answer came, must not take
    /// the statement for prepared (26000 where Postgres says 25P02). Found by the long run,
    /// seed 1040.
    bind_in_a_transaction_failed_by_a_taken_name,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), bind("", "", &[]), parse("s1", "SET search_path = other, public"), sync()])),
            step(1, send(vec![parse("", "BEGIN"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(0, send(vec![parse("", "BEGIN ISOLATION LEVEL REPEATABLE READ"), bind("", "", &[]), execute("", 0), execute("", 0), sync()])),
            step(0, send(vec![close(b'P', "p1"), parse("s1", "SELECT id, body FROM doc ORDER BY id"), bind("", "s1", &[]), execute("", 0), parse("s1", "COPY item (acct_id, note) FROM STDIN"), bind("", "s1", &[]), execute("", 0), copy_data("1\tc1\n2\tc2\n"), copy_done(), sync(), bind("", "s1", &[]), execute("", 0), bind("p1", "s1", &[]), execute("p1", 0), bind("", "s2", &[]), execute("", 0), sync()])),
            step(0, send(vec![bind("", "s1", &[]), execute("", 0), bind("", "s1", &[]), execute("", 0), sync()])),
            step(1, send(vec![q("SELECT 1")])),
            step(0, send(vec![bind("", "s1", &[]), execute("", 0), bind("", "s1", &[]), sync(), q("ROLLBACK")])),
        ],
    }
);

regression!(
    /// A Bind with the wrong number of parameters, sent in a pipeline that fails its transaction
    /// before the Bind arrives: Postgres checks the count first (08P01), also on a connection
    /// that must be given the statement first. Found by the long run, seed 2001.
    wrong_parameter_count_in_a_pipeline_that_fails_its_transaction,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s2", "INSERT INTO acct VALUES (5, 'eve', 500) ON CONFLICT DO NOTHING"), execute("p1", 0), parse("s1", "SELECT pg_try_advisory_xact_lock(8)"), sync()])),
            step(0, send(vec![parse("", "START TRANSACTION READ ONLY"), bind("", "", &[]), execute("", 0), execute("p1", 0), sync(), bind("p1", "s2", &[Some("1")]), sync()])),
            step(0, send(vec![q("ROLLBACK")])),
            step(0, send(vec![parse("s3", "SELECT 1"), execute("p1", 0), close(b'S', "s3"), sync()])),
            step(0, send(vec![parse("", "START TRANSACTION READ ONLY"), bind("", "", &[]), execute("", 0), execute("p1", 0), sync(), bind("p1", "s3", &[Some("1")]), sync()])),
        ],
    }
);

regression!(
    /// A statement prepared on the server after `DISCARD ALL` in the same pipeline is still
    /// there when the DISCARD ALL's answer comes: the proxy kept thinking it gone and prepared
    /// it again (42P05). Found by the long run, seed 2106.
    a_statement_prepared_after_discard_all_in_the_pipeline_is_kept,
    Setup::transaction(),
    Scenario {
    clients: 3,
    steps: vec![
        step(2, send(vec![parse("", "DISCARD ALL"), bind("p1", "", &[]), execute("p1", 0), parse("s2", "SAVEPOINT a"), parse("s1", "SELECT pg_notify('ch', 'fn')"), describe(b'S', "s1"), bind("", "s1", &[]), describe(b'P', ""), execute("", 0), parse("s2", "DISCARD ALL"), bind("p1", "s2", &[]), execute("p1", 2), execute("p1", 0), sync()])),
        step(2, send(vec![parse("", "INSERT INTO acct VALUES (5, 'eve', 500) ON CONFLICT DO NOTHING"), bind("", "", &[]), describe(b'P', ""), execute("", 0), parse("", "SELECT balance FROM acct WHERE id = $1"), bind("", "", &[Some("2")]), describe(b'P', ""), execute("", 0), flush(), sync(), parse("", "UPDATE acct SET balance = balance + 1 WHERE id = 1"), bind("", "", &[]), execute("", 0), bind("", "s2", &[]), execute("", 0), flush(), sync()])),
    ],
    }
);

regression!(
    /// A client pinned (a function's setting) parses a statement under its own name after a
    /// `DISCARD ALL` in the same pipeline: the DISCARD ALL unpins it, but that statement lives
    /// on this connection only, so the client stays. Found by the long run, seed 2118.
    a_statement_under_its_own_name_keeps_its_client_after_discard_all,
    Setup::transaction(),
    Scenario {
    clients: 3,
    steps: vec![
        step(2, send(vec![parse("", "SELECT set_tenant(2)"), bind("", "", &[]), parse("", "DISCARD ALL"), bind("p1", "", &[]), execute("p1", 0), parse("", "SELECT count(*) FROM item WHERE acct_id = $1"), bind("", "", &[Some("1")]), parse("s1", "UPDATE acct SET balance = balance + $1 WHERE id = $2"), sync()])),
        step(2, send(vec![parse("s2", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), parse("", "INSERT INTO acct VALUES (5, 'eve', 500) ON CONFLICT DO NOTHING"), bind("p1", "", &[]), execute("p1", 0), sync()])),
        step(0, send(vec![parse("", "DISCARD ALL"), describe(b'S', ""), bind("p1", "", &[]), execute("p1", 0), parse("", "SELECT generate_series(1, 5) AS n"), describe(b'S', ""), bind("", "", &[]), describe(b'P', ""), execute("", 0), flush(), sync()])),
        step(2, send(vec![q("LISTEN ch")])),
        step(2, send(vec![bind("", "s2", &[]), execute("", 0), parse("s1", "SELECT current_setting('app.tenant', true)"), bind("", "s1", &[]), execute("", 0), parse("s1", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), bind("p1", "s1", &[]), execute("p1", 2), execute("p1", 0), close(b'P', "p1"), sync()])),
    ],
    }
);

regression!(
    /// A client that sends a Parse under a name it holds while its COPY FROM STDIN is starting
    /// (a protocol violation: Postgres ends the session with 08P01). The proxy sends a Close of
    /// its own first to have the Parse fail as Postgres would, so the message names type 0x43
    /// (Close) instead of 0x50 (Parse) — the one difference the fuzzer's transcripts accept
    /// (README, known differences); everything else, the FATAL included, must be the same.
    /// Found by the long run, seeds 2011 and 2165.
    parse_under_a_taken_name_during_copy_in,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("s2", "COPY item (acct_id, note) FROM STDIN")])),
            step(2, send(vec![bind("", "s2", &[]), execute("", 0), parse("s2", "UPDATE doc SET body = body || '!'"), sync()])),
        ],
    }
);

regression!(
    /// A Parse under a name taken earlier in the same pipeline, after a `set_config` whose
    /// parameters pin nothing yet: Postgres refuses it (42P05) and keeps the first statement;
    /// pgcached must too. Found by the fuzzer (transaction pooling, seed 7181).
    seed_7181_a_name_taken_in_the_same_pipeline_stays_taken,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("", "SELECT set_config($1, $2, $3::bool)"), bind("", "", &[Some("app.tenant"), Some("2"), Some("false")]), parse("s1", "RESET search_path"), parse("", "SHOW search_path"), parse("s1", "LISTEN ch"), sync()])),
            step(1, send(vec![parse("s1", "BEGIN"), bind("", "s1", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A named BEGIN executed in a pipeline, a Parse that takes its name (42P05: the block
    /// fails and the server skips to the Sync), a LISTEN bound (the session is pinned: names
    /// are the client's own from here), then DISCARD ALL and a Parse under that name in the same
    /// segment, both skipped: the name still stands for BEGIN (Postgres: 25P02 on its Bind).
    /// pgcached forgot that the skipped Parse had replaced it (26000). Found by the fuzzer
    /// (transaction pooling, seed 94), shrunk with `FUZZ_SHRINK=600`.
    seed_94_a_skipped_parse_after_a_skipped_discard_keeps_the_old_statement,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("s1", "BEGIN"), bind("p1", "s1", &[]), bind("", "s1", &[]), execute("", 0)])),
            step(0, send(vec![parse("s1", "DEALLOCATE ALL")])),
            step(0, send(vec![parse("", "LISTEN ch"), bind("", "", &[])])),
            step(0, send(vec![parse("", "DISCARD ALL"), bind("", "", &[]), execute("", 0), parse("s1", "UNLISTEN *"), sync()])),
            step(0, send(vec![bind("", "s1", &[]), sync()])),
        ],
    }
);

regression!(
    /// A named statement bound without Sync, then DISCARD ALL and a skipped Parse under its name
    /// in one segment, then a Parse under that name again. Found by the fuzzer (transaction
    /// pooling, seed 52052).
    seed_52052_discard_all_then_a_parse_under_a_bound_name,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("s2", "SELECT set_tenant(2)"), bind("p1", "s2", &[])])),
            step(2, send(vec![parse("", "DISCARD ALL"), bind("", "", &[]), execute("", 0), parse("s2", "ROLLBACK TO b"), bind("", "s2", &[]), execute("", 0), close(b'S', "s2"), sync()])),
            step(2, terminate(vec![parse("s2", "RELEASE SAVEPOINT a"), sync()])),
        ],
    }
);

regression!(
    /// A pinned session (a session-level advisory lock) prepares `s3` under its own name, then
    /// prepares `s3` again with another text: Postgres refuses the second (42P05) and `s3` stays
    /// the first. pgcached had taken the second text for `s3` anyway, so binding `s3` was answered
    /// from the cache with the other text's rows, which another client had cached: a wrong
    /// answer. Found reading the code behind seed 52052.
    a_refused_parse_under_an_own_name_keeps_the_statement,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("", "SELECT owner FROM acct WHERE id = 1"), bind("", "", &[]), execute("", 0), sync()])),
            step(1, send(vec![parse("", "SELECT owner FROM acct WHERE id = 1"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![q("SELECT pg_advisory_lock(7)")])),
            step(0, send(vec![parse("s3", "SELECT id FROM acct WHERE id = 1"), sync()])),
            step(0, send(vec![parse("s3", "SELECT owner FROM acct WHERE id = 1"), sync()])),
            step(0, send(vec![bind("", "s3", &[]), execute("", 0), sync()])),
            step(0, send(vec![bind("", "s3", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// The same name changed in consecutive segments of one pipeline, under the client's own
    /// name: a Parse Postgres refuses (42P05), then Close and Parse again. Undoing the refused
    /// Parse when its error came put back the statement it had replaced over the one the later
    /// Parse made, so `s3` was answered from the cache with the first text's rows.
    own_name_changes_in_consecutive_segments_follow_the_server,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("", "SELECT id FROM acct WHERE id = 2"), bind("", "", &[]), execute("", 0), sync()])),
            step(1, send(vec![parse("", "SELECT id FROM acct WHERE id = 2"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![q("SELECT pg_advisory_lock(8)")])),
            step(0, send(vec![parse("s3", "SELECT id FROM acct WHERE id = 2"), sync()])),
            step(0, send(vec![
                parse("s3", "SELECT owner FROM acct WHERE id = 2"), sync(),
                close(b'S', "s3"), sync(),
                parse("s3", "SELECT owner FROM acct WHERE id = 2"), sync(),
            ])),
            step(0, send(vec![bind("", "s3", &[]), execute("", 0), sync()])),
            step(0, send(vec![bind("", "s3", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A named BEGIN the proxy held (answered without a server), a Parse under its name that
    /// fails the block (42P05), then a Bind of it with a parameter too many: Postgres checks the
    /// count before the failed transaction (08P01); pgcached, whose server connection did not
    /// have the statement yet, sent a Parse of it first, which the failed block refused (25P02).
    /// Found by the fuzzer (transaction pooling, seed 61051).
    seed_61051_parameter_count_of_a_held_statement_in_a_failed_block,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s2", "BEGIN"), bind("", "s2", &[]), execute("", 0), sync(), parse("s2", "COPY (SELECT id, balance FROM acct ORDER BY id) TO STDOUT"), sync()])),
            step(1, send(vec![bind("", "s2", &[Some("1")]), sync()])),
        ],
    }
);

regression!(
    /// `FETCH 2 FROM cur` prepared before the cursor existed, bound once it does: Postgres never
    /// checks a FETCH's result type again (its plan depends on no relation) and binds it; pgcached
    /// answered 0A000 (result type changed) from the shapes of its copy. Found by the fuzzer
    /// (transaction pooling, seed 120554).
    seed_120554_a_fetch_prepared_before_its_cursor_binds_once_it_exists,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(2, send(vec![parse("s1", "FETCH 2 FROM cur"), execute("p1", 0)])),
            step(2, send(vec![close(b'S', "s1"), parse("s1", "EXECUTE pq"), sync()])),
            step(2, send(vec![q("DECLARE cur CURSOR WITH HOLD FOR SELECT id FROM acct ORDER BY id; COMMIT; SELECT what FROM audit ORDER BY n")])),
            step(2, send(vec![bind("", "s1", &[]), parse("", "SELECT set_config('app.tenant', '1', false)"), bind("", "", &[]), execute("", 0), flush(), sync(), bind("", "s2", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// A statement's copy prepared for a Bind in a segment that an earlier message fails (a Parse
    /// under a taken name): the server skips the copy's Parse. A Bind of the statement in the
    /// next segment, read before that error came, took the copy for made and reached the server
    /// without it (26000 where Postgres binds). Found by the fuzzer (transaction pooling, seed
    /// 170280): the server connection changed between the segments because the first one's SET
    /// LOCAL left an undefined placeholder behind, so the statement needed a copy.
    seed_170280_a_copy_skipped_by_an_earlier_error_is_not_taken_for_made,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "SET LOCAL app.tenant = '2'"), bind("", "", &[]), parse("s1", "EXECUTE pq"), sync()])),
            step(0, send(vec![parse("s1", "COPY item (acct_id, note) FROM STDIN"), bind("", "s1", &[]), sync(), bind("p1", "s1", &[]), sync()])),
        ],
    }
);

regression!(
    /// A read pipelined behind a segment that opened a block and failed it (a Parse under a
    /// taken name) was planned after the server had answered all but that segment's
    /// ReadyForQuery: the status was still the last one (`I`), and the read was answered from
    /// the cache — where Postgres answers 25P02.
    seed_190252_a_read_behind_a_block_failing_in_flight_is_not_answered_from_the_cache,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s1", "COPY item (acct_id, note) FROM STDIN"), execute("", 0), sync()])),
            step(0, send(vec![execute("", 0), parse("s2", "ROLLBACK"), sync()])),
            step(1, send(vec![q("BEGIN; BEGIN")])),
            step(1, send(vec![parse("s2", "RESET ALL"), parse("s2", "SELECT generate_series(1, 5) AS n"), bind("", "s1", &[]), sync()])),
            step(1, send(vec![parse("", "ROLLBACK"), bind("", "", &[]), execute("", 0), sync()])),
            step(0, send(vec![parse("s1", "SELECT owner FROM acct WHERE id = 1"), bind("", "s1", &[]), execute("", 0), sync()])),
            step(1, send(vec![parse("", "BEGIN"), bind("", "", &[]), describe(b'P', ""), execute("", 0), parse("s2", "SELECT id, owner FROM rich ORDER BY id"), bind("", "s2", &[]), execute("", 0), parse("", "SET DateStyle = 'SQL, DMY'"), describe(b'S', ""), bind("", "", &[]), execute("", 0), sync(), parse("", "SELECT owner FROM acct WHERE id = 1"), bind("", "", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// The same in a block held by the proxy: the Parse under a taken name is in flight (to
    /// fail it as Postgres would), and a cached read pipelined behind it must wait its verdict.
    a_read_behind_a_parse_in_flight_in_a_held_block_is_not_answered_from_the_cache,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(1, send(vec![parse("s2", "SELECT 2"), sync()])),
            step(0, send(vec![parse("s1", "SELECT owner FROM acct WHERE id = 1"), bind("", "s1", &[]), execute("", 0), sync()])),
            step(1, send(vec![q("BEGIN"), parse("s2", "SELECT 1"), sync(), parse("", "SELECT owner FROM acct WHERE id = 1"), bind("", "", &[]), execute("", 0), sync()])),
        ],
    }
);

regression!(
    /// In a block a named portal outlives its Sync. A read through one was answered from the
    /// cache, so the portal never existed on the server, and a second Bind of its name got
    /// BindComplete where Postgres says 42P03 (cursor already exists).
    seed_210238_a_named_portal_in_a_block_is_not_answered_from_the_cache,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![describe(b'S', ""), bind("", "", &[]), bind("", "", &[]), parse("s2", "SELECT current_setting('app.nope')"), sync()])),
            step(2, send(vec![parse("", "SELECT current_setting('app.tenant', true)"), bind("", "", &[]), execute("", 0), sync()])),
            step(1, send(vec![parse("", "SELEC 1"), bind("", "", &[]), execute("", 0), sync(), parse("s1", "SELECT pg_try_advisory_xact_lock(8)"), bind("", "s1", &[]), execute("", 0), parse("", "BEGIN"), describe(b'S', ""), bind("", "", &[]), execute("", 0), sync()])),
            step(1, send(vec![q("SELECT count(*) FROM item WHERE acct_id = '1'")])),
            step(1, send(vec![parse("", "SELECT current_setting('app.tenant', true)"), bind("p1", "", &[]), execute("p1", 0), sync(), parse("s2", "SET search_path = other, public"), bind("p1", "s2", &[]), execute("p1", 2), execute("p1", 0), parse("", "SELECT count(*) FROM item WHERE acct_id = $1"), bind("p1", "", &[Some("1")]), execute("p1", 0), parse("", "DELETE FROM acct WHERE id = 5"), bind("p1", "", &[]), execute("p1", 2), execute("p1", 0), sync(), parse("", "UPDATE other.acct SET balance = balance + 1 WHERE id = 1"), bind("", "", &[]), execute("", 0), parse("s1", "COMMIT"), bind("p1", "s1", &[]), execute("p1", 0), close(b'P', "p1"), flush(), sync()])),
        ],
    }
);

regression!(
    /// The same, smaller: a read through a named portal in a held block, then its name bound
    /// again.
    a_named_portal_read_in_a_block_stays_open_for_the_next_bind,
    Setup::transaction(),
    Scenario {
        clients: 3,
        steps: vec![
            step(0, send(vec![parse("", "SELECT owner FROM acct WHERE id = 1"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(1, send(vec![q("BEGIN")])),
            step(1, send(vec![parse("", "SELECT owner FROM acct WHERE id = 1"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(1, send(vec![parse("", "SELECT 2"), bind("p1", "", &[]), execute("p1", 0), sync()])),
            step(1, send(vec![q("ROLLBACK")])),
        ],
    }
);
