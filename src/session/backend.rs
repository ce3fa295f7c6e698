//! Server frames: each belongs to the request at the head of the reply queue (or is
//! asynchronous: notices, notifications, parameter reports). Forwarded frames go to the client
//! as received; answers to injected messages are dropped; the proxy's own answers are sent when
//! their turn comes. Along the way the session learns the transaction status (ReadyForQuery),
//! parameter changes (ParameterStatus), fatal errors, statements the server dropped, and the
//! result shapes of statements it prepared (see `shapes`).

use bytes::{Buf, Bytes, BytesMut};
use tracing::{debug, info, warn};

use super::params::{self, SetEffect};
use super::queue::{self, Entry, Kind, OnFail, Request, Step};
use super::state::{Pins, Private, Settled};
use super::{Flow, Session, SessionError};
use crate::wire::backend::{self, tag};
use crate::wire::build::{self, Severity};
use crate::wire::frame::{FrameRef, peek_frame, peek_header, reserve_for_next};

/// Postgres's own limit for a message (1 GiB); a server frame beyond it is corrupt.
const MAX_SERVER_FRAME: usize = 1 << 30;

impl Session {
    /// Handle every whole frame the server has sent, then release the server if its work for
    /// this client is done.
    pub(super) async fn on_server_data(&mut self) -> Result<Flow, SessionError> {
        // A statement that may be sent again, on a connection that died before answering it.
        if let Some(flow) = self.resend_if_dead().await? {
            return Ok(flow);
        }
        // Frames are handled where they lie in the read buffer, which is taken out of the lease
        // meanwhile (the handlers need `&mut self`) and put back with what is left.
        let mut rbuf = std::mem::take(&mut self.server_mut().io.rbuf);
        // The rest of a frame too large to hold whole comes first (see `passing`).
        let mut done = if self.passing.is_some() { self.pass_piece(&rbuf) } else { 0 };
        // Consecutive rows forwarded untouched are copied to the client in one piece.
        let mut rows = done..done;
        let result = loop {
            let frame = match peek_frame(&rbuf[done..], MAX_SERVER_FRAME) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if let Ok(Some((frame_tag, total))) = peek_header(&rbuf[done..], MAX_SERVER_FRAME) {
                        // In order: the rows before it first.
                        self.to_client.extend_from_slice(&rbuf[rows.clone()]);
                        rows = done..done;
                        if self.start_passing(&rbuf[done..], frame_tag, total) {
                            done = rbuf.len();
                            rows = done..done;
                        }
                    }
                    break Ok(());
                }
                Err(e) => break Err(e),
            };
            let at = done;
            done += frame.len();
            // Counted before any ReadyForQuery after it is handled (see `stats`).
            self.tally.server_sent(frame.len(), frame.tag() == tag::DATA_ROW);
            if let Some(completes) = self.passes_straight(frame) {
                if rows.end != at {
                    rows = at..at;
                }
                rows.end = done;
                if completes {
                    self.queue.pop_plain();
                    if self.queue.synth_at_head() {
                        // The proxy's own answer comes next: after what the server said so far.
                        self.to_client.extend_from_slice(&rbuf[rows.clone()]);
                        rows = done..done;
                        self.emit_ready_synth();
                    }
                }
                continue;
            }
            self.to_client.extend_from_slice(&rbuf[rows.clone()]);
            rows = done..done;
            self.on_server_frame(frame);
        };
        self.to_client.extend_from_slice(&rbuf[rows]);
        rbuf.advance(done);
        if self.passing.is_none() {
            reserve_for_next(&mut rbuf);
        }
        let lease = self.server_mut();
        lease.io.rbuf = rbuf;
        if let Err(e) = result {
            lease.obj.broken = true;
            return Err(SessionError::ServerFrame(e));
        }
        // The answer first, the pool's bookkeeping after: the client is waiting for it.
        self.write_client_now()?;
        if self.unpark().await? == Flow::Close {
            return Ok(Flow::Close);
        }
        self.maybe_release().await;
        Ok(Flow::Continue)
    }

    /// Does this frame go to the client as it is, with nothing in it for the proxy? Then it is
    /// copied with its neighbours in one piece — exactly what [`Session::on_server_frame`] would
    /// do with it, minus the bookkeeping. `Some(true)` when it also completes the request at the
    /// head of the queue (e.g. ParseComplete, BindComplete, an Execute's CommandComplete).
    ///
    /// Only for forwarded requests with nothing to undo and no statement effects to follow,
    /// while no answer is being recorded, and only frames the proxy does not follow: not
    /// ReadyForQuery, ErrorResponse, asynchronous messages, COPY, nor the command tags it
    /// follows whatever the request (DISCARD, DEALLOCATE: every tag starting with D takes the
    /// long way).
    #[inline]
    fn passes_straight(&self, frame: FrameRef<'_>) -> Option<bool> {
        let frame_tag = frame.tag();
        let plain = match frame_tag {
            tag::DATA_ROW
            | tag::ROW_DESCRIPTION
            | tag::PARSE_COMPLETE
            | tag::BIND_COMPLETE
            | tag::CLOSE_COMPLETE
            | tag::NO_DATA
            | tag::PARAMETER_DESCRIPTION
            | tag::PORTAL_SUSPENDED
            | tag::EMPTY_QUERY => true,
            tag::COMMAND_COMPLETE => frame.body().first() != Some(&b'D'),
            _ => false,
        };
        if !plain || self.queue.recording() {
            return None;
        }
        match self.queue.head() {
            Some(Entry::Server(Request { kind, forward: true, on_fail: OnFail::Nothing, tracked: None, .. })) => {
                match queue::step(*kind, frame_tag) {
                    Step::Continue => Some(false),
                    Step::Complete => Some(true),
                    Step::Fail => None,
                }
            }
            _ => None,
        }
    }

    /// One server frame: note what it says, then forward it, drop it, or record it.
    fn on_server_frame(&mut self, frame: FrameRef<'_>) {
        self.observe(frame);
        let timeout_error;
        let frame = if frame.tag() == tag::ERROR_RESPONSE && self.cancelled_for_timeout(frame) {
            // Postgres says "due to user request": the user did not ask, the timeout did.
            let mut out = BytesMut::new();
            build::error_response(
                &mut out,
                Severity::Error,
                "57014",
                "canceling statement due to statement timeout (pgcached timeouts.query)",
            );
            timeout_error = out.freeze();
            peek_frame(&timeout_error, usize::MAX).ok().flatten().unwrap_or(frame)
        } else {
            frame
        };
        if self.queue.recording() {
            // The answer being filled: what belongs to its Query, or to its Describe and
            // Execute (earlier requests still in flight are not part of it).
            let head = self.queue.head().and_then(Entry::server_kind);
            if queue::is_async(frame.tag()) || matches!(head, Some(Kind::Query | Kind::Describe | Kind::Execute)) {
                if let Some(recorder) = self.queue.head_recorder() {
                    recorder.record(frame.as_slice());
                }
            }
        }
        if queue::is_async(frame.tag()) {
            self.to_client.extend_from_slice(frame.as_slice());
            return;
        }
        let (kind, forward, on_fail) = match self.queue.head_mut() {
            // Most entries have nothing to undo: no clone (and no reference count) for them.
            Some(Entry::Server(Request { kind, forward, on_fail: OnFail::Nothing, .. })) => {
                (*kind, *forward, OnFail::Nothing)
            }
            Some(Entry::Server(Request { kind, forward, on_fail, .. })) => (*kind, *forward, on_fail.clone()),
            Some(Entry::Probe { params, .. }) => {
                // The proxy's own Describe: nothing of it reaches the client.
                if frame.tag() == tag::PARAMETER_DESCRIPTION {
                    *params = Some(Bytes::copy_from_slice(frame.as_slice()));
                }
                (Kind::Describe, false, OnFail::Nothing)
            }
            _ => {
                // Nothing was asked: an unsolicited message (e.g. a FATAL before the server
                // goes away). Pass it on; the connection will not be reused.
                self.server_mut().obj.broken = true;
                self.to_client.extend_from_slice(frame.as_slice());
                return;
            }
        };
        if frame.tag() == tag::COPY_IN {
            let (ended, ignored_syncs) = self.queue.start_copy_in();
            self.copy_in = !ended;
            // Never answered, yet sent: what waits for the segments before them must not wait.
            self.syncs_done += ignored_syncs;
        }
        match queue::step(kind, frame.tag()) {
            Step::Continue => {
                if forward {
                    self.to_client.extend_from_slice(frame.as_slice());
                }
            }
            Step::Complete => {
                if forward {
                    self.to_client.extend_from_slice(frame.as_slice());
                }
                if let OnFail::ForgetStatement { server, .. } | OnFail::ForgetServerStatement(server) = &on_fail {
                    // This text prepares fine here: later Parse+Sync of it need no server.
                    let key = self.prepared_ok_key(server);
                    self.shared.prepared_ok.insert(key, ());
                }
                match self.queue.pop() {
                    Some(Entry::Probe { server, params }) => self.probe_answered(server, params, frame),
                    Some(Entry::Server(mut request)) => {
                        if let Some(fill) = request.take_fill() {
                            self.finish_fill(*fill);
                        }
                        if frame.tag() == tag::READY_FOR_QUERY {
                            self.exchange_ready(request.stat.take(), frame.body().first().copied().unwrap_or(b'I'));
                        }
                    }
                    _ => {}
                }
                if frame.tag() == tag::READY_FOR_QUERY {
                    self.syncs_done += 1;
                }
            }
            Step::Fail => {
                if self.copy_in && backend::error_fields(frame.body()).code == "08P01" {
                    // Raised while Postgres read the message (see `fatal_due`).
                    self.fatal_due = true;
                }
                self.copy_in = false;
                if let OnFail::Revalidates(server) = &on_fail {
                    self.revalidation_failed(server, frame);
                }
                // The client sees the error even when it is about a message the proxy
                // injected (e.g. a re-Parse that no longer compiles), in its own names.
                let named = match &on_fail {
                    OnFail::TakenName(client) => Some(client),
                    _ => None,
                };
                match self.error_in_client_words(frame, named) {
                    Some(rewritten) => self.to_client.extend_from_slice(&rewritten),
                    None => self.to_client.extend_from_slice(frame.as_slice()),
                }
                for undo in self.queue.fail_until_sync() {
                    self.undo(undo);
                }
                if self.queue.is_empty() {
                    // The client has not sent this batch's Sync yet: the server ignores
                    // everything until it comes, so the proxy drops it too (messages parked
                    // for a probe included: the probe was skipped). Until then the server is
                    // not idle, even if a Sync went before (a COPY ignores Syncs in copy mode).
                    self.segment.skip();
                }
            }
        }
        self.emit_ready_synth();
    }

    /// Whether this ErrorResponse is the cancel the proxy sent for `timeouts.query`.
    fn cancelled_for_timeout(&self, error: FrameRef<'_>) -> bool {
        self.timeout_cancel.is_some() && backend::error_fields(error.body()).code == "57014"
    }

    /// State carried by a server frame, whoever it is for: the transaction's transitions
    /// (see `state`), parameter reports, fatal errors, statements the server dropped.
    fn observe(&mut self, frame: FrameRef<'_>) {
        let body = frame.body();
        match frame.tag() {
            tag::READY_FOR_QUERY => {
                // Before this ReadyForQuery reaches the client: the commit is not acknowledged
                // until the cache has forgotten what it changed.
                let status = backend::ready_status(body).unwrap_or(b'I');
                let last = self.queue.pending_ready() <= 1;
                if let Some(settled) = self.tx.ready(status, last) {
                    self.settle(settled);
                }
                if last && self.shared.config.timeouts.any_session_timeout() {
                    // Idle from now, however long the statement ran.
                    self.last_activity = std::time::Instant::now();
                }
            }
            tag::PARAMETER_STATUS => {
                if let Some((name, value)) = backend::parameter_status(body) {
                    let lease = self.server.as_mut().expect("server frame without a server");
                    lease.obj.params.insert(name.to_string(), value.to_string());
                    if params::is_tracked(name) {
                        self.wanted.set(name, value);
                        lease.obj.dirty.set(name, value);
                    }
                }
            }
            tag::ERROR_RESPONSE => {
                let fields = backend::error_fields(body);
                self.shared.traffic.upstream_error(fields.code.as_bytes());
                let server = self.server.as_ref().map_or(0, |l| l.obj.backend_key.0);
                // The server's own trouble (resources, operator, system) at info; a statement's
                // errors (constraints, syntax, serialization) are the client's, at debug.
                if matches!(fields.code.get(..2), Some("08" | "53" | "57" | "58" | "XX" | "F0")) {
                    info!(pool = %self.key, server_pid = server, code = %fields.code, message = %fields.message, "upstream error");
                } else {
                    debug!(pool = %self.key, server_pid = server, code = %fields.code, message = %fields.message, "upstream error");
                }
                if matches!(fields.severity.as_str(), "FATAL" | "PANIC") {
                    warn!(pool = %self.key, code = %fields.code, message = %fields.message, "server sent a fatal error");
                    let obj = &mut self.server_mut().obj;
                    obj.broken = true;
                    obj.said_fatal = true;
                }
                // The statement failed, and with it its transaction (or the block, until a
                // ROLLBACK TO).
                self.tx.error();
            }
            tag::COMMAND_COMPLETE => {
                let command = backend::command_tag(body).unwrap_or_default();
                if let Some(Entry::Server(request)) = self.queue.head_mut()
                    && request.forward
                    && let Some(text) = request.notice_due(command)
                {
                    // Before the CommandComplete it is about (observed before it is forwarded).
                    build::notice_response(&mut self.to_client, "01000", &text);
                }
                if let Some(Entry::Server(request)) = self.queue.head_mut()
                    && let Some(effects) = request.next_effects()
                {
                    if !effects.defines.is_empty() {
                        self.defined_by_client(&effects.defines);
                        self.defined_on_server(&effects.defines);
                    }
                    if let Some(settled) = self.tx.completed(&effects, command) {
                        self.settle(settled);
                    }
                }
                self.observe_command(command);
            }
            _ => {}
        }
    }

    /// Commands whose completion changes what the server connection holds, whatever request
    /// ran them.
    fn observe_command(&mut self, command: &[u8]) {
        match command {
            b"DISCARD ALL" => {
                // Every statement, temporary object, listener, lock and setting is gone (but
                // statements prepared after it in the same pipeline).
                let later = self.queue.parses_in_flight();
                let obj = &mut self.server_mut().obj;
                obj.prepared.clear_except(&later);
                obj.dirty.clear();
                obj.settings_unknown = false;
                self.statements.dropped(self.syncs_done);
                // What statements sent after it in the same pipeline leave behind stays.
                let later = self.queue.pins_pending();
                self.pins = later;
                if self.statements.any_under_own_name() {
                    self.pins.add(Pins::OWN_NAMES);
                }
                if !later.contains(Pins::TEMP_OBJECTS) {
                    self.private.remove(Private::TEMP_OBJECTS);
                }
                self.private.remove(Private::UNTRACKED_SETTINGS);
                self.apply_sets(vec![SetEffect::ResetAll]);
                if later.contains(Pins::UNTRACKED_SETTINGS) {
                    self.settings_untracked();
                }
            }
            b"DEALLOCATE ALL" => {
                // Every statement on this server is gone, the client's included (but those
                // prepared after it in the same pipeline).
                let later = self.queue.parses_in_flight();
                self.server_mut().obj.prepared.clear_except(&later);
                self.statements.dropped(self.syncs_done);
            }
            b"DISCARD TEMP" | b"DISCARD TEMPORARY" => {
                if self.pins == Pins::TEMP_OBJECTS {
                    self.pins = Pins::default();
                }
                self.private.remove(Private::TEMP_OBJECTS);
            }
            _ => {}
        }
    }

    /// A transaction ended and made `settled` permanent: forget the cached answers it changed,
    /// and carry its settings.
    fn settle(&mut self, settled: Settled) {
        if !settled.writes.is_empty() {
            self.invalidate(&settled.writes);
        }
        if !settled.sets.is_empty() {
            self.apply_sets(settled.sets);
        }
    }

    /// Settings a committed transaction changed: the client wants them wherever it lands, and
    /// the server it holds has them. A RESET returns the client to its startup values (where
    /// the server returns to its own defaults: the difference is put back at once).
    fn apply_sets(&mut self, sets: Vec<SetEffect>) {
        for effect in sets {
            if let Some(lease) = &mut self.server {
                match &effect {
                    SetEffect::Set { name, value } => lease.obj.dirty.set(name, value),
                    SetEffect::Reset { name } => lease.obj.dirty.remove(name),
                    SetEffect::ResetAll => lease.obj.dirty.clear(),
                }
            }
            match effect {
                SetEffect::Set { name, value } => self.wanted.set(&name, &value),
                SetEffect::Reset { name } => match self.startup.get(&name) {
                    Some(value) => {
                        let value = value.to_string();
                        self.wanted.set(&name, &value);
                    }
                    None => self.wanted.remove(&name),
                },
                SetEffect::ResetAll => self.wanted = self.startup.clone(),
            }
        }
        self.resync_settings();
    }

    /// The exchange a fill was recording is over: store it if it is a complete, fresh answer
    /// (armed only where reads may be shared: see `isolation`).
    fn finish_fill(&mut self, recorder: crate::cache::Recorder) {
        let epoch = self.server.as_ref().map(|l| l.obj.defaults_epoch);
        if epoch.is_some_and(|e| e != self.shared.pools.defaults_epoch()) {
            // Answered under login defaults that have changed since (`sql::login_defaults`):
            // a new client's own connection would not answer so.
            self.shared.cache.discard(recorder, crate::cache::Rejected::OldDefaults);
            return;
        }
        // A block that failed meanwhile recorded no answer worth keeping.
        if self.tx.status() != b'E'
            && let Err(why) = self.shared.cache.complete(recorder)
        {
            tracing::debug!(?why, "cache fill rejected");
        }
    }

    /// The client's Parse of `client` did not happen: the name is free again — or, if it
    /// replaced a statement a `DISCARD ALL` earlier in its segment was to drop and that failed
    /// too, it still stands for the old one.
    fn unreplace(&mut self, client: Bytes, replaced: Option<Box<super::statements::Statement>>) {
        self.statements.remove(&client);
        if let Some(old) = replaced.filter(|old| !self.statements.dropped_since(old)) {
            self.keep_statement(client, *old);
        }
    }

    /// `client` still stands for `stmt` (a change of it was skipped). One the server holds
    /// under the client's own name keeps the connection, even if a `DISCARD ALL` that completed
    /// meanwhile unpinned it (it found the name gone).
    fn keep_statement(&mut self, client: Bytes, stmt: super::statements::Statement) {
        if !stmt.is_renamed(&client) {
            self.pins.add(Pins::OWN_NAMES);
        }
        self.statements.restore(client, stmt);
    }

    fn undo(&mut self, undo: OnFail) {
        match undo {
            OnFail::Nothing => {}
            OnFail::ForgetServerStatement(server) => self.server_mut().obj.prepared.forget(&server),
            OnFail::ForgetStatement { client, server, replaced } => {
                self.server_mut().obj.prepared.forget(&server);
                self.unreplace(client, replaced);
            }
            OnFail::Unreplace { client, replaced } => self.unreplace(client, replaced),
            OnFail::KeepStatement { client, stmt } => self.keep_statement(client, *stmt),
            OnFail::KeepStale(server) => self.server_mut().obj.prepared.keep_stale(server),
            OnFail::ProbeLost(server) => self.probe_lost(&server),
            OnFail::Unanswered => self.syncs_done += 1,
            OnFail::Revalidates(_) | OnFail::TakenName(_) => {}
        }
    }
}
