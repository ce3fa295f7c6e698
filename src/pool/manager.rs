//! The [`Manager`] of one pool: opens server connections for one (database, user) and decides
//! whether an idle one may be handed out again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::debug;

use super::{Breaker, PoolKey};
use crate::config::PoolConfig;
use crate::server::{PreparedSet, ServerConn, ServerError, UpstreamTarget};

/// Creates and recycles [`ServerConn`]s for one [`PoolKey`].
pub struct Manager {
    pub(super) key: PoolKey,
    target: Arc<UpstreamTarget>,
    /// See `pool::credentials`; never printed.
    password: Option<String>,
    pub(super) config: PoolConfig,
    /// The upstream target's (shared with the other pools).
    pub(super) breaker: Arc<Breaker>,
    /// The login-defaults epoch of every pool (see `Pools::new_login_defaults`).
    defaults_epoch: Arc<AtomicU64>,
}

impl Manager {
    pub(super) fn new(
        key: PoolKey,
        target: Arc<UpstreamTarget>,
        password: Option<String>,
        config: PoolConfig,
        breaker: Arc<Breaker>,
        defaults_epoch: Arc<AtomicU64>,
    ) -> Manager {
        Manager { key, target, password, config, breaker, defaults_epoch }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("key", &self.key)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What a checkout does with an idle connection (see [`Manager::check`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Hand it out.
    Ready,
    /// Close it and take another.
    Discard,
    /// Idle longer than `health_check_after`: hand it out if [`Manager::health_check`] passes.
    HealthCheck,
}

impl Manager {
    /// Log in a new connection.
    pub(super) async fn create(&self) -> Result<Box<ServerConn>, ServerError> {
        let key = &self.key;
        // Taken before the login: defaults changed during it may or may not be in it.
        let epoch = self.defaults_epoch.load(Ordering::SeqCst);
        // Boxed: logging in (TLS, SCRAM) is a large state machine, and it would size the
        // future of every checkout, which sessions hold across every await on their hot path.
        let connect = ServerConn::connect(&self.target, &key.user, &key.database, self.password.as_deref());
        let mut conn = Box::pin(connect).await?;
        conn.prepared = PreparedSet::new(self.config.max_prepared_statements);
        conn.defaults_epoch = epoch;
        Ok(Box::new(conn))
    }

    /// Whether an idle connection may be handed out again, without waiting: not broken, not
    /// logged in under older login defaults, not past `max_lifetime`, not talked to by the
    /// server while idle (typically its FATAL before closing). One clock read: this runs for
    /// every transaction.
    pub(super) fn check(&self, conn: &mut ServerConn) -> Verdict {
        if !conn.is_usable() || conn.defaults_epoch != self.defaults_epoch.load(Ordering::Relaxed) {
            return Verdict::Discard;
        }
        let now = std::time::Instant::now();
        if now.saturating_duration_since(conn.created) >= self.config.max_lifetime {
            debug!(server = conn.id, pool = %self.key, "closing server connection: max_lifetime reached");
            return Verdict::Discard;
        }
        if let Err(e) = conn.check_idle() {
            debug!(server = conn.id, pool = %self.key, error = %e, "discarding dead idle server connection");
            return Verdict::Discard;
        }
        if now.saturating_duration_since(conn.last_used) >= self.config.health_check_after {
            return Verdict::HealthCheck;
        }
        Verdict::Ready
    }

    /// An empty query round trip, bounded by `acquire_timeout` as the checkout that waits for
    /// it would be. False (and the connection marked broken) when it fails.
    pub(super) async fn health_check(&self, conn: &mut ServerConn) -> bool {
        let outcome = tokio::time::timeout(self.config.acquire_timeout, conn.run_hidden("")).await;
        let failure = match outcome {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", self.config.acquire_timeout),
        };
        debug!(server = conn.id, pool = %self.key, error = %failure, "server connection failed its health check");
        conn.broken = true;
        false
    }
}
