//! Pools of upstream server connections, one per (database, user).
//!
//! - `Pools`: the shared set of pools, created lazily on first use of a [`PoolKey`].
//! - `server_pool`: [`ServerPool`], one pool: slots, idle connections, checkout and return.
//! - `manager`: how a connection is opened and when an idle one may be reused.
//! - `reaper`: per-pool task closing idle/old connections and keeping `min_idle` warm.
//! - `breaker`: [`Breaker`], the circuit breaker of the upstream target (shared by the pools).
//! - `retry`: which connect failures are tried again, and the backoff between attempts.
//! - `credentials`: which password logs in as which user (read its doc).
//! - `control`: the control-plane client pool (tokio-postgres) for catalog look-ups & co.
//! - `error`: [`PoolError`].
//!
//! A session gets a [`ServerObject`] with [`Pools::get`] (waiting up to `pool.acquire_timeout`),
//! or keeps the [`PoolHandle`] of its pool and calls [`PoolHandle::get`] (no map look-up per
//! transaction), takes its `io`, and gives it back into the object when the server is idle —
//! or marks the connection `broken`. Dropping the object returns it to its pool; the next `get`
//! checks it (see [`Manager`]) or opens a new one.

pub mod breaker;
pub mod control;
pub mod credentials;
mod error;
mod manager;
mod reaper;
pub mod retry;
mod server_pool;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tracing::info;

pub use breaker::Breaker;
pub use error::PoolError;
pub use manager::Manager;
pub use server_pool::{PoolStatus, ServerObject, ServerPool};

use crate::config::{Config, PoolConfig};
use crate::server::UpstreamTarget;

/// What a pool is for: server connections logged in as `user` to `database`.
#[derive(Clone, Hash, PartialEq, Eq, Debug)]
pub struct PoolKey {
    pub database: String,
    pub user: String,
}

impl fmt::Display for PoolKey {
    /// `database/user`, as pool names appear in messages and metrics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.database, self.user)
    }
}

/// Every pool of the process. Share it behind an `Arc`.
pub struct Pools {
    /// The configuration in effect (replaced by [`Pools::reconfigure`]).
    config: RwLock<Arc<Config>>,
    target: Arc<UpstreamTarget>,
    /// Whether `target` is reachable; one for every pool, since they share the target.
    breaker: Arc<Breaker>,
    pools: Mutex<HashMap<PoolKey, ServerPool>>,
    /// Set by [`Pools::close`]: no new pool is created after it.
    closed: AtomicBool,
    /// Databases `PAUSE`d (`None` in the set: all): their pools, new ones too, hold checkouts.
    paused: Mutex<HashSet<Option<String>>>,
    /// Bumped each time the login defaults change (see [`Pools::new_login_defaults`]); each
    /// connection keeps the value its login began under.
    defaults_epoch: Arc<AtomicU64>,
}

impl Pools {
    pub fn new(config: Arc<Config>) -> Result<Pools, PoolError> {
        let target = UpstreamTarget::from_config(&config.upstream).map_err(|e| PoolError::Config(e.to_string()))?;
        Ok(Pools {
            config: RwLock::new(config),
            target: Arc::new(target),
            breaker: Arc::new(Breaker::new()),
            pools: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            paused: Mutex::new(HashSet::new()),
            defaults_epoch: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The login defaults changed (`ALTER DATABASE/ROLE … SET` committed: `sql::login_defaults`).
    /// Connections logged in before are not handed out again — the idle ones are closed now,
    /// leased ones when they come back — so a new client gets a connection with the new
    /// defaults, as a new session directly would. A client holding one keeps it (sessions open
    /// directly keep their old defaults too). Every pool: a role's defaults reach every
    /// database, and this is rare.
    pub fn new_login_defaults(&self) {
        let now = self.defaults_epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let pools: Vec<ServerPool> = self.pools.lock().expect("pools lock").values().cloned().collect();
        let closed: usize = pools.iter().map(|p| p.retain_idle(|c| c.defaults_epoch == now)).sum();
        info!(closed, "login defaults changed: pooled server connections logged in before are retired");
    }

    /// The current login-defaults epoch (see [`Pools::new_login_defaults`]).
    pub fn defaults_epoch(&self) -> u64 {
        self.defaults_epoch.load(Ordering::SeqCst)
    }

    /// A server connection for `key`, waiting up to `pool.acquire_timeout` for a free slot.
    pub async fn get(&self, key: &PoolKey) -> Result<ServerObject, PoolError> {
        self.handle(key)?.get().await
    }

    /// The pool of `key` (created on first use), to keep and take connections from.
    pub fn handle(&self, key: &PoolKey) -> Result<PoolHandle, PoolError> {
        let pool = self.pool(key)?;
        Ok(PoolHandle { pool, acquire_timeout: self.config().pool.acquire_timeout })
    }

    pub fn target(&self) -> &UpstreamTarget {
        &self.target
    }

    /// The upstream target, shared (e.g. for a cancel task that outlives the borrow).
    pub fn target_arc(&self) -> Arc<UpstreamTarget> {
        self.target.clone()
    }

    /// The circuit breaker of the upstream target (for metrics).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Size and use of every pool, for metrics and the admin console.
    pub fn status(&self) -> Vec<(PoolKey, PoolStatus)> {
        let pools = self.pools.lock().expect("pools lock");
        let mut all: Vec<_> = pools.iter().map(|(k, p)| (k.clone(), p.status())).collect();
        all.sort_by(|a, b| (&a.0.database, &a.0.user).cmp(&(&b.0.database, &b.0.user)));
        all
    }

    /// Drop `key`'s pool if it holds no connection and nobody waits for one (a login that
    /// upstream refused: the pool is not shown in metrics and the console any longer).
    pub fn forget_unused(&self, key: &PoolKey) {
        let mut pools = self.pools.lock().expect("pools lock");
        if pools.get(key).is_some_and(|p| {
            let s = p.status();
            s.size == 0 && s.waiting == 0
        }) {
            pools.remove(key);
        }
    }

    /// Close the idle connections of `database`'s pools (every user's): for a statement that
    /// needs the database free of other sessions (`sql::database_ddl`). Returns how many.
    pub fn close_idle(&self, database: &str) -> usize {
        let pools: Vec<ServerPool> = self
            .pools
            .lock()
            .expect("pools lock")
            .iter()
            .filter(|(k, _)| k.database == database)
            .map(|(_, p)| p.clone())
            .collect();
        pools.iter().map(|p| p.retain_idle(|_| false)).sum()
    }

    /// Every pool's idle connections: (pool, backend pid, age, time idle).
    pub fn idle_servers(&self) -> Vec<(PoolKey, i32, Duration, Duration)> {
        let pools: Vec<(PoolKey, ServerPool)> =
            self.pools.lock().expect("pools lock").iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        let mut all = Vec::new();
        for (key, pool) in pools {
            all.extend(pool.idle_servers().into_iter().map(|(pid, age, idle)| (key.clone(), pid, age, idle)));
        }
        all
    }

    /// Close every pool: waiting and future `get`s fail with [`PoolError::Closed`], idle
    /// connections are closed, leased ones are closed when they come back.
    pub fn close(&self) {
        let mut pools = self.pools.lock().expect("pools lock");
        self.closed.store(true, Ordering::SeqCst);
        for pool in pools.values() {
            pool.close();
        }
        pools.clear();
    }

    /// Take a reloaded configuration (its `upstream` is the one these pools were made for:
    /// that needs a restart). `pool.max_size` resizes every pool at once; a new
    /// `pool.acquire_timeout` holds for handles taken from now on; when any other `pool` key
    /// changed, the pools are retired (and a pool whose upstream password changed): sessions that hold one
    /// finish with it, and the next handle opens a new pool with the new settings. Returns
    /// what changed, for the log.
    pub fn reconfigure(&self, config: Arc<Config>) -> Vec<String> {
        let old = std::mem::replace(&mut *self.config.write().unwrap_or_else(|e| e.into_inner()), config.clone());
        let mut changes = Vec::new();
        let (before, after) = (&old.pool, &config.pool);
        let others_changed = PoolConfig { max_size: 0, acquire_timeout: Duration::ZERO, ..before.clone() }
            != PoolConfig { max_size: 0, acquire_timeout: Duration::ZERO, ..after.clone() };
        let mut pools = self.pools.lock().expect("pools lock");
        if others_changed {
            changes.push(format!("{} server pools retired (pool settings changed)", pools.len()));
            pools.clear();
        }
        let password =
            |auth: &crate::config::AuthConfig, user: &str| credentials::upstream_password(&self.target, auth, user);
        pools.retain(|key, _| {
            let same = password(&old.auth, &key.user) == password(&config.auth, &key.user);
            if !same {
                changes.push(format!("server pool {key} retired (its upstream password changed)"));
            }
            same
        });
        if before.max_size != after.max_size {
            for pool in pools.values() {
                pool.resize(after.max_size);
            }
            changes.push(format!("pool.max_size {} -> {}", before.max_size, after.max_size));
        }
        if before.acquire_timeout != after.acquire_timeout {
            changes.push(format!("pool.acquire_timeout {:?} -> {:?}", before.acquire_timeout, after.acquire_timeout));
        }
        changes
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `PAUSE [database]` (PgBouncer's): from now on, checkouts of the database's pools (every
    /// pool's, for `None`) wait; returns once no connection of theirs is handed out any more
    /// (transactions in progress finish) and their idle connections are closed — the upstream
    /// may then restart. Clients waiting meanwhile go on at [`Pools::resume`].
    pub async fn pause(&self, database: Option<&str>) {
        self.paused.lock().expect("paused lock").insert(database.map(str::to_string));
        let matching = || -> Vec<ServerPool> {
            let pools = self.pools.lock().expect("pools lock");
            pools.iter().filter(|(k, _)| database.is_none_or(|d| k.database == d)).map(|(_, p)| p.clone()).collect()
        };
        for pool in matching() {
            pool.pause();
        }
        while !matching().iter().all(ServerPool::drained) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `RESUME [database]`: undo [`Pools::pause`] (`None`: every pause).
    pub fn resume(&self, database: Option<&str>) {
        let mut paused = self.paused.lock().expect("paused lock");
        match database {
            Some(d) => {
                paused.remove(&Some(d.to_string()));
            }
            None => paused.clear(),
        }
        let pools = self.pools.lock().expect("pools lock");
        for (key, pool) in pools.iter() {
            if !Self::holds(&paused, &key.database) {
                pool.resume();
            }
        }
    }

    /// Is `database` paused?
    pub fn is_paused(&self, database: &str) -> bool {
        Self::holds(&self.paused.lock().expect("paused lock"), database)
    }

    fn holds(paused: &HashSet<Option<String>>, database: &str) -> bool {
        paused.contains(&None) || paused.contains(&Some(database.to_string()))
    }

    /// The pool of `key`, created (with its maintenance task) on first use.
    fn pool(&self, key: &PoolKey) -> Result<ServerPool, PoolError> {
        let mut pools = self.pools.lock().expect("pools lock");
        if self.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        if let Some(pool) = pools.get(key) {
            return Ok(pool.clone());
        }
        let config = self.config();
        let cfg = &config.pool;
        let password = credentials::upstream_password(&self.target, &config.auth, &key.user);
        let manager = Manager::new(
            key.clone(),
            self.target.clone(),
            password,
            cfg.clone(),
            self.breaker.clone(),
            self.defaults_epoch.clone(),
        );
        let create_timeout = cfg.acquire_timeout.max(config.timeouts.login);
        let pool = ServerPool::new(manager, cfg.max_size, create_timeout);
        if self.is_paused(&key.database) {
            pool.pause();
        }
        reaper::spawn(&pool, cfg);
        info!(pool = %key, max_size = cfg.max_size, "created server pool");
        pools.insert(key.clone(), pool.clone());
        Ok(pool)
    }
}

/// One pool, as a session keeps it: taking a connection needs no look-up in [`Pools`].
#[derive(Clone)]
pub struct PoolHandle {
    pool: ServerPool,
    acquire_timeout: Duration,
}

impl PoolHandle {
    /// A server connection, waiting up to `pool.acquire_timeout` for a free slot.
    pub async fn get(&self) -> Result<ServerObject, PoolError> {
        self.pool.get(self.acquire_timeout).await
    }

    /// [`PoolHandle::get`], preferring an idle connection that `fits` (see
    /// [`ServerPool::get_preferring`]).
    pub async fn get_preferring(
        &self,
        fits: impl Fn(&crate::server::ServerConn) -> bool,
    ) -> Result<ServerObject, PoolError> {
        self.pool.get_preferring(self.acquire_timeout, fits).await
    }

    /// A connection with no custom setting outside `defined` (the ones the client taking it
    /// has defined; see `ServerConn::placeholders`): one is preferred, and one with others,
    /// when that is all there is, is closed — after `attempts` of them the next one is taken.
    pub async fn get_without_foreign_placeholders(
        &self,
        defined: &[String],
        mut attempts: usize,
    ) -> Result<ServerObject, PoolError> {
        let fits = |c: &crate::server::ServerConn| c.placeholders.iter().all(|p| defined.contains(p));
        loop {
            let mut obj = self.get_preferring(fits).await?;
            if fits(&obj) || attempts == 0 {
                return Ok(obj);
            }
            tracing::debug!(placeholders = ?obj.placeholders, "server connection has custom settings this client never defined: closing it");
            obj.broken = true;
            attempts -= 1;
        }
    }
}
