//! Table version counters: the source of truth for "is this cached answer still fresh?".
//!
//! Every (database, table) has a counter; a write that commits [`TableVersions::bump`]s the
//! counters of the tables it wrote. A fill takes a [`Versions`] snapshot of the tables it reads
//! *before* the upstream execution starts; the entry is valid only while
//! [`TableVersions::is_current`] holds for that snapshot. Checking on every hit (not only at
//! fill time) closes the stale-set race: a write that commits while a fill is in flight makes
//! the fill's snapshot old, whether the fill finishes before or after the bump.
//!
//! Tables are keyed by [`version_key`] (unqualified, lower-cased; see `names.rs` for why that
//! over-invalidates but never under-invalidates). Whole databases and everything have epochs:
//! [`TableVersions::flush_database`] and [`TableVersions::flush_all`] bump them, which makes
//! every older snapshot of that scope stale at once.
//!
//! The hot path (`is_current`) takes no lock: a snapshot holds `Arc`s to the counters it read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::names::version_key;

/// Distinct tables tracked per database before the database is reset (epoch bump + clear), so
/// that statements naming ever-new tables cannot grow the map without bound.
const MAX_TABLES_PER_DB: usize = 100_000;

/// All counters of all databases.
#[derive(Debug, Default)]
pub struct TableVersions {
    /// Bumped by `flush_all`.
    global: AtomicU64,
    dbs: RwLock<HashMap<Box<str>, Arc<DbVersions>>>,
}

#[derive(Debug, Default)]
struct DbVersions {
    /// Bumped by `flush_database` (and by the table-count reset).
    epoch: AtomicU64,
    tables: RwLock<HashMap<String, Arc<AtomicU64>>>,
}

/// The versions a fill started under. Cheap to check; holds the counters it read.
#[derive(Debug, Clone)]
pub struct Versions {
    global: u64,
    db: Arc<DbVersions>,
    epoch: u64,
    tables: Box<[(Arc<AtomicU64>, u64)]>,
}

impl TableVersions {
    pub fn new() -> TableVersions {
        TableVersions::default()
    }

    /// A write to `tables` of `db` committed: every snapshot that includes one of them is stale.
    pub fn bump<'a>(&self, db: &str, tables: impl IntoIterator<Item = &'a str>) {
        let dbv = self.db(db);
        for t in tables {
            dbv.counter(&version_key(t)).fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Snapshot the versions of `tables` of `db` (call **before** the upstream execution).
    pub fn snapshot<'a>(&self, db: &str, tables: impl IntoIterator<Item = &'a str>) -> Versions {
        // Epochs first: a flush racing with the snapshot then makes it stale, never fresh.
        let global = self.global.load(Ordering::SeqCst);
        let dbv = self.db(db);
        let epoch = dbv.epoch.load(Ordering::SeqCst);
        let tables = tables
            .into_iter()
            .map(|t| {
                let c = dbv.counter(&version_key(t));
                let v = c.load(Ordering::SeqCst);
                (c, v)
            })
            .collect();
        Versions { global, db: dbv, epoch, tables }
    }

    /// Whether nothing the snapshot covers was bumped or flushed since it was taken.
    pub fn is_current(&self, v: &Versions) -> bool {
        self.global.load(Ordering::SeqCst) == v.global
            && v.db.epoch.load(Ordering::SeqCst) == v.epoch
            && v.tables.iter().all(|(c, n)| c.load(Ordering::SeqCst) == *n)
    }

    /// Every snapshot of `db` is stale (DDL we cannot attribute, an unparseable write, …).
    pub fn flush_database(&self, db: &str) {
        self.db(db).epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Every snapshot is stale (the NOTIFY listener lost its connection, an admin command…).
    pub fn flush_all(&self) {
        self.global.fetch_add(1, Ordering::SeqCst);
    }

    fn db(&self, db: &str) -> Arc<DbVersions> {
        if let Some(d) = self.dbs.read().expect("versions lock").get(db) {
            return d.clone();
        }
        let mut dbs = self.dbs.write().expect("versions lock");
        dbs.entry(db.into()).or_default().clone()
    }
}

impl DbVersions {
    fn counter(&self, table: &str) -> Arc<AtomicU64> {
        if let Some(c) = self.tables.read().expect("versions lock").get(table) {
            return c.clone();
        }
        let mut tables = self.tables.write().expect("versions lock");
        if tables.len() >= MAX_TABLES_PER_DB && !tables.contains_key(table) {
            // Old snapshots keep their (now orphaned) counters; the epoch makes them stale.
            self.epoch.fetch_add(1, Ordering::SeqCst);
            tables.clear();
        }
        tables.entry(table.to_owned()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_makes_snapshots_of_that_table_stale() {
        let v = TableVersions::new();
        let s = v.snapshot("app", ["t", "u"]);
        assert!(v.is_current(&s));
        v.bump("app", ["u"]);
        assert!(!v.is_current(&s));
        assert!(v.is_current(&v.snapshot("app", ["t", "u"])));
    }

    #[test]
    fn other_tables_and_databases_are_not_affected() {
        let v = TableVersions::new();
        let s = v.snapshot("app", ["t"]);
        v.bump("app", ["other"]);
        v.bump("db2", ["t"]);
        v.flush_database("db2");
        assert!(v.is_current(&s));
    }

    #[test]
    fn qualified_write_invalidates_bare_read_and_vice_versa() {
        let v = TableVersions::new();
        let bare = v.snapshot("app", ["t"]);
        v.bump("app", ["public.t"]);
        assert!(!v.is_current(&bare));
        let qualified = v.snapshot("app", ["\"public\".\"t\""]);
        v.bump("app", ["T"]);
        assert!(!v.is_current(&qualified));
    }

    #[test]
    fn flushes_make_every_snapshot_of_their_scope_stale() {
        let v = TableVersions::new();
        let a = v.snapshot("app", ["t"]);
        let b = v.snapshot("db2", ["t"]);
        v.flush_database("app");
        assert!(!v.is_current(&a));
        assert!(v.is_current(&b));
        let a2 = v.snapshot("app", ["t"]);
        v.flush_all();
        assert!(!v.is_current(&a2));
        assert!(!v.is_current(&b));
    }

    #[test]
    fn a_snapshot_without_tables_is_only_stale_by_flush() {
        let v = TableVersions::new();
        let s = v.snapshot("app", []);
        v.bump("app", ["t"]);
        assert!(v.is_current(&s));
        v.flush_database("app");
        assert!(!v.is_current(&s));
    }

    #[test]
    fn too_many_distinct_tables_reset_the_database_safely() {
        let v = TableVersions::new();
        let s = v.snapshot("app", ["t"]);
        for i in 0..MAX_TABLES_PER_DB {
            v.bump("app", [format!("x{i}").as_str()]);
        }
        assert!(!v.is_current(&s), "the reset must make old snapshots stale");
        assert!(v.dbs.read().unwrap()["app"].tables.read().unwrap().len() < MAX_TABLES_PER_DB);
    }
}
