//! Extended-protocol edge cases, each run twice with the same raw message sequence — directly
//! against Postgres and through pgcached in transaction mode — and compared message by message.
//! Named statements through pgcached are renamed to shared server statements and re-prepared on
//! whatever server connection the client lands on; none of that may be visible.

mod common;

use std::time::Duration;

use common::raw::{Msg, RawClient, summaries};
use common::{PgCluster, Proxy, connect};

/// Run `$body` (which uses `$c: RawClient` and evaluates to the messages it collected) on a
/// direct connection and through the proxy; the transcripts must be equal, and `$check` must
/// hold for them.
macro_rules! same_as_direct {
    ($name:ident, |$c:ident| $body:block, |$out:ident| $check:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let pg = PgCluster::start();
            let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 2).await;
            let mut transcripts = Vec::new();
            for port in [pg.port(), proxy.port] {
                let mut $c = RawClient::connect(port, "postgres", "app").await;
                let msgs: Vec<Msg> = $body;
                transcripts.push(summaries(&msgs));
            }
            assert_eq!(transcripts[0], transcripts[1], "direct (left) vs pgcached (right)");
            let $out: Vec<String> = transcripts.pop().unwrap();
            $check
        }
    };
}

fn tags(out: &[String]) -> String {
    out.iter().map(|s| s.chars().next().unwrap()).collect()
}

same_as_direct!(
    a_pipeline_of_many_statements_without_sync,
    |c| {
        for i in 0..50 {
            c.parse(&format!("s{i}"), &format!("SELECT $1::int + {i}"))
                .bind("", &format!("s{i}"), &[Some("1")], 0)
                .execute("", 0);
        }
        c.sync().flush().await;
        c.until_ready().await
    },
    |out| {
        assert_eq!(tags(&out), format!("{}Z", "12DC".repeat(50)));
        assert_eq!(out[2], "D:\0\u{1}\0\0\0\u{1}1", "1 + 0");
        assert_eq!(out[4 * 49 + 2], "D:\0\u{1}\0\0\0\u{2}50", "1 + 49");
    }
);

// A statement with more than 32,767 parameters (postgres.js's own "big query body" test sends
// 50,000): the counts of Parse and Bind are unsigned 16-bit, and pgcached read them as signed —
// it refused the Parse as malformed (08P01 FATAL) where Postgres runs it. Named (re-prepared by
// pgcached with the types) and unnamed.
same_as_direct!(
    a_statement_with_more_than_32767_parameters_runs,
    |c| {
        const N: usize = 40_000;
        let types = vec![23u32; N];
        let values = vec![Some("1"); N];
        let sql = format!("SELECT $1 + ${N}");
        let mut msgs = Vec::new();
        for name in ["big", ""] {
            c.parse_typed(name, &sql, &types).bind("", name, &values, 0).execute("", 0).sync().flush().await;
            msgs.extend(c.until_ready().await);
        }
        c.bind("", "big", &values, 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "12DCZ12DCZ2DCZ");
        assert_eq!(out[2], "D:\0\u{1}\0\0\0\u{1}2");
    }
);

same_as_direct!(
    flush_delivers_results_before_sync,
    |c| {
        c.parse("q", "SELECT 1").bind("", "q", &[], 0).describe(b'P', "").execute("", 0).flush_msg().flush().await;
        let mut msgs = c.take(5).await;
        c.sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "12TDCZ");
    }
);

same_as_direct!(
    an_error_mid_pipeline_skips_to_sync_and_forgets_skipped_statements,
    |c| {
        c.parse("ok", "SELECT 1").bind("", "ok", &[], 0).execute("", 0);
        c.parse("bad", "SELECT 1/0").bind("", "bad", &[], 0).execute("", 0);
        c.parse("skipped", "SELECT 3").bind("", "skipped", &[], 0).execute("", 0);
        c.sync().flush().await;
        let mut msgs = c.until_ready().await;
        // "ok" survives, "skipped" was never prepared.
        c.bind("", "ok", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "skipped", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        // 1/0 is folded at planning time: the Bind fails.
        assert_eq!(tags(&out), "12DC1EZ2DCZEZ");
        assert!(out[5].starts_with("E:22012:"));
        assert_eq!(out[11], "E:26000:prepared statement \"skipped\" does not exist");
    }
);

same_as_direct!(
    after_an_error_reported_before_sync_everything_up_to_sync_is_ignored,
    |c| {
        c.parse("", "SELEC 1").flush_msg().flush().await;
        let mut msgs = c.take(1).await;
        // Sent after the error arrived, in the same batch: ignored up to Sync.
        c.parse("late", "SELECT 1").bind("", "late", &[], 0).execute("", 0).query("SELECT 2").sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "late", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "EZEZ");
        assert!(out[0].starts_with("E:42601:"), "{}", out[0]);
        assert!(out[2].starts_with("E:26000:"), "never prepared: {}", out[2]);
    }
);

same_as_direct!(
    unnamed_statements_and_portals_and_close_of_a_portal,
    |c| {
        c.parse("", "SELECT generate_series(1, 3)")
            .bind("p1", "", &[], 0)
            .execute("p1", 0)
            .close(b'P', "p1")
            .sync()
            .flush()
            .await;
        let mut msgs = c.until_ready().await;
        c.execute("p1", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "12DDDC3ZEZ");
        assert!(out[8].starts_with("E:34000:"), "closed portal is gone: {}", out[8]);
    }
);

same_as_direct!(
    describe_of_a_statement_and_of_a_portal,
    |c| {
        c.parse("d1", "SELECT $1::text AS a, 2 AS b").describe(b'S', "d1").sync().flush().await;
        let mut msgs = c.until_ready().await;
        c.bind("p", "d1", &[Some("x")], 0).describe(b'P', "p").execute("p", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.describe(b'S', "nope").sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "1tTZ2TDCZEZ");
    }
);

same_as_direct!(
    execute_with_max_rows_suspends_and_resumes,
    |c| {
        c.query("BEGIN").flush().await;
        let mut msgs = c.until_ready().await;
        c.parse("g", "SELECT generate_series(1, 5)").bind("cur", "g", &[], 0);
        c.execute("cur", 2).execute("cur", 2).execute("cur", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.query("COMMIT").flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "CZ12DDsDDsDCZCZ");
    }
);

same_as_direct!(
    a_simple_query_while_an_extended_batch_is_open,
    |c| {
        c.parse("e", "SELECT 1").bind("", "e", &[], 0).execute("", 0).query("SELECT 2").flush().await;
        let mut msgs = c.until_ready().await;
        c.sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "12DCTDCZZ");
    }
);

same_as_direct!(
    a_duplicate_statement_name_is_refused_and_the_first_kept,
    |c| {
        c.parse("dup", "SELECT 1").parse("dup", "SELECT 2").bind("", "dup", &[], 0).execute("", 0).sync().flush().await;
        let mut msgs = c.until_ready().await;
        c.bind("", "dup", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "1EZ2DCZ");
        assert_eq!(out[1], "E:42P05:prepared statement \"dup\" already exists");
        assert_eq!(out[4], "D:\0\u{1}\0\0\0\u{1}1");
    }
);

same_as_direct!(
    bind_to_an_unknown_statement,
    |c| {
        c.bind("", "never", &[], 0).execute("", 0).sync().flush().await;
        c.until_ready().await
    },
    |out| {
        assert_eq!(out, vec!["E:26000:prepared statement \"never\" does not exist".to_string(), "Z:I".to_string()]);
    }
);

same_as_direct!(
    deallocate_deallocate_all_and_discard_all_from_the_client,
    |c| {
        c.parse("a", "SELECT 1").parse("b", "SELECT 2").parse("c", "SELECT 3").sync().flush().await;
        let mut msgs = c.until_ready().await;
        c.query("DEALLOCATE a").flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "a", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "b", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.query("DEALLOCATE ALL").flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "b", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.parse("d", "SELECT 4").sync().query("DISCARD ALL").flush().await;
        msgs.extend(c.until_ready().await);
        msgs.extend(c.until_ready().await);
        c.bind("", "d", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        msgs
    },
    |out| {
        assert_eq!(tags(&out), "111ZCZEZ2DCZCZEZ1ZCZEZ");
    }
);

/// Answers the proxy gives itself between forwarded ones keep their place, also in pure
/// pass-through (cache off, no policy), where forwarded answers are copied in bulk: the
/// CloseComplete of a renamed statement goes between the server's ParseComplete of an unnamed
/// statement and its ReadyForQuery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_answer_between_forwarded_ones_keeps_its_place_in_pure_pass_through() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 2;
        c.cache.enabled = false;
    })
    .await;
    let mut transcripts = Vec::new();
    for port in [pg.port(), proxy.port] {
        let mut c = RawClient::connect(port, "postgres", "app").await;
        c.parse("s", "SELECT 41 + $1::int").sync().flush().await;
        let mut msgs = c.until_ready().await;
        c.parse("", "SELECT 42").close(b'S', "s").bind("", "", &[], 0).execute("", 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.bind("", "s", &[Some("1")], 0).sync().flush().await;
        msgs.extend(c.until_ready().await);
        transcripts.push(summaries(&msgs));
    }
    assert_eq!(transcripts[0], transcripts[1], "direct (left) vs pgcached (right)");
    let out = transcripts.pop().unwrap();
    assert_eq!(tags(&out), "1Z132DCZEZ", "{out:?}");
    assert_eq!(out[5], "D:\0\u{1}\0\0\0\u{2}42");
}

/// A statement prepared on one server connection is used by the same client after landing on
/// another one: pgcached re-prepares it there transparently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_statement_follows_the_client_to_another_server_connection() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 2;
        c.pool.acquire_timeout = Duration::from_secs(20);
    })
    .await;
    let mut a = RawClient::connect(proxy.port, "postgres", "app").await;
    a.parse("s", "SELECT 40 + $1::int").sync().flush().await;
    assert_eq!(tags(&summaries(&a.until_ready().await)), "1Z");

    let b = connect(&proxy.url("postgres", "app")).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let pid = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
    };
    let mut backends = std::collections::HashSet::new();
    let mut last = None;
    for _ in 0..4 {
        // Both server connections are taken by b and c; a waits for the one the releaser frees.
        // Which connection each takes is the pool's choice: the releaser is the one holding the
        // connection `a` did not run on last, so `a` moves every round.
        let on_b = pid(b.simple_query(common::BEGIN_ON_SERVER).await.unwrap());
        let on_c = pid(c.simple_query(common::BEGIN_ON_SERVER).await.unwrap());
        assert_ne!(on_b, on_c);
        let (releaser, other, freed) = if last == on_b { (&c, &b, on_c) } else { (&b, &c, on_b) };
        a.bind("", "s", &[Some("2")], 0).execute("", 0).query("SELECT pg_backend_pid()").flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        releaser.batch_execute("COMMIT").await.unwrap();
        let msgs = a.until_ready().await;
        let out = summaries(&msgs);
        assert_eq!(out[1], "D:\0\u{1}\0\0\0\u{2}42", "{out:?}");
        assert!(out[4].ends_with(freed.as_deref().unwrap()), "a ran where the releaser was: {out:?} {freed:?}");
        backends.insert(out[4].clone());
        last = freed;
        a.sync().flush().await;
        a.until_ready().await;
        other.batch_execute("COMMIT").await.unwrap();
    }
    assert_eq!(backends.len(), 2, "the client ran on both server connections: {backends:?}");
}

/// A result type change seen from a client that prepared before it: `SELECT v + 0` has no
/// table OID in its RowDescription, so the transcripts of two runs compare byte for byte.
const CHANGING: &str = "SELECT v + 0 AS v FROM rt";

/// Prepare and run `CHANGING`, then change its result type (int → bigint).
async fn prepare_then_alter(c: &mut RawClient) -> Vec<Msg> {
    c.query("CREATE TABLE rt (v int); INSERT INTO rt VALUES (1)").flush().await;
    let mut msgs = c.until_ready().await;
    c.parse("s", CHANGING).describe(b'S', "s").sync().flush().await;
    msgs.extend(c.until_ready().await);
    c.bind("", "s", &[], 0).execute("", 0).sync().flush().await;
    msgs.extend(c.until_ready().await);
    c.query("ALTER TABLE rt ALTER v TYPE bigint").flush().await;
    msgs.extend(c.until_ready().await);
    msgs
}

/// Use the statement prepared before the change (refused, in and out of a transaction), then
/// prepare it again under the same name and under another one.
async fn use_after_alter(c: &mut RawClient) -> Vec<Msg> {
    c.bind("", "s", &[], 0).execute("", 0).sync().flush().await;
    let mut msgs = c.until_ready().await;
    c.describe(b'S', "s").sync().flush().await;
    msgs.extend(c.until_ready().await);
    c.query("BEGIN").flush().await;
    msgs.extend(c.until_ready().await);
    c.bind("", "s", &[], 0).execute("", 0).sync().flush().await;
    msgs.extend(c.until_ready().await);
    c.query("SELECT 1").flush().await;
    msgs.extend(c.until_ready().await);
    c.query("ROLLBACK").flush().await;
    msgs.extend(c.until_ready().await);
    c.close(b'S', "s").parse("s", CHANGING).describe(b'S', "s").bind("", "s", &[], 0).execute("", 0).sync();
    c.flush().await;
    msgs.extend(c.until_ready().await);
    c.parse("s2", CHANGING).describe(b'S', "s2").bind("", "s2", &[], 0).execute("", 0).sync().flush().await;
    msgs.extend(c.until_ready().await);
    msgs
}

/// The answers Postgres gives a statement whose result type changed, checked on a transcript
/// of `prepare_then_alter` + `use_after_alter`.
fn assert_refused_then_prepared_again(out: &[String]) {
    let expected = [
        "CCZ", "1tTZ", "2DCZ", "CZ", // create, prepare, run, alter
        "EZ", "tEZ", "CZ", "EZ", "EZ", "CZ", // refused (Bind, Describe, in a transaction), 25P02, ROLLBACK
        "31tT2DCZ", "1tT2DCZ", // prepared again, under the same name and another one
    ]
    .concat();
    assert_eq!(tags(out), expected, "{out:?}");
    for i in [13, 16, 20] {
        assert_eq!(out[i], "E:0A000:cached plan must not change result type", "{out:?}");
    }
    assert!(out[22].starts_with("E:25P02:"), "{}", out[22]);
    assert_eq!(out[21], "Z:E", "the refusal failed the transaction");
    assert!(out[5].contains("\0\0\0\0\x17"), "int4 before: {:?}", out[5]);
    assert!(out[29].contains("\0\0\0\0\x14"), "int8 after: {:?}", out[29]);
}

/// The client lands, after the change, on a server connection that never prepared the
/// statement: pgcached prepares it there, sees the new result type before anything runs, and
/// answers 0A000 as the connection that prepared it would have. Another connection still
/// holds the old copy: it is prepared again there rather than refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_result_type_is_refused_on_a_connection_that_never_prepared_the_statement() {
    let pg = PgCluster::start();
    let mut direct = RawClient::connect(pg.port(), "postgres", "app").await;
    let mut want = prepare_then_alter(&mut direct).await;
    want.extend(use_after_alter(&mut direct).await);
    direct.query("DROP TABLE rt").flush().await;
    direct.until_ready().await;
    let want = summaries(&want);
    assert_refused_then_prepared_again(&want);

    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 2;
        c.pool.acquire_timeout = Duration::from_secs(20);
    })
    .await;
    let url = proxy.url("postgres", "app");
    let (h1, h2) = (connect(&url).await, connect(&url).await);
    // h1 holds one server connection while the client prepares and runs on the other.
    h1.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut got = prepare_then_alter(&mut c).await;
    // Now h2 holds the one with the old copy: the client lands on the other one.
    h2.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let copies = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    let held: i64 = h2.query_one(copies, &[&CHANGING]).await.unwrap().get(0);
    assert_eq!(held, 1, "h2 holds the connection the statement was prepared on");
    h1.batch_execute("COMMIT").await.unwrap();
    got.extend(use_after_alter(&mut c).await);
    assert_eq!(summaries(&got), want, "pgcached (left) vs direct (right)");
    // Drivers tell this error by the routine that raised it (asyncpg, pgjdbc).
    for m in got.iter().filter(|m| m.code().as_deref() == Some("0A000")) {
        assert_eq!(m.field(b'R').as_deref(), Some("RevalidateCachedQuery"), "{m:?}");
    }

    // Back on the connection with the copy from before the change (h1 holds the other one).
    h1.batch_execute("BEGIN; SELECT 1").await.unwrap();
    h2.batch_execute("COMMIT").await.unwrap();
    c.bind("", "s", &[], 0).execute("", 0).sync().flush().await;
    let out = summaries(&c.until_ready().await);
    assert_eq!(tags(&out), "2DCZ", "{out:?}");
    h1.batch_execute("COMMIT").await.unwrap();
}

/// On the connection that prepared it, Postgres itself refuses the statement; pgcached must
/// then stop using that server statement, or preparing the same text again would land on it
/// and be refused forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_refused_by_postgres_is_prepared_afresh_when_the_client_prepares_it_again() {
    let pg = PgCluster::start();
    // One server connection: every transaction of the client runs where the old copy is.
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let mut transcripts = Vec::new();
    for port in [pg.port(), proxy.port] {
        let mut c = RawClient::connect(port, "postgres", "app").await;
        let mut msgs = prepare_then_alter(&mut c).await;
        msgs.extend(use_after_alter(&mut c).await);
        c.query("DROP TABLE rt").flush().await;
        c.until_ready().await;
        transcripts.push(summaries(&msgs));
    }
    assert_refused_then_prepared_again(&transcripts[0]);
    assert_eq!(transcripts[1], transcripts[0], "pgcached (left) vs direct (right)");
}

/// A COPY FROM STDIN started with the extended protocol fails on its data before the client
/// ends it: Postgres then discards everything up to the next Sync (the Sync sent with the
/// Execute was ignored in copy mode). The server connection is not idle until that Sync is
/// answered — given back to the pool before it, the next transaction's messages would be
/// discarded too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_fails_before_the_client_ends_it_keeps_its_server_until_sync() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE copy_err (x int)");
    // One server connection: the next statement runs where the COPY failed.
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let mut transcripts = Vec::new();
    for port in [pg.port(), proxy.port] {
        let mut c = RawClient::connect(port, "postgres", "app").await;
        // What tokio-postgres sends: Bind, Execute and Sync, the data, then CopyDone and Sync.
        c.parse("", "COPY copy_err FROM STDIN").bind("", "", &[], 0).execute("", 0).sync().flush().await;
        let mut msgs = c.take(3).await;
        c.copy_data(b"not-a-number\n").flush().await;
        msgs.push(c.recv().await);
        c.copy_done().sync().flush().await;
        msgs.extend(c.until_ready().await);
        c.query("SELECT count(*) FROM copy_err").flush().await;
        msgs.extend(c.until_ready().await);
        transcripts.push(summaries(&msgs));
    }
    assert_eq!(tags(&transcripts[0]), "12GEZTDCZ", "{:?}", transcripts[0]);
    assert_eq!(transcripts[1], transcripts[0], "pgcached (left) vs direct (right)");
}

/// A bulk load pipelined without Sync (asyncpg's `executemany`): its frames reach the server as
/// they come, so an error early on reaches the client while it is still writing — it stops
/// there, as directly. (A batch is held back for the cache only while its frames are small.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_pipelines_error_reaches_the_client_before_its_sync() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE bulk (a text PRIMARY KEY, b int)");
    for mode in [pgcached::config::PoolMode::Transaction, pgcached::config::PoolMode::Session] {
        let proxy = Proxy::start_with(&pg, |c| c.pool.mode = mode).await;
        let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
        let big = "x".repeat(32 * 1024);
        c.parse("", "INSERT INTO bulk VALUES ($1, $2)");
        for (a, b) in [("a", "1"), ("a", "2"), (big.as_str(), "3")] {
            c.bind("", "", &[Some(a), Some(b)], 0).execute("", 0);
        }
        c.flush().await;
        let mut seen = Vec::new();
        loop {
            match c.recv_within(Duration::from_secs(3)).await {
                Ok(m) if m.tag == 'E' => {
                    assert_eq!(m.code().as_deref(), Some("23505"), "{mode:?}: {m:?}");
                    break;
                }
                Ok(m) => seen.push(m),
                Err(e) => panic!("{mode:?}: no error before Sync ({e:?}); got {:?}", summaries(&seen)),
            }
        }
        c.sync().flush().await;
        let rest = c.until_ready().await;
        assert_eq!(summaries(&rest), ["Z:I"], "{mode:?}: the rest was skipped");
        assert_eq!(pg.psql_db("app", "SELECT count(*) FROM bulk").trim(), "0");
        proxy.shutdown().await;
    }
}

/// A libpq pipeline of small statements without Sync or Flush that waits for what Postgres sends
/// unasked (psycopg's `test_pipeline_communicate_uniqviol`: a block, a prepared INSERT executed
/// five times, the third a duplicate): Postgres flushes the error at once, with the rows before
/// it. The proxy held such a batch for the cache until a Sync that never came — the client hung.
/// In autocommit and inside a block, both pooling modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_without_sync_gets_its_error_unasked() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE uniq (id int PRIMARY KEY)");
    let proxy_tx = Proxy::start(&pg).await;
    let proxy_session = Proxy::start_with(&pg, |c| c.pool.mode = pgcached::config::PoolMode::Session).await;
    for in_block in [false, true] {
        let mut transcripts = Vec::new();
        for port in [pg.port(), proxy_tx.port, proxy_session.port] {
            pg.psql_db("app", "TRUNCATE uniq");
            let mut c = RawClient::connect(port, "postgres", "app").await;
            if in_block {
                c.query("BEGIN").flush().await;
                c.until_ready().await;
            }
            c.parse("insertion", "INSERT INTO uniq VALUES ($1) RETURNING id").sync().flush().await;
            c.until_ready().await;
            for id in ["1", "2", "1", "3"] {
                c.bind("", "insertion", &[Some(id)], 0).execute("", 0);
            }
            c.flush().await;
            let mut seen = Vec::new();
            loop {
                match c.recv_within(Duration::from_secs(3)).await {
                    Ok(m) if m.tag == 'E' => {
                        seen.push(m);
                        break;
                    }
                    Ok(m) => seen.push(m),
                    Err(e) => panic!(
                        "port {port}, block {in_block}: no error before Sync ({e:?}); got {:?}",
                        summaries(&seen)
                    ),
                }
            }
            c.sync().flush().await;
            seen.extend(c.until_ready().await);
            transcripts.push(summaries(&seen));
        }
        let direct = &transcripts[0];
        assert!(direct.iter().any(|m| m.starts_with("E:23505")), "{direct:?}");
        assert_eq!(&transcripts[1], direct, "transaction pooling (left) vs direct (right), block {in_block}");
        assert_eq!(&transcripts[2], direct, "session pooling (left) vs direct (right), block {in_block}");
    }
    proxy_tx.shutdown().await;
    proxy_session.shutdown().await;
}
