//! Cache counters, kept in one place (relaxed atomics) for the metrics endpoint to read
//! through [`CacheStats::snapshot`]. Every counter is monotonic except `bytes` and `entries`,
//! which are gauges maintained on insert and on moka's removal notifications.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why a fill was not stored (see `recorder.rs`). Also a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejected {
    #[error("answer larger than cache.max_entry_size")]
    TooLarge,
    #[error("the statement failed (ErrorResponse)")]
    Error,
    #[error("partial result (Execute with max_rows: PortalSuspended)")]
    Suspended,
    #[error("COPY in the answer")]
    Copy,
    #[error("a table changed while the answer was being recorded")]
    Stale,
    #[error("the answer did not end with CommandComplete")]
    Incomplete,
    #[error("a frame that is not part of a cacheable answer")]
    Unexpected,
    #[error("the command tag is not SELECT")]
    NotSelect,
    #[error("the recordings in progress hold cache.max_filling")]
    FillBudget,
    #[error("recorded on a server connection logged in before the login defaults changed")]
    OldDefaults,
}

impl Rejected {
    pub const ALL: [Rejected; 10] = [
        Rejected::TooLarge,
        Rejected::Error,
        Rejected::Suspended,
        Rejected::Copy,
        Rejected::Stale,
        Rejected::Incomplete,
        Rejected::Unexpected,
        Rejected::NotSelect,
        Rejected::FillBudget,
        Rejected::OldDefaults,
    ];

    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Rejected::TooLarge => "too_large",
            Rejected::Error => "error",
            Rejected::Suspended => "suspended",
            Rejected::Copy => "copy",
            Rejected::Stale => "stale",
            Rejected::Incomplete => "incomplete",
            Rejected::Unexpected => "unexpected",
            Rejected::NotSelect => "not_select",
            Rejected::FillBudget => "fill_budget",
            Rejected::OldDefaults => "old_defaults",
        }
    }
}

/// Why a read went to Postgres without the cache (neither answered nor recorded). Also a
/// metrics label, and said in the debug log with the statement's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bypass {
    /// In a REPEATABLE READ or SERIALIZABLE block (or one whose level is unknown, or that
    /// began where the proxy could not follow it).
    TransactionIsolation,
    /// In a block that wrote a table the read depends on (or may have: unknown functions).
    WrittenInTransaction,
    /// In a block that changed settings or its characteristics.
    SettingsInTransaction,
    /// The session's answers are private to it (temporary tables, settings the proxy cannot
    /// follow, statements it could not read).
    PrivateSession,
    /// It calls a volatile, stable or unknown function.
    Function,
    /// `FOR UPDATE` / `FOR SHARE`.
    Locking,
    /// It reads system catalogs and `cache.catalogs` is off.
    SystemCatalog,
    /// A `cache.rules` rule says not to cache it.
    Rule,
    /// Row-level security or a view body that depends on more than the key holds.
    RowSecurity,
    /// Anything else: several statements in one Query, `SELECT INTO`, a statement the analysis
    /// could not read, the catalog not answering.
    Other,
}

impl Bypass {
    pub const ALL: [Bypass; 10] = [
        Bypass::TransactionIsolation,
        Bypass::WrittenInTransaction,
        Bypass::SettingsInTransaction,
        Bypass::PrivateSession,
        Bypass::Function,
        Bypass::Locking,
        Bypass::SystemCatalog,
        Bypass::Rule,
        Bypass::RowSecurity,
        Bypass::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Bypass::TransactionIsolation => "transaction_isolation",
            Bypass::WrittenInTransaction => "written_in_transaction",
            Bypass::SettingsInTransaction => "settings_in_transaction",
            Bypass::PrivateSession => "private_session",
            Bypass::Function => "function",
            Bypass::Locking => "locking",
            Bypass::SystemCatalog => "system_catalog",
            Bypass::Rule => "rule",
            Bypass::RowSecurity => "row_security",
            Bypass::Other => "other",
        }
    }
}

/// What caused an invalidation. Also a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidationCause {
    /// A write through the proxy committed.
    Write,
    /// A write through the proxy committed, to rows pinned by equality: only reads that may
    /// see those rows were invalidated (see `row_versions`).
    RowWrite,
    /// DDL, GRANT/REVOKE, ALTER POLICY… flushed a database or tables.
    Ddl,
    /// An unparseable statement that may write flushed its database.
    Unknown,
    /// A NOTIFY from the invalidation triggers.
    Notify,
    /// The NOTIFY listener lost its connection: everything was flushed.
    ListenerLost,
    /// An operator asked.
    Admin,
    /// A hit found its entry's versions moved (counted when the dead entry is removed).
    StaleEntry,
    /// A transaction committed around the proxy, read from the logical replication stream.
    Replication,
    /// The replication stream was lost or (re)started: the database was flushed.
    ReplicationLost,
}

impl InvalidationCause {
    pub const ALL: [InvalidationCause; 10] = [
        InvalidationCause::Write,
        InvalidationCause::RowWrite,
        InvalidationCause::Ddl,
        InvalidationCause::Unknown,
        InvalidationCause::Notify,
        InvalidationCause::ListenerLost,
        InvalidationCause::Admin,
        InvalidationCause::StaleEntry,
        InvalidationCause::Replication,
        InvalidationCause::ReplicationLost,
    ];

    pub fn label(self) -> &'static str {
        match self {
            InvalidationCause::Write => "write",
            InvalidationCause::RowWrite => "row_write",
            InvalidationCause::Ddl => "ddl",
            InvalidationCause::Unknown => "unknown",
            InvalidationCause::Notify => "notify",
            InvalidationCause::ListenerLost => "listener_lost",
            InvalidationCause::Admin => "admin",
            InvalidationCause::StaleEntry => "stale_entry",
            InvalidationCause::Replication => "replication",
            InvalidationCause::ReplicationLost => "replication_lost",
        }
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    rejected: [AtomicU64; Rejected::ALL.len()],
    evictions: AtomicU64,
    expirations: AtomicU64,
    invalidations: [AtomicU64; InvalidationCause::ALL.len()],
    /// Followers of a fill that got the leader's answer / had to go upstream themselves.
    flight_joined: AtomicU64,
    flight_fallbacks: AtomicU64,
    /// Tables suspended from recording, and lookups that bypassed the cache for it (`churn`).
    churn_suspensions: AtomicU64,
    churn_bypasses: AtomicU64,
    bypassed: [AtomicU64; Bypass::ALL.len()],
    /// Expired answers served while Postgres could not be reached (`cache.serve_stale_on_error`).
    stale_served: AtomicU64,
    bytes: AtomicI64,
    entries: AtomicI64,
}

/// A point-in-time copy of [`CacheStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub fills: u64,
    pub rejected: Vec<(Rejected, u64)>,
    /// Removed by the byte bound.
    pub evictions: u64,
    /// Removed by TTL.
    pub expirations: u64,
    pub invalidations: Vec<(InvalidationCause, u64)>,
    pub flight_joined: u64,
    pub flight_fallbacks: u64,
    /// Tables suspended from recording because their answers died unhit (`churn`).
    pub churn_suspensions: u64,
    /// Lookups that bypassed the cache because their table was suspended.
    pub churn_bypasses: u64,
    /// Reads that went to Postgres without the cache, by reason.
    pub bypassed: Vec<(Bypass, u64)>,
    /// Expired answers served while Postgres could not be reached.
    pub stale_served: u64,
    /// Weighed bytes of the live entries (frames plus a fixed per-entry overhead).
    pub bytes: u64,
    pub entries: u64,
}

impl StatsSnapshot {
    pub fn rejected(&self, why: Rejected) -> u64 {
        self.rejected.iter().find(|(r, _)| *r == why).map_or(0, |(_, n)| *n)
    }

    pub fn bypassed(&self, why: Bypass) -> u64 {
        self.bypassed.iter().find(|(r, _)| *r == why).map_or(0, |(_, n)| *n)
    }

    pub fn invalidations(&self, cause: InvalidationCause) -> u64 {
        self.invalidations.iter().find(|(c, _)| *c == cause).map_or(0, |(_, n)| *n)
    }
}

impl CacheStats {
    pub fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub fn fill(&self) {
        self.fills.fetch_add(1, Relaxed);
    }
    pub fn rejected(&self, why: Rejected) {
        self.rejected[why as usize].fetch_add(1, Relaxed);
    }
    pub fn evicted(&self) {
        self.evictions.fetch_add(1, Relaxed);
    }
    pub fn expired(&self) {
        self.expirations.fetch_add(1, Relaxed);
    }
    pub fn invalidated(&self, cause: InvalidationCause) {
        self.invalidations[cause as usize].fetch_add(1, Relaxed);
    }
    pub fn flight_joined(&self) {
        self.flight_joined.fetch_add(1, Relaxed);
    }
    pub fn flight_fallback(&self) {
        self.flight_fallbacks.fetch_add(1, Relaxed);
    }
    pub fn churn_suspended(&self, tables: u64) {
        self.churn_suspensions.fetch_add(tables, Relaxed);
    }
    pub fn churn_bypass(&self) {
        self.churn_bypasses.fetch_add(1, Relaxed);
    }
    pub fn bypassed(&self, why: Bypass) {
        self.bypassed[why as usize].fetch_add(1, Relaxed);
    }
    pub fn stale_served(&self) {
        self.stale_served.fetch_add(1, Relaxed);
    }
    /// An entry of `weight` bytes was stored (+) or removed (-).
    pub fn entry_delta(&self, weight: u32, added: bool) {
        let (w, n) = if added { (i64::from(weight), 1) } else { (-i64::from(weight), -1) };
        self.bytes.fetch_add(w, Relaxed);
        self.entries.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            fills: self.fills.load(Relaxed),
            rejected: Rejected::ALL.iter().map(|r| (*r, self.rejected[*r as usize].load(Relaxed))).collect(),
            evictions: self.evictions.load(Relaxed),
            expirations: self.expirations.load(Relaxed),
            invalidations: InvalidationCause::ALL
                .iter()
                .map(|c| (*c, self.invalidations[*c as usize].load(Relaxed)))
                .collect(),
            flight_joined: self.flight_joined.load(Relaxed),
            flight_fallbacks: self.flight_fallbacks.load(Relaxed),
            churn_suspensions: self.churn_suspensions.load(Relaxed),
            churn_bypasses: self.churn_bypasses.load(Relaxed),
            bypassed: Bypass::ALL.iter().map(|r| (*r, self.bypassed[*r as usize].load(Relaxed))).collect(),
            stale_served: self.stale_served.load(Relaxed),
            bytes: self.bytes.load(Relaxed).max(0) as u64,
            entries: self.entries.load(Relaxed).max(0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_land_in_their_labelled_slots() {
        let s = CacheStats::default();
        s.hit();
        s.rejected(Rejected::Stale);
        s.rejected(Rejected::Stale);
        s.invalidated(InvalidationCause::Notify);
        s.entry_delta(100, true);
        s.entry_delta(40, true);
        s.entry_delta(100, false);
        let snap = s.snapshot();
        assert_eq!(snap.hits, 1);
        assert_eq!(snap.rejected(Rejected::Stale), 2);
        assert_eq!(snap.rejected(Rejected::Error), 0);
        assert_eq!(snap.invalidations(InvalidationCause::Notify), 1);
        assert_eq!((snap.bytes, snap.entries), (40, 1));
    }

    #[test]
    fn labels_are_distinct() {
        let mut l: Vec<_> = Rejected::ALL.iter().map(|r| r.label()).collect();
        l.sort_unstable();
        l.dedup();
        assert_eq!(l.len(), Rejected::ALL.len());
        let mut l: Vec<_> = Bypass::ALL.iter().map(|r| r.label()).collect();
        l.sort_unstable();
        l.dedup();
        assert_eq!(l.len(), Bypass::ALL.len());
        assert!(Bypass::ALL.iter().enumerate().all(|(i, b)| *b as usize == i), "ALL in declaration order");
    }
}
