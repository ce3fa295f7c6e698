//! Fuzz target: what a client drives before it is authenticated, through the public API.
//!
//! Input: `[selector, sizes[selector % 8]…, bytes…]`. `bytes` are what the client sends, read by
//! the server side in chunks whose sizes cycle through `sizes` (then end of stream).
//! `client::startup::handshake` (plaintext: SSLRequest and GSSENCRequest are answered `N`)
//! reads them up to a StartupMessage or a CancelRequest; after a StartupMessage,
//! `client::auth::authenticate` runs md5 or SCRAM-SHA-256 (chosen by `selector`, against a
//! stored SCRAM verifier, md5 hash, plain password or no user) on the rest: PasswordMessage,
//! SASLInitialResponse, SASLResponse. Checked: nothing panics or hangs; the handshake writes
//! nothing but `N` answers and, when it refuses the startup, one ErrorResponse; every startup
//! parameter has a name; no input ever authenticates (the exchanges use a random salt or nonce,
//! so a client without the password cannot pass);
//! what `authenticate` writes is whole Authentication (`R`) frames.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use pgcached::client::auth::{AuthError, PasswordLookup, ScramVerifier, StoredPassword, authenticate};
use pgcached::client::startup::{Handshake, handshake};
use pgcached::client::tls::ClientTls;
use pgcached::config::{AuthMethod, ClientTlsMode};
use pgcached::wire::frame::{startup_options, take_frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let n = usize::from(selector % 8).min(rest.len());
    let (sizes, bytes) = rest.split_at(n);
    let written = Arc::new(Mutex::new(Vec::new()));
    let stream = Client { bytes: bytes.to_vec(), at: 0, sizes: sizes.to_vec(), turn: 0, written: written.clone() };
    runtime().block_on(drive(selector, stream, written));
});

async fn drive(selector: u8, stream: Client, written: Arc<Mutex<Vec<u8>>>) {
    let tls = ClientTls::new(ClientTlsMode::Disable, None).unwrap();
    let result = handshake(stream, &tls).await;
    let answers = std::mem::take(&mut *written.lock().unwrap());
    // `N` answers, then — only when the handshake refuses the startup — one whole FATAL.
    let plain = answers.iter().take_while(|&&b| b == b'N').count();
    let mut refusal = BytesMut::from(&answers[plain..]);
    if !refusal.is_empty() {
        assert!(result.is_err(), "the handshake wrote {answers:?} and went on");
        let frame = take_frame(&mut refusal, 1 << 16).expect("a well-formed frame").expect("a whole frame");
        assert_eq!(frame.tag(), b'E', "the handshake wrote {answers:?}");
        assert!(refusal.is_empty(), "the handshake wrote more after its FATAL: {answers:?}");
    }
    let Ok(Handshake::Startup(mut startup)) = result else { return };
    assert!(startup.params.iter().all(|(name, _)| !name.is_empty()));
    if let Some(options) = startup.param("options") {
        let _ = startup_options(options);
    }

    let method = if selector & 0x08 == 0 { AuthMethod::Md5 } else { AuthMethod::ScramSha256 };
    let stored = match (selector >> 4) % 4 {
        0 => Some(StoredPassword::Scram(verifier().clone())),
        1 => Some(StoredPassword::parse("md5a3556571e93b0d20722ba62be61e8c2d")),
        // A plain password costs a 4096-round PBKDF2 per SCRAM attempt: md5 only.
        2 if method == AuthMethod::Md5 => Some(StoredPassword::Plain("secret".to_owned())),
        _ => None,
    };
    let user = startup.param("user").unwrap_or_default().to_owned();
    let lookup = Fixed(stored);
    let outcome = authenticate(&mut startup.stream, &mut startup.rbuf, method, &user, &lookup).await;
    assert!(outcome.is_err(), "a client without the password was authenticated");
    if let Err(e) = outcome {
        let _ = (e.sqlstate(), e.client_message());
    }

    let mut out = BytesMut::from(&written.lock().unwrap()[..]);
    while let Some(frame) = take_frame(&mut out, 1 << 16).expect("well-formed frames") {
        assert_eq!(frame.tag(), b'R', "authentication requests only");
    }
    assert!(out.is_empty(), "a partial frame was written");
}

/// One verifier, derived once (4096 rounds): the password is irrelevant to the fuzzer.
fn verifier() -> &'static ScramVerifier {
    static V: OnceLock<ScramVerifier> = OnceLock::new();
    V.get_or_init(|| ScramVerifier::derive("secret", b"0123456789abcdef".to_vec(), 4096))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

/// A password store that returns the same entry for every user.
struct Fixed(Option<StoredPassword>);

impl PasswordLookup for Fixed {
    fn lookup<'a>(&'a self, _user: &'a str) -> BoxFuture<'a, Result<Option<StoredPassword>, AuthError>> {
        let found = self.0.clone();
        Box::pin(async move { Ok(found) })
    }
}

/// The client's end: hands out `bytes` in chunks of the fuzzer's sizes, then end of stream;
/// keeps what the server writes. Never pending, so a loop that waits for more is a hang.
struct Client {
    bytes: Vec<u8>,
    at: usize,
    sizes: Vec<u8>,
    turn: usize,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Client {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let size = match this.sizes.get(this.turn % this.sizes.len().max(1)) {
            None => usize::MAX,
            Some(0) => 256,
            Some(&s) => usize::from(s),
        };
        this.turn += 1;
        let n = size.min(buf.remaining()).min(this.bytes.len() - this.at);
        buf.put_slice(&this.bytes[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Client {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.written.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
