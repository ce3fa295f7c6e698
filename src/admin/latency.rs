//! A streaming latency sketch for per-query p50/p99: a log-linear histogram of nanoseconds
//! (HdrHistogram's layout at 4 significant bits). Values below 16 ns have a bucket each; above,
//! every power of two is cut into 16 buckets, so a bucket is at most 1/16 of its values wide and
//! a quantile, read as its bucket's midpoint, is within ~3 % of the truth. Recording is an index
//! computation and one increment (no logarithm, no allocation: DECISIONS 43); two sketches merge
//! by adding their counts. Up to 2^40 ns (18 minutes); longer values count in the last bucket.

use std::time::Duration;

/// Significant bits kept below the leading one.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Highest power of two with buckets of its own.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (MAX_EXP - SUB_BITS + 2) as usize * SUB;

/// The counts of one query's elapsed times.
#[derive(Clone)]
pub struct LatencySketch {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Default for LatencySketch {
    fn default() -> Self {
        LatencySketch { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

impl std::fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencySketch").field("total", &self.total).finish_non_exhaustive()
    }
}

/// The bucket of `nanos`.
#[inline]
fn index(nanos: u64) -> usize {
    if nanos < SUB as u64 {
        return nanos as usize;
    }
    let exp = (63 - nanos.leading_zeros()).min(MAX_EXP);
    if exp == MAX_EXP && nanos >= 1 << (MAX_EXP + 1) {
        return BUCKETS - 1;
    }
    let sub = (nanos >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The smallest value of bucket `i` and its width.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (exp - SUB_BITS);
    ((1u64 << exp) + (i % SUB) as u64 * width, width)
}

impl LatencySketch {
    #[inline]
    pub fn add(&mut self, elapsed: Duration) {
        self.add_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    #[inline]
    pub fn add_nanos(&mut self, nanos: u64) {
        let slot = &mut self.counts[index(nanos)];
        *slot = slot.saturating_add(1);
        self.total += 1;
    }

    pub fn merge(&mut self, other: &LatencySketch) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total += other.total;
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket holding that rank; `None`
    /// when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let (low, width) = bounds(i);
                return Some(Duration::from_nanos(low + width / 2));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_that_holds_it() {
        for nanos in (0..5000).chain([65_535, 65_536, 1_000_000, 123_456_789, (1 << 40) - 1]) {
            let (low, width) = bounds(index(nanos));
            assert!(low <= nanos && nanos < low + width, "{nanos}: [{low}, {})", low + width);
            assert!(width * 16 <= low.max(16), "{nanos}: a bucket is at most 1/16 of its values");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_a_few_percent_and_sketches_merge() {
        let mut a = LatencySketch::default();
        let mut b = LatencySketch::default();
        for micros in 1..=1000u64 {
            let d = Duration::from_micros(micros * 10);
            if micros % 2 == 0 { a.add(d) } else { b.add(d) }
        }
        a.merge(&b);
        let close = |got: Duration, want: f64| (got.as_secs_f64() / want - 1.0).abs() < 0.04;
        assert!(close(a.quantile(0.5).unwrap(), 0.005), "{:?}", a.quantile(0.5));
        assert!(close(a.quantile(0.99).unwrap(), 0.0099), "{:?}", a.quantile(0.99));
        assert_eq!(LatencySketch::default().quantile(0.5), None);
    }
}
