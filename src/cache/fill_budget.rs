//! What recordings in progress may hold: each (`cache.max_entry_size`), and all together
//! (`cache.max_filling`). A fill's buffer grows
//! only with bytes taken from this budget, and a fill that cannot take them gives up
//! ([`super::Rejected::FillBudget`]) while its answer streams on. Without it, N clients filling
//! large answers at once would hold N × `cache.max_entry_size`.
//!
//! A buffer grows by doubling, so a fill takes bytes a few times (a lock-free add each), not per
//! frame; they are given back when the fill ends, however it ends (stored, rejected, dropped).

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct FillBudget {
    used: AtomicUsize,
    /// All together.
    max: usize,
    /// Each.
    max_entry: usize,
}

impl FillBudget {
    pub fn new(max: usize, max_entry: usize) -> FillBudget {
        FillBudget { used: AtomicUsize::new(0), max, max_entry }
    }

    /// The largest answer one fill may record (`cache.max_entry_size`).
    pub fn max_entry(&self) -> usize {
        self.max_entry
    }

    /// Take `n` bytes if they fit.
    pub fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|t| *t <= self.max))
            .is_ok()
    }

    /// Give back `n` bytes taken before.
    pub fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// The bytes recordings hold now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_taken_up_to_the_maximum_and_given_back() {
        let b = FillBudget::new(100, 100);
        assert!(b.take(60));
        assert!(!b.take(41), "over the maximum");
        assert!(b.take(40));
        b.give(60);
        assert_eq!(b.used(), 40);
        assert!(b.take(60));
    }
}
