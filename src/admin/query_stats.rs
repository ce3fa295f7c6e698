//! Per-query statistics: for each (database, statement fingerprint), how often it ran, how the
//! cache answered it, how long it took (total, min/max, p50/p99), what it returned — for the
//! admin console and `/metrics` ([`QueryStatsCollector`]), plus the slow-query log and the N+1
//! report ([`super::repeats::RepeatDetector`] finds them per session, [`QueryStats`] counts and
//! logs them).
//!
//! Fingerprints have literals masked (`sql::fingerprint`), so nothing kept or logged here holds
//! a value from a statement.
//!
//! # Cost on the data path
//! Sessions report through a [`SessionStats`], which holds their latest statements of up to
//! [`RUN_QUERIES`] queries and adds them to the table together (see `run.rs`): a statement
//! costs the session's own lock and a few additions. The table is split into [`SHARDS`] shards,
//! each its own `Mutex<HashMap>`, chosen by the fingerprint hash: adding a query's statements
//! locks one shard for a hash look-up (by borrowed `(hash, &str)`, no key is built), allocating
//! nothing when the query is already known. Readers ([`QueryStats::snapshot`]) add every live
//! session's statements first.
//!
//! # Bounded memory
//! At most `max_queries` queries are kept (split exactly across the shards). A new fingerprint
//! arriving at a full shard evicts that shard's query with the least total time, whose numbers
//! are folded into its database's `<other>` row (sketch merged), so the totals of the table
//! stay whole. Least total time, because the table exists to show where the time goes: a query
//! that ran once for 1 ms matters less than one that ran for minutes. The cost is that under a
//! stream of ever-new fingerprints the newcomers evict one another while the established
//! queries stay; a new heavy query gets in as soon as its time passes the lightest's before
//! the next newcomer. Fingerprint texts are clipped to [`MAX_FINGERPRINT_CHARS`], and one
//! shard keeps at most [`MAX_OTHER_DATABASES`] `<other>` rows (then one for all databases, `*`).
//!
//! Latency quantiles come from a log-linear histogram ([`super::latency`]): ~3% relative error,
//! 2.4 KiB per query, mergeable, which the `<other>` rows need. No samples are stored.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use foldhash::fast::RandomState;

use super::repeats::RepeatDetector;
use super::traffic::Traffic;
use crate::cache::Bypass;

pub use super::outcome::Outcome;

mod collector;
mod run;
mod totals;
pub use collector::{QUERY_LABEL_CHARS, QueryStatsCollector};
pub use run::{RUN_QUERIES, RUN_SAMPLES, SessionStats};
use run::{Run, Runs};
use totals::{Totals, nanos_of};

/// One completed statement, as a session reports it to [`QueryStats::record`].
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    /// `sql::fingerprint::hash64` of `fingerprint`: the identity of the query.
    pub fingerprint_hash: u64,
    /// The statement with its literals masked (kept, with its first user, for a new query).
    pub fingerprint: &'a str,
    /// The database the session is connected to.
    pub database: &'a str,
    /// The session's user (kept only for a new query: the first user who ran it).
    pub user: &'a str,
    /// How it was answered.
    pub outcome: Outcome,
    /// Rows returned (or affected, by the command tag).
    pub rows: u64,
    /// Bytes of the answer sent to the client.
    pub bytes: u64,
    /// From the statement's arrival to the end of its answer.
    pub elapsed: Duration,
}

/// One database's totals beside its queries' rows.
#[derive(Debug, Default, Clone, Copy)]
struct DatabaseTotals {
    /// Transactions ended (autocommit statements included) and their time.
    transactions: u64,
    transaction_ns: u64,
    /// Bytes of the clients' messages.
    received: u64,
}

/// What [`QueryStats`] keeps and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStatsSettings {
    /// How many (database, fingerprint) rows are kept; the others are folded into `<other>`.
    pub max_queries: usize,
    /// Statements at least this long are logged (target `pgcached::slow_query`); `None`: off.
    pub slow_query: Option<Duration>,
    /// One fingerprint run more than this many times within `repeat_window` in one session is
    /// reported as N+1 (target `pgcached::n_plus_one`); `None`: off.
    pub repeat_limit: Option<u32>,
    /// The window of `repeat_limit`, from a run's first occurrence.
    pub repeat_window: Duration,
}

impl Default for QueryStatsSettings {
    /// 500 queries; the slow-query log and N+1 reports off (they add log lines), with a
    /// one-second window ready for when a limit is set.
    fn default() -> Self {
        QueryStatsSettings {
            max_queries: 500,
            slow_query: None,
            repeat_limit: None,
            repeat_window: Duration::from_secs(1),
        }
    }
}

const SHARD_BITS: u32 = 4;
/// Number of independently locked parts of the table.
pub const SHARDS: usize = 1 << SHARD_BITS;
/// Fingerprint text kept per query, in characters (a longer one is clipped, ending in `…`).
pub const MAX_FINGERPRINT_CHARS: usize = 2048;
/// `<other>` rows kept per shard, one per database; past that, evictions go to database `*`.
pub const MAX_OTHER_DATABASES: usize = 64;
/// The fingerprint text of the rows that hold evicted queries.
pub const OTHER_FINGERPRINT: &str = "<other>";
/// The database of the `<other>` row holding databases past [`MAX_OTHER_DATABASES`].
pub const ALL_DATABASES: &str = "*";

/// A query's identity in a shard. Looked up as `dyn KeyParts` so that a borrowed
/// `(u64, &str)` finds it without building a `Box<str>`.
struct QueryKey {
    fingerprint_hash: u64,
    database: Box<str>,
}

trait KeyParts {
    fn parts(&self) -> (u64, &str);
}

impl KeyParts for QueryKey {
    fn parts(&self) -> (u64, &str) {
        (self.fingerprint_hash, &self.database)
    }
}

impl KeyParts for (u64, &str) {
    fn parts(&self) -> (u64, &str) {
        *self
    }
}

impl<'a> Borrow<dyn KeyParts + 'a> for QueryKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

impl Hash for dyn KeyParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyParts + '_ {}

// Must hash and compare like `dyn KeyParts` (the `Borrow` contract).
impl Hash for QueryKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for QueryKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for QueryKey {}

struct Entry {
    /// Clipped to [`MAX_FINGERPRINT_CHARS`].
    fingerprint: Box<str>,
    /// The user who ran it first.
    user: Box<str>,
    totals: Totals,
}

#[derive(Default)]
struct Shard {
    queries: HashMap<QueryKey, Entry, RandomState>,
    /// What evicted queries left, per database (at most [`MAX_OTHER_DATABASES`] + `*`).
    others: HashMap<Box<str>, Totals, RandomState>,
}

impl Shard {
    fn get_mut(&mut self, fingerprint_hash: u64, database: &str) -> Option<&mut Entry> {
        self.queries.get_mut(&(fingerprint_hash, database) as &dyn KeyParts)
    }

    /// The totals of a query (`fingerprint_hash` of `database`), a new row if the shard does
    /// not hold it. With no room (`capacity` 0) the statements go to the `<other>` row.
    fn totals(
        &mut self,
        fingerprint_hash: u64,
        fingerprint: &str,
        database: &str,
        user: &str,
        now: SystemTime,
        capacity: usize,
    ) -> &mut Totals {
        // Looked up twice on a new query: the borrow checker cannot return the first look-up.
        if self.get_mut(fingerprint_hash, database).is_none() {
            if capacity == 0 {
                return self.other(database, now);
            }
            if self.queries.len() >= capacity {
                self.evict_least_time();
            }
            let key = QueryKey { fingerprint_hash, database: database.into() };
            let fingerprint = clip(fingerprint, MAX_FINGERPRINT_CHARS).into();
            self.queries.insert(key, Entry { fingerprint, user: user.into(), totals: Totals::new(now) });
        }
        &mut self.get_mut(fingerprint_hash, database).expect("just inserted").totals
    }

    fn evict_least_time(&mut self) {
        let Some(key) = self
            .queries
            .iter()
            .min_by_key(|(_, e)| e.totals.counts.time_ns)
            .map(|(k, _)| QueryKey { fingerprint_hash: k.fingerprint_hash, database: k.database.clone() })
        else {
            return;
        };
        if let Some((key, evicted)) = self.queries.remove_entry(&key) {
            self.fold_into_other(&key.database, &evicted.totals);
        }
    }

    fn fold_into_other(&mut self, database: &str, totals: &Totals) {
        self.other(database, totals.first_seen).merge(totals);
    }

    /// The `<other>` row of `database` (or of `*`, when the shard holds too many), made empty
    /// as of `now` if there was none.
    fn other(&mut self, database: &str, now: SystemTime) -> &mut Totals {
        let database = if self.others.contains_key(database) || self.others.len() < MAX_OTHER_DATABASES {
            database
        } else {
            ALL_DATABASES
        };
        if !self.others.contains_key(database) {
            self.others.insert(database.into(), Totals::new(now));
        }
        self.others.get_mut(database).expect("just inserted")
    }
}

/// The per-query table, shared (behind `Arc`) by every session. See the module doc.
pub struct QueryStats {
    /// As built; `slow_query` and the repeat settings are read from `tuning` (a reload changes
    /// them: [`QueryStats::retune`]).
    settings: QueryStatsSettings,
    /// `slow_query` in nanoseconds (0: off), read at every statement.
    slow_nanos: AtomicU64,
    /// `repeat_limit` and `repeat_window`, read when a session starts.
    repeat: Mutex<(Option<u32>, Duration)>,
    shards: [Mutex<Shard>; SHARDS],
    /// Queries each shard may hold: `max_queries` split exactly (the first shards get one more).
    capacities: [usize; SHARDS],
    slow_queries: AtomicU64,
    repeats: AtomicU64,
    /// Live sessions' statements not yet added ([`SessionStats`]).
    runs: Runs,
    /// Per database: transactions ended (autocommit statements included), their total time in
    /// nanoseconds, and the bytes clients sent.
    transactions: Mutex<HashMap<Box<str>, DatabaseTotals, RandomState>>,
}

/// `d` in nanoseconds, 0 for `None` (and at least 1 for `Some`).
fn nanos(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1))
}

/// Which shard holds a fingerprint: the top bits of a Fibonacci hash (FNV's low bits are weak).
fn shard_index(fingerprint_hash: u64) -> usize {
    (fingerprint_hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard leaves at worst one query's numbers half-added.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// `s` cut to `max_chars` characters, the last one replaced by `…` when cut.
fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let end = s.char_indices().nth(max_chars.saturating_sub(1)).map_or(0, |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..end]))
        }
    }
}

impl QueryStats {
    /// An empty table.
    pub fn new(settings: QueryStatsSettings) -> QueryStats {
        let capacities =
            std::array::from_fn(|i| settings.max_queries / SHARDS + usize::from(i < settings.max_queries % SHARDS));
        QueryStats {
            slow_nanos: AtomicU64::new(nanos(settings.slow_query)),
            repeat: Mutex::new((settings.repeat_limit, settings.repeat_window)),
            settings,
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            capacities,
            slow_queries: AtomicU64::new(0),
            repeats: AtomicU64::new(0),
            runs: Runs::default(),
            transactions: Mutex::default(),
        }
    }

    /// A reload's new slow-query threshold and N+1 settings (sessions take the latter when they
    /// start or take the reloaded configuration).
    pub fn retune(&self, slow_query: Option<Duration>, repeat_limit: Option<u32>, repeat_window: Duration) {
        self.slow_nanos.store(nanos(slow_query), Relaxed);
        *self.repeat.lock().unwrap_or_else(|e| e.into_inner()) = (repeat_limit, repeat_window);
    }

    /// What the table was built with.
    pub fn settings(&self) -> &QueryStatsSettings {
        &self.settings
    }

    /// Adds one completed statement; logs it if slow. Locks one shard; allocates only for a
    /// query not in the table. Sessions report through [`SessionStats`] instead.
    pub fn record(&self, s: &Statement<'_>) {
        let now = SystemTime::now();
        let i = shard_index(s.fingerprint_hash);
        let nanos = nanos_of(s.elapsed);
        {
            let mut shard = lock(&self.shards[i]);
            let totals = shard.totals(s.fingerprint_hash, s.fingerprint, s.database, s.user, now, self.capacities[i]);
            totals.counts.add(s.outcome, s.rows, s.bytes, nanos);
            totals.latency.add_nanos(nanos);
            totals.last_seen = totals.last_seen.max(now);
        }
        self.log_if_slow(s.fingerprint, s.database, s.user, s.outcome, s.rows, nanos);
    }

    /// A reporter for one session of `database` and `user` (see [`SessionStats`]), feeding
    /// `traffic`'s statement histograms too.
    pub fn session(self: &Arc<Self>, traffic: &Traffic, database: &str, user: &str) -> SessionStats {
        SessionStats::new(self.clone(), traffic, database, user)
    }

    /// Adds every live session's statements to the table and the histograms (readers call it
    /// first).
    pub fn drain(&self) {
        self.runs.each(|run| self.add_run(run));
    }

    /// Adds a session's run to its queries' rows and empties it.
    fn add_run(&self, run: &mut Run) {
        run.statements.flush();
        if run.transactions > 0 || run.received > 0 {
            let mut xacts = self.transactions.lock().unwrap_or_else(|e| e.into_inner());
            let t = match xacts.get_mut(&*run.database) {
                Some(t) => t,
                None => xacts.entry(run.database.clone()).or_default(),
            };
            t.transactions += run.transactions;
            t.transaction_ns = t.transaction_ns.saturating_add(run.transaction_ns);
            t.received += run.received;
            (run.transactions, run.transaction_ns, run.received) = (0, 0, 0);
        }
        if run.queries.is_empty() {
            return;
        }
        let clocks = (SystemTime::now(), Instant::now());
        for pending in run.queries.drain(..) {
            let (first, last) = (Run::wall(pending.first, clocks), Run::wall(pending.last, clocks));
            let (query, i) = (&pending.query, shard_index(pending.query.hash));
            let mut shard = lock(&self.shards[i]);
            let totals = shard.totals(query.hash, &query.text, &run.database, &run.user, first, self.capacities[i]);
            totals.counts.merge(&pending.counts);
            for &nanos in pending.samples() {
                totals.latency.add_nanos(nanos);
            }
            totals.first_seen = totals.first_seen.min(first);
            totals.last_seen = totals.last_seen.max(last);
        }
    }

    /// A statement (of `fingerprint`) logged if slow.
    #[inline]
    pub(super) fn log_if_slow(
        &self,
        fingerprint: &str,
        database: &str,
        user: &str,
        outcome: Outcome,
        rows: u64,
        nanos: u64,
    ) {
        let slow = self.slow_nanos.load(Relaxed);
        if slow > 0 && nanos >= slow {
            self.slow_queries.fetch_add(1, Relaxed);
            tracing::warn!(
                target: "pgcached::slow_query",
                fingerprint,
                database,
                user,
                outcome = outcome.label(),
                elapsed_ms = nanos as f64 / 1e6,
                rows,
                "slow query"
            );
        }
    }

    /// A detector for one new session, if `repeat_limit` is set.
    pub fn repeat_detector(&self) -> Option<RepeatDetector> {
        let (limit, window) = *self.repeat.lock().unwrap_or_else(|e| e.into_inner());
        limit.map(|limit| RepeatDetector::new(limit, window))
    }

    /// Logs an N+1 burst a session's [`RepeatDetector`] found (`count` runs within the window)
    /// and counts it, on the query's row (if the table holds it) and in the total.
    pub fn report_repeat(&self, database: &str, user: &str, fingerprint_hash: u64, fingerprint: &str, count: u32) {
        self.repeats.fetch_add(1, Relaxed);
        if let Some(entry) = lock(&self.shards[shard_index(fingerprint_hash)]).get_mut(fingerprint_hash, database) {
            entry.totals.repeats += 1;
        }
        tracing::warn!(
            target: "pgcached::n_plus_one",
            fingerprint,
            query_id = %format_args!("{fingerprint_hash:016x}"),
            database,
            user,
            count,
            window_ms = self.repeat.lock().unwrap_or_else(|e| e.into_inner()).1.as_millis() as u64,
            "one statement repeated in a burst (N+1): batch it"
        );
    }

    /// Statements logged as slow since start.
    pub fn slow_queries_total(&self) -> u64 {
        self.slow_queries.load(Relaxed)
    }

    /// N+1 bursts reported since start.
    pub fn n_plus_one_total(&self) -> u64 {
        self.repeats.load(Relaxed)
    }

    /// Per database: transactions ended, their total time, and the bytes clients sent
    /// (live sessions' included).
    pub fn transactions(&self) -> Vec<(String, u64, Duration, u64)> {
        self.drain();
        let xacts = self.transactions.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = xacts
            .iter()
            .map(|(db, t)| (db.to_string(), t.transactions, Duration::from_nanos(t.transaction_ns), t.received))
            .collect();
        out.sort();
        out
    }

    /// Every row, the `<other>` ones included (one per database, all shards merged), by total
    /// time, longest first. Locks one shard at a time.
    pub fn snapshot(&self) -> Vec<QueryRow> {
        self.drain();
        let mut rows = Vec::new();
        let mut others: HashMap<Box<str>, Totals, RandomState> = HashMap::default();
        for shard in &self.shards {
            let shard = lock(shard);
            rows.extend(shard.queries.iter().map(|(key, entry)| QueryRow {
                database: key.database.to_string(),
                user: entry.user.to_string(),
                fingerprint: entry.fingerprint.to_string(),
                fingerprint_hash: key.fingerprint_hash,
                is_other: false,
                ..QueryRow::of(&entry.totals)
            }));
            for (database, totals) in &shard.others {
                match others.get_mut(database) {
                    Some(merged) => merged.merge(totals),
                    None => {
                        others.insert(database.clone(), totals.clone());
                    }
                }
            }
        }
        rows.extend(
            others.iter().map(|(database, totals)| QueryRow { database: database.to_string(), ..QueryRow::of(totals) }),
        );
        rows.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.database.cmp(&b.database))
                .then(a.fingerprint_hash.cmp(&b.fingerprint_hash))
        });
        rows
    }
}

/// One row of [`QueryStats::snapshot`]: a query of one database, or its `<other>` row.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    /// The database the query ran in.
    pub database: String,
    /// The user who ran it first; empty on an `<other>` row.
    pub user: String,
    /// Literals masked; [`OTHER_FINGERPRINT`] on an `<other>` row.
    pub fingerprint: String,
    /// 0 on an `<other>` row.
    pub fingerprint_hash: u64,
    /// Whether this row holds the evicted queries of `database`, not one query.
    pub is_other: bool,
    /// Statements run.
    pub calls: u64,
    /// Answered from the cache.
    pub hits: u64,
    /// Cacheable, sent to Postgres and recorded.
    pub misses: u64,
    /// Not cache candidates (writes, DDL…).
    pub forwarded: u64,
    /// Bypasses, all reasons.
    pub bypassed: u64,
    /// The most frequent bypass reason ([`Bypass::label`]), if any.
    pub top_bypass: Option<&'static str>,
    /// Refused by the proxy.
    pub refused: u64,
    /// N+1 bursts reported for it.
    pub repeats: u64,
    /// Rows returned, all statements.
    pub rows: u64,
    /// Bytes sent to clients, all statements.
    pub bytes: u64,
    /// Elapsed time, all statements: the sort key.
    pub total: Duration,
    /// `total / calls`.
    pub mean: Duration,
    /// Median elapsed time, from the sketch (within ~3%).
    pub p50: Duration,
    /// 99th percentile elapsed time, from the sketch (within ~3%).
    pub p99: Duration,
    /// Shortest elapsed time (exact).
    pub min: Duration,
    /// Longest elapsed time (exact).
    pub max: Duration,
    /// When the first statement completed.
    pub first_seen: SystemTime,
    /// When the latest statement completed.
    pub last_seen: SystemTime,
}

impl QueryRow {
    /// The numbers of `totals`, as an `<other>` row (the caller sets the identity).
    fn of(totals: &Totals) -> QueryRow {
        let c = &totals.counts;
        let top_bypass = Bypass::ALL
            .iter()
            .zip(totals.counts.bypassed)
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
            .map(|(why, _)| why.label());
        QueryRow {
            database: String::new(),
            user: String::new(),
            fingerprint: OTHER_FINGERPRINT.to_string(),
            fingerprint_hash: 0,
            is_other: true,
            calls: c.calls,
            hits: c.hits,
            misses: c.misses,
            forwarded: c.forwarded,
            bypassed: c.bypassed.iter().sum(),
            top_bypass,
            refused: c.refused,
            repeats: totals.repeats,
            rows: c.rows,
            bytes: c.bytes,
            total: totals.time(),
            mean: Duration::from_nanos(c.time_ns / c.calls.max(1)),
            p50: totals.quantile(0.5),
            p99: totals.quantile(0.99),
            min: totals.min(),
            max: totals.max(),
            first_seen: totals.first_seen,
            last_seen: totals.last_seen,
        }
    }
}

#[cfg(test)]
mod tests;
