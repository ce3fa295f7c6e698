//! Versions at row grain: for one (table, column) that cached reads pin by equality, when each
//! value was last written.
//!
//! A column has a clock. A write that pins the column to some values ticks the clock once per
//! value and records the tick as that value's last write; a write that does not pin it (a range,
//! an unknown row, a table-level write) ticks it into `wide`, the last write of every value. A
//! pinned read snapshots the clock before it goes upstream and stays fresh while neither `wide`
//! nor any of its values' last writes moved past that snapshot. Values are 64-bit hashes of the
//! canonical key (`rowkey`): two values with one hash share their versions, which can only
//! over-invalidate.
//!
//! Memory is bounded by a process-wide budget of recorded values ([`RowBudget`]). A full shard
//! forgets its older half into *floors*: per hash bucket, the latest write forgotten there; a
//! value without a record counts as last written at its bucket's floor. Forgetting raises last
//! writes, never lowers them, so it can only make entries stale early.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Shards of one column's records (less contention between sessions writing different rows).
const SHARDS: usize = 16;
/// Buckets of forgotten writes per column, allocated at its first eviction.
const FLOORS: usize = 1024;

/// How many values may be recorded, process-wide.
#[derive(Debug)]
pub struct RowBudget {
    free: AtomicUsize,
}

impl RowBudget {
    pub fn new(values: usize) -> Arc<RowBudget> {
        Arc::new(RowBudget { free: AtomicUsize::new(values) })
    }

    fn take(&self) -> bool {
        self.free.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1)).is_ok()
    }

    fn give(&self, n: usize) {
        self.free.fetch_add(n, Ordering::SeqCst);
    }

    /// Values that may still be recorded.
    pub fn free(&self) -> usize {
        self.free.load(Ordering::SeqCst)
    }
}

/// The versions of one pinned column.
#[derive(Debug)]
pub struct ColumnVersions {
    clock: AtomicU64,
    /// The last write that pinned no value of this column.
    wide: AtomicU64,
    shards: Box<[Mutex<HashMap<u64, u64, foldhash::fast::RandomState>>]>,
    floors: OnceLock<Box<[AtomicU64]>>,
    budget: Arc<RowBudget>,
}

impl Drop for ColumnVersions {
    fn drop(&mut self) {
        let held: usize = self.shards.iter().map(|s| s.lock().map_or(0, |m| m.len())).sum();
        self.budget.give(held);
    }
}

impl ColumnVersions {
    pub fn new(budget: Arc<RowBudget>) -> ColumnVersions {
        ColumnVersions {
            clock: AtomicU64::new(0),
            wide: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            floors: OnceLock::new(),
            budget,
        }
    }

    /// The clock a read takes before it goes upstream.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// A write whose rows' values here are unknown.
    pub fn bump_wide(&self) {
        let t = self.tick();
        self.wide.fetch_max(t, Ordering::SeqCst);
    }

    /// A write whose rows hold only `values` here (before and after).
    pub fn bump_values(&self, values: &[u64]) {
        for &v in values {
            let t = self.tick();
            self.record(v, t);
        }
    }

    /// Whether no write that may touch rows with `values` happened after clock `since`.
    pub fn unchanged_since(&self, since: u64, values: &[u64]) -> bool {
        self.wide.load(Ordering::SeqCst) <= since && values.iter().all(|&v| self.last_write(v) <= since)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn shard(&self, v: u64) -> &Mutex<HashMap<u64, u64, foldhash::fast::RandomState>> {
        &self.shards[(v >> 58) as usize % SHARDS]
    }

    fn floor(&self, v: u64) -> Option<&AtomicU64> {
        self.floors.get().map(|f| &f[v as usize % FLOORS])
    }

    fn last_write(&self, v: u64) -> u64 {
        let shard = self.shard(v).lock().expect("row versions lock");
        let recorded = shard.get(&v).copied().unwrap_or(0);
        recorded.max(self.floor(v).map_or(0, |f| f.load(Ordering::SeqCst)))
    }

    fn record(&self, v: u64, t: u64) {
        let mut shard = self.shard(v).lock().expect("row versions lock");
        if let Some(last) = shard.get_mut(&v) {
            *last = (*last).max(t);
            return;
        }
        if !self.budget.take() {
            self.forget_older_half(&mut shard);
            if !self.budget.take() {
                // Nothing of this column to forget: the bucket stands for the value.
                self.floors()[v as usize % FLOORS].fetch_max(t, Ordering::SeqCst);
                return;
            }
        }
        shard.insert(v, t);
    }

    /// Forget the older half of a shard's records into the floors (called with its lock held).
    fn forget_older_half(&self, shard: &mut HashMap<u64, u64, foldhash::fast::RandomState>) {
        if shard.is_empty() {
            return;
        }
        let mut times: Vec<u64> = shard.values().copied().collect();
        let mid = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(mid);
        let median = *median;
        let floors = self.floors();
        let before = shard.len();
        shard.retain(|&v, &mut t| {
            let keep = t > median;
            if !keep {
                floors[v as usize % FLOORS].fetch_max(t, Ordering::SeqCst);
            }
            keep
        });
        self.budget.give(before - shard.len());
    }

    fn floors(&self) -> &[AtomicU64] {
        self.floors.get_or_init(|| (0..FLOORS).map(|_| AtomicU64::new(0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_one_value_leaves_the_others_fresh() {
        let c = ColumnVersions::new(RowBudget::new(100));
        let since = c.now();
        c.bump_values(&[1]);
        assert!(!c.unchanged_since(since, &[1]));
        assert!(!c.unchanged_since(since, &[2, 1]));
        assert!(c.unchanged_since(since, &[2, 3]));
        assert!(c.unchanged_since(c.now(), &[1]), "a snapshot after the write is fresh");
    }

    #[test]
    fn a_wide_write_makes_every_value_stale() {
        let c = ColumnVersions::new(RowBudget::new(100));
        let since = c.now();
        c.bump_wide();
        assert!(!c.unchanged_since(since, &[7]));
        assert!(!c.unchanged_since(since, &[]));
    }

    #[test]
    fn a_full_budget_forgets_old_writes_into_floors_and_never_under_invalidates() {
        let budget = RowBudget::new(64);
        let c = ColumnVersions::new(budget.clone());
        let early = c.now();
        // Far more values than the budget: every one of them must still read as written.
        let values: Vec<u64> = (0..10_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        for (i, v) in values.iter().enumerate() {
            let before = c.now();
            c.bump_values(&[*v]);
            assert!(!c.unchanged_since(before, &[*v]), "value {i} written after the snapshot");
            assert!(!c.unchanged_since(early, &[*v]));
        }
        assert!(values.iter().all(|v| !c.unchanged_since(early, &[*v])));
        let held: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 64, "records stay within the budget: {held}");
        assert_eq!(budget.free() + held, 64);
        drop(c);
        assert_eq!(budget.free(), 64, "a dropped column returns its records");
    }
}
