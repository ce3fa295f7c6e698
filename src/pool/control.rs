//! The control-plane client pool: tokio-postgres connections to the upstream for what the proxy
//! asks on its own behalf (auth_query, catalog look-ups, EXPLAIN cost checks, LISTEN for
//! invalidation). Never used on the data path.
//!
//! It logs in as the user of `upstream.url` (`postgres` when the URL names none) with the URL's
//! password. TLS: not implemented yet — the connection is made without TLS, which matches
//! `upstream.tls = disable | prefer` (prefer falls back to plain); under `require` or
//! `verify-full` building the pool fails with [`PoolError::Config`] rather than silently
//! sending credentials in clear.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use super::PoolError;
use crate::server::UpstreamTarget;

/// User the control plane logs in as when `upstream.url` names none.
const DEFAULT_CONTROL_USER: &str = "postgres";

/// Close `pool`'s idle connections (their sessions end as the clients are dropped). Returns how many.
pub fn close_idle(pool: &Pool) -> usize {
    pool.retain(|_, _| false).removed.len()
}

/// A control-plane pool of at most `max_size` connections to `database`; getting a connection
/// waits at most `acquire_timeout`. Connections are opened lazily.
pub fn control_pool(
    target: &UpstreamTarget,
    database: &str,
    max_size: usize,
    acquire_timeout: Duration,
) -> Result<Pool, PoolError> {
    if target.tls_required() {
        return Err(PoolError::Config(
            "control-plane connections do not support upstream.tls = require/verify-full yet".into(),
        ));
    }
    let mut pg = target.pg_config().clone();
    pg.dbname(database);
    pg.ssl_mode(SslMode::Disable);
    pg.application_name("pgcached control");
    pg.user(target.url_user.as_deref().unwrap_or(DEFAULT_CONTROL_USER));
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(acquire_timeout))
        .create_timeout(Some(acquire_timeout))
        .recycle_timeout(Some(acquire_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| PoolError::Config(e.to_string()))
}
