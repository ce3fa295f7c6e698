//! The result cache: moka weighed in bytes, a TTL per entry, table versions checked on every
//! hit, single-flight fills. This is the one object the session talks to.
//!
//! A session's sequence for a cacheable read (see the module doc of [`crate::cache`]):
//! [`ResultCache::lookup`] → `Hit` (replay) | `Fill` (forward, [`Recorder::record`] each
//! answer frame, then [`ResultCache::complete`]) | `Wait` ([`ResultCache::wait`], which turns
//! into `Hit` or `Fill`) | `Bypass` (forward, uncached).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::Expiry;

use super::churn::Churn;
use super::flight::{Flights, Join, Waiter};
use super::key::{CacheKey, CacheKeyHasher, KeySeed};
use super::names::version_key;
use super::recorder::{CachedResult, Recorder, Rejected};
use super::stats::{CacheStats, InvalidationCause};
use super::versions::{RowDeps, RowWrite, TableVersions};
use crate::config::CacheConfig;
use crate::sql::query_id::QueryId;

/// What an entry costs beyond its frames (key, `Arc`, versions, moka's bookkeeping), so that
/// many tiny entries are weighed honestly against `cache.max_memory`.
const ENTRY_OVERHEAD: usize = 256;

/// How long a follower waits for a leader's fill before going upstream itself.
pub const DEFAULT_FOLLOWER_WAIT: Duration = Duration::from_secs(5);

/// What a fill needs besides its key: the tables it reads and how long it may live (from
/// [`super::Rules::decide`]).
#[derive(Debug, Clone, Copy)]
pub struct FillSpec<'a> {
    pub database: &'a str,
    /// The tables read, views expanded to their base tables (see [`super::Catalog`]).
    pub tables: &'a [&'a str],
    /// The rows of one of `tables` the read is pinned to: it depends on those, not on the whole
    /// table (see `versions`).
    pub rows: Option<RowDeps<'a>>,
    pub ttl: Duration,
    /// The statement's identity in per-query statistics, kept with the entry (`None`: off).
    pub query: Option<&'a QueryId>,
}

/// The answer of [`ResultCache::lookup`].
// A Lookup lives for one statement, returned and matched at once: boxing the recorder would
// allocate on every miss to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Lookup {
    /// Fresh entry: replay it, forward nothing.
    Hit(Arc<CachedResult>),
    /// Miss, and this caller fills: forward, record, then [`ResultCache::complete`] (or drop).
    Fill(Recorder),
    /// Miss, and another session is filling: [`ResultCache::wait`].
    Wait(Waiter),
    /// The cache is off or the TTL is zero: forward, uncached.
    Bypass,
}

/// The shared cache. One per proxy (`Arc<ResultCache>`), for all databases.
pub struct ResultCache {
    entries: moka::sync::Cache<CacheKey, Arc<CachedResult>, CacheKeyHasher>,
    versions: Arc<TableVersions>,
    stats: Arc<CacheStats>,
    flights: Arc<Flights>,
    /// Tables whose answers die unhit, not recorded for a while (see `churn`).
    churn: Churn,
    seed: KeySeed,
    enabled: bool,
    /// What the recordings in progress hold together (`cache.max_filling`).
    fill_budget: Arc<super::fill_budget::FillBudget>,
    default_ttl: Duration,
    follower_wait: Duration,
    /// `cache.serve_stale_on_error.max_age` when on: entries stay this long past their TTL,
    /// and a hit checks the TTL itself (`None`: moka expires them at their TTL, no clock read).
    stale_grace: Option<Duration>,
}

impl std::fmt::Debug for ResultCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("enabled", &self.enabled)
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl ResultCache {
    pub fn new(cfg: &CacheConfig) -> ResultCache {
        let stats = Arc::new(CacheStats::default());
        let listener_stats = stats.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(cfg.max_memory.as_u64())
            .weigher(|_k, v: &Arc<CachedResult>| weight(v))
            .expire_after(PerEntryTtl { grace: cfg.serve_stale_on_error.grace().unwrap_or_default() })
            .eviction_listener(move |_k, v: Arc<CachedResult>, cause| {
                listener_stats.entry_delta(weight(&v), false);
                match cause {
                    RemovalCause::Size => listener_stats.evicted(),
                    RemovalCause::Expired => listener_stats.expired(),
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                }
            })
            .build_with_hasher(CacheKeyHasher::default());
        ResultCache {
            entries,
            versions: Arc::new(if cfg.invalidation == crate::config::InvalidationMode::Replication {
                // Nothing is served until the database's replication stream vouches for it.
                TableVersions::held_at_start()
            } else {
                TableVersions::new()
            }),
            stats,
            flights: Flights::new(),
            churn: Churn::default(),
            seed: KeySeed::new(),
            enabled: cfg.enabled,
            fill_budget: Arc::new(super::fill_budget::FillBudget::new(
                usize::try_from(cfg.max_filling.as_u64()).unwrap_or(usize::MAX),
                usize::try_from(cfg.max_entry_size.as_u64()).unwrap_or(usize::MAX),
            )),
            default_ttl: cfg.default_ttl,
            follower_wait: DEFAULT_FOLLOWER_WAIT,
            stale_grace: cfg.serve_stale_on_error.grace(),
        }
    }

    /// Change how long followers wait for a leader (default [`DEFAULT_FOLLOWER_WAIT`]).
    pub fn with_follower_wait(mut self, wait: Duration) -> ResultCache {
        self.follower_wait = wait;
        self
    }

    /// The bytes the recordings in progress hold (within `cache.max_filling`).
    pub fn filling_bytes(&self) -> usize {
        self.fill_budget.used()
    }

    /// `cache.enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `cache.default_ttl`.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// The hash keys every [`super::KeyBuilder`] for this cache must use.
    pub fn seed(&self) -> &KeySeed {
        &self.seed
    }

    pub fn versions(&self) -> &Arc<TableVersions> {
        &self.versions
    }

    /// Per table an entry depends on: (entries, weighed bytes, entries hit at least once), for
    /// the console's `SHOW CACHE TABLES` (walks every entry: not for the data path).
    pub fn table_usage(&self) -> std::collections::HashMap<String, (u64, u64, u64)> {
        let mut usage: std::collections::HashMap<String, (u64, u64, u64)> = std::collections::HashMap::new();
        for (_, entry) in self.entries.iter() {
            let hit = entry.hit.load(std::sync::atomic::Ordering::Relaxed);
            for table in entry.tables.iter() {
                let u = usage.entry(table.clone()).or_default();
                u.0 += 1;
                u.1 += u64::from(weight(&entry));
                u.2 += u64::from(hit);
            }
        }
        usage
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// A fresh entry for `key`, counting a hit or a miss. Use [`Self::lookup`] for reads that
    /// may fill; this is for callers that only want to replay.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<CachedResult>> {
        let hit = self.fresh(key);
        match hit {
            Some(_) => self.stats.hit(),
            None => self.stats.miss(),
        }
        hit
    }

    /// A fresh entry for `key`, counting only a hit: for a quick look before the full
    /// [`Self::lookup`], which counts the miss.
    pub fn peek(&self, key: &CacheKey) -> Option<Arc<CachedResult>> {
        let hit = self.fresh(key)?;
        self.stats.hit();
        Some(hit)
    }

    /// Look `key` up; on a miss, either lead the fill (with the table versions snapshotted now,
    /// before the upstream execution) or follow the session already filling it.
    pub fn lookup(&self, key: CacheKey, spec: &FillSpec<'_>) -> Lookup {
        if !self.enabled || spec.ttl.is_zero() {
            return Lookup::Bypass;
        }
        if let Some(hit) = self.fresh(&key) {
            self.stats.hit();
            return Lookup::Hit(hit);
        }
        if self.churn.suspended(spec.tables.iter().copied(), Instant::now()) {
            // Its answers die before anyone reads them: recording would only cost.
            self.stats.churn_bypass();
            return Lookup::Bypass;
        }
        match self.flights.join(key) {
            Join::Follower(w) => Lookup::Wait(w),
            Join::Leader(flight) => {
                // A fill may have landed between the miss and the join.
                if let Some(hit) = self.fresh(&key) {
                    self.stats.hit();
                    return Lookup::Hit(hit);
                }
                self.stats.miss();
                let mut rec = self.begin(key, spec);
                rec.flight = Some(flight);
                Lookup::Fill(rec)
            }
        }
    }

    /// Wait (bounded) for the leader of `key`, then: `Hit` with its answer, or `Fill` to go
    /// upstream yourself (fresh snapshot, no flight) if the leader failed or was too slow.
    pub async fn wait(&self, waiter: Waiter, key: CacheKey, spec: &FillSpec<'_>) -> Lookup {
        waiter.wait(self.follower_wait).await;
        if let Some(hit) = self.fresh(&key) {
            self.stats.hit();
            self.stats.flight_joined();
            return Lookup::Hit(hit);
        }
        self.stats.miss();
        self.stats.flight_fallback();
        Lookup::Fill(self.begin(key, spec))
    }

    /// A miss that does not wait for the leader of `key` (its caller holds what the leader may
    /// be waiting for: a server connection): `Fill` without the flight, fresh snapshot.
    pub fn fill_alone(&self, waiter: Waiter, key: CacheKey, spec: &FillSpec<'_>) -> Lookup {
        drop(waiter);
        self.stats.miss();
        self.stats.flight_fallback();
        Lookup::Fill(self.begin(key, spec))
    }

    /// A recorder for `key` without stampede protection; snapshots the versions now.
    pub fn begin(&self, key: CacheKey, spec: &FillSpec<'_>) -> Recorder {
        let pinned = spec.rows.map(|r| version_key(r.table));
        let others = spec.tables.iter().copied().filter(|t| pinned.as_deref() != Some(&*version_key(t)));
        let versions = self.versions.snapshot(spec.database, others, spec.rows);
        let tables: Arc<[String]> = spec.tables.iter().map(|t| t.to_string()).collect();
        let mut recorder =
            Recorder::new(key, versions, self.versions.clone(), tables, spec.ttl, self.fill_budget.clone());
        recorder.query = spec.query.map(|q| Box::new(q.clone()));
        recorder
    }

    /// End a fill: store the answer if the recorder accepts it (see `recorder.rs`), count the
    /// outcome, then release the followers.
    pub fn complete(&self, mut rec: Recorder) -> Result<(), Rejected> {
        let flight = rec.flight.take();
        let key = rec.key;
        let outcome = rec.finish().and_then(|entry| self.insert(key, entry));
        if let Err(why) = outcome {
            self.stats.rejected(why);
        }
        // Followers wake only now, when the entry (if any) is visible.
        drop(flight);
        outcome
    }

    /// Drop a recording without storing it, counted under `why` (its followers go upstream).
    pub fn discard(&self, rec: Recorder, why: Rejected) {
        self.stats.rejected(why);
        drop(rec);
    }

    /// Store an answer (normally through [`Self::complete`]). Refused if it is already stale.
    pub fn insert(&self, key: CacheKey, entry: CachedResult) -> Result<(), Rejected> {
        if !self.versions.is_current(&entry.versions) {
            return Err(Rejected::Stale);
        }
        let entry = Arc::new(entry);
        self.stats.entry_delta(weight(&entry), true);
        self.stats.fill();
        self.churn.filled(entry.tables.iter().map(String::as_str));
        self.entries.insert(key, entry);
        Ok(())
    }

    /// A write to `tables` of `database` committed (call before the client sees the commit).
    pub fn invalidate_tables<'a>(
        &self,
        database: &str,
        tables: impl IntoIterator<Item = &'a str>,
        cause: InvalidationCause,
    ) {
        let tables: Vec<&str> = tables.into_iter().collect();
        self.versions.bump(database, tables.iter().copied());
        self.stats.invalidated(cause);
        let suspended = self.churn.invalidated(tables, Instant::now());
        self.stats.churn_suspended(suspended);
    }

    /// A write to some rows of tables of `database` committed (call before the client sees the
    /// commit): reads pinned to other rows stay. No churn is counted: the entries it kills are
    /// few, and not known here.
    pub fn invalidate_rows(&self, database: &str, writes: &[RowWrite<'_>]) {
        self.invalidate_rows_by(database, writes, InvalidationCause::RowWrite);
    }

    /// [`Self::invalidate_rows`], counted as `cause`.
    pub fn invalidate_rows_by(&self, database: &str, writes: &[RowWrite<'_>], cause: InvalidationCause) {
        for w in writes {
            self.versions.bump_rows(database, *w);
        }
        self.stats.invalidated(cause);
    }

    /// Serve none of `database`'s answers, and store none, until [`Self::release`]: its
    /// replication stream cannot vouch for them now. Entries are kept.
    pub fn hold(&self, database: &str) {
        self.versions.hold(database);
    }

    /// Serve `database`'s (still current) answers again.
    pub fn release(&self, database: &str) {
        self.versions.release(database);
    }

    /// Every entry of `database` is dead (removed lazily: on its next hit, by TTL or by size).
    pub fn flush_database(&self, database: &str, cause: InvalidationCause) {
        self.versions.flush_database(database);
        self.stats.invalidated(cause);
    }

    /// Every entry is dead, and their memory is released.
    pub fn flush_all(&self, cause: InvalidationCause) {
        self.versions.flush_all();
        self.entries.invalidate_all();
        self.stats.invalidated(cause);
    }

    /// Run moka's deferred maintenance now (evictions, expirations, removal notifications):
    /// for tests and before reading exact gauges.
    pub fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks();
    }

    /// Whether `cache.serve_stale_on_error` is on.
    pub fn serves_stale(&self) -> bool {
        self.stale_grace.is_some()
    }

    /// An answer for `key` past its TTL by at most `cache.serve_stale_on_error.max_age` and
    /// never invalidated (its versions still current), with how long ago it expired — to serve
    /// when Postgres cannot be reached, if `usable` says it can answer what was asked. `None`
    /// when the feature is off. Counted as served.
    pub fn stale(
        &self,
        key: &CacheKey,
        usable: impl FnOnce(&CachedResult) -> bool,
    ) -> Option<(Arc<CachedResult>, Duration)> {
        let grace = self.stale_grace?;
        let entry = self.entries.get(key)?;
        if !self.versions.is_current(&entry.versions) || !usable(&entry) {
            return None;
        }
        let expired_for = entry.stored_at.elapsed().saturating_sub(entry.ttl);
        if expired_for > grace {
            return None;
        }
        self.stats.stale_served();
        Some((entry, expired_for))
    }

    fn fresh(&self, key: &CacheKey) -> Option<Arc<CachedResult>> {
        let entry = self.entries.get(key)?;
        if self.stale_grace.is_some() && entry.stored_at.elapsed() >= entry.ttl {
            // Kept past its TTL for `stale` only.
            return None;
        }
        if self.versions.is_current(&entry.versions) {
            // A load first: every later hit only reads the flag (no write to a shared line).
            if !entry.hit.load(std::sync::atomic::Ordering::Relaxed)
                && !entry.hit.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                self.churn.first_hit(entry.tables.iter().map(String::as_str));
            }
            return Some(entry);
        }
        if self.versions.is_held(&entry.versions) {
            // Not servable now, but perhaps again once the database is released.
            return None;
        }
        self.entries.invalidate(key);
        self.stats.invalidated(InvalidationCause::StaleEntry);
        None
    }
}

fn weight(entry: &CachedResult) -> u32 {
    let tables: usize = entry.tables.iter().map(|t| t.len() + 16).sum();
    u32::try_from(entry.frames.len() + ENTRY_OVERHEAD + tables).unwrap_or(u32::MAX)
}

/// Each entry lives for its own TTL from its (re)insertion, plus `grace` (see
/// [`ResultCache::stale`]; zero when serving stale answers is off).
struct PerEntryTtl {
    grace: Duration,
}

impl Expiry<CacheKey, Arc<CachedResult>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedResult>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(self.grace))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedResult>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(self.grace))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
