//! [`PoolError`]: why a server connection could not be handed out.

use std::time::Duration;

use thiserror::Error;

use crate::server::ServerError;

#[derive(Debug, Error)]
pub enum PoolError {
    /// Every connection of the pool stayed busy for `pool.acquire_timeout`.
    #[error(
        "pgcached: no server connection available in pool \"{pool}\" after {} (pool.max_size = {max_size})",
        humantime::format_duration(*waited)
    )]
    Timeout {
        /// `database/user`.
        pool: String,
        waited: Duration,
        max_size: usize,
    },
    /// Opening a new server connection failed (the server's ErrorResponse is kept inside).
    #[error("pgcached: cannot open a server connection: {0}")]
    Connect(#[source] ServerError),
    /// The client's session settings could not be applied on the connection it got (the
    /// server's error is kept inside); the client's settings were reset to its startup values.
    #[error(
        "pgcached: this session's settings could not be restored on a server connection ({0}); they were reset to their startup values"
    )]
    Settings(#[source] ServerError),
    /// The transaction the proxy held (see `session::held`) could not be begun on the
    /// connection the client got (the server's error is kept inside).
    #[error("pgcached: the transaction could not be begun on a server connection: {0}")]
    Begin(#[source] ServerError),
    /// The pools are shut down.
    #[error("pgcached: the connection pool is closed (shutting down)")]
    Closed,
    /// The upstream configuration is unusable (bad URL, bad CA file, …).
    #[error("pgcached: invalid pool configuration: {0}")]
    Config(String),
    /// The connection handed out turned out dead while it was being prepared for the client
    /// (a network error under the proxy's hidden statements): the session takes another.
    #[error("pgcached: the server connection was lost while it was being prepared: {0}")]
    Dead(#[source] ServerError),
    /// The upstream is marked down (see `pool::breaker`): no connection was tried.
    #[error(transparent)]
    Down(#[from] super::breaker::BreakerOpen),
    /// The client cancelled its statement while it waited for a connection (Postgres's words:
    /// nothing was sent upstream).
    #[error("canceling statement due to user request")]
    Cancelled,
}

impl PoolError {
    /// SQLSTATE for the ErrorResponse a session sends its client.
    pub fn sqlstate(&self) -> &str {
        match self {
            PoolError::Timeout { .. } => "53300",
            PoolError::Connect(source) | PoolError::Settings(source) | PoolError::Begin(source) => source.sqlstate(),
            PoolError::Closed => "57P01",
            PoolError::Config(_) | PoolError::Down(_) | PoolError::Dead(_) => "08006",
            PoolError::Cancelled => "57014",
        }
    }

    /// The server's own ErrorResponse frame, when the upstream refused the login (to forward
    /// as is, e.g. 28P01 or 3D000).
    pub fn server_error_frame(&self) -> Option<&bytes::Bytes> {
        match self {
            PoolError::Connect(ServerError::Postgres { raw, .. }) => Some(raw),
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            PoolError::Timeout { .. } => "timeout",
            PoolError::Connect(_) => "connect",
            PoolError::Settings(_) => "settings",
            PoolError::Begin(_) => "begin",
            PoolError::Closed => "closed",
            PoolError::Config(_) => "config",
            PoolError::Cancelled => "cancelled",
            PoolError::Down(_) => "upstream_down",
            PoolError::Dead(_) => "dead",
        }
    }

    /// Postgres could not be reached: a network-level failure to open a connection, or the
    /// circuit breaker refusing to try (what `cache.serve_stale_on_error` answers for).
    pub fn is_unreachable(&self) -> bool {
        match self {
            PoolError::Connect(e) => e.is_transient(),
            PoolError::Down(_) | PoolError::Dead(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_names_the_pool_and_its_size() {
        let e = PoolError::Timeout { pool: "app/alice".into(), waited: Duration::from_secs(5), max_size: 5 };
        assert_eq!(
            e.to_string(),
            "pgcached: no server connection available in pool \"app/alice\" after 5s (pool.max_size = 5)"
        );
        assert_eq!(e.sqlstate(), "53300");
    }

    #[test]
    fn connect_failures_keep_the_server_code_or_say_connection_failure() {
        let refused = PoolError::Connect(ServerError::Postgres {
            code: "28P01".into(),
            message: "password authentication failed".into(),
            severity: "FATAL".into(),
            raw: bytes::Bytes::new(),
        });
        assert_eq!(refused.sqlstate(), "28P01");
        let io = PoolError::Connect(ServerError::Closed);
        assert_eq!(io.sqlstate(), "08006");
    }
}
