//! The admin console's control commands against a real proxy: `PAUSE` waits for a transaction
//! in progress and then really holds the next one until `RESUME`; `KILL CLIENT` ends one session
//! and loses its open transaction; `SHUTDOWN` drains as SIGTERM does.

mod common;

use std::time::Duration;

use common::console::lookup;
use common::{PgCluster, Proxy, connect, simple_one};
use tokio_postgres::Client;

async fn setup() -> (PgCluster, Proxy, Client) {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');");
    let proxy = Proxy::start_with(&pg, |c| c.admin.users = vec!["postgres".into()]).await;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    (pg, proxy, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_waits_for_the_transaction_in_progress_then_holds_new_ones_until_resume() {
    let (_pg, proxy, admin) = setup().await;
    let in_block = connect(&proxy.url("postgres", "app")).await;
    let later = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(simple_one(&later, "SELECT 1").await.as_deref(), Some("1"));
    in_block.batch_execute("BEGIN; UPDATE kv SET v = 'uno' WHERE k = 1").await.unwrap();

    let pausing = tokio::spawn(async move {
        admin.simple_query("PAUSE app").await.expect("PAUSE");
        admin
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!pausing.is_finished(), "PAUSE waits for the transaction in progress");
    in_block.batch_execute("COMMIT").await.expect("the transaction in progress finishes");
    let admin = tokio::time::timeout(Duration::from_secs(5), pausing).await.expect("PAUSE returns").unwrap();
    assert_eq!(lookup(&admin, "SHOW DATABASES", "name", "app", "paused").await.as_deref(), Some("true"));
    let open = lookup(&admin, "SHOW DATABASES", "name", "app", "current_connections").await;
    assert_eq!(open.as_deref(), Some("0"), "paused: no server connection is left open");

    // A new transaction is held (not refused) while paused…
    let held = tokio::spawn(async move { simple_one(&later, "SELECT v FROM kv WHERE k = 1 FOR UPDATE").await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!held.is_finished(), "a paused database holds new transactions");
    let waiting = lookup(&admin, "SHOW POOLS", "database", "app", "cl_waiting").await;
    assert_eq!(waiting.as_deref(), Some("1"), "the held client shows as waiting");
    // …and goes on at RESUME.
    admin.simple_query("RESUME app").await.unwrap();
    let v = tokio::time::timeout(Duration::from_secs(5), held).await.expect("released by RESUME").unwrap();
    assert_eq!(v.as_deref(), Some("uno"));
    assert_eq!(lookup(&admin, "SHOW DATABASES", "name", "app", "paused").await.as_deref(), Some("false"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_client_ends_one_session_and_its_open_transaction() {
    let (pg, proxy, admin) = setup().await;
    let url = format!("{}?application_name=victim", proxy.url("postgres", "app"));
    let (victim, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    let ended = tokio::spawn(connection);
    let bystander = connect(&proxy.url("postgres", "app")).await;
    victim.batch_execute("BEGIN; INSERT INTO kv VALUES (2, 'two')").await.unwrap();

    let id = lookup(&admin, "SHOW CLIENTS", "application_name", "victim", "id").await.expect("the victim is listed");
    admin.simple_query(&format!("KILL CLIENT {id}")).await.expect("KILL CLIENT");
    let closed = tokio::time::timeout(Duration::from_secs(5), ended).await.expect("the connection ends").unwrap();
    let e = closed.expect_err("ended by the proxy with an error");
    assert_eq!(e.code().map(|c| c.code()), Some("57P01"), "{e}");
    assert!(victim.simple_query("SELECT 1").await.is_err());
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM kv").trim(), "1", "the open transaction was lost");
    assert_eq!(simple_one(&bystander, "SELECT count(*) FROM kv").await.as_deref(), Some("1"), "others go on");

    let e = admin.simple_query("KILL CLIENT 987654").await.expect_err("unknown id");
    assert_eq!(e.code().map(|c| c.code()), Some("42704"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_from_the_console_drains_like_sigterm() {
    let (_pg, proxy, admin) = setup().await;
    let client = connect(&proxy.url("postgres", "app")).await;
    client.batch_execute("BEGIN").await.unwrap();
    admin.simple_query("SHUTDOWN").await.expect("SHUTDOWN");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(common::try_connect(&proxy.url("postgres", "app")).await.is_err(), "no new clients once shutdown began");
    assert_eq!(simple_one(&client, "SELECT 5").await.as_deref(), Some("5"), "the open transaction may finish");
    client.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), proxy.wait()).await.expect("the proxy stops once drained");
}
