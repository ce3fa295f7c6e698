//! Invalidation from Postgres's logical replication stream (`cache.invalidation:
//! replication`): every committed row change, whoever made it — another service, psql, a
//! trigger, a cascade — invalidates the cached answers of exactly those rows.
//!
//! - [`decode`]: the walsender's CopyData envelope and `pgoutput` (protocol 1) messages.
//! - [`apply`]: the relation map and one transaction's footprint → the cache's row versions.
//! - [`stream`]: one replication connection's setup (login with `replication=database` on
//!   the data path's own TCP/TLS/SCRAM, slot, `START_REPLICATION`), the publication.
//! - [`follow`]: the streaming loop: apply at Commit, confirm after applying, prove freshness
//!   or hold the database's answers (`cache.replication.max_lag`).
//! - [`Streams`] (here): one stream per database the proxy serves, started at its first login,
//!   reconnected with backoff; a lost stream holds and flushes its database.
//! - [`metrics`]: the Prometheus series and what `SHOW REPLICATION` prints.
//!
//! The choice of decoding on our own frame layer rather than a crate: docs/DECISIONS.md 44.

pub mod apply;
pub mod decode;
pub mod follow;
pub mod metrics;
pub mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cache::catalogs::Catalogs;
use crate::cache::{InvalidationCause, ResultCache};
use crate::config::ReplicationConfig;
use crate::invalidate::control;
use crate::server::{ServerError, UpstreamTarget};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What can go wrong with a stream, or with what it needs.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("replication connection: {0}")]
    Server(#[from] ServerError),
    #[error("control connection: {0}")]
    Control(#[from] tokio_postgres::Error),
    #[error("replication stream: {0}")]
    Decode(#[from] decode::DecodeError),
    #[error("publication \"{publication}\" does not exist and cannot be created: {source}")]
    Publication { publication: String, source: tokio_postgres::Error },
    #[error("the walsender ended streaming (message '{0}')")]
    Ended(char),
    #[error("the freshness probe's control connection was lost")]
    ProbeLost,
    #[error("the walsender stopped reading our status updates")]
    NotReading,
    /// The upstream cannot serve `cache.invalidation: replication`: what is missing, said so
    /// that an operator can fix it.
    #[error("cache.invalidation: replication: {0}")]
    Unmet(String),
}

/// What every stream shares.
pub struct Context {
    pub target: Arc<UpstreamTarget>,
    pub cache: Arc<ResultCache>,
    pub catalogs: Arc<Catalogs>,
    pub config: ReplicationConfig,
    /// `pgcached_replication_apply_delay_seconds`, by database.
    pub apply_delay: prometheus::HistogramVec,
}

impl Context {
    /// What streams of `config` need, with a fresh delay histogram.
    pub fn new(
        target: Arc<UpstreamTarget>,
        cache: Arc<ResultCache>,
        catalogs: Arc<Catalogs>,
        config: ReplicationConfig,
    ) -> Context {
        Context { target, cache, catalogs, config, apply_delay: metrics::apply_delay() }
    }
}

/// What one database's stream reports about itself (metrics, `SHOW REPLICATION`, tests).
#[derive(Debug)]
pub struct StreamState {
    connected: AtomicBool,
    held: AtomicBool,
    /// Successful starts (the first included).
    sessions: AtomicU64,
    /// Losses (or failed starts), each followed by a flush of the database.
    losses: AtomicU64,
    /// Times the stream fell behind `max_lag` while connected (answers held until it caught up).
    behind: AtomicU64,
    transactions: AtomicU64,
    changes: AtomicU64,
    applied: AtomicU64,
    /// Microseconds the database's freshness lags behind now (`u64::MAX`: not proved yet).
    lag_micros: AtomicU64,
    slot: Mutex<String>,
}

impl Default for StreamState {
    fn default() -> StreamState {
        StreamState {
            connected: AtomicBool::new(false),
            held: AtomicBool::new(true),
            sessions: AtomicU64::new(0),
            losses: AtomicU64::new(0),
            behind: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            lag_micros: AtomicU64::new(u64::MAX),
            slot: Mutex::default(),
        }
    }
}

impl StreamState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
    /// Whether the database's answers are not served now.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::SeqCst)
    }
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }
    /// Times the stream fell behind `max_lag` while connected.
    pub fn behind(&self) -> u64 {
        self.behind.load(Ordering::SeqCst)
    }
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::SeqCst)
    }
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
    /// The last applied (and soon confirmed) position.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }
    /// How far behind now the database is known fresh (`None`: not yet, or not since the
    /// stream was lost).
    pub fn lag(&self) -> Option<Duration> {
        let us = self.lag_micros.load(Ordering::SeqCst);
        (us != u64::MAX).then(|| Duration::from_micros(us))
    }
    pub fn slot(&self) -> String {
        self.slot.lock().expect("slot lock").clone()
    }
    fn fell_behind(&self) {
        self.behind.fetch_add(1, Ordering::SeqCst);
        self.set_held(true);
    }
    fn set_held(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }
    fn set_lag(&self, lag: Option<Duration>) {
        let us = lag.map_or(u64::MAX, |l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX - 1));
        self.lag_micros.store(us, Ordering::SeqCst);
    }
    fn set_applied(&self, lsn: u64) {
        self.applied.store(lsn, Ordering::SeqCst);
    }
    fn committed(&self, changes: u64) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(changes, Ordering::Relaxed);
    }
}

/// One running stream.
struct Handle {
    state: Arc<StreamState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// The streams, by database (`cache.invalidation: replication`; otherwise disabled).
pub struct Streams {
    ctx: Option<Arc<Context>>,
    by_database: Mutex<HashMap<String, Handle>>,
    closed: AtomicBool,
}

impl Streams {
    pub fn new(ctx: Context) -> Streams {
        Streams { ctx: Some(Arc::new(ctx)), by_database: Mutex::default(), closed: AtomicBool::new(false) }
    }

    pub fn disabled() -> Streams {
        Streams { ctx: None, by_database: Mutex::default(), closed: AtomicBool::new(false) }
    }

    pub fn is_enabled(&self) -> bool {
        self.ctx.is_some()
    }

    /// The commit-to-invalidation histogram the streams observe into.
    pub fn apply_delay(&self) -> Option<&prometheus::HistogramVec> {
        self.ctx.as_ref().map(|c| &c.apply_delay)
    }

    /// Make sure `database` is followed (call inside the runtime; cheap when it is). Until
    /// its stream has caught up, the database's answers are not served.
    pub fn ensure(&self, database: &str) {
        let Some(ctx) = &self.ctx else { return };
        let mut map = self.by_database.lock().expect("streams poisoned");
        if map.contains_key(database) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let state = Arc::new(StreamState::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(ctx.clone(), database.to_owned(), state.clone(), stopped));
        info!(%database, "replication stream started");
        map.insert(database.to_owned(), Handle { state, stop: Some(stop), task });
    }

    /// Every followed database's state, sorted by name.
    pub fn states(&self) -> Vec<(String, Arc<StreamState>)> {
        let map = self.by_database.lock().expect("streams poisoned");
        let mut v: Vec<_> = map.iter().map(|(db, h)| (db.clone(), h.state.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The state of `database`'s stream, if one was started.
    pub fn state(&self, database: &str) -> Option<Arc<StreamState>> {
        self.by_database.lock().expect("streams poisoned").get(database).map(|h| h.state.clone())
    }

    /// Stop every stream (leaving streaming politely, so temporary slots go at once) and wait.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let handles: Vec<Handle> = self.by_database.lock().expect("streams poisoned").drain().map(|(_, h)| h).collect();
        for mut h in handles {
            h.stop.take();
            let _ = h.task.await;
        }
    }
}

/// Follow `db` until stopped: connect, follow, and on any failure hold and flush the database
/// (changes during the gap are lost with a temporary slot) and reconnect with backoff.
async fn run(ctx: Arc<Context>, db: String, state: Arc<StreamState>, mut stop: oneshot::Receiver<()>) {
    let mut backoff = MIN_BACKOFF;
    // Kept across connections: a relation described again after a reconnection is compared
    // with what it was (DDL during the gap).
    let mut relations = apply::RelationMap::default();
    loop {
        ctx.cache.hold(&db);
        state.set_held(true);
        match connect(&ctx, &db, &state).await {
            Ok((streaming, control)) => {
                backoff = MIN_BACKOFF;
                let outcome = follow::follow(&ctx, &db, &state, streaming, control, &mut relations, &mut stop).await;
                state.connected.store(false, Ordering::SeqCst);
                match outcome {
                    Ok(follow::Ended::Stopped) => {
                        ctx.cache.hold(&db);
                        return;
                    }
                    Err(e) => warn!(database = %db, error = %e, "replication stream lost; flushing the database"),
                }
            }
            Err(e) => warn!(database = %db, error = %e, "replication stream cannot start"),
        }
        state.losses.fetch_add(1, Ordering::SeqCst);
        state.set_lag(None);
        ctx.cache.hold(&db);
        state.set_held(true);
        ctx.cache.flush_database(&db, InvalidationCause::ReplicationLost);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The control connection (publication, probes) and the replication connection, streaming.
async fn connect(
    ctx: &Context,
    db: &str,
    state: &StreamState,
) -> Result<(stream::Streaming, tokio_postgres::Client), ReplicationError> {
    let control = control_client(&ctx.target, db).await?;
    stream::ensure_publication(&control, &ctx.config.publication).await?;
    let pg = control::pg_config(&ctx.target, db, stream::APPLICATION_NAME);
    let user = pg.get_user().unwrap_or(control::DEFAULT_USER).to_owned();
    let streaming = stream::open(&ctx.target, &user, db, &ctx.config).await?;
    // The slot exists: every change from here on is streamed. Answers filled before may have
    // missed changes made before it (or during a gap): none is vouched for.
    ctx.cache.flush_database(db, InvalidationCause::ReplicationLost);
    *state.slot.lock().expect("slot lock") = streaming.slot.clone();
    state.connected.store(true, Ordering::SeqCst);
    state.sessions.fetch_add(1, Ordering::SeqCst);
    info!(database = %db, slot = %streaming.slot, publication = %ctx.config.publication, "replication streaming");
    Ok((streaming, control))
}

/// A tokio-postgres connection to `db` as the control plane logs in (driven by a task).
async fn control_client(target: &UpstreamTarget, db: &str) -> Result<tokio_postgres::Client, ReplicationError> {
    Ok(control::connect_as(target, db, "pgcached-replication-control").await?)
}

/// Check, before serving, that the upstream can stream to us: `wal_level = logical`, slots
/// and walsenders available, a role with REPLICATION (or superuser), and the publication
/// present or creatable. Checked in the default database of `upstream.url`; every other
/// database's publication is checked (and created) when its stream starts.
pub async fn preflight(target: &UpstreamTarget, cfg: &ReplicationConfig) -> Result<(), ReplicationError> {
    let db = control::default_database(target);
    let client = control_client(target, &db).await?;
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int,
                    current_setting('max_wal_senders')::int, r.rolname::text, r.rolreplication, r.rolsuper,
                    EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)
               FROM pg_roles r WHERE r.rolname = current_user",
            &[&cfg.publication],
        )
        .await?;
    let (wal_level, slots, senders): (String, i32, i32) = (row.get(0), row.get(1), row.get(2));
    let (role, replication, superuser, publication): (String, bool, bool, bool) =
        (row.get(3), row.get(4), row.get(5), row.get(6));
    if wal_level != "logical" {
        return Err(ReplicationError::Unmet(format!(
            "the upstream runs with wal_level = {wal_level}; it needs wal_level = logical \
             (ALTER SYSTEM SET wal_level = logical, then restart Postgres)"
        )));
    }
    if slots < 1 || senders < 1 {
        return Err(ReplicationError::Unmet(format!(
            "the upstream allows max_replication_slots = {slots}, max_wal_senders = {senders}; \
             each pgcached needs one of each per database it caches"
        )));
    }
    if !replication && !superuser {
        return Err(ReplicationError::Unmet(format!(
            "role \"{role}\" lacks the REPLICATION attribute (ALTER ROLE \"{role}\" REPLICATION)"
        )));
    }
    if !publication && !superuser {
        return Err(ReplicationError::Unmet(format!(
            "publication \"{p}\" does not exist in database \"{db}\" and role \"{role}\" may not create it \
             FOR ALL TABLES (superuser only): run CREATE PUBLICATION \"{p}\" FOR ALL TABLES in each database \
             as a superuser, or name an existing one in cache.replication.publication",
            p = cfg.publication
        )));
    }
    Ok(())
}
