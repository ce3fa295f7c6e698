//! The deadpool [`Manager`] of one pool: opens server connections for one (database, user) and
//! decides whether an idle one may be handed out again.

use std::sync::Arc;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use tracing::debug;

use super::PoolKey;
use crate::config::PoolConfig;
use crate::server::{PreparedSet, ServerConn, ServerError, UpstreamTarget};

/// Creates and recycles [`ServerConn`]s for one [`PoolKey`].
pub struct Manager {
    pub(super) key: PoolKey,
    target: Arc<UpstreamTarget>,
    /// See `pool::credentials`; never printed.
    password: Option<String>,
    config: PoolConfig,
}

impl Manager {
    pub(super) fn new(
        key: PoolKey,
        target: Arc<UpstreamTarget>,
        password: Option<String>,
        config: PoolConfig,
    ) -> Manager {
        Manager { key, target, password, config }
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

impl managed::Manager for Manager {
    /// Boxed: the pool moves its objects around a dozen times per checkout; a pointer is
    /// cheaper to move than a connection's state.
    type Type = Box<ServerConn>;
    type Error = ServerError;

    async fn create(&self) -> Result<Box<ServerConn>, ServerError> {
        let key = &self.key;
        // Boxed: logging in (TLS, SCRAM) is a large state machine, and this future is part of
        // every checkout's, which sessions hold across every await on their hot path.
        let connect = ServerConn::connect(&self.target, &key.user, &key.database, self.password.as_deref());
        let mut conn = Box::pin(connect).await?;
        conn.prepared = PreparedSet::new(self.config.max_prepared_statements);
        Ok(Box::new(conn))
    }

    /// Refuse a connection that is leased or broken, past `max_lifetime`, that the server
    /// talked to while idle (typically its FATAL before closing), or that fails the health check
    /// after sitting idle longer than `health_check_after`.
    async fn recycle(&self, conn: &mut Box<ServerConn>, metrics: &Metrics) -> RecycleResult<ServerError> {
        if conn.io.is_none() {
            return Err(RecycleError::message("streams were not given back"));
        }
        if conn.broken {
            return Err(RecycleError::message("marked broken"));
        }
        // One clock read per checkout (this runs for every transaction).
        let now = std::time::Instant::now();
        if now.saturating_duration_since(conn.created) >= self.config.max_lifetime {
            debug!(server = conn.id, pool = %self.key, "closing server connection: max_lifetime reached");
            return Err(RecycleError::message("max_lifetime reached"));
        }
        if let Err(e) = conn.check_idle() {
            debug!(server = conn.id, pool = %self.key, error = %e, "discarding dead idle server connection");
            return Err(e.into());
        }
        // deadpool's `recycled` is when it was last handed out, `last_used` when it came back
        // (if the session used `restore_io`): the smaller is the best estimate of idleness.
        let handed_out = metrics.recycled.unwrap_or(metrics.created);
        let idle = now.saturating_duration_since(conn.last_used.max(handed_out));
        if idle >= self.config.health_check_after {
            // The pool arms no recycle timer (one per checkout would cost every transaction):
            // the check bounds itself by `acquire_timeout`, as the checkout would have.
            // Boxed, like `create`'s login: rare, and it would size every checkout's future.
            let outcome = Box::pin(tokio::time::timeout(self.config.acquire_timeout, conn.run_hidden(""))).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {:?}", self.config.acquire_timeout)),
            };
            if let Some(failure) = failure {
                debug!(server = conn.id, pool = %self.key, error = %failure, "server connection failed its health check");
                conn.broken = true;
                return Err(RecycleError::message(format!("health check failed: {failure}")));
            }
        }
        Ok(())
    }
}
