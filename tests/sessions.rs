//! Session behaviour through pgcached: errors and recovery, transactions, COPY, LISTEN/NOTIFY,
//! cancel, and per-client parameters that never leak to another client.

mod common;

use std::time::Duration;

use common::{PgCluster, Proxy, connect};
use futures::{SinkExt, StreamExt, TryStreamExt};
use pgcached::config::PoolMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_reported_with_its_sqlstate_and_the_session_recovers() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let err = c.simple_query("SELECT * FROM no_such_table").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    let err = c.query("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let row = c.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    // An error in the middle of a multi-statement string stops the rest, as directly.
    let err = c.batch_execute("CREATE TEMP TABLE t1(x int); SELECT 1/0; CREATE TABLE never(x int)").await;
    assert!(err.is_err());
    let exists = c.query_one("SELECT to_regclass('never') IS NOT NULL", &[]).await.unwrap();
    assert!(!exists.get::<_, bool>(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_keeps_and_rollback_discards() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (x int)");
    let proxy = Proxy::start(&pg).await;
    let mut c = connect(&proxy.url("postgres", "app")).await;

    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
    tx.rollback().await.unwrap();
    // A failed transaction reports 25P02 until ROLLBACK, exactly as directly.
    c.batch_execute("BEGIN; INSERT INTO t VALUES (3)").await.unwrap();
    assert!(c.batch_execute("SELECT 1/0").await.is_err());
    let err = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();

    let rows: Vec<i32> = c.query("SELECT x FROM t ORDER BY x", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(rows, vec![1]);
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_copy_out_pass_through() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE c (id int, name text, raw bytea)");
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;

    let sink = c.copy_in("COPY c FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..2000 {
        data.push_str(&format!("{i}\tname {i}\t\\\\x00ff{:02x}\n", i % 256));
    }
    sink.send(bytes::Bytes::from(data.clone())).await.unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 2000);

    let stream = c.copy_out("COPY (SELECT * FROM c ORDER BY id) TO STDOUT").await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let out: Vec<u8> = chunks.concat();
    assert_eq!(String::from_utf8(out).unwrap(), data);

    // A COPY that fails on bad data reports Postgres's error and the session goes on.
    let sink = c.copy_in("COPY c FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"not-a-number\tx\t\\\\x00\n")).await.unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P02");
    assert_eq!(c.query_one("SELECT count(*) FROM c", &[]).await.unwrap().get::<_, i64>(0), 2000);
}

/// COPY TO STDOUT lines larger than a server read (CopyData passed on in pieces:
/// `session::passing`) arrive whole and in order, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_lines_larger_than_a_read_arrive_whole() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let copy = "COPY (SELECT g, (SELECT string_agg(md5(x::text || g::text), '') FROM generate_series(1, g * 9000) x) \
                FROM generate_series(1, 4) g) TO STDOUT";
    let direct = connect(&pg.url("postgres", "app")).await;
    let want: Vec<u8> = direct.copy_out(copy).await.unwrap().try_collect::<Vec<_>>().await.unwrap().concat();
    let got: Vec<u8> = c.copy_out(copy).await.unwrap().try_collect::<Vec<_>>().await.unwrap().concat();
    assert!(want.len() > 1 << 20, "lines of 288 KB to 1.1 MB: {}", want.len());
    assert!(got == want, "{} bytes through the proxy, {} direct", got.len(), want.len());
    assert_eq!(c.query_one("SELECT 5", &[]).await.unwrap().get::<_, i32>(0), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_notify_is_delivered_in_session_mode() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.pool.mode = PoolMode::Session).await;
    let (listener, mut conn) =
        tokio_postgres::connect(&proxy.url("postgres", "app"), tokio_postgres::NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
    tokio::spawn(stream.for_each(move |m| {
        if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
            let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
        }
        futures::future::ready(())
    }));
    listener.batch_execute("LISTEN jobs").await.unwrap();
    let sender = connect(&proxy.url("postgres", "app")).await;
    sender.batch_execute("NOTIFY jobs, 'hello'").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("notification in time");
    assert_eq!(got, Some(("jobs".to_string(), "hello".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_running_query_of_that_client_only() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    let token = a.cancel_token();
    let other =
        tokio::spawn(async move { b.query_one("SELECT pg_sleep(1.5), 7", &[]).await.map(|r| r.get::<_, i32>(1)) });
    let running = tokio::spawn(async move { a.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), running).await.expect("cancelled in time").unwrap();
    assert_eq!(res.unwrap_err().code().unwrap().code(), "57014");
    assert_eq!(other.await.unwrap().unwrap(), 7, "the other client's query was not cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_in_one_client_does_not_leak_into_another() {
    let pg = PgCluster::start();
    // One server connection: both clients must share it.
    let proxy = Proxy::start_with(&pg, |c| c.pool.max_size = 1).await;
    let a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    let default_tz = show(&b, "TimeZone").await;
    a.batch_execute("SET TimeZone = 'Pacific/Auckland'").await.unwrap();
    a.batch_execute("SET search_path TO pg_catalog, public").await.unwrap();
    assert_eq!(show(&a, "TimeZone").await, "Pacific/Auckland");
    assert_eq!(show(&b, "TimeZone").await, default_tz);
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    // …and a's settings are still a's, on whatever server connection it lands.
    assert_eq!(show(&a, "TimeZone").await, "Pacific/Auckland");
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
    // A SET rolled back is not carried.
    a.batch_execute("BEGIN; SET search_path TO x; ROLLBACK").await.unwrap();
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
}

/// Pure pass-through (no cache, no policy) skips analysing statements that cannot change
/// session state; what can must still be followed, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_followed_in_pure_pass_through_in_both_protocols() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.cache.enabled = false;
    })
    .await;
    let a = connect(&proxy.url("postgres", "app")).await;
    let b = connect(&proxy.url("postgres", "app")).await;
    let default_tz = show(&b, "TimeZone").await;
    // Extended protocol (tokio-postgres prepares named statements), then the simple one.
    a.execute("SET TimeZone = 'Pacific/Auckland'", &[]).await.unwrap();
    a.execute("SELECT set_config('search_path', $1, false)", &[&"pg_catalog, public"]).await.unwrap();
    a.batch_execute("SET application_name = 'a_simple'").await.unwrap();
    // Plain reads in between (the skipped path) change nothing.
    a.query("SELECT 1 WHERE $1::int = 1", &[&1i32]).await.unwrap();
    assert_eq!(show(&b, "TimeZone").await, default_tz);
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    assert_ne!(show(&b, "application_name").await, "a_simple");
    assert_eq!(show(&a, "TimeZone").await, "Pacific/Auckland");
    assert_eq!(show(&a, "search_path").await, "pg_catalog, public");
    // Unnamed statements (`query_typed`): a setting after a remembered plain text (see
    // `is_plain_parse`) is still followed.
    use tokio_postgres::types::Type;
    a.query_typed("SELECT 1 WHERE $1::int = 1", &[(&1i32, Type::INT4)]).await.unwrap();
    a.query_typed("SELECT 1 WHERE $1::int = 1", &[(&1i32, Type::INT4)]).await.unwrap();
    a.query_typed("SELECT set_config('search_path', $1, false)", &[(&"public", Type::TEXT)]).await.unwrap();
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    assert_eq!(show(&a, "search_path").await, "public");
    assert_eq!(show(&a, "application_name").await, "a_simple");
    // Simple protocol, past the byte scan (`keywords::words_may_change_session`): an UPDATE's
    // SET clause changes nothing; a SET statement after one in the same string is followed.
    a.batch_execute("CREATE TABLE pass_t (v int); UPDATE pass_t SET v = 1").await.unwrap();
    // search_path: not reported by the server (ParameterStatus), so only the statement tells.
    a.batch_execute("UPDATE pass_t SET v = 2; SET search_path TO pg_catalog").await.unwrap();
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    assert_eq!(show(&a, "search_path").await, "pg_catalog");
}

async fn show(c: &tokio_postgres::Client, name: &str) -> String {
    c.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0)
}
