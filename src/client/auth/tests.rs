//! `authenticate` driven over an in-memory duplex stream against real client implementations:
//! postgres-protocol's SCRAM-SHA-256 client and its md5 hash, as tokio-postgres uses them.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;
use crate::config::UserEntry;

fn users(list: &[(&str, &str)]) -> Arc<dyn PasswordLookup> {
    let entries: Vec<UserEntry> =
        list.iter().map(|(n, p)| UserEntry { name: n.to_string(), password: p.to_string() }).collect();
    Arc::new(ConfigUsers::new(&entries))
}

/// Run `authenticate` on one end of a duplex (in its own task, which drops its end when done so
/// the client sees EOF) and `client` on the other.
async fn run<F, Fut, T>(
    method: AuthMethod,
    user: &str,
    lookup: Arc<dyn PasswordLookup>,
    client: F,
) -> (Result<(), AuthError>, T)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (client_end, mut server_end) = duplex(64 * 1024);
    let user = user.to_owned();
    let server = tokio::spawn(async move {
        let mut rbuf = BytesMut::new();
        authenticate(&mut server_end, &mut rbuf, method, &user, &*lookup).await
    });
    let client_out = client(client_end).await;
    (server.await.expect("server task"), client_out)
}

/// Read one backend message, `None` on EOF.
async fn recv(c: &mut DuplexStream, buf: &mut BytesMut) -> Option<Message> {
    loop {
        if let Some(msg) = Message::parse(buf).expect("well-formed backend message") {
            return Some(msg);
        }
        if c.read_buf(buf).await.expect("read") == 0 {
            return None;
        }
    }
}

async fn send(c: &mut DuplexStream, buf: BytesMut) {
    c.write_all(&buf).await.expect("write");
}

/// A SCRAM client as tokio-postgres runs it. `Ok` when the server's final signature verified,
/// `Err` with where it stopped otherwise.
async fn scram_client(mut c: DuplexStream, password: &str, cb: ChannelBinding) -> Result<(), String> {
    let mut buf = BytesMut::new();
    match recv(&mut c, &mut buf).await {
        Some(Message::AuthenticationSasl(_)) => {}
        _ => return Err("no AuthenticationSASL".into()),
    }
    let mut scram = ScramSha256::new(password.as_bytes(), cb);
    let mut out = BytesMut::new();
    frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), &mut out).unwrap();
    send(&mut c, out).await;
    let Some(Message::AuthenticationSaslContinue(body)) = recv(&mut c, &mut buf).await else {
        return Err("no SASLContinue".into());
    };
    scram.update(body.data()).map_err(|e| format!("server-first: {e}"))?;
    let mut out = BytesMut::new();
    frontend::sasl_response(scram.message(), &mut out).unwrap();
    send(&mut c, out).await;
    let Some(Message::AuthenticationSaslFinal(body)) = recv(&mut c, &mut buf).await else {
        return Err("no SASLFinal".into());
    };
    scram.finish(body.data()).map_err(|e| format!("server signature: {e}"))
}

/// An md5 client: answers the challenge, then waits for the server to finish.
async fn md5_client(mut c: DuplexStream, user: &str, password: &str) -> Result<(), String> {
    let mut buf = BytesMut::new();
    let Some(Message::AuthenticationMd5Password(body)) = recv(&mut c, &mut buf).await else {
        return Err("no AuthenticationMD5Password".into());
    };
    let answer = md5_hash(user.as_bytes(), password.as_bytes(), body.salt());
    let mut out = BytesMut::new();
    frontend::password_message(answer.as_bytes(), &mut out).unwrap();
    send(&mut c, out).await;
    match recv(&mut c, &mut buf).await {
        None => Ok(()),
        Some(_) => Err("unexpected message after the md5 answer".into()),
    }
}

fn assert_wrong_password(r: Result<(), AuthError>, user: &str) {
    let e = r.expect_err("must fail");
    assert_eq!(e.sqlstate(), "28P01", "{e}");
    assert_eq!(e.client_message(), format!("password authentication failed for user \"{user}\""));
}

#[tokio::test]
async fn scram_succeeds_with_a_plain_stored_password() {
    let (server, client) = run(AuthMethod::ScramSha256, "alice", users(&[("alice", "s3cret")]), |c| {
        scram_client(c, "s3cret", ChannelBinding::unrequested())
    })
    .await;
    server.expect("authenticated");
    client.expect("server signature verified");
}

#[tokio::test]
async fn scram_succeeds_with_a_postgres_stored_verifier_and_a_y_gs2_header() {
    let verifier = postgres_protocol::password::scram_sha_256(b"s3cret");
    let (server, client) = run(AuthMethod::ScramSha256, "alice", users(&[("alice", &verifier)]), |c| {
        scram_client(c, "s3cret", ChannelBinding::unsupported())
    })
    .await;
    server.expect("authenticated");
    client.expect("server signature verified");
}

#[tokio::test]
async fn scram_wrong_password_is_28p01() {
    let (server, client) = run(AuthMethod::ScramSha256, "alice", users(&[("alice", "s3cret")]), |c| {
        scram_client(c, "guess", ChannelBinding::unrequested())
    })
    .await;
    assert_wrong_password(server, "alice");
    assert_eq!(client, Err("no SASLFinal".into()));
}

#[tokio::test]
async fn scram_unknown_user_looks_like_a_wrong_password() {
    let (server, client) = run(AuthMethod::ScramSha256, "mallory", users(&[("alice", "s3cret")]), |c| {
        scram_client(c, "s3cret", ChannelBinding::unrequested())
    })
    .await;
    assert_eq!(client, Err("no SASLFinal".into()), "the exchange runs to the end like a real one");
    let e = server.expect_err("must fail");
    assert!(matches!(e, AuthError::Failed { reason: FailReason::UnknownUser, .. }));
    assert_wrong_password(Err(e), "mallory");
}

#[tokio::test]
async fn scram_with_only_an_md5_hash_stored_fails_like_a_wrong_password() {
    let md5 = postgres_protocol::password::md5(b"s3cret", "alice");
    let (server, _) = run(AuthMethod::ScramSha256, "alice", users(&[("alice", &md5)]), |c| {
        scram_client(c, "s3cret", ChannelBinding::unrequested())
    })
    .await;
    assert_wrong_password(server, "alice");
}

#[tokio::test]
async fn scram_channel_binding_request_is_a_protocol_violation() {
    let (server, _) = run(AuthMethod::ScramSha256, "alice", users(&[("alice", "s3cret")]), |c| {
        scram_client(c, "s3cret", ChannelBinding::tls_server_end_point(vec![0; 32]))
    })
    .await;
    assert_eq!(server.expect_err("must fail").sqlstate(), "08P01");
}

#[tokio::test]
async fn md5_succeeds_with_an_md5_stored_hash() {
    let md5 = postgres_protocol::password::md5(b"s3cret", "alice");
    let (server, client) =
        run(AuthMethod::Md5, "alice", users(&[("alice", &md5)]), |c| md5_client(c, "alice", "s3cret")).await;
    server.expect("authenticated");
    client.expect("clean md5 exchange");
}

#[tokio::test]
async fn md5_succeeds_with_a_plain_stored_password() {
    let (server, _) =
        run(AuthMethod::Md5, "alice", users(&[("alice", "s3cret")]), |c| md5_client(c, "alice", "s3cret")).await;
    server.expect("authenticated");
}

#[tokio::test]
async fn md5_wrong_password_is_28p01() {
    let md5 = postgres_protocol::password::md5(b"s3cret", "alice");
    let (server, _) =
        run(AuthMethod::Md5, "alice", users(&[("alice", &md5)]), |c| md5_client(c, "alice", "guess")).await;
    assert_wrong_password(server, "alice");
}

#[tokio::test]
async fn md5_unknown_user_gets_the_same_message_as_a_wrong_password() {
    let (unknown, client) =
        run(AuthMethod::Md5, "mallory", users(&[("alice", "s3cret")]), |c| md5_client(c, "mallory", "x")).await;
    client.expect("a challenge is sent even for an unknown user");
    let (wrong, _) =
        run(AuthMethod::Md5, "alice", users(&[("alice", "s3cret")]), |c| md5_client(c, "alice", "x")).await;
    let (unknown, wrong) = (unknown.unwrap_err(), wrong.unwrap_err());
    assert_eq!(unknown.sqlstate(), wrong.sqlstate());
    assert_eq!(unknown.client_message().replace("mallory", "alice"), wrong.client_message());
    assert_wrong_password(Err(unknown), "mallory");
}

#[tokio::test]
async fn md5_method_uses_scram_when_only_a_verifier_is_stored() {
    let verifier = postgres_protocol::password::scram_sha_256(b"s3cret");
    let (server, client) = run(AuthMethod::Md5, "alice", users(&[("alice", &verifier)]), |c| {
        scram_client(c, "s3cret", ChannelBinding::unrequested())
    })
    .await;
    server.expect("authenticated");
    client.expect("server signature verified");
}

#[tokio::test]
async fn trust_does_no_io() {
    let (mut client_end, mut server_end) = duplex(64);
    let mut rbuf = BytesMut::from(&b"leftover"[..]);
    authenticate(&mut server_end, &mut rbuf, AuthMethod::Trust, "anyone", &ConfigUsers::default()).await.unwrap();
    drop(server_end);
    let mut got = Vec::new();
    client_end.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty());
    assert_eq!(&rbuf[..], b"leftover");
}

#[tokio::test]
async fn oversized_password_message_is_08p01_before_allocating() {
    let (_client_end, mut server_end) = duplex(64 * 1024);
    let mut rbuf = BytesMut::with_capacity(64);
    rbuf.put_u8(b'p');
    rbuf.put_u32(1_000_000_000);
    let e = authenticate(&mut server_end, &mut rbuf, AuthMethod::Md5, "alice", &*users(&[("alice", "s3cret")]))
        .await
        .expect_err("must fail");
    assert_eq!(e.sqlstate(), "08P01");
    assert!(rbuf.capacity() < 1024, "nothing reserved for the announced body: {}", rbuf.capacity());
}

#[tokio::test]
async fn a_message_other_than_a_password_is_08p01() {
    let (mut client_end, mut server_end) = duplex(64 * 1024);
    let mut query = BytesMut::new();
    frontend::query("select 1", &mut query).unwrap();
    client_end.write_all(&query).await.unwrap();
    let mut rbuf = BytesMut::new();
    let e = authenticate(&mut server_end, &mut rbuf, AuthMethod::Md5, "alice", &*users(&[("alice", "s3cret")]))
        .await
        .expect_err("must fail");
    assert_eq!(e.sqlstate(), "08P01");
    assert_eq!(e.client_message(), "expected password response, got message type 81");
}

#[tokio::test]
async fn client_hanging_up_mid_exchange_is_an_io_error() {
    let (server, _) =
        run(AuthMethod::ScramSha256, "alice", users(&[("alice", "s3cret")]), |c| async move { drop(c) }).await;
    assert!(matches!(server, Err(AuthError::Io(_))));
}

#[tokio::test]
async fn lookup_chain_stops_at_the_first_source_that_knows_the_user() {
    let chain = LookupChain::new(vec![users(&[("alice", "one")]), users(&[("alice", "two"), ("bob", "three")])]);
    assert_eq!(chain.lookup("alice").await.unwrap(), Some(StoredPassword::Plain("one".into())));
    assert_eq!(chain.lookup("bob").await.unwrap(), Some(StoredPassword::Plain("three".into())));
    assert_eq!(chain.lookup("carol").await.unwrap(), None);
}
