//! Client authentication: the exchange between `StartupMessage` and `AuthenticationOk`.
//!
//! [`authenticate`] runs one method (trust, md5, SCRAM-SHA-256) on the client's stream and
//! returns `Ok` once the password is verified. It does not send `AuthenticationOk` (the caller
//! does, once it has an upstream) and it does not send the `ErrorResponse` on failure: the caller
//! turns [`AuthError::sqlstate`] and [`AuthError::client_message`] into one.
//!
//! The SCRAM computations are pgwire's (`api::auth::sasl::scram`, a sans-I/O state machine); the
//! frames are read with our own capped codec and parsed on borrowed slices. See
//! `docs/decisions/auth.md` for why pgwire's startup handlers are not driven directly.
//!
//! Like Postgres, an unknown user, a wrong password and a stored password that cannot serve the
//! method all look the same to the client: the exchange runs to the end against a mock secret and
//! fails with `password authentication failed for user "…"`. The reason is kept for the log.

mod lookup;
mod md5;
mod scram;
#[cfg(test)]
mod tests;

use bytes::BytesMut;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::AuthMethod;
use crate::wire::frame::{Frame, FrameError, take_frame};
use crate::wire::frontend::tag;

pub use super::passwords::{ScramVerifier, StoredPassword};
pub use lookup::{AuthQuery, ConfigUsers, LookupChain, PasswordLookup};

/// Largest password-family message accepted during authentication. A SCRAM client-final message
/// is ~120 bytes; the cap is checked before anything is allocated for the body.
pub const MAX_AUTH_MESSAGE: usize = 8 * 1024;

/// Why a client was not authenticated. `Display` is for the log (it may name the reason);
/// [`client_message`](AuthError::client_message) is what the client is told.
#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password, unknown user, or no stored secret usable for the method.
    #[error("password authentication failed for user \"{user}\": {reason}")]
    Failed { user: String, reason: FailReason },
    /// The client broke the protocol (wrong message type, malformed SCRAM, oversized frame).
    #[error("protocol violation during authentication: {0}")]
    Protocol(String),
    /// The password store could not be consulted (auth_query failed).
    #[error("could not look up the password of user \"{user}\": {detail}")]
    Lookup { user: String, detail: String },
    /// The client went away or the socket failed mid-exchange.
    #[error("connection lost during authentication: {0}")]
    Io(#[from] std::io::Error),
}

/// Why the password check failed: logged, never shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    WrongPassword,
    UnknownUser,
    /// e.g. SCRAM required but only an md5 hash is stored.
    NoUsableSecret,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailReason::WrongPassword => "password does not match",
            FailReason::UnknownUser => "role does not exist",
            FailReason::NoUsableSecret => "no stored password usable for this method",
        })
    }
}

impl AuthError {
    /// SQLSTATE for the `ErrorResponse`: 28P01 invalid_password, 08P01 protocol_violation,
    /// 08006 connection_failure for a lost connection, 28000 invalid_authorization_specification
    /// otherwise.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            AuthError::Failed { .. } => "28P01",
            AuthError::Protocol(_) => "08P01",
            AuthError::Io(_) => "08006",
            AuthError::Lookup { .. } => "28000",
        }
    }

    /// The message safe to show the client: no reason that would reveal whether a user exists,
    /// no internal detail, never a password.
    pub fn client_message(&self) -> String {
        match self {
            AuthError::Failed { user, .. } => {
                format!("password authentication failed for user \"{user}\"")
            }
            AuthError::Protocol(m) => m.clone(),
            AuthError::Lookup { user, .. } => format!("authentication failed for user \"{user}\""),
            AuthError::Io(_) => "connection lost during authentication".to_owned(),
        }
    }

    fn failed(user: &str, reason: FailReason) -> AuthError {
        AuthError::Failed { user: user.to_owned(), reason }
    }
}

impl From<FrameError> for AuthError {
    fn from(e: FrameError) -> AuthError {
        AuthError::Protocol(match e {
            FrameError::TooLarge { .. } | FrameError::BadLength { .. } => "invalid message length".to_owned(),
            other => other.to_string(),
        })
    }
}

/// Authenticate `user` with `method` on `stream`. `rbuf` may already hold bytes that followed
/// the StartupMessage; bytes after the last password message stay in it.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    method: AuthMethod,
    user: &str,
    lookup: &dyn PasswordLookup,
) -> Result<(), AuthError> {
    if method == AuthMethod::Trust {
        return Ok(());
    }
    let stored = lookup.lookup(user).await?;
    let mut conn = AuthConn { stream, rbuf };
    match (method, stored) {
        (AuthMethod::Trust, _) => Ok(()),
        // Postgres: a SCRAM verifier is used with SCRAM even where pg_hba.conf says md5.
        (AuthMethod::Md5, Some(StoredPassword::Scram(v))) => scram::exchange(&mut conn, user, Ok(v)).await,
        (AuthMethod::Md5, stored) => md5::exchange(&mut conn, user, stored).await,
        (AuthMethod::ScramSha256, Some(StoredPassword::Scram(v))) => scram::exchange(&mut conn, user, Ok(v)).await,
        (AuthMethod::ScramSha256, Some(StoredPassword::Plain(p))) => {
            let salt = rand::random::<[u8; 16]>().to_vec();
            let verifier = ScramVerifier::derive(&p, salt, super::passwords::SCRAM_ITERATIONS);
            scram::exchange(&mut conn, user, Ok(verifier)).await
        }
        (AuthMethod::ScramSha256, Some(StoredPassword::Md5(_))) => {
            scram::exchange(&mut conn, user, Err(FailReason::NoUsableSecret)).await
        }
        (AuthMethod::ScramSha256, None) => scram::exchange(&mut conn, user, Err(FailReason::UnknownUser)).await,
    }
}

/// The client's stream plus its read buffer, for the few messages of one exchange.
struct AuthConn<'a, S> {
    stream: &'a mut S,
    rbuf: &'a mut BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> AuthConn<'_, S> {
    /// Send one Authentication request, encoded by pgwire.
    async fn send(&mut self, msg: pgwire::messages::startup::Authentication) -> Result<(), AuthError> {
        use pgwire::messages::Message;
        let mut out = BytesMut::new();
        msg.encode(&mut out)
            .map_err(|e| AuthError::Protocol(format!("could not encode authentication request: {e}")))?;
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Read the next message, which must be a password-family message (`p`) of at most
    /// [`MAX_AUTH_MESSAGE`] bytes.
    async fn read_password_message(&mut self) -> Result<Frame, AuthError> {
        loop {
            if let Some(frame) = take_frame(self.rbuf, MAX_AUTH_MESSAGE)? {
                if frame.tag() != tag::PASSWORD {
                    return Err(AuthError::Protocol(format!(
                        "expected password response, got message type {}",
                        frame.tag()
                    )));
                }
                return Ok(frame);
            }
            if self.rbuf.capacity() == self.rbuf.len() {
                self.rbuf.reserve(256);
            }
            if self.stream.read_buf(self.rbuf).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
    }
}
