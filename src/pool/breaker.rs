//! [`Breaker`]: the circuit breaker of the upstream target, shared by every pool.
//!
//! While Postgres cannot be reached, every checkout that needs a new connection would pay the
//! connect timeout (and the retries of `pool::retry`). The breaker remembers the failure: once
//! opening a connection has failed with a network-level error (refused, reset, timed out — not
//! an error Postgres itself answered, which proves it reachable), the upstream is *down*, and
//! checkouts that need a new connection fail at once with [`BreakerOpen`] (08006). Every
//! `pool.breaker_probe_interval`, the first such checkout is let through as the *probe* (one at
//! a time): its success closes the breaker, its failure keeps it open for another interval.
//! Idle connections already open are still handed out (they are checked as always).
//!
//! The state machine is pure (times are arguments) so that it is tested without a clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{info, warn};

/// A checkout refused because the upstream is marked down.
#[derive(Debug, Clone, Error)]
#[error(
    "pgcached: upstream marked down by the circuit breaker {} ago (last error: {last_error}); failing fast until a probe connects",
    humantime::format_duration(Duration::from_millis(u64::try_from(.down_for.as_millis()).unwrap_or(u64::MAX)))
)]
pub struct BreakerOpen {
    /// How long the upstream has been down.
    pub down_for: Duration,
    /// The network error that opened the breaker (or failed the last probe).
    pub last_error: String,
}

/// What a checkout that needs a new connection may do (see [`Breaker::admit`]).
#[derive(Debug)]
pub enum Admission<'a> {
    /// The breaker is closed: connect (with retries).
    Connect,
    /// The breaker is open and this checkout is the probe: one attempt, no retries. The guard
    /// hands the probe back if the attempt is abandoned (the client went away).
    Probe(ProbeGuard<'a>),
    /// The breaker is open: fail now.
    Refuse(BreakerOpen),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        since: Instant,
        last_error: String,
        /// No probe before this.
        next_probe: Instant,
        /// A probe is under way.
        probing: bool,
    },
}

/// The breaker of one upstream target. Share it (it lives in [`super::Pools`]).
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    /// Mirrors `state != Closed`: a closed breaker costs a checkout one load.
    open: AtomicBool,
    /// Checkouts refused while open (`pgcached_upstream_fast_failures_total`).
    fast_failures: AtomicU64,
    /// Times the breaker opened (`pgcached_upstream_breaker_opened_total`).
    opened: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::new()
    }
}

impl Breaker {
    pub fn new() -> Breaker {
        Breaker {
            state: Mutex::new(State::Closed),
            open: AtomicBool::new(false),
            fast_failures: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// May a checkout open a connection now?
    pub fn admit(&self, now: Instant) -> Admission<'_> {
        if !self.open.load(Ordering::Acquire) {
            return Admission::Connect;
        }
        let mut state = self.lock();
        match &mut *state {
            State::Closed => Admission::Connect,
            State::Open { probing, next_probe, .. } if !*probing && now >= *next_probe => {
                *probing = true;
                Admission::Probe(ProbeGuard { breaker: self, done: false })
            }
            State::Open { since, last_error, .. } => {
                self.fast_failures.fetch_add(1, Ordering::Relaxed);
                Admission::Refuse(BreakerOpen {
                    down_for: now.saturating_duration_since(*since),
                    last_error: last_error.clone(),
                })
            }
        }
    }

    /// A connection was opened, or Postgres answered (it is reachable): close the breaker.
    pub fn reachable(&self) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        if let State::Open { since, .. } = &*state {
            info!(down_for = ?since.elapsed(), "upstream reachable again: circuit breaker closed");
        }
        *state = State::Closed;
        self.open.store(false, Ordering::Release);
    }

    /// Opening a connection failed with a network-level error (after its retries, or as the
    /// probe): the upstream is down until a probe succeeds, the next one `probe_interval`
    /// from `now` (`pool.breaker_probe_interval`, passed in so that a reload takes effect).
    pub fn unreachable(&self, error: &str, now: Instant, probe_interval: Duration) {
        let mut state = self.lock();
        let since = match &*state {
            State::Open { since, .. } => *since,
            State::Closed => {
                warn!(error, "upstream unreachable: circuit breaker open, new connections fail fast");
                self.opened.fetch_add(1, Ordering::Relaxed);
                now
            }
        };
        *state = State::Open { since, last_error: error.to_string(), next_probe: now + probe_interval, probing: false };
        self.open.store(true, Ordering::Release);
    }

    /// Whether the upstream is marked down now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Checkouts refused while the breaker was open.
    pub fn fast_failures(&self) -> u64 {
        self.fast_failures.load(Ordering::Relaxed)
    }

    /// Times the breaker opened.
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change is one assignment: a poisoned state is still a state.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The right to probe; dropped without [`ProbeGuard::finish`] (the checkout was abandoned), it
/// lets the next checkout probe.
#[derive(Debug)]
pub struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    done: bool,
}

impl ProbeGuard<'_> {
    /// The probe's outcome was reported to the breaker.
    pub fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let State::Open { probing, .. } = &mut *self.breaker.lock() {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(500);

    fn refused(a: &Admission<'_>) -> bool {
        matches!(a, Admission::Refuse(_))
    }

    #[test]
    fn a_closed_breaker_lets_every_checkout_connect() {
        let b = Breaker::new();
        assert!(matches!(b.admit(Instant::now()), Admission::Connect));
        assert!(!b.is_open());
        assert_eq!(b.fast_failures(), 0);
    }

    #[test]
    fn an_unreachable_upstream_refuses_checkouts_until_the_probe_interval() {
        let b = Breaker::new();
        let t0 = Instant::now();
        b.unreachable("connection refused", t0, INTERVAL);
        assert!(b.is_open());
        assert_eq!(b.times_opened(), 1);
        let Admission::Refuse(e) = b.admit(t0 + Duration::from_millis(100)) else { panic!("not refused") };
        assert_eq!(e.down_for, Duration::from_millis(100));
        assert!(e.to_string().contains("circuit breaker"), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        assert_eq!(b.fast_failures(), 1);
    }

    #[test]
    fn one_probe_at_a_time_after_the_interval() {
        let b = Breaker::new();
        let t0 = Instant::now();
        b.unreachable("reset", t0, INTERVAL);
        let later = t0 + INTERVAL;
        let probe = b.admit(later);
        assert!(matches!(probe, Admission::Probe(_)));
        // Others fail fast while the probe runs.
        assert!(refused(&b.admit(later)));
        assert!(refused(&b.admit(later + INTERVAL)));
        drop(probe);
    }

    #[test]
    fn a_successful_probe_closes_the_breaker() {
        let b = Breaker::new();
        let t0 = Instant::now();
        b.unreachable("reset", t0, INTERVAL);
        let Admission::Probe(guard) = b.admit(t0 + INTERVAL) else { panic!("no probe") };
        b.reachable();
        guard.finish();
        assert!(!b.is_open());
        assert!(matches!(b.admit(t0 + INTERVAL), Admission::Connect));
    }

    #[test]
    fn a_failed_probe_keeps_it_open_for_another_interval_and_keeps_the_first_failure_time() {
        let b = Breaker::new();
        let t0 = Instant::now();
        b.unreachable("refused", t0, INTERVAL);
        let t1 = t0 + INTERVAL;
        let Admission::Probe(guard) = b.admit(t1) else { panic!("no probe") };
        b.unreachable("timed out", t1, INTERVAL);
        guard.finish();
        let Admission::Refuse(e) = b.admit(t1 + Duration::from_millis(10)) else { panic!("not refused") };
        assert_eq!(e.last_error, "timed out");
        assert_eq!(e.down_for, INTERVAL + Duration::from_millis(10));
        assert!(matches!(b.admit(t1 + INTERVAL), Admission::Probe(_)));
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_checkout_probe() {
        let b = Breaker::new();
        let t0 = Instant::now();
        b.unreachable("refused", t0, INTERVAL);
        let t1 = t0 + INTERVAL;
        drop(b.admit(t1));
        assert!(matches!(b.admit(t1), Admission::Probe(_)));
    }
}
