//! Client authentication by pgcached (md5, SCRAM-SHA-256) and TLS towards clients.

mod common;

use std::sync::Arc;

use common::{PgCluster, Proxy, connect, try_connect};
use pgcached::config::{AuthMethod, ClientTlsMode, UserEntry};

fn users(method: AuthMethod) -> impl FnOnce(&mut pgcached::config::Config) {
    move |c| {
        c.auth.method = method;
        c.auth.users = vec![
            UserEntry { name: "postgres".into(), password: "s3cret".into() },
            // As Postgres stores it (pg_authid): a SCRAM verifier for "other-pass".
            UserEntry { name: "alice".into(), password: postgres_protocol::password::scram_sha_256(b"other-pass") },
        ];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_accepts_the_right_password_and_refuses_a_wrong_one() {
    let pg = PgCluster::start();
    pg.psql("CREATE ROLE alice LOGIN");
    let proxy = Proxy::start_with(&pg, users(AuthMethod::ScramSha256)).await;
    let url = |user: &str, pw: &str| format!("postgres://{user}:{pw}@127.0.0.1:{}/app", proxy.port);

    let c = connect(&url("postgres", "s3cret")).await;
    assert_eq!(c.query_one("SELECT current_user::text", &[]).await.unwrap().get::<_, String>(0), "postgres");
    let c = connect(&url("alice", "other-pass")).await;
    assert_eq!(c.query_one("SELECT current_user::text", &[]).await.unwrap().get::<_, String>(0), "alice");

    let err = try_connect(&url("postgres", "wrong")).await.expect_err("refused");
    assert_eq!(err.code().unwrap().code(), "28P01");
    let err = try_connect(&url("nobody", "x")).await.expect_err("refused");
    assert_eq!(err.code().unwrap().code(), "28P01", "unknown users look like wrong passwords");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_accepts_the_right_password_and_refuses_a_wrong_one() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, users(AuthMethod::Md5)).await;
    let url = |pw: &str| format!("postgres://postgres:{pw}@127.0.0.1:{}/app", proxy.port);
    let c = connect(&url("s3cret")).await;
    c.simple_query("SELECT 1").await.unwrap();
    let err = try_connect(&url("nope")).await.expect_err("refused");
    assert_eq!(err.code().unwrap().code(), "28P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_connects_and_plaintext_is_refused_when_required() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let (cp, kp) = (cert_path.clone(), key_path.clone());
    let proxy = Proxy::start_with(&pg, move |c| {
        c.tls.mode = ClientTlsMode::Require;
        c.tls.cert = Some(cp);
        c.tls.key = Some(kp);
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
    let url = format!("postgres://postgres@localhost:{}/app?sslmode=require", proxy.port);
    let (client, conn) = tokio_postgres::connect(&url, tls).await.expect("TLS connect");
    tokio::spawn(conn);
    let row = client.query_one("SELECT 'over tls'::text", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "over tls");

    let err = try_connect(&format!("postgres://postgres@127.0.0.1:{}/app?sslmode=disable", proxy.port)).await;
    let err = err.expect_err("plaintext refused under tls.mode=require");
    // Told as Postgres tells it (a FATAL with the SQLSTATE), not a bare close.
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_query_finds_passwords_stored_in_postgres() {
    let pg = PgCluster::start();
    pg.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE dave LOGIN PASSWORD 'dave-pw'");
    let proxy = Proxy::start_with(&pg, |c| {
        c.auth.method = AuthMethod::ScramSha256;
        c.auth.auth_query = Some("SELECT rolpassword FROM pg_authid WHERE rolname = $1".into());
    })
    .await;
    let url = |pw: &str| format!("postgres://dave:{pw}@127.0.0.1:{}/app", proxy.port);
    let c = connect(&url("dave-pw")).await;
    assert_eq!(c.query_one("SELECT current_user::text", &[]).await.unwrap().get::<_, String>(0), "dave");
    let err = try_connect(&url("nope")).await.expect_err("refused");
    assert_eq!(err.code().unwrap().code(), "28P01");
}
