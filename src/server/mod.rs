//! One upstream server connection: connect, TLS, login, the proxy's own statements, cancel.
//!
//! - `target`: [`UpstreamTarget`], where the upstream is (parsed `upstream.url`) and its TLS.
//! - `tls`: rustls client configurations per `upstream.tls`.
//! - `connect`: TCP (or a Unix socket) → TLS → StartupMessage → authentication → parameters → ReadyForQuery.
//! - `auth`: trust, cleartext, md5, SCRAM-SHA-256.
//! - `io`: [`ServerIo`], frame reads with a size cap, non-blocking drains.
//! - `hidden`: statements the proxy runs for itself ([`ServerConn::run_hidden`]) and the idle
//!   check the pool does before reusing a connection.
//! - `prepared`: [`PreparedSet`], the server-side prepared statements of a connection.
//! - `cancel`: [`send_cancel`], [`send_cancel_if`].
//! - `error`: [`ServerError`].
//!
//! A [`ServerConn`] does not know about sessions or pools: a session takes [`ServerConn::io`]
//! out while it forwards frames and puts it back with [`ServerConn::restore_io`] when the server
//! is idle again; if it cannot (the connection is out of sync) it sets [`ServerConn::broken`]
//! and the pool drops the connection.

mod auth;
mod cancel;
mod connect;
mod error;
mod hidden;
mod io;
pub mod prepared;
mod target;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use cancel::{send_cancel, send_cancel_if};
pub use error::ServerError;
pub use io::{MAX_LOGIN_FRAME, MAX_SERVER_FRAME, ServerIo, ServerReader};
pub use prepared::PreparedSet;
pub use target::UpstreamTarget;

/// One logged-in connection to the upstream PostgreSQL.
pub struct ServerConn {
    /// The byte streams; `None` while a session has them (or lost them: then `broken`).
    pub io: Option<ServerIo>,
    /// The server's current ParameterStatus values (what a session compares its client's
    /// settings against before re-applying them).
    pub params: HashMap<String, String>,
    /// `(pid, secret)` for CancelRequest.
    pub backend_key: (i32, i32),
    /// The server address actually connected to (a cancel must go to the same one).
    pub addr: ServerAddr,
    /// When the connection was opened (for `pool.max_lifetime`).
    pub created: Instant,
    /// The pools' login-defaults epoch when its login began (see `pool::Pools::defaults_epoch`):
    /// an older one logged in with defaults that have changed since.
    pub defaults_epoch: u64,
    /// Set when the connection is out of sync and must not be reused.
    pub broken: bool,
    /// The server sent a FATAL error (the client has it): its connection ends next.
    pub said_fatal: bool,
    /// Process-unique id for log lines.
    pub id: u64,
    /// When the server last finished something for us (for idle reaping and health checks).
    pub last_used: Instant,
    /// Who this connection is logged in as, for logs.
    pub user: String,
    pub database: String,
    /// Settings some client left on this connection (kept by the session, which compares them
    /// with the next client's before use).
    // TODO(layering): `ParamSet` belongs in a module below both server and session.
    pub dirty: crate::session::params::ParamSet,
    /// pgcached-named prepared statements this connection holds (transaction pooling).
    pub prepared: PreparedSet,
    /// Custom (dotted) settings some client defined here. Postgres never forgets a
    /// placeholder once defined (`RESET`, `DISCARD ALL` make it `''`, not undefined), so a
    /// client that did not define one itself must not get this connection: for it,
    /// `current_setting(name, true)` is NULL. Lower case.
    pub placeholders: Vec<String>,
    /// Of `placeholders`, those surely defined here (a statement that defines one completed,
    /// or the proxy defined it); the others were only about to be (a statement an error may
    /// have skipped). A client that defined one not surely defined here gets it defined first.
    pub placeholders_defined: Vec<String>,
    /// A client changed settings here that the proxy could not follow: reset them before
    /// another client gets the connection.
    pub settings_unknown: bool,
    /// A client may have defined custom settings here under names the proxy could not see:
    /// no reset undefines them, so the connection is closed when given back.
    pub placeholders_unknown: bool,
    /// The session whose unnamed statement this connection's is (0: nobody's).
    pub unnamed_owner: u64,
}

impl ServerConn {
    /// Give the streams back after a lease, with the server idle (ReadyForQuery seen and nothing
    /// pending). Records the time for idle reaping and health checks.
    pub fn restore_io(&mut self, io: ServerIo) {
        self.io = Some(io);
        self.last_used = Instant::now();
    }

    /// The custom setting `name` (lower case) is surely defined here now.
    pub fn define_placeholder(&mut self, name: &str) {
        if !self.placeholders.iter().any(|p| p == name) {
            self.placeholders.push(name.to_string());
        }
        if !self.placeholders_defined.iter().any(|p| p == name) {
            self.placeholders_defined.push(name.to_string());
        }
    }

    /// Whether the connection may be handed to another session (it has its streams and is not
    /// known to be broken).
    pub fn is_usable(&self) -> bool {
        self.io.is_some() && !self.broken
    }

    /// Record a ParameterStatus the server sent.
    pub fn record_param(&mut self, name: &str, value: &str) {
        match self.params.get_mut(name) {
            Some(v) if v == value => {}
            Some(v) => value.clone_into(v),
            None => {
                self.params.insert(name.to_string(), value.to_string());
            }
        }
    }
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("pid", &self.backend_key.0)
            .field("leased", &self.io.is_none())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerConn {
    /// Say goodbye (Terminate) without waiting, so the server does not log an unexpected EOF.
    fn drop(&mut self) {
        if let Some(io) = self.io.as_mut().filter(|_| !self.broken) {
            io.try_write_now(b"X\0\0\0\x04");
        }
    }
}

/// Where a server connection was made: a cancel for it must reach the same server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    /// The TCP address connected to (not a new DNS answer).
    Tcp(SocketAddr),
    /// The target's Unix-domain socket ([`UpstreamTarget::socket`]).
    Socket,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Tcp(addr) => addr.fmt(f),
            ServerAddr::Socket => f.write_str("unix socket"),
        }
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
