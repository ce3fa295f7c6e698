//! A session's side of the per-query table: [`SessionStats`] gathers the session's latest
//! statements (its *run*: up to [`RUN_QUERIES`] queries, [`RUN_SAMPLES`] statements each) and
//! adds them to the shared table together — when a query's statements fill their place, when a
//! query more arrives, when the session ends, and whenever the table is read
//! ([`QueryStats::snapshot`] drains every session's run first, so a reader never misses a
//! statement that completed before it looked).
//!
//! Why: applications repeat a few queries (a hot key, an ORM's lookups, pgbench), and adding a
//! statement to the shared table costs a shard lock, a hash look-up and a clock read — as much
//! as the rest of a cache hit's bookkeeping. In a run, a statement costs the session's own
//! (uncontended) lock, a scan of at most four hashes and a few additions; the shards are locked
//! once per run (DECISIONS 43).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::totals::{Counts, nanos_of};
use super::{Outcome, QueryStats};
use crate::admin::traffic::{LocalStatements, Traffic};
use crate::sql::query_id::QueryId;

/// Statements of one query a session holds before it adds them all to the table.
pub const RUN_SAMPLES: usize = 32;
/// Queries a session holds statements of at once; one more adds them all to the table.
pub const RUN_QUERIES: usize = 4;

/// A session's statements of one query not yet in the table.
pub(super) struct Pending {
    pub query: QueryId,
    pub counts: Counts,
    /// When its first and latest statements completed.
    pub first: Instant,
    pub last: Instant,
    /// Elapsed times, in nanoseconds, of the first `counts.calls` statements.
    samples: [u64; RUN_SAMPLES],
}

impl Pending {
    /// The elapsed times recorded.
    pub fn samples(&self) -> &[u64] {
        &self.samples[..self.counts.calls as usize]
    }
}

/// A session's statements not yet in the table, of up to [`RUN_QUERIES`] queries.
pub(super) struct Run {
    pub database: Box<str>,
    pub user: Box<str>,
    pub queries: Vec<Pending>,
    /// The session's halves of the statement-latency histograms, flushed with the queries.
    pub statements: LocalStatements,
    /// Transactions ended (autocommit statements included) and their total time.
    pub transactions: u64,
    pub transaction_ns: u64,
    /// Bytes the client sent (its messages) since the last flush.
    pub received: u64,
}

impl Run {
    /// `instant` on the wall clock, given one reading of both clocks.
    pub fn wall(instant: Instant, now: (SystemTime, Instant)) -> SystemTime {
        now.0.checked_sub(now.1.saturating_duration_since(instant)).unwrap_or(now.0)
    }
}

/// The runs of live sessions, for readers to drain ([`QueryStats::snapshot`]).
#[derive(Default)]
pub(super) struct Runs {
    live: Mutex<Vec<Weak<Mutex<Run>>>>,
}

impl Runs {
    fn register(&self, run: &Arc<Mutex<Run>>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.len() >= 64 && live.len().is_power_of_two() {
            live.retain(|w| w.strong_count() > 0);
        }
        live.push(Arc::downgrade(run));
    }

    /// Every live session's run, locked in turn, passed to `f`.
    pub fn each(&self, mut f: impl FnMut(&mut Run)) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| match w.upgrade() {
            Some(run) => {
                f(&mut lock(&run));
                true
            }
            None => false,
        });
    }
}

fn lock(run: &Mutex<Run>) -> MutexGuard<'_, Run> {
    // A panic while holding a run leaves at worst one statement half-added.
    run.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session's reporter to the per-query table (see the module doc). Dropping it adds what
/// it holds.
pub struct SessionStats {
    table: Arc<QueryStats>,
    run: Arc<Mutex<Run>>,
    /// The session's, as in its run (read without the run's lock).
    database: Box<str>,
    user: Box<str>,
}

impl SessionStats {
    pub(super) fn new(table: Arc<QueryStats>, traffic: &Traffic, database: &str, user: &str) -> SessionStats {
        let statements = traffic.local_statements();
        let run = Run {
            database: database.into(),
            user: user.into(),
            queries: Vec::new(),
            statements,
            transactions: 0,
            transaction_ns: 0,
            received: 0,
        };
        let run = Arc::new(Mutex::new(run));
        table.runs.register(&run);
        SessionStats { table, run, database: database.into(), user: user.into() }
    }

    /// A statement answered along `outcome`, `elapsed` long, ending at `now`: in the latency
    /// histograms, and in the table under `id` (`None`: its identity is unknown); `xact`: the
    /// transaction it ended, so long; `received`: the bytes the client sent since the last one.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        id: Option<&QueryId>,
        outcome: Outcome,
        rows: u64,
        bytes: u64,
        elapsed: Duration,
        now: Instant,
        xact: Option<Duration>,
        received: u64,
    ) {
        let nanos = nanos_of(elapsed);
        {
            let mut run = lock(&self.run);
            run.statements.observe(outcome, elapsed);
            run.received += received;
            if let Some(xact) = xact {
                run.transactions += 1;
                run.transaction_ns = run.transaction_ns.saturating_add(nanos_of(xact));
            }
            let Some(id) = id else { return };
            let i = match run.queries.iter().position(|p| p.query.hash == id.hash) {
                Some(i) => i,
                None => {
                    if run.queries.len() == RUN_QUERIES {
                        self.table.add_run(&mut run);
                    }
                    if run.queries.capacity() == 0 {
                        run.queries.reserve_exact(RUN_QUERIES);
                    }
                    let query = id.clone();
                    run.queries.push(Pending {
                        query,
                        counts: Counts::EMPTY,
                        first: now,
                        last: now,
                        samples: [0; RUN_SAMPLES],
                    });
                    run.queries.len() - 1
                }
            };
            let pending = &mut run.queries[i];
            pending.samples[pending.counts.calls as usize] = nanos;
            pending.counts.add(outcome, rows, bytes, nanos);
            pending.last = now;
            if pending.counts.calls as usize == RUN_SAMPLES {
                self.table.add_run(&mut run);
            }
        }
        if let Some(id) = id {
            self.table.log_if_slow(&id.text, &self.database, &self.user, outcome, rows, nanos);
        }
    }

    /// An N+1 burst of `id` (`count` runs within the window) the session's detector found.
    pub fn report_repeat(&self, id: &QueryId, count: u32) {
        // The query's row must exist to count the burst on it.
        self.table.add_run(&mut lock(&self.run));
        self.table.report_repeat(&self.database, &self.user, id.hash, &id.text, count);
    }
}

impl Drop for SessionStats {
    fn drop(&mut self) {
        self.table.add_run(&mut lock(&self.run));
    }
}
