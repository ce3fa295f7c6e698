//! Faults under the proxy (issue 18): a server connection that dies under a client, compared
//! with Postgres itself — a client in a transaction gets exactly one FATAL and a close, as it
//! would directly; a client in autocommit holds no server connection, so it hears nothing at
//! all and its next statement runs on another one. Then a network that cuts the upstream
//! mid-row or stalls it ([`common::faulty::FaultyLink`]), and a Postgres restart: each ends in a
//! clear SQLSTATE for the clients it hits, never a hang, and service is back within 2 s.

mod common;

use std::time::Duration;

use std::time::Instant;

use common::faulty::FaultyLink;
use common::http::metric;
use common::raw::{Msg, RawClient, RecvError};
use common::{PgCluster, Proxy};

/// What a client idle in a transaction receives when its backend is terminated: the messages
/// until the connection closes (or 3 s pass), summarised.
async fn after_termination(pg: &PgCluster, port: u16) -> Vec<String> {
    let mut c = RawClient::connect(port, "postgres", "app").await;
    c.query("BEGIN").flush().await;
    c.until_ready().await;
    c.query("SELECT pg_backend_pid()").flush().await;
    let answer = c.until_ready().await;
    let row = answer.iter().find(|m| m.tag == 'D').expect("a row");
    // DataRow: column count (2 bytes), length (4), then the text.
    let pid = std::str::from_utf8(&row.body[6..]).unwrap().to_string();
    pg.psql(&format!("SELECT pg_terminate_backend({pid})"));
    let mut got = Vec::new();
    loop {
        match c.recv_within(Duration::from_secs(3)).await {
            Ok(m) => got.push(format!("{} {}", m.tag, m.code().unwrap_or_default())),
            Err(RecvError::Closed) => {
                got.push("closed".to_string());
                return got;
            }
            Err(RecvError::Timeout) => {
                got.push("still open".to_string());
                return got;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_a_transaction_gets_one_fatal_then_a_close_as_directly() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let direct = after_termination(&pg, pg.port()).await;
    assert_eq!(direct, vec!["E 57P01".to_string(), "closed".to_string()], "Postgres itself");
    let through = after_termination(&pg, proxy.port).await;
    assert_eq!(through, direct, "through pgcached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_autocommit_hears_nothing_and_goes_on() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.cache.enabled = false).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    c.query("SELECT 1").flush().await;
    c.until_ready().await;
    // Every server connection of the pool dies (transaction mode: the client holds none).
    let killed = pg.psql_db(
        "app",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = 'app' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    );
    assert!(killed.trim().parse::<u32>().unwrap() >= 1, "a pooled connection was there: {killed}");
    match c.recv_within(Duration::from_millis(500)).await {
        Err(RecvError::Timeout) => {}
        other => panic!("an idle client in autocommit hears nothing, got {other:?}"),
    }
    c.query("SELECT 2").flush().await;
    let answer = common::raw::summaries(&c.until_ready().await);
    assert!(!answer.iter().any(|m| m.starts_with('E')), "the next statement runs elsewhere: {answer:?}");
    assert!(answer.iter().any(|m| m.starts_with('D')), "{answer:?}");
}

/// A proxy (cache off, so every statement reaches the server) in front of `pg` through `link`.
async fn proxy_through(pg: &PgCluster, link: &FaultyLink, tweak: impl FnOnce(&mut pgcached::config::Config)) -> Proxy {
    let port = link.port;
    Proxy::start_with(pg, |c| {
        c.upstream.url = format!("postgres://127.0.0.1:{port}");
        c.cache.enabled = false;
        tweak(c);
    })
    .await
}

/// The first ErrorResponse `c` receives within `wait` (rows before it skipped), and whether
/// the connection was closed after it.
async fn first_error(c: &mut RawClient, wait: Duration) -> (Msg, bool) {
    let deadline = Instant::now() + wait;
    let error = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv_within(left).await {
            Ok(m) if m.tag == 'E' => break m,
            Ok(_) => {}
            Err(e) => panic!("no ErrorResponse within {wait:?}: {e:?}"),
        }
    };
    let closed = loop {
        match c.recv_within(Duration::from_secs(2)).await {
            Ok(m) if m.tag == 'Z' => break false,
            Ok(_) => {}
            Err(RecvError::Closed) => break true,
            Err(RecvError::Timeout) => panic!("neither ReadyForQuery nor a close after {}", error.summary()),
        }
    };
    (error, closed)
}

/// Time until `SELECT 1` succeeds through `port` on a new connection, polling.
async fn time_to_serve(port: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        let mut c = RawClient::connect(port, "postgres", "app").await;
        c.query("SELECT 1").flush().await;
        if let Ok(msgs) = tokio::time::timeout(Duration::from_secs(1), c.until_ready()).await
            && msgs.iter().any(|m| m.tag == 'D')
        {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not serving {limit:?} after the fault ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cut_mid_row_ends_that_client_with_a_connection_error_and_no_one_else() {
    let pg = PgCluster::start();
    let link = FaultyLink::start(pg.port()).await;
    let proxy = proxy_through(&pg, &link, |_| {}).await;
    let mut bystander = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    // About 200 MB of rows: still flowing when the link is cut.
    c.query("SELECT repeat('x', 1000) FROM generate_series(1, 200000)").flush().await;
    assert_eq!(c.recv().await.tag, 'T');
    for _ in 0..100 {
        assert_eq!(c.recv().await.tag, 'D');
    }
    link.cut();
    let (error, closed) = first_error(&mut c, Duration::from_secs(10)).await;
    let code = error.code().unwrap_or_default();
    assert!(code.starts_with("08") || code == "57P01", "a connection error: {}", error.summary());
    assert!(closed, "the client's session ends with its server (state unknown): {}", error.summary());
    // Everyone else goes on, on a new server connection.
    bystander.query("SELECT 2").flush().await;
    let answer = common::raw::summaries(&bystander.until_ready().await);
    assert!(answer.iter().any(|m| m.starts_with('D')), "{answer:?}");
    assert!(time_to_serve(proxy.port, Duration::from_secs(2)).await < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_ends_in_the_query_timeout_not_a_hang() {
    let pg = PgCluster::start();
    let link = FaultyLink::start(pg.port()).await;
    let proxy = proxy_through(&pg, &link, |c| c.timeouts.query = Some(Duration::from_secs(1))).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    c.query("SELECT 1").flush().await;
    c.until_ready().await;
    link.stall(true);
    let asked = Instant::now();
    c.query("SELECT 2").flush().await;
    // The cancel cannot get through either: after its grace the server connection is dropped.
    let (error, _) = first_error(&mut c, Duration::from_secs(8)).await;
    assert_eq!(error.code().as_deref(), Some("57014"), "{}", error.summary());
    // 1 s, then the 2 s grace (the cancel's own wait on the frozen server must not add to it).
    assert!(asked.elapsed() < Duration::from_secs(5), "timeout 1 s + grace, not a hang: {:?}", asked.elapsed());
    link.stall(false);
    assert!(time_to_serve(proxy.port, Duration::from_secs(2)).await < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_postgres_restart_service_is_back_within_two_seconds() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.cache.enabled = false).await;
    assert!(time_to_serve(proxy.port, Duration::from_secs(2)).await < Duration::from_secs(2));
    pg.stop();
    // While it is down: a clear error, at once (no server to connect to).
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    c.query("SELECT 1").flush().await;
    let (error, _) = first_error(&mut c, Duration::from_secs(10)).await;
    let code = error.code().unwrap_or_default();
    assert!(code.starts_with("08") || code.starts_with("57P"), "{}", error.summary());
    pg.start_again();
    let back = time_to_serve(proxy.port, Duration::from_secs(5)).await;
    assert!(back <= Duration::from_secs(2), "served again {back:?} after Postgres was back");
}

/// A client's cancel is for what runs when it arrives. Postgres ignores one that reaches a
/// backend waiting for a command; the proxy's way to the server is longer than the client's
/// own (here every new connection to it waits 300 ms), so a cancel sent while nothing ran must
/// not reach the server later and cancel the statement sent after it (asyncpg's COPY tests
/// met it: a cancel sent with a CopyFail cancelled the next `DROP TABLE`). One sent while a
/// statement runs still cancels it. Each step waits for what it needs to have happened (the
/// proxy's count of cancels it ignored; the statement running in `pg_stat_activity`), not for
/// a fixed time: a loaded machine only makes it slower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_is_for_what_runs_when_it_arrives() {
    use pgcached::config::PoolMode;
    let pg = PgCluster::start();
    let link = FaultyLink::start(pg.port()).await;
    let direct = common::connect(&pg.url("postgres", "app")).await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let admin = common::free_port();
        let proxy = proxy_through(&pg, &link, |c| {
            c.pool.mode = mode;
            c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
        })
        .await;
        let ignored = r#"pgcached_cancel_requests_total{outcome="not_running"}"#;
        let c = common::connect(&proxy.url("postgres", "app")).await;
        // In a block: the client holds its server connection in both modes.
        c.batch_execute("BEGIN; SELECT 1").await.unwrap();
        link.delay_new(Duration::from_millis(300));
        c.cancel_token().cancel_query(tokio_postgres::NoTls).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while metric(admin, ignored).await < 1.0 {
            if Instant::now() > deadline {
                // What became of it instead (seen once in a loaded CI run, never alone).
                let (_, body) = common::http::get(admin, "/metrics").await;
                let outcomes: Vec<&str> =
                    body.lines().filter(|l| l.starts_with("pgcached_cancel_requests_total")).collect();
                panic!("{mode:?}: the cancel sent while nothing ran was not ignored: {outcomes:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let slept = c.simple_query("SELECT pg_sleep(0.6)").await;
        assert!(slept.is_ok(), "{mode:?}: a cancel sent while nothing ran cancelled the next statement: {slept:?}");

        let token = c.cancel_token();
        let started = Instant::now();
        let running = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(5) AS running").await.map(|_| ()) });
        let deadline = Instant::now() + Duration::from_secs(10);
        let active = "SELECT count(*)::int FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%AS running'";
        while direct.query_one(active, &[]).await.unwrap().get::<_, i32>(0) == 0 {
            assert!(Instant::now() < deadline, "{mode:?}: the statement never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        let err = running.await.unwrap().expect_err("cancelled");
        assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{mode:?}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "{mode:?}: {:?}", started.elapsed());
        // Counted once the proxy is done with it (the server may close the cancel's connection
        // after the client already has its error).
        let sent = r#"pgcached_cancel_requests_total{outcome="sent"}"#;
        let deadline = Instant::now() + Duration::from_secs(10);
        while metric(admin, sent).await < 1.0 {
            assert!(Instant::now() < deadline, "{mode:?}: the running statement's cancel was not counted as sent");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(metric(admin, ignored).await, 1.0, "{mode:?}: the running statement's cancel was sent");
        link.delay_new(Duration::ZERO);
        proxy.shutdown().await;
    }
}
