//! The per-pool maintenance task: closes connections idle longer than `pool.idle_timeout` or
//! older than `pool.max_lifetime`, and keeps `pool.min_idle` connections open.
//!
//! It holds only a weak reference, so it ends by itself when the pool is dropped or closed.

use std::sync::Weak;
use std::time::Duration;

use tracing::{debug, warn};

use super::server_pool::{Inner, ServerPool};
use crate::config::PoolConfig;
use crate::server::ServerConn;

/// Start the maintenance task of `pool`.
pub(super) fn spawn(pool: &ServerPool, config: &PoolConfig) {
    let weak = pool.downgrade();
    let config = config.clone();
    tokio::spawn(async move {
        let every = interval(&config);
        loop {
            tokio::time::sleep(every).await;
            if !run_once(&weak, &config).await {
                return;
            }
        }
    });
}

/// How often to look: often enough to honour the shortest timeout within ~half of it.
fn interval(config: &PoolConfig) -> Duration {
    let shortest = config.idle_timeout.min(config.max_lifetime);
    (shortest / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// One maintenance pass. Returns false when the pool is gone.
async fn run_once(weak: &Weak<Inner>, config: &PoolConfig) -> bool {
    let Some(pool) = ServerPool::upgrade(weak) else {
        return false;
    };
    if pool.is_closed() {
        return false;
    }
    let mut kept = 0usize;
    let closed = pool.retain_idle(|conn| {
        let keep = keep_idle(conn, config, kept);
        kept += usize::from(keep);
        keep
    });
    if closed > 0 {
        debug!(pool = %pool.manager().key, closed, "closed idle server connections");
    }
    top_up(&pool, config.min_idle).await;
    true
}

/// Whether an idle connection stays: usable, young enough, and either recently used or needed
/// to keep `min_idle` connections warm (`kept` is how many were kept so far, the most recently
/// used first).
fn keep_idle(conn: &ServerConn, config: &PoolConfig, kept: usize) -> bool {
    if !conn.is_usable() || conn.created.elapsed() >= config.max_lifetime {
        return false;
    }
    conn.last_used.elapsed() < config.idle_timeout || kept < config.min_idle
}

/// Open connections until the pool holds `min_idle` (never while a client waits, and only
/// into slots free right now).
async fn top_up(pool: &ServerPool, min_idle: usize) {
    loop {
        let status = pool.status();
        if status.size >= min_idle || status.size >= status.max_size || status.waiting > 0 {
            return;
        }
        match pool.open_idle().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                warn!(pool = %pool.manager().key, error = %e, "cannot open a min_idle server connection");
                return;
            }
        }
    }
}
