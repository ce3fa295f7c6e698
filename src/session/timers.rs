//! The session's timers: `timeouts.query` (cancel, then close a server that does not answer),
//! `timeouts.idle_in_transaction` and `timeouts.client_idle` (counted from the later of the
//! client's last message and the server's last ReadyForQuery, as Postgres counts its own),
//! `timeouts.client_write` (a client with answers waiting that takes none of them: closed with
//! its server connection, which is mid-answer), and the shutdown deadline.

use std::time::{Duration, Instant};

use tracing::warn;

use super::{Flow, Session};
use crate::wire::build::{self, Severity};

/// How long a statement cancelled for `timeouts.query` may take to end before its server
/// connection is closed under it (a frozen host never answers the cancel).
pub(super) const CANCEL_GRACE: Duration = Duration::from_secs(2);

impl Session {
    /// The next instant a timer of this session runs out, if any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.drain_deadline, self.timeout_deadline(), self.client_write_deadline(), self.batch_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// When a client that takes none of its answers is cut (`timeouts.client_write`).
    fn client_write_deadline(&self) -> Option<Instant> {
        Some(self.client_stalled? + self.shared.config.timeouts.client_write?)
    }

    /// After each turn of the loop, with `timeouts.client_write`: whether answers wait for the
    /// client, and since when it has taken none (`took`: it took some during this turn).
    pub(super) fn watch_client_writes(&mut self, took: bool) {
        let waiting = !self.to_client.is_empty() || self.client_unflushed;
        let took = std::mem::take(&mut self.client_took) || took;
        self.client_stalled = match self.client_stalled {
            _ if !waiting => None,
            Some(since) if !took => Some(since),
            _ => Some(Instant::now()),
        };
    }

    /// When the statement or idle timeout in force (see `timeouts`) runs out.
    fn timeout_deadline(&self) -> Option<Instant> {
        let t = &self.shared.config.timeouts;
        if !t.any_session_timeout() {
            // No timeout configured (the default): nothing to work out, every turn.
            return None;
        }
        let since = |d: Duration| self.last_activity + d;
        if self.server.is_none() {
            return t.client_idle.map(since);
        }
        if self.queue.pending_ready() > 0 {
            return match self.timeout_cancel {
                None => t.query.map(since),
                Some(cancelled) => Some(cancelled + CANCEL_GRACE),
            };
        }
        if self.queue.is_empty() && !self.tx.is_idle() {
            return t.idle_in_transaction.map(since);
        }
        None
    }

    /// A timer ran out: act on whichever it was.
    pub(super) async fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        if self.drain_deadline.is_some_and(|d| d <= now) {
            // Shutting down and still in a transaction at the deadline: Postgres rolls it back
            // when the connection closes; the client is told why, as Postgres tells it.
            return self.end_with_fatal(
                "57P01",
                "terminating connection because pgcached is shutting down (timeouts.shutdown reached)",
            );
        }
        if self.client_write_deadline().is_some_and(|d| d <= now) {
            // Its server stopped being read when the buffer filled (the loop's high-water mark):
            // it is mid-answer, so it is closed, not given back. The client reads nothing, so a
            // FATAL would not reach it, and waiting to deliver what is buffered would only hold
            // the server longer.
            warn!(pool = %self.key, waiting = self.to_client.len(), "a client took none of its answers for timeouts.client_write: disconnecting it");
            if let Some(lease) = &mut self.server {
                lease.obj.broken = true;
            }
            self.to_client.clear();
            self.client_unflushed = false;
            return Flow::Close;
        }
        if self.timeout_deadline().is_none_or(|d| d > now) {
            return Flow::Continue;
        }
        if self.server.is_none() {
            return self.end_with_fatal(
                "57P05",
                "terminating connection due to idle-session timeout (pgcached timeouts.client_idle)",
            );
        }
        if !self.queue.is_empty() {
            if self.timeout_cancel.is_some() {
                // The cancel went unanswered: the server is not coming back to this statement.
                warn!(pool = %self.key, grace = ?CANCEL_GRACE, "a statement over timeouts.query did not end after its cancel: closing its server connection");
                return self.end_with_fatal(
                    "57014",
                    "canceling statement due to statement timeout (pgcached timeouts.query); the server did not answer the cancel, connection closed",
                );
            }
            self.timeout_cancel = Some(now);
            let target = self.shared.pools.target_arc();
            // In a task: a frozen server may hold the cancel connection for its linger, and the
            // grace timer must run meanwhile.
            self.cancel.slot.spawn_with_current(|k| async move {
                if let Err(e) = crate::server::send_cancel(&target, k.addr, k.pid, k.secret).await {
                    warn!(error = %e, "could not send a cancel for a query over timeouts.query");
                }
            });
            return Flow::Continue;
        }
        self.end_with_fatal(
            "25P03",
            "terminating connection due to idle-in-transaction timeout (pgcached timeouts.idle_in_transaction)",
        )
    }

    /// End the session with a FATAL `code`: the server connection it holds (mid-statement or
    /// mid-transaction) is not given to anyone again; Postgres rolls back what it was doing.
    fn end_with_fatal(&mut self, code: &str, message: &str) -> Flow {
        if let Some(lease) = &mut self.server {
            lease.obj.broken = true;
        }
        build::error_response(&mut self.to_client, Severity::Fatal, code, message);
        Flow::Close
    }
}
