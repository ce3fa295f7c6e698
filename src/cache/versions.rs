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
//! The hot path (`is_current`) takes no lock for tables: a snapshot holds `Arc`s to the counters
//! it read. A read pinned to some rows of one table by equality on a column ([`RowDeps`]) depends
//! on that column's [`ColumnVersions`] instead of the table's counter: every write still bumps
//! the table's counter (for the table's unpinned reads) and, for each column that reads pin, the
//! values it pins there or, when it does not pin that column, all of them (`row_versions`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::names::version_key;
use super::row_versions::{ColumnVersions, RowBudget};

/// Distinct tables tracked per database before the database is reset (epoch bump + clear), so
/// that statements naming ever-new tables cannot grow the map without bound.
const MAX_TABLES_PER_DB: usize = 100_000;
/// Columns of one table that reads may pin; reads pinning others depend on the whole table.
const MAX_PINNED_COLUMNS: usize = 8;
/// Values whose last write is recorded, process-wide (about 40 bytes each; see `row_versions`).
pub const ROW_VALUES: usize = 1 << 19;

/// All counters of all databases.
#[derive(Debug)]
pub struct TableVersions {
    /// Bumped by `flush_all`.
    global: AtomicU64,
    dbs: RwLock<HashMap<Box<str>, Arc<DbVersions>, foldhash::fast::RandomState>>,
    rows: Arc<RowBudget>,
    /// Databases start held (`cache.invalidation: replication`: until their stream vouches).
    held_at_start: bool,
}

impl Default for TableVersions {
    fn default() -> TableVersions {
        TableVersions {
            global: AtomicU64::default(),
            dbs: RwLock::default(),
            rows: RowBudget::new(ROW_VALUES),
            held_at_start: false,
        }
    }
}

#[derive(Debug, Default)]
struct DbVersions {
    /// Bumped by `flush_database` (and by the table-count reset).
    epoch: AtomicU64,
    /// Set while the database's answers may not be served (its replication stream is down or
    /// behind `cache.replication.max_lag`): every snapshot counts as not current, nothing is
    /// bumped, so entries are served again once it is cleared.
    held: AtomicBool,
    tables: RwLock<HashMap<String, Arc<TableVersion>, foldhash::fast::RandomState>>,
}

/// One table's counter, and the columns reads pin it by.
#[derive(Debug, Default)]
struct TableVersion {
    /// Bumped by every write to the table.
    all: AtomicU64,
    /// Held (read) across a write's bumps, so a column registered meanwhile is not missed.
    columns: RwLock<Vec<(String, Arc<ColumnVersions>)>>,
}

/// The rows of one table a read depends on: those whose `column` holds one of `values`
/// (hashes of canonical keys: see `rowkey`).
#[derive(Debug, Clone, Copy)]
pub struct RowDeps<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub values: &'a [u64],
}

/// What a write to one table changed, where it can tell: for each column it pins, the values its
/// rows hold there (before and after). Columns not listed may have changed anywhere.
#[derive(Debug, Clone, Copy)]
pub struct RowWrite<'a> {
    pub table: &'a str,
    pub columns: &'a [(smol_str::SmolStr, Vec<u64>)],
}

/// The versions a fill started under. Cheap to check; holds the counters it read.
#[derive(Debug, Clone)]
pub struct Versions {
    global: u64,
    db: Arc<DbVersions>,
    epoch: u64,
    tables: Box<[(Arc<TableVersion>, u64)]>,
    rows: Option<Box<RowSnapshot>>,
}

#[derive(Debug, Clone)]
struct RowSnapshot {
    column: Arc<ColumnVersions>,
    clock: u64,
    values: Box<[u64]>,
}

impl TableVersions {
    pub fn new() -> TableVersions {
        TableVersions::default()
    }

    /// Versions whose databases start held, each until [`TableVersions::release`]d.
    pub fn held_at_start() -> TableVersions {
        TableVersions { held_at_start: true, ..TableVersions::default() }
    }

    /// Serve no answer of `db` (and store none) until [`TableVersions::release`].
    pub fn hold(&self, db: &str) {
        self.db(db).held.store(true, Ordering::SeqCst);
    }

    /// Serve `db`'s current answers again.
    pub fn release(&self, db: &str) {
        self.db(db).held.store(false, Ordering::SeqCst);
    }

    /// Whether the database of `v` is held (its entries are kept, but not served).
    pub fn is_held(&self, v: &Versions) -> bool {
        v.db.held.load(Ordering::SeqCst)
    }

    /// A write to `tables` of `db` committed: every snapshot that includes one of them is stale.
    pub fn bump<'a>(&self, db: &str, tables: impl IntoIterator<Item = &'a str>) {
        let dbv = self.db(db);
        for t in tables {
            let table = dbv.counter(&version_key(t));
            let columns = table.columns.read().expect("versions lock");
            table.all.fetch_add(1, Ordering::SeqCst);
            for (_, c) in columns.iter() {
                c.bump_wide();
            }
        }
    }

    /// A write to some rows of one table committed: snapshots of the table stale, except reads
    /// pinned to other values of a column the write pins.
    pub fn bump_rows(&self, db: &str, write: RowWrite<'_>) {
        let table = self.db(db).counter(&version_key(write.table));
        let columns = table.columns.read().expect("versions lock");
        table.all.fetch_add(1, Ordering::SeqCst);
        for (name, c) in columns.iter() {
            match write.columns.iter().find(|(n, _)| n == name) {
                Some((_, values)) => c.bump_values(values),
                None => c.bump_wide(),
            }
        }
    }

    /// Snapshot the versions of `tables` of `db`, and of the rows `rows` pins (call **before**
    /// the upstream execution). `rows.table` should not be among `tables`: it is covered by its
    /// rows (or, when it has too many pinned columns already, as a whole).
    pub fn snapshot<'a>(
        &self,
        db: &str,
        tables: impl IntoIterator<Item = &'a str>,
        rows: Option<RowDeps<'_>>,
    ) -> Versions {
        // Epochs first: a flush racing with the snapshot then makes it stale, never fresh.
        let global = self.global.load(Ordering::SeqCst);
        let dbv = self.db(db);
        let epoch = dbv.epoch.load(Ordering::SeqCst);
        let mut counters: Vec<(Arc<TableVersion>, u64)> = tables
            .into_iter()
            .map(|t| {
                let c = dbv.counter(&version_key(t));
                let v = c.all.load(Ordering::SeqCst);
                (c, v)
            })
            .collect();
        let rows = rows.and_then(|r| {
            let table = dbv.counter(&version_key(r.table));
            match self.column(&table, r.column) {
                Some(column) => {
                    let clock = column.now();
                    Some(Box::new(RowSnapshot { column, clock, values: r.values.into() }))
                }
                None => {
                    let v = table.all.load(Ordering::SeqCst);
                    counters.push((table, v));
                    None
                }
            }
        });
        Versions { global, db: dbv, epoch, tables: counters.into_boxed_slice(), rows }
    }

    /// The versions of `column` of `table`, registered now if new (`None`: too many).
    fn column(&self, table: &TableVersion, column: &str) -> Option<Arc<ColumnVersions>> {
        if let Some((_, c)) = table.columns.read().expect("versions lock").iter().find(|(n, _)| n == column) {
            return Some(c.clone());
        }
        let mut columns = table.columns.write().expect("versions lock");
        if let Some((_, c)) = columns.iter().find(|(n, _)| n == column) {
            return Some(c.clone());
        }
        if columns.len() >= MAX_PINNED_COLUMNS {
            return None;
        }
        let c = Arc::new(ColumnVersions::new(self.rows.clone()));
        columns.push((column.to_owned(), c.clone()));
        Some(c)
    }

    /// Whether nothing the snapshot covers was bumped or flushed since it was taken.
    pub fn is_current(&self, v: &Versions) -> bool {
        self.global.load(Ordering::SeqCst) == v.global
            && !v.db.held.load(Ordering::SeqCst)
            && v.db.epoch.load(Ordering::SeqCst) == v.epoch
            && v.tables.iter().all(|(c, n)| c.all.load(Ordering::SeqCst) == *n)
            && v.rows.as_ref().is_none_or(|r| r.column.unchanged_since(r.clock, &r.values))
    }

    /// Writes seen per table (table-level and row-level alike), summed over databases, for the
    /// console's `SHOW CACHE TABLES`.
    pub fn writes_by_table(&self) -> HashMap<String, u64> {
        let mut writes = HashMap::new();
        for db in self.dbs.read().expect("versions lock").values() {
            for (table, version) in db.tables.read().expect("versions lock").iter() {
                *writes.entry(table.clone()).or_default() += version.all.load(Ordering::Relaxed);
            }
        }
        writes
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
        let held = self.held_at_start;
        dbs.entry(db.into())
            .or_insert_with(|| Arc::new(DbVersions { held: AtomicBool::new(held), ..DbVersions::default() }))
            .clone()
    }
}

impl DbVersions {
    fn counter(&self, table: &str) -> Arc<TableVersion> {
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
        let s = v.snapshot("app", ["t", "u"], None);
        assert!(v.is_current(&s));
        v.bump("app", ["u"]);
        assert!(!v.is_current(&s));
        assert!(v.is_current(&v.snapshot("app", ["t", "u"], None)));
    }

    #[test]
    fn other_tables_and_databases_are_not_affected() {
        let v = TableVersions::new();
        let s = v.snapshot("app", ["t"], None);
        v.bump("app", ["other"]);
        v.bump("db2", ["t"]);
        v.flush_database("db2");
        assert!(v.is_current(&s));
    }

    #[test]
    fn qualified_write_invalidates_bare_read_and_vice_versa() {
        let v = TableVersions::new();
        let bare = v.snapshot("app", ["t"], None);
        v.bump("app", ["public.t"]);
        assert!(!v.is_current(&bare));
        let qualified = v.snapshot("app", ["\"public\".\"t\""], None);
        v.bump("app", ["T"]);
        assert!(!v.is_current(&qualified));
    }

    #[test]
    fn flushes_make_every_snapshot_of_their_scope_stale() {
        let v = TableVersions::new();
        let a = v.snapshot("app", ["t"], None);
        let b = v.snapshot("db2", ["t"], None);
        v.flush_database("app");
        assert!(!v.is_current(&a));
        assert!(v.is_current(&b));
        let a2 = v.snapshot("app", ["t"], None);
        v.flush_all();
        assert!(!v.is_current(&a2));
        assert!(!v.is_current(&b));
    }

    #[test]
    fn a_snapshot_without_tables_is_only_stale_by_flush() {
        let v = TableVersions::new();
        let s = v.snapshot("app", [], None);
        v.bump("app", ["t"]);
        assert!(v.is_current(&s));
        v.flush_database("app");
        assert!(!v.is_current(&s));
    }

    fn pinned<'a>(column: &'a str, values: &'a [u64]) -> Option<RowDeps<'a>> {
        Some(RowDeps { table: "t", column, values })
    }

    #[test]
    fn a_pinned_read_is_stale_only_by_writes_that_may_touch_its_rows() {
        let v = TableVersions::new();
        let row1 = v.snapshot("app", [], pinned("id", &[1]));
        let whole = v.snapshot("app", ["t"], None);
        let by_name = v.snapshot("app", [], pinned("name", &[9]));
        let id2 = [("id".into(), vec![2])];
        v.bump_rows("app", RowWrite { table: "t", columns: &id2 });
        assert!(v.is_current(&row1), "row 2 is not row 1");
        assert!(!v.is_current(&whole), "an unpinned read depends on every row");
        assert!(!v.is_current(&by_name), "the write's rows may hold any name");
        let id1 = [("id".into(), vec![1, 3])];
        v.bump_rows("APP".to_lowercase().as_str(), RowWrite { table: "public.T", columns: &id1 });
        assert!(!v.is_current(&row1));
        let row1 = v.snapshot("app", [], pinned("id", &[1]));
        v.bump("app", ["t"]);
        assert!(!v.is_current(&row1), "a table-level write reaches every pinned read");
    }

    #[test]
    fn a_write_pinning_no_column_reaches_reads_pinned_after_earlier_writes() {
        let v = TableVersions::new();
        // The write comes first, before any column is pinned; the read after it is fresh.
        v.bump_rows("app", RowWrite { table: "t", columns: &[] });
        let read = v.snapshot("app", [], pinned("id", &[1]));
        assert!(v.is_current(&read));
        v.bump_rows("app", RowWrite { table: "t", columns: &[] });
        assert!(!v.is_current(&read), "a write pinning nothing reaches every pinned read");
    }

    #[test]
    fn past_the_pinned_column_limit_reads_depend_on_the_table() {
        let v = TableVersions::new();
        for i in 0..MAX_PINNED_COLUMNS {
            v.snapshot("app", [], pinned(&format!("c{i}"), &[1]));
        }
        let extra = v.snapshot("app", [], pinned("another", &[1]));
        let c0 = [("c0".into(), vec![2])];
        v.bump_rows("app", RowWrite { table: "t", columns: &c0 });
        assert!(!v.is_current(&extra));
    }

    #[test]
    fn a_held_database_serves_nothing_until_released_and_keeps_its_entries() {
        let v = TableVersions::held_at_start();
        let s = v.snapshot("app", ["t"], None);
        assert!(!v.is_current(&s) && v.is_held(&s), "a new database starts held");
        v.release("app");
        assert!(v.is_current(&s), "released: the snapshot was never bumped");
        v.hold("app");
        assert!(!v.is_current(&s));
        let other = v.snapshot("db2", [], None);
        assert!(!v.is_current(&other), "each database is held until its own release");
        v.release("app");
        v.bump("app", ["t"]);
        assert!(!v.is_current(&s), "a bump while held still counts");
        let plain = TableVersions::new();
        assert!(plain.is_current(&plain.snapshot("app", ["t"], None)), "other modes start serving");
    }

    #[test]
    fn too_many_distinct_tables_reset_the_database_safely() {
        let v = TableVersions::new();
        let s = v.snapshot("app", ["t"], None);
        for i in 0..MAX_TABLES_PER_DB {
            v.bump("app", [format!("x{i}").as_str()]);
        }
        assert!(!v.is_current(&s), "the reset must make old snapshots stale");
        assert!(v.dbs.read().unwrap()["app"].tables.read().unwrap().len() < MAX_TABLES_PER_DB);
    }
}
