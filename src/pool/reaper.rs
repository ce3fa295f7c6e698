//! The per-pool maintenance task: closes connections idle longer than `pool.idle_timeout` or
//! older than `pool.max_lifetime`, and keeps `pool.min_idle` connections open.
//!
//! It holds only a weak reference, so it ends by itself when the pool is dropped or closed.

use std::time::Duration;

use deadpool::managed::{Metrics, Pool, WeakPool};
use tracing::{debug, warn};

use super::Manager;
use crate::config::PoolConfig;
use crate::server::ServerConn;

/// Start the maintenance task of `pool`.
pub(super) fn spawn(pool: &Pool<Manager>, config: &PoolConfig) {
    let weak = pool.weak();
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
async fn run_once(weak: &WeakPool<Manager>, config: &PoolConfig) -> bool {
    let Some(pool) = weak.upgrade() else {
        return false;
    };
    if pool.is_closed() {
        return false;
    }
    let mut kept = 0usize;
    let removed = pool.retain(|conn, metrics| {
        let keep = keep_idle(conn, &metrics, config, kept);
        kept += usize::from(keep);
        keep
    });
    if !removed.removed.is_empty() {
        debug!(pool = %pool.manager().key, closed = removed.removed.len(), "closed idle server connections");
    }
    drop(removed);
    top_up(&pool, config.min_idle).await;
    true
}

/// Whether an idle connection stays: usable, young enough, and either recently used or needed
/// to keep `min_idle` connections warm (`kept` is how many were kept so far).
fn keep_idle(conn: &ServerConn, metrics: &Metrics, config: &PoolConfig, kept: usize) -> bool {
    if !conn.is_usable() || conn.created.elapsed() >= config.max_lifetime {
        return false;
    }
    // deadpool's `recycled` is when it was last handed out; `last_used` when it came back.
    let idle = conn.last_used.elapsed().min(metrics.last_used());
    idle < config.idle_timeout || kept < config.min_idle
}

/// Open connections until the pool holds `min_idle` (never blocking a waiting client: only
/// when a slot is free right now).
async fn top_up(pool: &Pool<Manager>, min_idle: usize) {
    let status = pool.status();
    let missing = min_idle
        .saturating_sub(status.size)
        .min(status.max_size.saturating_sub(status.size));
    if missing == 0 || status.waiting > 0 {
        return;
    }
    let timeouts = deadpool::managed::Timeouts {
        wait: Some(Duration::ZERO),
        ..pool.timeouts()
    };
    let mut held = Vec::with_capacity(missing);
    for _ in 0..status.size + missing {
        match pool.timeout_get(&timeouts).await {
            Ok(obj) => held.push(obj),
            Err(deadpool::managed::PoolError::Timeout(_)) => break,
            Err(e) => {
                warn!(pool = %pool.manager().key, error = %e, "cannot open a min_idle server connection");
                break;
            }
        }
        if pool.status().size >= min_idle {
            break;
        }
    }
}
