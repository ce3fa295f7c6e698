//! The Unix-domain socket (`unix_socket_dir`): psql and tokio-postgres reach pgcached by a
//! directory and a port as they reach Postgres; the socket is local (TLS declined, trust
//! accepted), cancels work over it, `SHOW CLIENTS` says `unix`, and the file goes at shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::console::{show, value};
use common::{PgCluster, Proxy, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The socket file of the proxy on `port` in `dir`, once the proxy (started in the background)
/// has bound it.
async fn socket_of(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join(format!(".s.PGSQL.{port}"));
    for _ in 0..200 {
        if path.exists() {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no socket at {} after 10 s", path.display());
}

/// A tokio-postgres connection over the socket in `dir`.
async fn connect_unix(dir: &Path, port: u16, user: &str, db: &str) -> tokio_postgres::Client {
    let mut config = tokio_postgres::Config::new();
    config.host_path(dir).port(port).user(user).dbname(db);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connect over the Unix socket");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_the_socket_get_sessions_cancels_and_the_console_and_the_file_goes_at_shutdown() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one')");
    let dir = tempfile::tempdir().unwrap();
    let socket_dir = dir.path().to_path_buf();
    let proxy = Proxy::start_with(&pg, move |c| {
        c.unix_socket_dir = Some(socket_dir);
        c.admin.users = vec!["postgres".into()];
    })
    .await;
    let socket = socket_of(dir.path(), proxy.port).await;

    // tokio-postgres, both protocols; trust authentication holds on the socket as on loopback.
    let client = connect_unix(dir.path(), proxy.port, "postgres", "app").await;
    let row = client.query_one("SELECT v FROM kv WHERE k = $1", &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "one");
    let answer = client.simple_query("SELECT v FROM kv WHERE k = 1").await.unwrap();
    assert!(matches!(&answer[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("one")), "{answer:?}");

    // psql (libpq) by directory and port, as it reaches Postgres's own socket.
    let out = Command::new("psql")
        .args(["-X", "-At", "-h"])
        .arg(dir.path())
        .args(["-p", &proxy.port.to_string(), "-U", "postgres", "-d", "app", "-c", "SELECT v FROM kv WHERE k = 1"])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql over the socket: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one");

    // A cancel sent over the socket reaches the statement that runs.
    // (Sent again until it lands: one that arrives before the sleep starts is ignored, as
    // Postgres ignores it.)
    let token = client.cancel_token();
    let mut running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    let mut cancelled = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        token.cancel_query(tokio_postgres::NoTls).await.expect("send the cancel over the socket");
        if let Ok(done) = tokio::time::timeout(Duration::from_secs(1), &mut running).await {
            cancelled = Some(done.unwrap());
            break;
        }
    }
    let cancelled = cancelled.expect("the sleep was not cancelled");
    assert_eq!(cancelled.unwrap_err().code().map(|c| c.code()), Some("57014"));

    // The console shows where its clients came from.
    let on_socket = connect_unix(dir.path(), proxy.port, "postgres", "app").await;
    on_socket.simple_query("SELECT 1").await.unwrap();
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let clients = show(&admin, "SHOW CLIENTS").await;
    let addrs: Vec<&str> = clients.iter().map(|r| value(r, "addr")).collect();
    assert!(addrs.contains(&"unix"), "{clients:?}");
    assert!(addrs.contains(&"127.0.0.1"), "{clients:?}");
    let config = show(&admin, "SHOW CONFIG").await;
    let dir_shown = config.iter().find(|r| value(r, "key") == "unix_socket_dir").map(|r| value(r, "value"));
    assert_eq!(dir_shown, Some(dir.path().to_str().unwrap()), "{config:?}");

    drop((on_socket, admin));
    proxy.shutdown().await;
    assert!(!socket.exists(), "the socket's file outlived pgcached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_declines_tls_and_takes_plaintext_where_tcp_requires_tls() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let socket_dir = dir.path().to_path_buf();
    let proxy = Proxy::start_with(&pg, move |c| {
        c.unix_socket_dir = Some(socket_dir);
        c.tls.mode = pgcached::config::ClientTlsMode::Require;
        c.tls.cert = Some(cert_path);
        c.tls.key = Some(key_path);
    })
    .await;
    // Plaintext over TCP is refused (tls.mode: require)…
    let socket = socket_of(dir.path(), proxy.port).await;
    let plaintext = format!("{}?sslmode=disable", proxy.url("postgres", "app"));
    let refused = common::try_connect(&plaintext).await.expect_err("TCP needs TLS");
    assert_eq!(refused.code().map(|c| c.code()), Some("28000"), "{refused}");

    // …on the socket an SSLRequest is answered `N`, as Postgres answers on its own socket, and
    // the plaintext startup that follows gets a session.
    let mut raw = UnixStream::connect(&socket).await.unwrap();
    raw.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await.unwrap();
    let mut answer = [0u8; 1];
    raw.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    drop(raw);
    let client = connect_unix(dir.path(), proxy.port, "postgres", "app").await;
    assert_eq!(common::simple_one(&client, "SELECT 41 + 1").await.as_deref(), Some("42"));
}
