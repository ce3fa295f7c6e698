//! N+1 detection for one client session: the same statement fingerprint run many times in a
//! short burst (an ORM loading a relation row by row) is a query the application should batch.
//!
//! [`RepeatDetector`] belongs to one session, so it takes `&mut self` and holds no lock. It
//! remembers only the last [`TRACKED_FINGERPRINTS`] fingerprints it saw, so a session that runs
//! thousands of distinct statements keeps a few dozen bytes. What it reports goes to
//! [`QueryStats::report_repeat`](super::query_stats::QueryStats::report_repeat).

use std::time::{Duration, Instant};

/// How many distinct fingerprints one session's detector follows at once. An ORM's N+1 loop
/// interleaves a few statements (the child query, perhaps a second relation, a savepoint);
/// more than this many between two repeats is not the pattern looked for.
pub const TRACKED_FINGERPRINTS: usize = 8;

/// One fingerprint's current run.
#[derive(Debug, Clone, Copy)]
struct Run {
    fingerprint_hash: u64,
    /// The first occurrence of this run: the window is measured from here.
    started: Instant,
    /// The latest occurrence: the least recently seen run is forgotten first.
    last_seen: Instant,
    /// Occurrences in this run, the first included.
    count: u32,
    /// Whether this run was reported already (a run is reported once).
    reported: bool,
}

/// Counts each recent fingerprint's occurrences in a window, for one session.
///
/// The rule, precisely: a fingerprint's run starts at an occurrence `t0` of it (its first one,
/// or the first one later than `t0 + window`). Every occurrence at a time `t <= t0 + window`
/// counts in that run, whatever other statements come between (ORMs interleave). When a run's
/// count first exceeds `limit`, [`RepeatDetector::observe`] returns `Some(count)` — once; later
/// occurrences in the same run return `None`. An occurrence past `t0 + window` starts a new run
/// with count 1, which may be reported again. (So this is a window anchored at the run's start,
/// not a sliding one: a burst straddling two windows may be counted as two smaller runs.)
///
/// Only [`TRACKED_FINGERPRINTS`] runs are kept; a new fingerprint replaces the least recently
/// seen one, which loses its count.
#[derive(Debug, Clone)]
pub struct RepeatDetector {
    limit: u32,
    window: Duration,
    runs: Vec<Run>,
}

impl RepeatDetector {
    /// A detector reporting a fingerprint seen more than `limit` times within `window`.
    pub fn new(limit: u32, window: Duration) -> RepeatDetector {
        RepeatDetector { limit, window, runs: Vec::with_capacity(TRACKED_FINGERPRINTS) }
    }

    /// Note one statement with this fingerprint, run at `now` (times must not go backwards).
    /// Returns `Some(count)` when this occurrence makes its run exceed the limit for the first
    /// time; `count` is the run's occurrences so far (`limit + 1`).
    pub fn observe(&mut self, fingerprint_hash: u64, now: Instant) -> Option<u32> {
        let run = match self.runs.iter_mut().position(|r| r.fingerprint_hash == fingerprint_hash) {
            Some(i) => {
                let run = &mut self.runs[i];
                if now.saturating_duration_since(run.started) > self.window {
                    *run = Run { fingerprint_hash, started: now, last_seen: now, count: 1, reported: false };
                } else {
                    run.count = run.count.saturating_add(1);
                    run.last_seen = now;
                }
                run
            }
            None => {
                let fresh = Run { fingerprint_hash, started: now, last_seen: now, count: 1, reported: false };
                if self.runs.len() < TRACKED_FINGERPRINTS {
                    self.runs.push(fresh);
                    self.runs.last_mut().expect("just pushed")
                } else {
                    let oldest =
                        self.runs.iter_mut().min_by_key(|r| r.last_seen).expect("TRACKED_FINGERPRINTS is not zero");
                    *oldest = fresh;
                    oldest
                }
            }
        };
        if run.count > self.limit && !run.reported {
            run.reported = true;
            Some(run.count)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `hashes` one millisecond apart from `start`; returns what each observation said.
    fn feed(d: &mut RepeatDetector, start: Instant, hashes: &[u64]) -> Vec<Option<u32>> {
        hashes.iter().enumerate().map(|(i, h)| d.observe(*h, start + MS * i as u32)).collect()
    }

    #[test]
    fn a_burst_past_the_limit_is_reported_once() {
        let mut d = RepeatDetector::new(3, Duration::from_secs(1));
        let said = feed(&mut d, Instant::now(), &[7; 10]);
        assert_eq!(said, vec![None, None, None, Some(4), None, None, None, None, None, None]);
    }

    #[test]
    fn interleaved_fingerprints_still_count() {
        let mut d = RepeatDetector::new(3, Duration::from_secs(1));
        let said = feed(&mut d, Instant::now(), &[1, 2, 1, 3, 1, 2, 1]);
        assert_eq!(said.iter().filter(|s| s.is_some()).count(), 1);
        assert_eq!(said[6], Some(4), "the fourth 1 exceeds the limit of 3: {said:?}");
    }

    #[test]
    fn interleaved_use_below_the_limit_is_not_reported() {
        let mut d = RepeatDetector::new(3, Duration::from_secs(1));
        let said = feed(&mut d, Instant::now(), &[1, 2, 3, 1, 2, 3, 1, 2, 3]);
        assert!(said.iter().all(Option::is_none), "{said:?}");
    }

    #[test]
    fn repeats_spread_past_the_window_are_not_reported() {
        let mut d = RepeatDetector::new(2, Duration::from_millis(100));
        let start = Instant::now();
        for i in 0..10u32 {
            assert_eq!(d.observe(9, start + MS * (i * 60)), None, "occurrence {i}");
        }
    }

    #[test]
    fn a_new_window_may_be_reported_again() {
        let mut d = RepeatDetector::new(2, Duration::from_millis(100));
        let start = Instant::now();
        assert_eq!(feed(&mut d, start, &[5, 5, 5, 5]), vec![None, None, Some(3), None]);
        let later = start + Duration::from_millis(500);
        assert_eq!(feed(&mut d, later, &[5, 5, 5]), vec![None, None, Some(3)]);
    }

    #[test]
    fn memory_is_bounded_and_the_least_recent_run_is_forgotten() {
        let mut d = RepeatDetector::new(2, Duration::from_secs(1));
        let start = Instant::now();
        // Two occurrences of 100, then TRACKED_FINGERPRINTS others push it out.
        let mut hashes = vec![100, 100];
        hashes.extend(0..TRACKED_FINGERPRINTS as u64);
        hashes.push(100);
        let said = feed(&mut d, start, &hashes);
        assert!(said.iter().all(Option::is_none), "100's count restarted at 1: {said:?}");
        assert_eq!(d.runs.len(), TRACKED_FINGERPRINTS);
        // Whereas one fewer other fingerprint keeps 100 tracked, and its third occurrence fires.
        let mut d = RepeatDetector::new(2, Duration::from_secs(1));
        let mut hashes = vec![100, 100];
        hashes.extend(0..TRACKED_FINGERPRINTS as u64 - 1);
        hashes.push(100);
        assert_eq!(*feed(&mut d, start, &hashes).last().unwrap(), Some(3));
    }
}
