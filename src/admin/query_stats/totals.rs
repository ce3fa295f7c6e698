//! The numbers kept per query: [`Counts`] (what adds up statement by statement, in plain
//! integers, cheap to add to) and [`Totals`] (a table row: the counts, the latency sketch, N+1
//! reports and when the query was first and last seen).

use std::time::{Duration, SystemTime};

use super::Outcome;
use crate::admin::latency::LatencySketch;
use crate::cache::Bypass;

/// What statements add: by outcome, rows, bytes and elapsed time (nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counts {
    pub calls: u64,
    pub hits: u64,
    pub misses: u64,
    pub forwarded: u64,
    /// Indexed by `Bypass as usize`, the order of [`Bypass::ALL`].
    pub bypassed: [u64; Bypass::ALL.len()],
    pub refused: u64,
    pub rows: u64,
    pub bytes: u64,
    pub time_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
}

impl Counts {
    /// No statement yet (`min_ns` at its maximum, so the first statement sets it).
    pub const EMPTY: Counts = Counts {
        calls: 0,
        hits: 0,
        misses: 0,
        forwarded: 0,
        bypassed: [0; Bypass::ALL.len()],
        refused: 0,
        rows: 0,
        bytes: 0,
        time_ns: 0,
        min_ns: u64::MAX,
        max_ns: 0,
    };

    /// One statement answered along `outcome` in `nanos`.
    #[inline]
    pub fn add(&mut self, outcome: Outcome, rows: u64, bytes: u64, nanos: u64) {
        self.calls += 1;
        match outcome {
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Forwarded => self.forwarded += 1,
            Outcome::Bypassed(why) => self.bypassed[why as usize] += 1,
            Outcome::Refused => self.refused += 1,
        }
        self.rows = self.rows.saturating_add(rows);
        self.bytes = self.bytes.saturating_add(bytes);
        self.time_ns = self.time_ns.saturating_add(nanos);
        self.min_ns = self.min_ns.min(nanos);
        self.max_ns = self.max_ns.max(nanos);
    }

    /// Adds `other`'s statements.
    pub fn merge(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.hits += other.hits;
        self.misses += other.misses;
        self.forwarded += other.forwarded;
        for (mine, theirs) in self.bypassed.iter_mut().zip(other.bypassed) {
            *mine += theirs;
        }
        self.refused += other.refused;
        self.rows = self.rows.saturating_add(other.rows);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.time_ns = self.time_ns.saturating_add(other.time_ns);
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

/// `d` in nanoseconds, saturating.
pub(super) fn nanos_of(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The numbers of one query (or of an `<other>` row). Never empty: made by statements.
#[derive(Clone)]
pub(super) struct Totals {
    pub counts: Counts,
    /// N+1 reports of this query.
    pub repeats: u64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    /// Elapsed times.
    pub latency: LatencySketch,
}

impl Totals {
    /// Statements first seen at `first_seen`.
    pub fn new(first_seen: SystemTime) -> Totals {
        Totals {
            counts: Counts::EMPTY,
            repeats: 0,
            first_seen,
            last_seen: first_seen,
            latency: LatencySketch::default(),
        }
    }

    /// Adds `other`'s numbers (an evicted query, or another shard's `<other>`).
    pub fn merge(&mut self, other: &Totals) {
        self.counts.merge(&other.counts);
        self.repeats += other.repeats;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.latency.merge(&other.latency);
    }

    /// Total elapsed time.
    pub fn time(&self) -> Duration {
        Duration::from_nanos(self.counts.time_ns)
    }

    /// The shortest elapsed time (zero before any statement).
    pub fn min(&self) -> Duration {
        Duration::from_nanos(self.counts.min_ns.min(self.counts.max_ns))
    }

    /// The longest elapsed time.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.counts.max_ns)
    }

    /// The elapsed time at quantile `q`, within [min, max] (the sketch's estimate is within ~3%).
    pub fn quantile(&self, q: f64) -> Duration {
        self.latency.quantile(q).unwrap_or_default().clamp(self.min(), self.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_merge_alike() {
        let mut one_by_one = Counts::EMPTY;
        let mut a = Counts::EMPTY;
        let mut b = Counts::EMPTY;
        let statements = [
            (Outcome::Hit, 1, 10, 5),
            (Outcome::Miss, 2, 20, 50),
            (Outcome::Bypassed(Bypass::Rule), 0, 0, 7),
            (Outcome::Refused, 0, 0, 1),
        ];
        for (i, &(outcome, rows, bytes, nanos)) in statements.iter().enumerate() {
            one_by_one.add(outcome, rows, bytes, nanos);
            if i % 2 == 0 { a.add(outcome, rows, bytes, nanos) } else { b.add(outcome, rows, bytes, nanos) }
        }
        a.merge(&b);
        assert_eq!(a, one_by_one);
        assert_eq!((a.calls, a.hits, a.misses, a.refused, a.bypassed[Bypass::Rule as usize]), (4, 1, 1, 1, 1));
        assert_eq!((a.rows, a.bytes, a.time_ns, a.min_ns, a.max_ns), (3, 30, 63, 1, 50));
    }

    #[test]
    fn an_empty_total_reads_as_zero() {
        let t = Totals::new(SystemTime::UNIX_EPOCH);
        assert_eq!(
            (t.time(), t.min(), t.max(), t.quantile(0.5)),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
    }
}
