//! TLS tests: a certificate generated with rcgen, a tokio-rustls client over an in-memory duplex.

use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio_rustls::TlsConnector;

use super::*;

/// A self-signed certificate for `localhost`, written as PEM files; returns the dir (kept alive),
/// the cert DER (for the client's root store) and the server config.
fn fixture() -> (tempfile::TempDir, CertificateDer<'static>, Arc<ServerConfig>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let config = server_config(&cert, &key).expect("server config loads");
    (dir, ck.cert.der().clone(), config)
}

fn connector(root: CertificateDer<'static>, alpn: bool) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    }
    TlsConnector::from(Arc::new(config))
}

/// Client side: handshake, send `ping`, expect `pong`.
async fn client(c: DuplexStream, connector: TlsConnector) -> io::Result<()> {
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), c).await?;
    tls.write_all(b"ping").await?;
    let mut answer = [0u8; 4];
    tls.read_exact(&mut answer).await?;
    assert_eq!(&answer, b"pong");
    Ok(())
}

async fn serve(tls: &ClientTls, s: DuplexStream, already_read: BytesMut, how: Negotiation) -> Result<(), TlsError> {
    let mut stream = tls.accept(s, already_read, how).await?;
    let mut got = [0u8; 4];
    stream.read_exact(&mut got).await.map_err(TlsError::Handshake)?;
    assert_eq!(&got, b"ping");
    stream.write_all(b"pong").await.map_err(TlsError::Handshake)?;
    stream.flush().await.map_err(TlsError::Handshake)?;
    Ok(())
}

#[tokio::test]
async fn handshake_after_ssl_request_completes_and_negotiates_alpn() {
    let (_dir, root, config) = fixture();
    let tls = ClientTls::new(ClientTlsMode::Require, Some(config)).unwrap();
    assert_eq!(tls.ssl_response(), b'S');
    let (c, s) = duplex(64 * 1024);
    let (server, client) =
        tokio::join!(serve(&tls, s, BytesMut::new(), Negotiation::SslRequest), client(c, connector(root, true)));
    server.expect("server side");
    client.expect("client side");
}

#[tokio::test]
async fn legacy_client_without_alpn_is_accepted_after_ssl_request() {
    let (_dir, root, config) = fixture();
    let tls = ClientTls::new(ClientTlsMode::Allow, Some(config)).unwrap();
    let (c, s) = duplex(64 * 1024);
    let (server, client) =
        tokio::join!(serve(&tls, s, BytesMut::new(), Negotiation::SslRequest), client(c, connector(root, false)));
    server.expect("server side");
    client.expect("client side");
}

#[tokio::test]
async fn direct_tls_replays_the_sniffed_bytes_into_the_handshake() {
    let (_dir, root, config) = fixture();
    let tls = ClientTls::new(ClientTlsMode::Allow, Some(config)).unwrap();
    let (c, mut s) = duplex(64 * 1024);
    let server = async {
        // Sniff like the caller does: read whatever arrived, look at the first byte.
        let mut rbuf = BytesMut::with_capacity(1024);
        s.read_buf(&mut rbuf).await.unwrap();
        assert!(is_direct_tls(&rbuf));
        serve(&tls, s, rbuf, Negotiation::Direct).await
    };
    let (server, client) = tokio::join!(server, client(c, connector(root, true)));
    server.expect("server side");
    client.expect("client side");
}

#[tokio::test]
async fn direct_tls_without_alpn_is_refused() {
    let (_dir, root, config) = fixture();
    let tls = ClientTls::new(ClientTlsMode::Allow, Some(config)).unwrap();
    let (c, s) = duplex(64 * 1024);
    // The server stream drops when `accept` returns, so the client's read ends.
    let server = async { tls.accept(s, BytesMut::new(), Negotiation::Direct).await.map(drop) };
    let (server, _) = tokio::join!(server, client(c, connector(root, false)));
    assert!(matches!(server, Err(TlsError::NoAlpn)), "{server:?}");
}

#[tokio::test]
async fn bytes_pipelined_after_ssl_request_are_refused() {
    let (_dir, _root, config) = fixture();
    let tls = ClientTls::new(ClientTlsMode::Allow, Some(config)).unwrap();
    let (_c, s) = duplex(1024);
    let e = tls.accept(s, BytesMut::from(&b"Q\0\0\0\x0dselect 1\0"[..]), Negotiation::SslRequest).await.map(drop);
    let e = e.expect_err("must refuse");
    assert!(matches!(e, TlsError::PipelinedData));
    assert_eq!(e.sqlstate(), "08P01");
}

#[test]
fn modes_decide_the_answers() {
    let (_dir, _root, config) = fixture();
    let disabled = ClientTls::new(ClientTlsMode::Disable, None).unwrap();
    assert_eq!(disabled.ssl_response(), b'N');
    assert!(disabled.check_plaintext_startup().is_ok());
    let allow = ClientTls::new(ClientTlsMode::Allow, Some(config.clone())).unwrap();
    assert!(allow.check_plaintext_startup().is_ok());
    let require = ClientTls::new(ClientTlsMode::Require, Some(config)).unwrap();
    let e = require.check_plaintext_startup().unwrap_err();
    assert_eq!((e.sqlstate(), e.to_string().as_str()), ("28000", "SSL required"));
    assert!(matches!(ClientTls::new(ClientTlsMode::Require, None), Err(TlsError::MissingCertOrKey(_))));
}

#[test]
fn config_without_cert_and_key_is_an_error_unless_disabled() {
    let cfg = TlsConfig { mode: ClientTlsMode::Require, cert: None, key: None };
    assert!(matches!(ClientTls::from_config(&cfg), Err(TlsError::MissingCertOrKey(ClientTlsMode::Require))));
    let cfg = TlsConfig { mode: ClientTlsMode::Disable, cert: None, key: None };
    assert_eq!(ClientTls::from_config(&cfg).unwrap().ssl_response(), b'N');
}

#[test]
fn missing_or_garbage_pem_files_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    let missing = dir.path().join("missing.pem");
    let e = server_config(&missing, &garbage).unwrap_err();
    assert!(matches!(e, TlsError::Cert { .. }) && e.to_string().contains("missing.pem"), "{e}");
    let e = server_config(&garbage, &garbage).unwrap_err();
    assert!(matches!(e, TlsError::Cert { .. }), "{e}");
}
