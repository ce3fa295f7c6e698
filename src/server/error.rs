//! [`ServerError`]: everything that can go wrong on one upstream connection.
//!
//! An `ErrorResponse` from the server is kept whole ([`ServerError::Postgres::raw`]) so the
//! session can forward it to its client byte for byte; everything else is a local failure that
//! the session reports with SQLSTATE `08006` (connection_failure).

use bytes::Bytes;
use thiserror::Error;

use crate::wire::{Frame, FrameError, backend};

#[derive(Debug, Error)]
pub enum ServerError {
    /// TCP connect, read or write failed.
    #[error("upstream I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake with the upstream failed (bad certificate, protocol mismatch, …).
    #[error("upstream TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    /// `upstream.tls` is `require` or `verify-full` but the server answered `N` to SSLRequest.
    #[error("upstream does not support TLS but upstream.tls requires it")]
    TlsRefused,
    /// The server sent something the protocol does not allow at this point.
    #[error("upstream protocol violation: {0}")]
    Protocol(String),
    /// A server frame was malformed or over the size cap.
    #[error("upstream sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The server answered with an ErrorResponse.
    #[error("upstream {severity}: {message} (SQLSTATE {code})")]
    Postgres {
        code: String,
        message: String,
        severity: String,
        /// The whole original ErrorResponse frame (tag and length included), to forward as is.
        raw: Bytes,
    },
    /// The server closed the connection (EOF).
    #[error("upstream closed the connection")]
    Closed,
    /// The server asked for a password and none is known for this user.
    #[error("upstream asks for a password for user \"{user}\" and none is configured")]
    NoPassword { user: String },
    /// The server asked for an authentication method pgcached does not speak.
    #[error("upstream requested an unsupported authentication method: {0}")]
    UnsupportedAuth(String),
    /// SCRAM exchange failed on our side (bad server signature, malformed message).
    #[error("upstream SCRAM authentication failed: {0}")]
    Scram(#[source] std::io::Error),
    /// `upstream.*` cannot be turned into a connection target.
    #[error("invalid upstream configuration: {0}")]
    Config(String),
    /// The connection's streams are leased to a session (`io` is `None`).
    #[error("server connection is in use by a session")]
    Leased,
}

impl ServerError {
    /// Build [`ServerError::Postgres`] from an ErrorResponse frame, keeping its bytes.
    pub fn from_error_frame(frame: Frame) -> ServerError {
        let fields = backend::error_fields(frame.body());
        ServerError::Postgres {
            code: fields.code,
            message: fields.message,
            severity: fields.severity,
            raw: frame.into_bytes(),
        }
    }

    /// SQLSTATE to report to a client: the server's own code, else connection_failure.
    pub fn sqlstate(&self) -> &str {
        match self {
            ServerError::Postgres { code, .. } => code,
            _ => "08006",
        }
    }

    /// A short label for metrics and logs (never contains user data).
    pub fn category(&self) -> &'static str {
        match self {
            ServerError::Io(_) | ServerError::Closed => "io",
            ServerError::Tls(_) | ServerError::TlsRefused => "tls",
            ServerError::Protocol(_) | ServerError::Frame(_) => "protocol",
            ServerError::Postgres { .. } => "postgres",
            ServerError::NoPassword { .. } | ServerError::UnsupportedAuth(_) | ServerError::Scram(_) => "auth",
            ServerError::Config(_) => "config",
            ServerError::Leased => "leased",
        }
    }

    /// A network-level failure: the upstream could not be reached or the connection broke
    /// (refused, reset, timed out, closed). Not an error Postgres answered: that proves it
    /// reachable (see `pool::breaker`).
    pub fn is_network(&self) -> bool {
        matches!(self, ServerError::Io(_) | ServerError::Closed)
    }

    /// Worth trying again in a moment: a network failure, or Postgres refusing connections
    /// while it starts up or shuts down (57P03 cannot_connect_now).
    pub fn is_transient(&self) -> bool {
        self.is_network() || self.sqlstate() == "57P03"
    }

    /// True when the error came from the server and the connection is still in sync
    /// (an `ERROR`, not a `FATAL`/`PANIC`, and not a local failure).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ServerError::Postgres { severity, .. } if severity == "ERROR")
    }
}
