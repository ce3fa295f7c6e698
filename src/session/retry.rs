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
//! a read that cannot write (no function that may write, by the catalog), or an
//! extended-protocol batch `Parse(unnamed)? Bind Describe? Execute Sync` of one cacheable read
//! (a cache miss being filled: cacheable means it writes nothing and reads nothing volatile),
//! sent in autocommit (no block open, none held) on a connection checked out for it, with
//! nothing else in flight or sent after it. It is sent again at most `pool.retries` times, and
//! only while no frame of its answer has arrived: the first frame that is not a
//! connection-level FATAL (SQLSTATE class 08 or 57P0x) ends the chance. Writes and statements
//! inside a transaction are never sent again: their failure is the client's to see, as before.
//! A batch is sent again by processing its messages again from the start (their effects on a
//! server, like a renamed statement prepared there, went with the dead connection); one that
//! defines a named statement is not covered (the client's registry already holds it), nor is
//! pure pass-through (cache and policies off), where statements are not analysed.

use bytes::Bytes;
use tracing::info;

use super::queue::{Entry, Kind, Request};
use super::{Flow, Session, SessionError};
use crate::sql::Analysis;
use crate::wire::Frame;
use crate::wire::backend::{self, tag};
use crate::wire::frame::peek_frame;
use crate::wire::frontend;

/// The copy of a request kept while it may be sent again.
#[derive(Debug)]
pub(super) struct Resend {
    what: Again,
    /// Times it may still be sent again.
    left: u32,
}

/// What is sent again (copies: the originals share the client's read buffer).
#[derive(Debug)]
enum Again {
    /// A simple Query, as sent.
    Query(Frame),
    /// An extended batch, as the client sent it (ending with its Sync).
    Batch(Vec<Frame>),
}

/// A copy of `frame` that holds no part of the client's read buffer.
fn detached(frame: &Frame) -> Frame {
    Frame::from_bytes(Bytes::copy_from_slice(frame.as_bytes()))
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
        Some(Resend { what: Again::Query(detached(frame)), left })
    }

    /// The copy to keep of `frames`, a batch of one cacheable read about to be processed, if it
    /// may be sent again (see the module doc): taken at a clean point, before its server is.
    pub(super) fn batch_resend_for(&self, frames: &[Frame]) -> Option<Resend> {
        let left = self.shared.config.pool.retries;
        let clean = self.server.is_none() && self.queue.is_empty() && self.to_server.is_empty();
        if left == 0 || !clean || !self.tx.is_idle() || self.held_begin.is_some() || self.is_parked() {
            return None;
        }
        let names_a_statement =
            |f: &Frame| f.tag() == frontend::tag::PARSE && frontend::parse(f.body()).is_none_or(|p| !p.name.is_empty());
        if frames.iter().any(names_a_statement) {
            return None;
        }
        Some(Resend { what: Again::Batch(frames.iter().map(detached).collect()), left })
    }

    /// The batch of `resend` was processed: its Sync, now the last request in the queue,
    /// carries the copy — if the batch went to a server checked out for it and nothing waits
    /// behind a probe of the proxy's own.
    pub(super) fn keep_batch_resend(&mut self, resend: Resend) {
        if self.server.is_none() || self.is_parked() || self.queue.len() < 2 {
            return;
        }
        if let Some(Entry::Server(sync)) = self.queue.last_mut()
            && sync.kind == Kind::Sync
            && sync.forward
        {
            let request = std::mem::replace(sync, Request::forward(Kind::Sync));
            *sync = request.resend(Some(resend));
        }
    }

    /// Whether the latest request sent may still be sent again: a Query alone in the queue, or
    /// a batch's Sync with nothing sent after it (everything before it is the batch's own).
    fn resend_pending(&self) -> bool {
        match self.queue.last() {
            Some(Entry::Server(r)) if r.resendable() => r.kind == Kind::Sync || self.queue.len() == 1,
            _ => false,
        }
    }

    /// Before the server's frames are handled: if the head request may be sent again and the
    /// server's first frame is a connection-level FATAL, send it elsewhere (`Some`: handled);
    /// if an answer began, it may not be sent again any more.
    pub(super) async fn resend_if_dead(&mut self) -> Result<Option<Flow>, SessionError> {
        if !self.resend_pending() {
            return Ok(None);
        }
        let Some(server) = self.server.as_ref() else { return Ok(None) };
        let rbuf = &server.io.rbuf;
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
            Verdict::Dead => self.resend().await.map(Some),
            Verdict::Answering => {
                if let Some(Entry::Server(request)) = self.queue.last_mut() {
                    request.take_resend();
                }
                Ok(None)
            }
            Verdict::Unknown => Ok(None),
        }
    }

    /// The server connection closed or failed (`err`): the head request is sent again if it
    /// may be, else the session ends as before (`on_server_lost`).
    pub(super) async fn server_lost(&mut self, err: Option<std::io::Error>) -> Result<Flow, SessionError> {
        if self.resend_pending() {
            info!(pool = %self.key, error = ?err, "server connection lost before answering: sending the statement again");
            return self.resend().await;
        }
        Ok(self.on_server_lost(err))
    }

    /// Writing to the server failed (`write_now`, which cannot wait): when the head request may
    /// be sent again, the loop's own server branches meet the failure next and do it
    /// ([`Self::server_lost`]); else the session ends as before.
    pub(super) fn server_write_failed(&mut self, err: std::io::Error) -> Flow {
        if self.resend_pending() {
            return Flow::Continue;
        }
        self.on_server_lost(Some(err))
    }

    /// Drop the dead server connection and send the latest request again on another.
    async fn resend(&mut self) -> Result<Flow, SessionError> {
        let Some(Entry::Server(mut request)) = self.queue.pop_last() else { return Ok(Flow::Continue) };
        let Some(Resend { what, left }) = request.take_resend() else { return Ok(Flow::Continue) };
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
        let left = left - 1;
        match what {
            Again::Query(frame) => {
                if let Err(e) = self.ensure_server().await {
                    // Nothing to send it on: the client gets the checkout's error, as for any statement.
                    self.refuse(frontend::tag::QUERY, &e);
                    self.emit_ready_synth();
                    return Ok(Flow::Continue);
                }
                self.query_drops_unnamed();
                self.to_server.extend_from_slice(frame.as_bytes());
                let again = (left > 0).then_some(Resend { what: Again::Query(frame), left });
                self.queue.push(Entry::Server(request.resend(again)));
                Ok(Flow::Continue)
            }
            Again::Batch(frames) => self.resend_batch(request, frames, left).await,
        }
    }

    /// Process a batch again from its first message, on another server connection. `sync`:
    /// its Sync's request, taken out of the queue — its recording and its statistics mark go
    /// on with the batch; everything else in the queue was the batch's and is dropped with it.
    async fn resend_batch(&mut self, mut sync: Request, frames: Vec<Frame>, left: u32) -> Result<Flow, SessionError> {
        // Each Query or Sync sent counted in `syncs_sent`; none will be answered now.
        self.syncs_sent -= 1;
        while let Some(entry) = self.queue.pop() {
            if matches!(entry.server_kind(), Some(Kind::Query | Kind::Sync)) {
                self.syncs_sent -= 1;
            }
        }
        let fill = sync.take_fill();
        let stat = sync.stat.take();
        let first = frames.first().map_or(frontend::tag::PARSE, Frame::tag);
        if let Err(e) = self.ensure_server().await {
            // As when the batch's first message found no server: an error, then the rest is
            // skipped to its Sync, which is answered with ReadyForQuery.
            self.refuse(first, &e);
            return self.process_batch(frames).await;
        }
        if let Some(fill) = fill {
            self.segment.open_recording(fill);
        }
        let again = (left > 0).then(|| frames.iter().map(detached).collect());
        let flow = self.process_batch(frames).await?;
        if let Some(Entry::Server(new_sync)) = self.queue.last_mut()
            && new_sync.kind == Kind::Sync
        {
            if stat.is_some() {
                new_sync.stat = stat;
            }
            if let Some(frames) = again
                && flow == Flow::Continue
            {
                let resend = Resend { what: Again::Batch(frames), left };
                self.keep_batch_resend(resend);
            }
        }
        Ok(flow)
    }
}
