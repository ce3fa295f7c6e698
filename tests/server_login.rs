//! One upstream connection against a private Postgres: login per auth method and TLS mode,
//! `run_hidden`, the idle check after a server restart, and cancel.

mod common;

use std::time::Duration;

use common::{PgCluster, PgOptions};
use pgcached::config::{UpstreamConfig, UpstreamTls};
use pgcached::server::{ServerConn, ServerError, UpstreamTarget, send_cancel};

fn target(pg: &PgCluster, tls: UpstreamTls) -> UpstreamTarget {
    target_url(&format!("postgres://127.0.0.1:{}", pg.port()), tls)
}

fn target_url(url: &str, tls: UpstreamTls) -> UpstreamTarget {
    UpstreamTarget::from_config(&UpstreamConfig { url: url.into(), tls, ca_file: None }).unwrap()
}

/// A cluster whose TCP logins use `method` for everyone, with role alice (password `s3cret`).
fn cluster_with(method: &str, ssl: bool) -> PgCluster {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some(format!("host all all 127.0.0.1/32 {method}\n")),
        ssl,
        ..PgOptions::default()
    });
    let encryption = if method == "md5" { "md5" } else { "scram-sha-256" };
    pg.psql(&format!("SET password_encryption = '{encryption}'; CREATE ROLE alice LOGIN PASSWORD 's3cret'"));
    pg
}

async fn login(t: &UpstreamTarget, user: &str, password: Option<&str>) -> Result<ServerConn, ServerError> {
    ServerConn::connect(t, user, "postgres", password).await
}

fn assert_code(r: Result<ServerConn, ServerError>, code: &str) {
    match r {
        Err(ServerError::Postgres { code: c, raw, .. }) => {
            assert_eq!(c, code);
            assert_eq!(raw[0], b'E', "raw is the whole ErrorResponse frame");
        }
        Err(e) => panic!("expected SQLSTATE {code}, got {e}"),
        Ok(_) => panic!("expected SQLSTATE {code}, got a connection"),
    }
}

#[tokio::test]
async fn trust_login_reports_parameters_and_backend_key() {
    let pg = PgCluster::start();
    let mut conn = login(&target(&pg, UpstreamTls::Disable), "postgres", None).await.unwrap();
    assert!(conn.params.contains_key("server_version"), "{:?}", conn.params);
    assert_eq!(conn.params.get("client_encoding").map(String::as_str), Some("UTF8"));
    assert_ne!(conn.backend_key.0, 0);
    assert!(matches!(conn.addr, pgcached::server::ServerAddr::Tcp(a) if a.port() == pg.port()), "{:?}", conn.addr);
    conn.run_hidden("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn md5_login_with_the_right_password_and_28p01_with_a_wrong_one() {
    let pg = cluster_with("md5", false);
    let t = target(&pg, UpstreamTls::Disable);
    let mut conn = login(&t, "alice", Some("s3cret")).await.unwrap();
    conn.run_hidden("SELECT 1").await.unwrap();
    assert_code(login(&t, "alice", Some("wrong")).await, "28P01");
}

#[tokio::test]
async fn scram_login_with_the_right_password_and_28p01_with_a_wrong_one() {
    let pg = cluster_with("scram-sha-256", false);
    let t = target(&pg, UpstreamTls::Disable);
    login(&t, "alice", Some("s3cret")).await.unwrap();
    assert_code(login(&t, "alice", Some("wrong")).await, "28P01");
}

#[tokio::test]
async fn cleartext_login_and_missing_password() {
    let pg = cluster_with("password", false);
    let t = target(&pg, UpstreamTls::Disable);
    login(&t, "alice", Some("s3cret")).await.unwrap();
    assert_code(login(&t, "alice", Some("nope")).await, "28P01");
    assert!(matches!(login(&t, "alice", None).await, Err(ServerError::NoPassword { .. })));
}

#[tokio::test]
async fn unknown_database_is_the_servers_3d000() {
    let pg = PgCluster::start();
    let t = target(&pg, UpstreamTls::Disable);
    assert_code(ServerConn::connect(&t, "postgres", "no_such_db", None).await, "3D000");
}

#[tokio::test]
async fn tls_require_encrypts_and_scram_works_over_it() {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some("hostssl all all 127.0.0.1/32 scram-sha-256\n".into()),
        ssl: true,
        ..PgOptions::default()
    });
    pg.psql("CREATE ROLE alice LOGIN PASSWORD 's3cret'");
    let t = target(&pg, UpstreamTls::Require);
    let mut conn = login(&t, "alice", Some("s3cret")).await.unwrap();
    conn.run_hidden("SELECT 1").await.unwrap();
    let pid = conn.backend_key.0;
    let ssl = pg.psql(&format!("SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}"));
    assert_eq!(ssl.trim(), "t");
    // The same cluster refuses a plain connection (only hostssl lines).
    assert_code(login(&target(&pg, UpstreamTls::Disable), "alice", Some("s3cret")).await, "28000");
}

#[tokio::test]
async fn tls_require_fails_against_a_server_without_tls_and_prefer_falls_back() {
    let pg = PgCluster::start();
    let err = login(&target(&pg, UpstreamTls::Require), "postgres", None).await.err().unwrap();
    assert!(matches!(err, ServerError::TlsRefused), "{err}");
    login(&target(&pg, UpstreamTls::Prefer), "postgres", None).await.unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_it_cannot_verify() {
    let pg = PgCluster::start_with(PgOptions { ssl: true, ..PgOptions::default() });
    let url = format!("postgres://localhost:{}", pg.port());
    let t = match UpstreamTarget::from_config(&UpstreamConfig { url, tls: UpstreamTls::VerifyFull, ca_file: None }) {
        Ok(t) => t,
        Err(ServerError::Config(_)) => return, // no native roots on this machine: nothing to verify against
        Err(e) => panic!("{e}"),
    };
    let err = login(&t, "postgres", None).await.err().unwrap();
    assert!(matches!(err, ServerError::Tls(_)), "{err}");
}

#[tokio::test]
async fn run_hidden_records_parameter_changes() {
    let pg = PgCluster::start();
    let mut conn = login(&target(&pg, UpstreamTls::Disable), "postgres", None).await.unwrap();
    conn.run_hidden("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    assert_eq!(conn.params.get("TimeZone").map(String::as_str), Some("Asia/Tokyo"));
    conn.run_hidden("SET application_name = 'hidden'; SET DateStyle = 'SQL, DMY'").await.unwrap();
    assert_eq!(conn.params.get("application_name").map(String::as_str), Some("hidden"));
    assert_eq!(conn.params.get("DateStyle").map(String::as_str), Some("SQL, DMY"));
}

#[tokio::test]
async fn run_hidden_reports_errors_and_stays_in_sync() {
    let pg = PgCluster::start();
    let mut conn = login(&target(&pg, UpstreamTls::Disable), "postgres", None).await.unwrap();
    let err = conn.run_hidden("SELECT 1; SELECT 1/0; SELECT 2").await.unwrap_err();
    match &err {
        ServerError::Postgres { code, severity, raw, .. } => {
            assert_eq!((code.as_str(), severity.as_str()), ("22012", "ERROR"));
            assert_eq!(raw[0], b'E');
        }
        other => panic!("{other}"),
    }
    assert!(!conn.broken, "an ERROR leaves the connection usable");
    conn.run_hidden("SELECT 3").await.unwrap();
    conn.run_hidden("").await.unwrap();
    conn.check_idle().unwrap();
    // COPY FROM STDIN from a hidden statement is refused without losing sync.
    conn.run_hidden("CREATE TEMP TABLE t (x int)").await.unwrap();
    assert!(conn.run_hidden("COPY t FROM STDIN").await.is_err());
    conn.run_hidden("SELECT 4").await.unwrap();
}

#[tokio::test]
async fn idle_connection_is_seen_dead_after_a_server_restart() {
    let pg = PgCluster::start();
    let mut conn = login(&target(&pg, UpstreamTls::Disable), "postgres", None).await.unwrap();
    conn.check_idle().unwrap();
    pg.restart();
    // The FATAL (57P01) and EOF arrive asynchronously; give the kernel a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = conn.check_idle().unwrap_err();
    assert!(
        matches!(&err, ServerError::Postgres { code, .. } if code == "57P01") || matches!(err, ServerError::Closed),
        "{err}"
    );
    assert!(conn.broken);
}

#[tokio::test]
async fn cancel_stops_a_running_statement() {
    let pg = PgCluster::start();
    let t = std::sync::Arc::new(target(&pg, UpstreamTls::Disable));
    let mut conn = login(&t, "postgres", None).await.unwrap();
    let (addr, (pid, secret)) = (conn.addr, conn.backend_key);
    let running = tokio::spawn(async move {
        let r = conn.run_hidden("SELECT pg_sleep(30)").await;
        (r, conn)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_cancel(&t, addr, pid, secret).await.unwrap();
    let (r, mut conn) = tokio::time::timeout(Duration::from_secs(10), running).await.unwrap().unwrap();
    assert!(matches!(&r, Err(ServerError::Postgres { code, .. }) if code == "57014"), "{r:?}");
    conn.run_hidden("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let t = target_url("postgres://alice:hunter2@127.0.0.1:1/db", UpstreamTls::Disable);
    assert!(!format!("{t:?}").contains("hunter2"));
}
