//! Do no harm: a table whose cached answers are invalidated before anyone hits them stops being
//! recorded for a while.
//!
//! Recording an answer costs a copy and an insert; on a table written as often as it is read
//! (every write drops the table's answers), nearly every fill dies unused and the cache only
//! slows the reads down. Per table this counts the entries filled and not hit yet; a write that
//! invalidates the table turns them into *wasted* fills, a first hit of an entry into a *used*
//! one. When wasted fills reach [`MIN_WASTED`] and outnumber used ones [`WASTE_RATIO`] to one,
//! lookups of the table bypass the cache for [`SUSPENSION`]; then recording starts again, so a
//! workload that changes is noticed. Tables are keyed as the version counters key them
//! (`names::version_key`, across databases: a heuristic, never a correctness matter).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::names::version_key;

/// Wasted fills before a table may be suspended.
pub const MIN_WASTED: u64 = 256;
/// Wasted fills per used one above which a table is suspended.
pub const WASTE_RATIO: u64 = 9;
/// How long a suspended table bypasses the cache.
pub const SUSPENSION: Duration = Duration::from_secs(10);
/// Tables tracked before the tracker starts afresh (bounds memory).
const MAX_TABLES: usize = 10_000;

#[derive(Debug, Default)]
struct TableChurn {
    /// Entries filled since the table's last invalidation, not hit yet.
    unhit: u64,
    wasted: u64,
    used: u64,
    suspended_until: Option<Instant>,
}

/// What happened to tables' entries, and which tables are not worth recording now.
#[derive(Debug, Default)]
pub struct Churn {
    tables: Mutex<HashMap<String, TableChurn>>,
}

impl Churn {
    /// An entry reading `tables` was stored.
    pub fn filled<'a>(&self, tables: impl IntoIterator<Item = &'a str>) {
        let mut map = self.lock();
        if map.len() >= MAX_TABLES {
            map.clear();
        }
        for t in tables {
            map.entry(version_key(t).into_owned()).or_default().unhit += 1;
        }
    }

    /// An entry reading `tables` was hit for the first time.
    pub fn first_hit<'a>(&self, tables: impl IntoIterator<Item = &'a str>) {
        let mut map = self.lock();
        for t in tables {
            if let Some(c) = map.get_mut(&*version_key(t)) {
                c.unhit = c.unhit.saturating_sub(1);
                c.used += 1;
            }
        }
    }

    /// A write invalidated `tables`: their unhit entries were wasted. Returns how many tables
    /// this suspended.
    pub fn invalidated<'a>(&self, tables: impl IntoIterator<Item = &'a str>, now: Instant) -> u64 {
        let mut map = self.lock();
        let mut suspended = 0;
        for t in tables {
            let Some(c) = map.get_mut(&*version_key(t)) else { continue };
            c.wasted += std::mem::take(&mut c.unhit);
            if c.wasted >= MIN_WASTED && c.wasted > WASTE_RATIO * c.used {
                c.suspended_until = Some(now + SUSPENSION);
                c.wasted = 0;
                c.used = 0;
                suspended += 1;
            } else if c.wasted + c.used > 64 * MIN_WASTED {
                // Old history weighs less.
                c.wasted /= 2;
                c.used /= 2;
            }
        }
        suspended
    }

    /// Whether answers reading any of `tables` are not to be recorded now.
    pub fn suspended<'a>(&self, tables: impl IntoIterator<Item = &'a str>, now: Instant) -> bool {
        let mut map = self.lock();
        let mut any = false;
        for t in tables {
            if let Some(c) = map.get_mut(&*version_key(t))
                && let Some(until) = c.suspended_until
            {
                if until > now {
                    any = true;
                } else {
                    c.suspended_until = None;
                }
            }
        }
        any
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TableChurn>> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_whose_fills_die_unhit_is_suspended_for_a_while() {
        let churn = Churn::default();
        let now = Instant::now();
        for _ in 0..MIN_WASTED {
            churn.filled(["public.t"]);
        }
        assert!(!churn.suspended(["t"], now), "fills alone suspend nothing (a warm-up)");
        assert_eq!(churn.invalidated(["T"], now), 1);
        assert!(churn.suspended(["t", "other"], now));
        assert!(!churn.suspended(["other"], now));
        assert!(!churn.suspended(["t"], now + SUSPENSION), "recording starts again");
    }

    #[test]
    fn fills_that_are_hit_keep_their_table_recorded() {
        let churn = Churn::default();
        let now = Instant::now();
        for _ in 0..2 * MIN_WASTED {
            churn.filled(["t"]);
        }
        for _ in 0..MIN_WASTED {
            churn.first_hit(["t"]);
        }
        assert_eq!(churn.invalidated(["t"], now), 0, "half were used");
        assert!(!churn.suspended(["t"], now));
    }
}
