//! Timeouts and cancels as Postgres defines them: idle timers start when the server reports the
//! statement or transaction done (its ReadyForQuery), not at the client's last message, so a
//! statement longer than an idle timeout is never cut for it; idleness past the timeout still
//! ends the session with Postgres's SQLSTATE. `timeouts.query` cancels and, if the server does
//! not answer, closes; a cancel during the pool wait answers at once.

mod common;

use std::time::Duration;

use common::raw::{Msg, RawClient};
use common::{PgCluster, Proxy};

fn errors(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().filter(|m| m.tag == 'E').map(|m| format!("{:?} {:?}", m.code(), m.message())).collect()
}

/// The next message within `wait`: a FATAL ErrorResponse with `code`.
async fn expect_fatal(c: &mut RawClient, code: &str, wait: Duration) {
    let m = c.recv_within(wait).await.unwrap_or_else(|e| panic!("expected {code}, got {e:?}"));
    assert_eq!((m.tag, m.code().as_deref()), ('E', Some(code)), "{:?}", m.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_longer_than_idle_in_transaction_keeps_its_transaction() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (x int)");
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.idle_in_transaction = Some(Duration::from_millis(700))).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;

    c.query("BEGIN; INSERT INTO t VALUES (1); SELECT pg_sleep(1.2)").flush().await;
    let msgs = c.until_ready().await;
    assert!(errors(&msgs).is_empty(), "the long statement ran: {:?}", errors(&msgs));
    // Right after it: the transaction has been idle for no time at all.
    c.query("INSERT INTO t VALUES (2); COMMIT").flush().await;
    let msgs = c.until_ready().await;
    assert!(errors(&msgs).is_empty(), "the transaction went on: {:?}", errors(&msgs));
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "2");

    // Idle in a transaction past the timeout: ended as Postgres ends it.
    c.query("BEGIN; INSERT INTO t VALUES (3)").flush().await;
    c.until_ready().await;
    expect_fatal(&mut c, "25P03", Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "2", "the abandoned transaction rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_longer_than_client_idle_keeps_its_session() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.client_idle = Some(Duration::from_millis(700))).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "postgres").await;

    c.query("SELECT pg_sleep(1.2)").flush().await;
    let msgs = c.until_ready().await;
    assert!(errors(&msgs).is_empty(), "{:?}", errors(&msgs));
    c.query("SELECT 1").flush().await;
    let msgs = c.until_ready().await;
    assert!(errors(&msgs).is_empty(), "not idle: it just had an answer: {:?}", errors(&msgs));

    expect_fatal(&mut c, "57P05", Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_deadline_tells_the_client_why() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.shutdown = Duration::from_millis(500)).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "postgres").await;
    c.query("BEGIN").flush().await;
    c.until_ready().await;
    proxy.begin_shutdown();
    expect_fatal(&mut c, "57P01", Duration::from_secs(3)).await;
    tokio::time::timeout(Duration::from_secs(3), proxy.wait()).await.expect("stopped after the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_over_the_query_timeout_is_cancelled_and_says_why() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.query = Some(Duration::from_millis(500))).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "postgres").await;
    let started = std::time::Instant::now();
    c.query("SELECT pg_sleep(20)").flush().await;
    let msgs = c.until_ready().await;
    let error = msgs.iter().find(|m| m.tag == 'E').expect("cancelled");
    assert_eq!(error.code().as_deref(), Some("57014"));
    assert!(error.message().unwrap_or_default().contains("statement timeout"), "{:?}", error.message());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    c.query("SELECT 1").flush().await;
    assert!(errors(&c.until_ready().await).is_empty(), "the session goes on");
}

/// A server that does not answer the cancel (its backend frozen): after the grace period the
/// proxy closes that connection and tells the client, instead of waiting for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_whose_server_ignores_the_cancel_ends_after_the_grace() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.timeouts.query = Some(Duration::from_millis(500));
        c.pool.max_size = 1;
    })
    .await;
    let mut c = RawClient::connect(proxy.port, "postgres", "postgres").await;
    c.query("SELECT pg_backend_pid()").flush().await;
    let msgs = c.until_ready().await;
    let row = msgs.iter().find(|m| m.tag == 'D').expect("a row");
    let pid = String::from_utf8_lossy(&row.body[6..]).into_owned();

    let started = std::time::Instant::now();
    c.query("SELECT pg_sleep(30)").flush().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kill = |sig: &str| std::process::Command::new("kill").arg(sig).arg(&pid).status().unwrap();
    assert!(kill("-STOP").success());
    expect_fatal(&mut c, "57014", Duration::from_secs(6)).await;
    let waited = started.elapsed();
    assert!(kill("-CONT").success());
    assert!(waited < Duration::from_secs(5), "timeout + grace, not forever: {waited:?}");

    // The broken connection is not handed to the next client.
    let mut next = RawClient::connect(proxy.port, "postgres", "postgres").await;
    next.query("SELECT 1").flush().await;
    assert!(errors(&next.until_ready().await).is_empty());
}

/// A cancel that arrives while the statement still waits for a pool connection takes effect at
/// once (57014, as Postgres words it) and the statement never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_pool_wait_answers_at_once_and_runs_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (x int)");
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.pool.acquire_timeout = Duration::from_secs(30);
    })
    .await;
    let url = proxy.url("postgres", "app");
    let holder = common::connect(&url).await;
    holder.batch_execute(common::BEGIN_ON_SERVER).await.unwrap(); // the pool's only connection, held

    let waiter = common::connect(&url).await;
    let token = waiter.cancel_token();
    let insert = tokio::spawn(async move { waiter.simple_query("INSERT INTO t VALUES (1)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), insert).await.expect("answered").unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "at once, not after the wait: {:?}", started.elapsed());

    holder.batch_execute("COMMIT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "0", "the cancelled INSERT never ran");
}

/// `timeouts.client_write` counts a client's stall, not the length of its answer: a client that
/// takes 8 MiB in pauses of 400 ms (3.2 s in all) under a 1 s limit gets all of it. (One that
/// takes nothing is cut: tests/memory.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_slowly_is_not_cut_by_client_write() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.timeouts.client_write = Some(Duration::from_secs(1));
        c.limits.session_buffer = bytesize::ByteSize::kib(64);
    })
    .await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    c.query("SELECT repeat('s', 1048576) FROM generate_series(1, 8)").flush().await;
    let mut rows = 0;
    loop {
        let m = c.recv().await;
        match m.tag {
            'D' => {
                rows += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            'Z' => break,
            'E' => panic!("{:?}", m.message()),
            _ => {}
        }
    }
    assert_eq!(rows, 8);
}
