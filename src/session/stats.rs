//! What a session reports about its statements: to the per-query statistics
//! (`admin::query_stats`, `stats.*`), the latency histograms (`admin::traffic`) and the N+1
//! detector (`admin::repeats`).
//!
//! The unit is the *exchange*: a simple Query, or an extended-protocol batch up to its Sync —
//! what a client waits for. An exchange the proxy answers itself (a cache hit, a refusal) is
//! reported at once. One that goes to the server leaves a [`Mark`] on the request that ends it
//! (the Query or the Sync), reported at its ReadyForQuery: the rows and bytes the server sent
//! since the previous ReadyForQuery are its own, since a server answers in order. A batch is
//! filed under the statement of its last Execute (else its last Parse).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::Session;
use crate::admin::query_stats::{Outcome, SessionStats};
use crate::admin::repeats::RepeatDetector;
use crate::cache::Bypass;
use crate::sql::query_id::QueryId;

/// An exchange sent to the server, reported at its ReadyForQuery.
#[derive(Debug)]
pub struct Mark {
    /// `None` when per-query statistics are off (the histograms need no identity).
    id: Option<QueryId>,
    outcome: Outcome,
    started: Instant,
}

/// A session's counters and the exchange in progress.
#[derive(Default)]
pub struct Tally {
    /// `stats.enabled`: when off, nothing is timed or reported (no clock read either).
    pub on: bool,
    /// When the current exchange's first message arrived.
    pub started: Option<Instant>,
    /// When the current transaction's first exchange started (`None` while idle).
    xact_started: Option<Instant>,
    /// Why its read bypassed the cache, if it did (set where the bypass is noted).
    bypass: Cell<Option<Bypass>>,
    /// The exchange's identity once known: from its analysis, or the text of the statement an
    /// extended exchange runs (its last Parse's or Bind's).
    pub id: Option<QueryId>,
    /// The extended exchange in progress executes a statement (one that only prepares or
    /// describes is no query: not reported).
    pub executes: bool,
    /// DataRows and bytes the server sent this session, and their values at the last
    /// ReadyForQuery.
    rows: u64,
    bytes: u64,
    rows_at_ready: u64,
    bytes_at_ready: u64,
    /// Bytes the client sent since the last report.
    received: u64,
    repeats: Option<RepeatDetector>,
    /// The session's reporter to the per-query table (`None`: statistics off).
    reporter: Option<SessionStats>,
}

impl Tally {
    /// A session's: on with a reporter (`stats.enabled`), with an N+1 detector when
    /// `stats.n_plus_one` is set.
    pub fn new(reporter: Option<SessionStats>, repeats: Option<RepeatDetector>) -> Tally {
        Tally { on: reporter.is_some(), reporter, repeats, ..Tally::default() }
    }

    /// A reload's N+1 settings (a new detector: runs counted so far are forgotten).
    pub fn retune(&mut self, repeats: Option<RepeatDetector>) {
        self.repeats = repeats;
    }

    /// A client message arrived: the exchange it belongs to started now if none is open.
    #[inline]
    pub fn message(&mut self) {
        if self.on && self.started.is_none() {
            let now = Instant::now();
            self.started = Some(now);
            self.xact_started.get_or_insert(now);
        }
    }

    /// The exchange ended (its Query or Sync was handled): the next message starts another.
    #[inline]
    pub fn exchange_handled(&mut self) {
        self.started = None;
        self.id = None;
        self.bypass.set(None);
        self.executes = false;
    }

    /// The client sent `bytes`.
    #[inline]
    pub fn client_sent(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// The server sent a frame of `bytes`, a DataRow or not.
    #[inline]
    pub fn server_sent(&mut self, bytes: usize, data_row: bool) {
        self.bytes += bytes as u64;
        self.rows += u64::from(data_row);
    }

    /// A read bypassed the cache for `why`.
    pub fn bypassed(&self, why: Bypass) {
        self.bypass.set(Some(why));
    }
}

impl Session {
    /// The mark of a client's Query (`query`: its text) or Sync going to the server;
    /// `filling`: its answer is recorded for the cache.
    pub(super) fn exchange_mark(&mut self, query: Option<&[u8]>, filling: bool) -> Box<Mark> {
        let outcome = match (filling, self.tally.bypass.get()) {
            (true, _) => Outcome::Miss,
            (false, Some(why)) => Outcome::Bypassed(why),
            (false, None) => Outcome::Forwarded,
        };
        let started = self.tally.started.take().unwrap_or_else(Instant::now);
        let id = match query {
            _ if self.tally.id.is_some() => self.tally.id.take(),
            Some(text) => QueryId::of_bytes(text),
            None => None,
        };
        Box::new(Mark { id, outcome, started })
    }

    /// The exchange was answered by the proxy: from the cache (`Hit`: `known` is the entry's
    /// query) or refused. Its identity: `known`, else the analysis's, else `text`'s (`None`: the
    /// extended statement in progress).
    pub(super) fn exchange_answered(
        &mut self,
        known: Option<&QueryId>,
        text: Option<&[u8]>,
        outcome: Outcome,
        rows: u64,
        bytes: usize,
    ) {
        if !self.tally.on {
            return;
        }
        let now = Instant::now();
        let started = self.tally.started.take();
        let elapsed = started.map(|s| now.saturating_duration_since(s)).unwrap_or_default();
        let analysed = self.tally.id.take();
        let of_text;
        let id = match (known, &analysed) {
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => {
                of_text = text.and_then(QueryId::of_bytes);
                of_text.as_ref()
            }
        };
        let idle = self.tx.status() == b'I';
        self.report(id, outcome, rows, bytes as u64, (started, elapsed), now, idle);
    }

    /// A ReadyForQuery from the server saying `status`; `mark`: the exchange it ends, if one
    /// was marked.
    pub(super) fn exchange_ready(&mut self, mark: Option<Box<Mark>>, status: u8) {
        let t = &mut self.tally;
        let (rows, bytes) = (t.rows - t.rows_at_ready, t.bytes - t.bytes_at_ready);
        (t.rows_at_ready, t.bytes_at_ready) = (t.rows, t.bytes);
        match mark {
            Some(mark) => {
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(mark.started);
                let timing = (Some(mark.started), elapsed);
                self.report(mark.id.as_ref(), mark.outcome, rows, bytes, timing, now, status == b'I');
            }
            // An exchange that ran no query (a Parse and Sync): no transaction of its own.
            None if status == b'I' => t.xact_started = None,
            None => {}
        }
    }

    /// A statement to the histograms and, under `id` if known, the per-query table; `timing`:
    /// when it started (if known) and how long it took; `idle`: no transaction is open after it
    /// (it ended one: an autocommit statement, or the block's COMMIT or ROLLBACK).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        id: Option<&QueryId>,
        outcome: Outcome,
        rows: u64,
        bytes: u64,
        (started, elapsed): (Option<Instant>, Duration),
        now: Instant,
        idle: bool,
    ) {
        let Some(reporter) = &self.tally.reporter else { return };
        let xact = match self.tally.xact_started.take_if(|_| idle) {
            // An autocommit statement is its own transaction: no second subtraction.
            Some(began) if Some(began) == started => Some(elapsed),
            Some(began) => Some(now.saturating_duration_since(began)),
            None => None,
        };
        let received = std::mem::take(&mut self.tally.received);
        reporter.record(id, outcome, rows, bytes, elapsed, now, xact, received);
        if let Some(id) = id
            && let Some(repeats) = &mut self.tally.repeats
            && let Some(count) = repeats.observe(id.hash, now)
        {
            reporter.report_repeat(id, count);
        }
    }
}
