//! The SCRAM-SHA-256 exchange (RFC 5802/7677 as Postgres speaks it): `AuthenticationSASL`
//! advertising only `SCRAM-SHA-256`, the client's `SASLInitialResponse` (client-first),
//! `AuthenticationSASLContinue` (server-first), `SASLResponse` (client-final),
//! `AuthenticationSASLFinal` (server signature).
//!
//! pgwire's `ScramServerAuth` does the SCRAM parsing and proof check; this file frames it. No
//! channel binding is offered, so the gs2 header may be `n,,` or `y,,` (pgwire checks that the
//! client-final echoes it); `p=…` is refused.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{AuthConn, AuthError, FailReason, ScramVerifier};
use crate::client::passwords::SCRAM_ITERATIONS;
use crate::wire::frame::split_cstr;
use pgwire::api::auth::sasl::scram::{ScramSecret, ScramServerAuth, gen_salted_password};
use pgwire::error::PgWireError;
use pgwire::messages::startup::Authentication;

const MECHANISM: &str = "SCRAM-SHA-256";

/// Run the exchange against `verifier`, or, when there is none (`Err(reason)`), against a mock
/// secret so the client sees the same messages as for a wrong password, then fail with `reason`.
pub(super) async fn exchange<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut AuthConn<'_, S>,
    user: &str,
    verifier: Result<ScramVerifier, FailReason>,
) -> Result<(), AuthError> {
    conn.send(Authentication::SASL(vec![MECHANISM.to_owned()])).await?;

    let frame = conn.read_password_message().await?;
    let client_first = sasl_initial_response(frame.body())?;
    let secret = match &verifier {
        Ok(v) => v.to_pgwire(),
        Err(_) => mock_secret(user),
    };
    let (server_first, waiting) = ScramServerAuth::new()
        .on_client_first_message_with_secret(client_first, secret)
        .map_err(scram_protocol_error)?;
    conn.send(Authentication::SASLContinue(server_first.into())).await?;

    let frame = conn.read_password_message().await?;
    let outcome = waiting.on_client_final_message(frame.body());
    let reason = match (outcome, verifier) {
        (Ok(server_final), Ok(_)) => {
            conn.send(Authentication::SASLFinal(server_final.into())).await?;
            return Ok(());
        }
        (Ok(_), Err(reason)) => reason,
        (Err(PgWireError::InvalidPassword(_)), Ok(_)) => FailReason::WrongPassword,
        (Err(PgWireError::InvalidPassword(_)), Err(reason)) => reason,
        (Err(e), _) => return Err(scram_protocol_error(e)),
    };
    Err(AuthError::failed(user, reason))
}

/// The client-first message out of a `SASLInitialResponse` body
/// (`mechanism\0`, `int32 len`, `len` bytes), parsed on the borrowed body.
fn sasl_initial_response(body: &[u8]) -> Result<&[u8], AuthError> {
    let malformed = || AuthError::Protocol("malformed SASLInitialResponse message".to_owned());
    let (mechanism, rest) = split_cstr(body).ok_or_else(malformed)?;
    if mechanism != MECHANISM.as_bytes() {
        return Err(AuthError::Protocol("client selected an invalid SASL authentication mechanism".to_owned()));
    }
    let len = rest.get(..4).ok_or_else(malformed)?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let data = &rest[4..];
    if usize::try_from(len).ok() != Some(data.len()) {
        return Err(malformed());
    }
    Ok(data)
}

/// A SCRAM secret for a user who has none: a salt that is stable per user name for this process
/// (so repeated attempts cannot tell a real user from a missing one by a changing salt) and keys
/// nobody knows.
fn mock_secret(user: &str) -> ScramSecret {
    static PROCESS_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = PROCESS_KEY.get_or_init(rand::random);
    // One PBKDF2-HMAC-SHA-256 round keyed by the process secret: a keyed hash of the name.
    let mut salt = gen_salted_password(user, key, 1);
    salt.truncate(16);
    ScramSecret::Verifier {
        salt,
        iterations: SCRAM_ITERATIONS as usize,
        stored_key: rand::random::<[u8; 32]>().to_vec(),
        server_key: rand::random::<[u8; 32]>().to_vec(),
    }
}

/// Map a pgwire SCRAM error to a protocol violation without echoing the client's message
/// (pgwire's errors quote it).
fn scram_protocol_error(e: PgWireError) -> AuthError {
    let message = match e {
        PgWireError::InvalidScramMessage(m) if m.contains("Channel binding") => "SCRAM channel binding check failed",
        PgWireError::InvalidScramMessage(m) if m.contains("Nonce") => "SCRAM nonce mismatch",
        _ => "malformed SCRAM message",
    };
    AuthError::Protocol(message.to_owned())
}
