//! Sending a statement again when its server connection died before answering it.
//!
//! A connection taken from the pool can be dead without the pool knowing yet: Postgres
//! restarted and the backend's FATAL (57P01) or the close arrives only once the statement is
//! sent. When the statement is safe to repeat and nothing of its answer reached the client, the
//! client need not hear about it: the dead connection is dropped and the same Query goes to
//! another one (idle, checked as always, or new — with the pool's own connect retries and the
//! circuit breaker, see `pool::retry` and `pool::breaker`).
//!
//! Safe to repeat, exactly: a simple-protocol Query the proxy analysed whose every statement is
//! a read that cannot write (no function that may write, by the catalog), sent in autocommit
//! (no block open, none held) on a connection checked out for it, with nothing else in flight.
//! It is sent again at most `pool.retries` times, and only while no frame of its answer has
//! arrived: the first frame that is not a connection-level FATAL (SQLSTATE class 08 or 57P0x)
//! ends the chance. Writes and statements inside a transaction are never sent again: their
//! failure is the client's to see, as before. The extended protocol is not covered (its
//! batches carry state across messages); neither is pure pass-through (cache and policies
//! off), where statements are not analysed.

use bytes::Bytes;
use tracing::info;

use super::queue::Entry;
use super::{Flow, Session};
use crate::sql::Analysis;
use crate::wire::Frame;
use crate::wire::backend::{self, tag};
use crate::wire::frame::peek_frame;

/// The copy of a Query kept while it may be sent again.
#[derive(Debug)]
pub(super) struct Resend {
    /// The Query as sent (a copy: the original shares the client's read buffer).
    frame: Frame,
    /// Times it may still be sent again.
    left: u32,
}

/// What the first bytes a server sent for a resendable request say.
enum Verdict {
    /// A connection-level FATAL before any answer: send the statement elsewhere.
    Dead,
    /// An answer began: nothing may be sent again any more.
    Answering,
    /// Not a whole frame yet.
    Unknown,
}

impl Session {
    /// The copy to keep of `frame`, a Query of `analysis` about to be forwarded, if it may be
    /// sent again (see the module doc); `checked_out`: its server was taken for it.
    pub(super) fn resend_for(&self, frame: &Frame, analysis: &Analysis, checked_out: bool) -> Option<Resend> {
        let left = self.shared.config.pool.retries;
        let alone = checked_out && self.queue.is_empty() && self.to_server.is_empty();
        if left == 0 || !alone || !self.tx.is_idle() || self.held_begin.is_some() {
            return None;
        }
        let repeatable = |s: &crate::sql::StatementAnalysis| {
            s.is_read_only() && s.parse_error.is_none() && !self.judge_calls(s).may_write
        };
        if analysis.statements.is_empty() || !analysis.statements.iter().all(repeatable) {
            return None;
        }
        Some(Resend { frame: Frame::from_bytes(Bytes::copy_from_slice(frame.as_bytes())), left })
    }

    /// Whether the request at the head of the queue may still be sent again.
    fn head_resendable(&self) -> bool {
        matches!(self.queue.head(), Some(Entry::Server(r)) if r.resendable())
    }

    /// Before the server's frames are handled: if the head request may be sent again and the
    /// server's first frame is a connection-level FATAL, send it elsewhere (`Some`: handled);
    /// if an answer began, it may not be sent again any more.
    pub(super) async fn resend_if_dead(&mut self) -> Option<Flow> {
        if !self.head_resendable() {
            return None;
        }
        let rbuf = &self.server.as_ref()?.io.rbuf;
        let verdict = match peek_frame(rbuf, usize::MAX) {
            Ok(Some(frame)) if frame.tag() == tag::ERROR_RESPONSE => {
                let fields = backend::error_fields(frame.body());
                let fatal = matches!(fields.severity.as_str(), "FATAL" | "PANIC");
                if fatal && (fields.code.starts_with("08") || fields.code.starts_with("57P0")) {
                    info!(pool = %self.key, code = %fields.code, message = %fields.message, "server connection died before answering: sending the statement again");
                    Verdict::Dead
                } else {
                    Verdict::Answering
                }
            }
            Ok(Some(_)) | Err(_) => Verdict::Answering,
            Ok(None) => Verdict::Unknown,
        };
        match verdict {
            Verdict::Dead => Some(self.resend().await),
            Verdict::Answering => {
                if let Some(Entry::Server(request)) = self.queue.head_mut() {
                    request.take_resend();
                }
                None
            }
            Verdict::Unknown => None,
        }
    }

    /// The server connection closed or failed (`err`): the head request is sent again if it
    /// may be, else the session ends as before (`on_server_lost`).
    pub(super) async fn server_lost(&mut self, err: Option<std::io::Error>) -> Flow {
        if self.head_resendable() && self.queue.iter().count() == 1 {
            info!(pool = %self.key, error = ?err, "server connection lost before answering: sending the statement again");
            return self.resend().await;
        }
        self.on_server_lost(err)
    }

    /// Writing to the server failed (`write_now`, which cannot wait): when the head request may
    /// be sent again, the loop's own server branches meet the failure next and do it
    /// ([`Self::server_lost`]); else the session ends as before.
    pub(super) fn server_write_failed(&mut self, err: std::io::Error) -> Flow {
        if self.head_resendable() && self.queue.iter().count() == 1 {
            return Flow::Continue;
        }
        self.on_server_lost(Some(err))
    }

    /// Drop the dead server connection and send the head request again on another.
    async fn resend(&mut self) -> Flow {
        let Some(Entry::Server(mut request)) = self.queue.pop() else { return Flow::Continue };
        let Some(mut resend) = request.take_resend() else { return Flow::Continue };
        if let Some(mut lease) = self.server.take() {
            // Dropped here: the pool closes it and frees its slot.
            lease.obj.broken = true;
        }
        if !self.cancel.slot.try_set(None) {
            self.cancel.slot.set(None).await;
        }
        self.to_server.clear();
        self.server_unflushed = false;
        self.passing = None;
        self.shared.traffic.statement_retried();
        if let Err(e) = self.ensure_server().await {
            // Nothing to send it on: the client gets the checkout's error, as for any statement.
            self.refuse(crate::wire::frontend::tag::QUERY, &e);
            self.emit_ready_synth();
            return Flow::Continue;
        }
        self.query_drops_unnamed();
        self.to_server.extend_from_slice(resend.frame.as_bytes());
        resend.left -= 1;
        let again = (resend.left > 0).then_some(resend);
        self.queue.push(Entry::Server(request.resend(again)));
        Flow::Continue
    }
}
