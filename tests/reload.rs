//! Configuration reload (`RELOAD` in the admin console) of a real proxy reading a real file: a
//! changed policy applies to the next transaction of an open session, a transaction in
//! progress finishes under the old one, an invalid file changes nothing, restart-only settings
//! are kept and said, pools resize.

mod common;

use common::console::lookup;
use common::{PgCluster, Proxy, connect, simple_one};
use tokio_postgres::{Client, SimpleQueryMessage};

fn yaml(pg: &PgCluster, port: u16, more: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\nupstream:\n  url: postgres://127.0.0.1:{}\n  tls: disable\nadmin:\n  users: [postgres]\n{more}",
        pg.port()
    )
}

const LOCKED: &str = "policies:\n  - name: locked\n    deny_tables: [kv]\n";

/// `RELOAD`: the error when it fails.
async fn reload(admin: &Client) -> Result<(), tokio_postgres::Error> {
    let messages = admin.simple_query("RELOAD").await?;
    assert!(messages.iter().any(|m| matches!(m, SimpleQueryMessage::CommandComplete(_))), "{messages:?}");
    Ok(())
}

async fn refused(client: &Client, sql: &str) -> String {
    let e = client.simple_query(sql).await.expect_err("refused by the policy");
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e}");
    e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_policy_holds_from_the_next_transaction_and_an_invalid_file_changes_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgcached.yaml");
    let proxy = Proxy::start_reloadable(&file, |port| yaml(&pg, port, "")).await;
    let port = proxy.port;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let open = connect(&proxy.url("postgres", "app")).await;
    let in_block = connect(&proxy.url("postgres", "app")).await;
    assert_eq!(simple_one(&open, "SELECT v FROM kv WHERE k = 1").await.as_deref(), Some("one"));
    in_block.batch_execute("BEGIN").await.unwrap();
    assert_eq!(simple_one(&in_block, "SELECT v FROM kv WHERE k = 1").await.as_deref(), Some("one"));

    std::fs::write(&file, yaml(&pg, port, LOCKED)).unwrap();
    reload(&admin).await.expect("a valid file reloads");

    let message = refused(&open, "SELECT v FROM kv WHERE k = 1").await;
    assert!(message.contains("\"locked\""), "the new policy refuses: {message}");
    assert_eq!(simple_one(&open, "SELECT 1").await.as_deref(), Some("1"), "the open session stays connected");
    assert_eq!(
        simple_one(&in_block, "SELECT v FROM kv WHERE k = 1").await.as_deref(),
        Some("one"),
        "a transaction in progress finishes under the configuration it began with"
    );
    in_block.batch_execute("COMMIT").await.unwrap();
    refused(&in_block, "SELECT v FROM kv WHERE k = 1").await;
    let new_client = connect(&proxy.url("postgres", "app")).await;
    refused(&new_client, "SELECT v FROM kv WHERE k = 1").await;

    // An invalid file: refused whole with the reason, the running configuration kept.
    std::fs::write(&file, yaml(&pg, port, "policies:\n  - name: typo\n    deny_statements: [dll]\n")).unwrap();
    let e = reload(&admin).await.expect_err("an invalid file is refused");
    assert_eq!(e.code().map(|c| c.code()), Some("F0000"), "{e}");
    let reason = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
    assert!(reason.contains("dll"), "the error names the mistake: {reason}");
    refused(&open, "SELECT v FROM kv WHERE k = 1").await;
    std::fs::write(&file, "listen: [unclosed").unwrap();
    reload(&admin).await.expect_err("unparseable YAML is refused");
    refused(&open, "SELECT v FROM kv WHERE k = 1").await;

    // Back to no policy: the same open session reads again.
    std::fs::write(&file, yaml(&pg, port, "")).unwrap();
    reload(&admin).await.unwrap();
    assert_eq!(simple_one(&open, "SELECT v FROM kv WHERE k = 1").await.as_deref(), Some("one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_only_settings_are_kept_and_pools_resize() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgcached.yaml");
    let pool = |size: u32| format!("pool:\n  max_size: {size}\n  acquire_timeout: 300ms\n");
    let proxy = Proxy::start_reloadable(&file, |port| yaml(&pg, port, &pool(4))).await;
    let port = proxy.port;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let app = connect(&proxy.url("postgres", "postgres")).await;
    assert_eq!(simple_one(&app, "SELECT 1").await.as_deref(), Some("1"));
    let pool_size = || lookup(&admin, "SHOW POOLS", "database", "postgres", "pool_size");
    assert_eq!(pool_size().await.as_deref(), Some("4"));

    // A new listen address (restart only) and a smaller pool (live).
    let other = common::free_port();
    let text = yaml(&pg, port, &pool(2)).replace(&format!(":{port}\n"), &format!(":{other}\n"));
    std::fs::write(&file, text).unwrap();
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (client, connection) =
        tokio_postgres::connect(&proxy.url("postgres", "pgcached"), tokio_postgres::NoTls).await.unwrap();
    let seen = notices.clone();
    tokio::spawn(async move {
        let mut connection = connection;
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                seen.lock().unwrap().push(n.message().to_string());
            }
        }
    });
    client.simple_query("RELOAD").await.expect("reload");
    let said = notices.lock().unwrap().clone();
    assert!(said.iter().any(|n| n.starts_with("listen changed") && n.contains("restart")), "{said:?}");
    assert!(said.iter().any(|n| n.contains("pool.max_size 4 -> 2")), "{said:?}");
    assert_eq!(pool_size().await.as_deref(), Some("2"));
    let listen = lookup(&admin, "SHOW CONFIG", "key", "listen", "value").await;
    assert_eq!(listen, Some(format!("127.0.0.1:{port}")), "the running listen address is kept");
    assert_eq!(simple_one(&app, "SELECT 2").await.as_deref(), Some("2"), "clients keep being served");

    // The pool really holds two now: two open transactions take both, a third waits and fails.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let c = connect(&proxy.url("postgres", "postgres")).await;
        c.batch_execute("BEGIN; SELECT now()").await.unwrap();
        holders.push(c);
    }
    let e = app.simple_query("SELECT now()").await.expect_err("no third connection");
    assert_eq!(e.code().map(|c| c.code()), Some("53300"), "{e}");
    drop(holders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_query_threshold_changes_with_a_reload() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgcached.yaml");
    let http = common::free_port();
    let body = |port: u16, slow: &str| {
        let text = yaml(&pg, port, &format!("stats:\n  slow_query: {slow}\n"));
        text.replace("admin:\n", &format!("admin:\n  http_listen: 127.0.0.1:{http}\n"))
    };
    let proxy = Proxy::start_reloadable(&file, |port| body(port, "0")).await;
    let port = proxy.port;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let app = connect(&proxy.url("postgres", "postgres")).await;
    simple_one(&app, "SELECT pg_sleep(0.2)").await;
    let slow = || async {
        let (_, metrics) = common::http::get(http, "/metrics").await;
        common::http::sample(&metrics, "pgcached_slow_queries_total")
    };
    assert_eq!(slow().await, Some(0.0), "off: nothing is slow");
    std::fs::write(&file, body(port, "100ms")).unwrap();
    reload(&admin).await.unwrap();
    simple_one(&app, "SELECT pg_sleep(0.2)").await;
    simple_one(&app, "SELECT 1").await;
    assert_eq!(slow().await, Some(1.0), "the reloaded threshold applies to the open session");
}
