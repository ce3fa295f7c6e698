//! Postgres unreachable or restarted under the proxy (issue 18, items 4 and 5): expired answers
//! served with a NOTICE (`cache.serve_stale_on_error`) but never one a write invalidated; the
//! circuit breaker failing checkouts fast while the upstream is down and closing within 2 s of
//! its return; connects retried with backoff while Postgres starts; and autocommit reads sent
//! again when their pooled connection turns out dead — never a write, never mid-transaction.

mod common;

use std::time::{Duration, Instant};

use common::faulty::{Death, FaultyLink};
use common::http::metric;
use common::raw::{Msg, RawClient};
use common::{PgCluster, Proxy, free_port};

/// A proxy for `pg` with the admin HTTP endpoint on a free port (returned), tweaked by `tweak`.
async fn proxy_with_metrics(pg: &PgCluster, tweak: impl FnOnce(&mut pgcached::config::Config)) -> (Proxy, u16) {
    let admin = free_port();
    let proxy = Proxy::start_with(pg, |c| {
        c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
        tweak(c);
    })
    .await;
    (proxy, admin)
}

/// Cached answers live 300 ms; with `stale`, they may be served up to 60 s past that.
fn short_ttl(c: &mut pgcached::config::Config, stale: bool) {
    c.cache.default_ttl = Duration::from_millis(300);
    c.cache.serve_stale_on_error.enabled = stale;
    c.cache.serve_stale_on_error.max_age = Duration::from_secs(60);
}

fn items(pg: &PgCluster) {
    pg.psql_db("app", "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');");
}

async fn ask(c: &mut RawClient, sql: &str) -> Vec<Msg> {
    c.query(sql).flush().await;
    tokio::time::timeout(Duration::from_secs(15), c.until_ready()).await.expect("an answer")
}

fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag).collect()
}

fn error_of(msgs: &[Msg]) -> Option<&Msg> {
    msgs.iter().find(|m| m.tag == 'E')
}

/// The value of the first DataRow's only column (text).
fn value(msgs: &[Msg]) -> String {
    let row = msgs.iter().find(|m| m.tag == 'D').unwrap_or_else(|| panic!("no row in {:?}", tags(msgs)));
    String::from_utf8(row.body[6..].to_vec()).unwrap()
}

const READ: &str = "SELECT name FROM items WHERE id = 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_answer_is_served_with_a_notice_while_postgres_is_down_and_fresh_ones_once_it_is_back() {
    let pg = PgCluster::start();
    items(&pg);
    let (proxy, admin) = proxy_with_metrics(&pg, |c| short_ttl(c, true)).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    tokio::time::sleep(Duration::from_millis(400)).await;
    pg.stop();
    let answer = ask(&mut c, READ).await;
    assert_eq!(tags(&answer), "NTDCZ", "the stale answer after its notice: {:?}", common::raw::summaries(&answer));
    assert_eq!(value(&answer), "one");
    let notice = answer[0].message().unwrap();
    assert!(notice.contains("cached") && notice.contains("expired"), "says what it is: {notice}");
    assert!(notice.contains("ago"), "and how old: {notice}");
    assert_eq!(answer[0].code().as_deref(), Some("01000"));
    assert_eq!(metric(admin, "pgcached_cache_stale_served_total").await, 1.0);

    // Back: a fresh answer, no notice, within 2 s.
    pg.start_again();
    let back = Instant::now();
    loop {
        let answer = ask(&mut c, READ).await;
        if !answer.iter().any(|m| m.tag == 'N') {
            assert_eq!(tags(&answer), "TDCZ");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(2), "still stale {:?} after Postgres was back", back.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_invalidated_by_a_write_is_never_served_stale() {
    let pg = PgCluster::start();
    items(&pg);
    let (proxy, admin) = proxy_with_metrics(&pg, |c| short_ttl(c, true)).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    let write = ask(&mut c, "UPDATE items SET name = 'uno' WHERE id = 1").await;
    assert!(error_of(&write).is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    pg.stop();
    let answer = ask(&mut c, READ).await;
    let error = error_of(&answer).unwrap_or_else(|| panic!("an error, not a stale answer: {:?}", tags(&answer)));
    assert!(error.code().unwrap().starts_with("08"), "{}", error.summary());
    assert!(!answer.iter().any(|m| m.tag == 'D' || m.tag == 'N'), "{:?}", tags(&answer));
    assert_eq!(metric(admin, "pgcached_cache_stale_served_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_serve_stale_an_expired_answer_is_not_served_and_the_client_gets_the_error() {
    let pg = PgCluster::start();
    items(&pg);
    let proxy = Proxy::start_with(&pg, |c| short_ttl(c, false)).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    tokio::time::sleep(Duration::from_millis(400)).await;
    pg.stop();
    let answer = ask(&mut c, READ).await;
    let error = error_of(&answer).unwrap_or_else(|| panic!("an error: {:?}", tags(&answer)));
    assert!(error.code().unwrap().starts_with("08"), "{}", error.summary());
    assert_eq!(tags(&answer), "EZ", "the session stays usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_the_breaker_fails_clients_fast_and_closes_within_two_seconds_of_its_return() {
    let pg = PgCluster::start();
    let (proxy, admin) = proxy_with_metrics(&pg, |c| c.cache.enabled = false).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
        assert_eq!(value(&ask(&mut c, "SELECT 1").await), "1");
        clients.push(c);
    }
    pg.stop();
    // The first checkout pays the connect and its retries, then opens the breaker.
    let first = ask(&mut clients[0], "SELECT 1").await;
    assert!(error_of(&first).is_some(), "{:?}", tags(&first));
    assert_eq!(metric(admin, "pgcached_upstream_down").await, 1.0);
    for c in &mut clients {
        let asked = Instant::now();
        let answer = ask(c, "SELECT 1").await;
        let took = asked.elapsed();
        let error = error_of(&answer).unwrap_or_else(|| panic!("an error: {:?}", tags(&answer)));
        assert_eq!(error.code().as_deref(), Some("08006"), "{}", error.summary());
        assert!(error.message().unwrap().contains("circuit breaker"), "names the breaker: {}", error.summary());
        assert!(took < Duration::from_millis(200), "failed fast, not after the connect and its retries: {took:?}");
    }
    assert!(metric(admin, "pgcached_upstream_fast_failures_total").await >= 8.0);
    pg.start_again();
    let back = Instant::now();
    loop {
        let answer = ask(&mut clients[1], "SELECT 1").await;
        if error_of(&answer).is_none() {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(2), "still failing {:?} after Postgres was back", back.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(admin, "pgcached_upstream_down").await, 0.0);
    for c in &mut clients {
        assert_eq!(value(&ask(c, "SELECT 2").await), "2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_refused_while_postgres_starts_is_retried_with_backoff_and_the_statement_succeeds() {
    let pg = PgCluster::start();
    let (proxy, admin) = proxy_with_metrics(&pg, |c| {
        c.cache.enabled = false;
        c.pool.retries = 8;
        c.pool.retry_backoff = Duration::from_millis(200);
    })
    .await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, "SELECT 1").await), "1");
    pg.stop();
    // Asked while Postgres is down; it comes back meanwhile. (A write, too, is safe here:
    // nothing is sent before a connection is open.)
    let asking = tokio::spawn(async move {
        let answer = ask(&mut c, "SELECT 42").await;
        (c, answer)
    });
    std::thread::sleep(Duration::from_millis(300));
    pg.start_again();
    let (_c, answer) = asking.await.unwrap();
    assert!(error_of(&answer).is_none(), "{:?}", common::raw::summaries(&answer));
    assert_eq!(value(&answer), "42");
    assert!(metric(admin, "pgcached_pool_connect_retries_total{database=\"app\",user=\"postgres\"}").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_postgres_restart_the_next_autocommit_read_succeeds_without_an_error() {
    let pg = PgCluster::start();
    items(&pg);
    let proxy = Proxy::start(&pg).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(RawClient::connect(proxy.port, "postgres", "app").await);
    }
    // Three idle connections in the pool, each held once at the same time.
    for c in &mut clients {
        c.query("SELECT pg_sleep(0.2)").flush().await;
    }
    for c in &mut clients {
        c.until_ready().await;
    }
    pg.restart();
    for (i, c) in clients.iter_mut().enumerate() {
        let answer = ask(c, &format!("SELECT name FROM items WHERE id = {}", i + 1)).await;
        assert!(error_of(&answer).is_none(), "{:?}", common::raw::summaries(&answer));
        assert_eq!(tags(&answer), "TDCZ");
    }
}

/// A proxy (cache on: statements are analysed) in front of `pg` through `link`.
async fn proxy_through(pg: &PgCluster, link: &FaultyLink) -> (Proxy, u16) {
    let port = link.port;
    proxy_with_metrics(pg, |c| c.upstream.url = format!("postgres://127.0.0.1:{port}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_pooled_connection_died_is_sent_again_on_another_without_an_error() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    for (death, id, name) in [(Death::Fatal, 2, "two"), (Death::Close, 3, "three")] {
        link.fail_next(death);
        let answer = ask(&mut c, &format!("SELECT name FROM items WHERE id = {id}")).await;
        assert!(error_of(&answer).is_none(), "{death:?}: {:?}", common::raw::summaries(&answer));
        assert_eq!(value(&answer), name);
    }
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_pooled_connection_died_is_not_sent_again() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    for (death, id) in [(Death::Fatal, 8), (Death::Close, 9)] {
        let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
        // The same write once, for the catalog's look-ups (they go through the link too).
        let first = ask(&mut c, &format!("INSERT INTO items VALUES ({id}, 'warm')")).await;
        assert!(error_of(&first).is_none(), "{:?}", common::raw::summaries(&first));
        link.fail_next(death);
        c.query("INSERT INTO items VALUES (10, 'ten')").flush().await;
        let got = next_error(&mut c).await;
        let code = got.code().unwrap();
        assert!(code == "57P01" || code.starts_with("08"), "{death:?}: {}", got.summary());
    }
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM items WHERE id = 10").trim(), "0", "never sent again");
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_in_a_transaction_whose_connection_died_is_not_sent_again() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    // The catalog knows the table now (its look-ups go through the link too).
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    assert!(error_of(&ask(&mut c, "BEGIN").await).is_none());
    assert_eq!(value(&ask(&mut c, "SELECT name FROM items WHERE id = 1 FOR SHARE").await), "one");
    link.fail_next(Death::Fatal);
    c.query("SELECT name FROM items WHERE id = 2").flush().await;
    let got = next_error(&mut c).await;
    assert_eq!(got.code().as_deref(), Some("57P01"), "the server's own FATAL, as directly");
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 0.0);
}

/// The client's next message: an ErrorResponse, within 5 s (not a wait).
async fn next_error(c: &mut RawClient) -> Msg {
    let got = c.recv_within(Duration::from_secs(5)).await.expect("an error, not a wait");
    assert_eq!(got.tag, 'E', "{}", got.summary());
    got
}

/// An extended-protocol read as drivers send it (psycopg, pgjdbc, node pg): unnamed Parse, Bind
/// with the id as a parameter, Describe of the portal, Execute, Sync.
async fn ask_extended(c: &mut RawClient, id: &str) -> Vec<Msg> {
    c.parse("", "SELECT name FROM items WHERE id = $1")
        .bind("", "", &[Some(id)], 0)
        .describe(b'P', "")
        .execute("", 0)
        .sync()
        .flush()
        .await;
    tokio::time::timeout(Duration::from_secs(15), c.until_ready()).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_answer_is_served_to_an_extended_batch_while_postgres_is_down() {
    let pg = PgCluster::start();
    items(&pg);
    let (proxy, admin) = proxy_with_metrics(&pg, |c| short_ttl(c, true)).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(tags(&ask_extended(&mut c, "1").await), "12TDCZ");
    // A named statement too: defined by the batch the stale answer stands in for.
    c.parse("named", "SELECT name FROM items WHERE id = $1")
        .bind("", "named", &[Some("2")], 0)
        .execute("", 0)
        .sync()
        .flush()
        .await;
    assert_eq!(tags(&c.until_ready().await), "12DCZ");
    tokio::time::sleep(Duration::from_millis(400)).await;
    pg.stop();

    let answer = ask_extended(&mut c, "1").await;
    assert_eq!(tags(&answer), "N12TDCZ", "the stale answer after its notice: {:?}", common::raw::summaries(&answer));
    assert_eq!(value(&answer), "one");
    assert_eq!(answer[0].code().as_deref(), Some("01000"));
    // Never one it has not got: id 3 was not cached.
    let error = ask_extended(&mut c, "3").await;
    assert_eq!(tags(&error), "EZ", "{:?}", common::raw::summaries(&error));
    assert!(error[0].code().unwrap().starts_with("08"), "{}", error[0].summary());
    c.parse("again", "SELECT name FROM items WHERE id = $1")
        .bind("", "again", &[Some("2")], 0)
        .execute("", 0)
        .sync()
        .flush()
        .await;
    let named = c.until_ready().await;
    assert_eq!(tags(&named), "N12DCZ", "{:?}", common::raw::summaries(&named));
    assert_eq!(metric(admin, "pgcached_cache_stale_served_total").await, 2.0);

    // Back: the statement the stale answer defined is the client's, and runs on Postgres.
    pg.start_again();
    let back = Instant::now();
    loop {
        c.bind("", "again", &[Some("3")], 0).execute("", 0).sync().flush().await;
        let answer = c.until_ready().await;
        if error_of(&answer).is_none() {
            assert_eq!(tags(&answer), "2DCZ", "{:?}", common::raw::summaries(&answer));
            assert_eq!(value(&answer), "three");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(2), "{:?}", common::raw::summaries(&answer));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_read_whose_pooled_connection_died_is_sent_again_on_another_without_an_error() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask_extended(&mut c, "1").await), "one");
    for (death, id, name) in [(Death::Fatal, "2", "two"), (Death::Close, "3", "three")] {
        link.fail_next(death);
        let answer = ask_extended(&mut c, id).await;
        assert!(error_of(&answer).is_none(), "{death:?}: {:?}", common::raw::summaries(&answer));
        assert_eq!(tags(&answer), "12TDCZ");
        assert_eq!(value(&answer), name);
    }
    // A statement the client named earlier: prepared again on the connection it is sent to.
    c.parse("s", "SELECT name FROM items WHERE id = $1").sync().flush().await;
    assert_eq!(tags(&c.until_ready().await), "1Z");
    c.bind("", "s", &[Some("4")], 0).execute("", 0).sync().flush().await;
    assert_eq!(tags(&c.until_ready().await), "2CZ", "no row 4 yet");
    pg.psql_db("app", "INSERT INTO items VALUES (5, 'five')");
    link.fail_next(Death::Fatal);
    c.bind("", "s", &[Some("5")], 0).execute("", 0).sync().flush().await;
    let answer = c.until_ready().await;
    assert_eq!(tags(&answer), "2DCZ", "{:?}", common::raw::summaries(&answer));
    assert_eq!(value(&answer), "five");
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 3.0);
    // And the session goes on as before: the answers were cached.
    assert_eq!(tags(&ask_extended(&mut c, "2").await), "12TDCZ");
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_write_or_a_batch_behind_another_is_not_sent_again() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    // The same write once, for the catalog's look-ups (they go through the link too).
    c.parse("", "INSERT INTO items VALUES ($1, 'ten')")
        .bind("", "", &[Some("9")], 0)
        .execute("", 0)
        .sync()
        .flush()
        .await;
    let warm = c.until_ready().await;
    assert!(error_of(&warm).is_none(), "{:?}", common::raw::summaries(&warm));
    link.fail_next(Death::Fatal);
    c.parse("", "INSERT INTO items VALUES ($1, 'ten')")
        .bind("", "", &[Some("10")], 0)
        .execute("", 0)
        .sync()
        .flush()
        .await;
    next_error(&mut c).await;
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM items WHERE id = 10").trim(), "0", "never sent again");

    // Two reads pipelined: the first may not be sent again alone (the second went to the dead
    // connection too), so the client hears of the death.
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    let warm = ask_extended(&mut c, "1").await;
    assert!(error_of(&warm).is_none(), "{:?}", common::raw::summaries(&warm));
    link.fail_next(Death::Fatal);
    for id in ["2", "3"] {
        c.parse("", "SELECT name FROM items WHERE id = $1").bind("", "", &[Some(id)], 0).execute("", 0).sync();
    }
    c.flush().await;
    next_error(&mut c).await;
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_another_pipelined_behind_it_is_not_sent_again_alone() {
    let pg = PgCluster::start();
    items(&pg);
    let link = FaultyLink::start(pg.port()).await;
    let (proxy, admin) = proxy_through(&pg, &link).await;
    let mut c = RawClient::connect(proxy.port, "postgres", "app").await;
    assert_eq!(value(&ask(&mut c, READ).await), "one");
    link.fail_next(Death::Fatal);
    // Both reach the dead connection: sending the first again alone would give the second's
    // place in the queue to its answer.
    c.query("SELECT name FROM items WHERE id = 2").query("SELECT name FROM items WHERE id = 3").flush().await;
    next_error(&mut c).await;
    assert_eq!(metric(admin, "pgcached_statement_retries_total").await, 0.0);
}
