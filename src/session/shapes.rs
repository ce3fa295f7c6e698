//! Result shapes of shared server statements, and the answer Postgres gives when one changes.
//!
//! Directly against Postgres, a prepared statement whose result type changed after it was
//! prepared (an ALTER TABLE between two executions) fails at Bind and Describe with 0A000
//! `cached plan must not change result type` on the connection that prepared it, and drivers
//! that cache row descriptions (asyncpg, pgjdbc) drop theirs and prepare again. Under
//! transaction pooling a client's statement runs on whichever server connection it lands on,
//! where the shared statement may have been prepared before the change or after it. So:
//!
//! - every Parse pgcached sends of a shared statement is followed by its own Describe of it (a
//!   *probe*, answer dropped): the result shape of that server copy
//!   ([`crate::server::prepared::Shape`]);
//! - a client statement keeps the shape it was prepared with: the probe after its own Parse
//!   (always sent to the server: Postgres analyzes every Parse anew), or after a fresh Parse at
//!   its first use when its Parse was answered without a server. At Bind / Describe on a copy
//!   with another shape, Postgres would have refused the statement: pgcached answers 0A000
//!   itself, and fails the server-side transaction the way the error would have;
//! - when the connection lacks the statement (or its copy is in doubt) and the client's shape is
//!   known, the Parse and probe are sent with a Flush and the client's messages wait — the
//!   session is *parked* — until the probe is answered, so the comparison is made before
//!   anything runs. This costs one round trip per statement a connection prepares;
//! - what one connection learns — a new shape from a probe, or a 0A000 from Postgres itself —
//!   goes into a [`ShapeRegistry`] shared by all sessions, so copies on other connections that
//!   predate the change are closed and prepared again rather than failing in turn.
//!
//! Steady state (statements already prepared everywhere, no schema change) costs one atomic
//! load and one integer comparison per Bind.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tracing::debug;

use super::queue::{Entry, Kind, OnFail, Request};
use super::statements::Statement;
use super::{Flow, Session, SessionError};
use crate::server::prepared::{Held, Shape};
use crate::sql::lex::max_param;
use crate::wire::Frame;
use crate::wire::backend::{self, tag};
use crate::wire::build::{self, Severity};
use crate::wire::frame::FrameRef;

/// Shapes remembered across sessions; beyond this the registry starts over (what it forgets
/// only delays detection until Postgres itself reports the change).
const MAX_KNOWN: usize = 100_000;

/// What Postgres says when a prepared statement's result type changed.
const CHANGED_MESSAGE: &str = "cached plan must not change result type";

/// Where Postgres says it: drivers recognize the error by its routine (asyncpg turns it into
/// `InvalidCachedStatementError` and prepares again; pgjdbc likewise), not by the message,
/// which may be translated.
const CHANGED_SOURCE: [(u8, &str); 2] = [(b'F', "plancache.c"), (b'R', "RevalidateCachedQuery")];

/// The latest known result shape of each shared server statement, per database, role and
/// search_path (the key of [`Session::prepared_ok_key`]).
#[derive(Debug, Default)]
pub struct ShapeRegistry {
    /// Bumped whenever a known shape changes: a copy checked at the current generation is
    /// current without a look-up.
    generation: AtomicU64,
    known: Mutex<HashMap<u64, Known>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// The last Describe of this statement anywhere said this.
    Rows(u64),
    /// Postgres refused a copy: its result type changed, to what is not known yet.
    Changed,
}

impl ShapeRegistry {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Known>> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// May a copy described as `rows` still be used? (Yes when nothing is known.)
    fn current(&self, key: u64, rows: u64) -> bool {
        self.known().get(&key).is_none_or(|k| *k == Known::Rows(rows))
    }

    /// Is `rows` the latest shape known?
    fn confirms(&self, key: u64, rows: u64) -> bool {
        self.known().get(&key) == Some(&Known::Rows(rows))
    }

    /// A fresh Describe said `rows`. Returns the generation at which that is current.
    fn learn(&self, key: u64, rows: u64) -> u64 {
        let mut known = self.known();
        match known.get(&key) {
            Some(Known::Rows(r)) if *r == rows => {}
            None => {
                if known.len() >= MAX_KNOWN {
                    known.clear();
                }
                known.insert(key, Known::Rows(rows));
            }
            Some(_) => {
                known.insert(key, Known::Rows(rows));
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.generation()
    }

    /// Postgres refused a copy described as `rows`: copies with that shape are stale.
    fn changed(&self, key: u64, rows: u64) {
        let mut known = self.known();
        if known.get(&key).is_none_or(|k| *k == Known::Rows(rows)) {
            known.insert(key, Known::Changed);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Client messages held back, in order, and the number of answered Syncs they wait for (as
/// well as for every probe in flight).
pub(super) struct Parked {
    pub frames: VecDeque<Frame>,
    pub until: u64,
}

/// What to do with a client's Bind or Describe of a renamed statement.
pub(super) enum Gate {
    /// Send it: the connection has the statement with the client's shape (or a Parse of it is
    /// on its way).
    Go,
    /// Wait: the session is parked until the probe is answered; the message is parked with it.
    Parked,
    /// Answered by the proxy (0A000): nothing to send.
    Done,
}

impl Session {
    /// The state of server statement `server` on this connection, checked against what the
    /// registry knows: a copy that predates a known change is marked stale.
    pub(super) fn held(&mut self, server: &Bytes) -> Held {
        let generation = self.shared.shapes.generation();
        let held = self.server_mut().obj.prepared.get(server);
        let Held::Described { rows, checked } = held else { return held };
        if checked == generation {
            return held;
        }
        let key = self.prepared_ok_key(server);
        let prepared = &mut self.server.as_mut().expect("the session holds a server here").obj.prepared;
        if self.shared.shapes.current(key, rows) {
            prepared.confirm(server, generation);
            Held::Described { rows, checked: generation }
        } else {
            debug!(statement = %String::from_utf8_lossy(server), "prepared statement predates a result type change: preparing it again");
            prepared.mark_stale(server);
            Held::Stale
        }
    }

    /// Send a Parse of `stmt` under its server name (after a Close of the copy this connection
    /// has, if any) and the probe after it. `client`: the client's own Parse under that name
    /// (answer forwarded); `None`: injected (answer dropped).
    pub(super) fn prepare_copy(&mut self, stmt: &Statement, client: Option<(Bytes, Option<Box<Statement>>)>) {
        let server = stmt.server_name.clone();
        let prepared = &mut self.server_mut().obj.prepared;
        prepared.mark_stale(&server);
        let close = prepared.take_stale(&server);
        prepared.insert(server.clone());
        if close {
            build::close(&mut self.to_server, b'S', &server);
            self.queue.push(Entry::Server(Request::hidden(Kind::Close).on_fail(OnFail::KeepStale(server.clone()))));
        }
        self.to_server.extend_from_slice(&stmt.parse);
        let (forward, on_fail) = match client {
            Some((client, replaced)) => (true, OnFail::ForgetStatement { client, server: server.clone(), replaced }),
            None => (false, OnFail::ForgetServerStatement(server.clone())),
        };
        let request = if forward { Request::forward(Kind::Parse) } else { Request::hidden(Kind::Parse) };
        self.queue.push(Entry::Server(request.on_fail(on_fail)));
        build::describe(&mut self.to_server, b'S', &server);
        self.queue.push(Entry::Probe { server, params: None });
    }

    /// Before a Bind (`describe`: a Describe) of the client's renamed statement `stmt` is sent
    /// in `frame`: make sure this connection has the statement with the shape the client knows,
    /// or answer as Postgres would.
    pub(super) fn gate(&mut self, frame: &Frame, stmt: &Statement, describe: bool) -> Gate {
        let server = &stmt.server_name;
        let failed = self.tx.status() == b'E';
        if !describe && let Some(message) = wrong_parameter_count(frame, stmt, failed) {
            // Checked before anything else, failed transaction or not (which may be what the
            // pipeline leads to by the time this arrives): the answer is known here. Like the
            // server's, it fails the transaction (or the pipeline's implicit one).
            let mut out = BytesMut::new();
            build::error_response(&mut out, Severity::Error, "08P01", &message);
            if self.tx.status() == b'E' {
                self.queue.push(Entry::Synth(out.freeze()));
                self.segment.skip();
            } else {
                self.fail_statement(out, false);
            }
            return Gate::Done;
        }
        if failed {
            // Postgres refuses the message for the failed transaction before it looks at the
            // plan; so does a Parse sent for it — but only after the checks that come first.
            // A Parse of it still unanswered may be skipped (as the failed transaction skips
            // most): whether the server has it is known once it is answered.
            let held = self.server_mut().obj.prepared.get(server);
            if held == Held::Pending {
                return self.park(frame);
            }
            if !matches!(held, Held::Described { .. }) {
                if let Some(gate) = self.answer_before_failed_transaction(stmt, describe) {
                    return gate;
                }
                self.prepare_copy(stmt, None);
            }
            return Gate::Go;
        }
        let want = stmt.shape.as_ref().map(|s| s.rows);
        let held = self.held(server);
        if held == Held::Pending && self.queue.pending_ready() > 0 {
            // The copy's Parse may have gone in an earlier segment (a Sync is outstanding): an
            // error there skips it but not this message, which would then name a statement the
            // server never made (26000). Wait for the answer. (In this segment, an error before
            // the Parse skips this message too.)
            return self.park(frame);
        }
        if want.is_some() && !stmt.result_type_fixed() {
            // No shape to hold it to (see `Statement::result_type_fixed`).
            if matches!(held, Held::Absent | Held::Stale) {
                self.prepare_copy(stmt, None);
            }
            return Gate::Go;
        }
        match (held, want) {
            (Held::Described { .. }, None) => {
                // First use of a statement parsed without a server (see `batch`): its shape is
                // that of a fresh Parse — the copy here may predate a change nobody noticed.
                self.prepare_copy(stmt, None);
                Gate::Go
            }
            (Held::Described { rows, .. }, Some(want)) if rows == want => Gate::Go,
            (Held::Described { rows, .. }, Some(_)) => {
                if self.shared.shapes.confirms(self.prepared_ok_key(server), rows) {
                    // This copy is current: the client's statement is the old one.
                    self.refuse_changed_result(stmt, describe)
                } else {
                    // Which of the two is current is not known: ask this connection.
                    self.prepare_copy(stmt, None);
                    self.park(frame)
                }
            }
            (Held::Pending, None) => Gate::Go,
            (Held::Pending, Some(_)) => self.park(frame),
            (Held::Absent | Held::Stale, want) => {
                self.prepare_copy(stmt, None);
                if want.is_some() { self.park(frame) } else { Gate::Go }
            }
        }
    }

    /// In a failed transaction, on a connection without `stmt`, a Parse of it would fail with
    /// 25P02 — where Postgres, which has the statement, describes a statement that returns no
    /// rows (answered, failed transaction or not). That answer, from what the proxy knows of
    /// `stmt`'s shape; `None` when the server's 25P02 is the answer. (A Bind's parameter count,
    /// checked first too, is answered by `gate` in any transaction state.)
    fn answer_before_failed_transaction(&mut self, stmt: &Statement, describe: bool) -> Option<Gate> {
        let shape = stmt.shape.as_ref()?;
        if !describe || Some(shape.rows) != backend::result_shape(tag::NO_DATA, b"") {
            return None;
        }
        let mut out = BytesMut::new();
        out.extend_from_slice(&shape.params);
        build::no_data(&mut out);
        self.queue.push(Entry::Synth(out.freeze()));
        Some(Gate::Done)
    }

    /// Answer the client's Bind / Describe of `stmt` the way Postgres answers a statement whose
    /// result type changed since it was prepared.
    fn refuse_changed_result(&mut self, stmt: &Statement, describe: bool) -> Gate {
        let mut out = BytesMut::new();
        if let Some(shape) = stmt.shape.as_ref().filter(|_| describe) {
            // Describe sends the parameters first; a statement that returned no rows is
            // described without being revalidated.
            out.extend_from_slice(&shape.params);
            if Some(shape.rows) == backend::result_shape(tag::NO_DATA, b"") {
                build::no_data(&mut out);
                self.queue.push(Entry::Synth(out.freeze()));
                return Gate::Done;
            }
        }
        debug!(pool = %self.key, statement = %String::from_utf8_lossy(&stmt.server_name), "result type changed since the client prepared its statement");
        build::error_response_with(&mut out, Severity::Error, "0A000", CHANGED_MESSAGE, &CHANGED_SOURCE);
        self.fail_statement(out, false);
        Gate::Done
    }

    /// Hold `frame` and every client message after it until the probes in flight are answered.
    fn park(&mut self, frame: &Frame) -> Gate {
        self.park_until(frame, 0);
        Gate::Parked
    }

    /// Hold `frame` and every client message after it until the probes in flight are answered
    /// and `syncs` Syncs (or Queries) in all have been.
    pub(super) fn park_until(&mut self, frame: &Frame, syncs: u64) {
        build::flush(&mut self.to_server);
        self.parked = Some(Parked { frames: VecDeque::from([frame.clone()]), until: syncs });
    }

    /// Take no more client messages until `syncs` Syncs (or Queries) in all have been answered
    /// (those already held stay held; see `Session::forward`).
    pub(super) fn hold_client_until(&mut self, syncs: u64) {
        match &mut self.parked {
            Some(parked) => parked.until = parked.until.max(syncs),
            None => self.parked = Some(Parked { frames: VecDeque::new(), until: syncs }),
        }
    }

    /// Is the session waiting for a probe (or an earlier segment's answer) before it takes
    /// more client messages?
    pub(super) fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Hold `frame` too if the session is parked; gives it back otherwise.
    pub(super) fn park_behind(&mut self, frame: Frame) -> Option<Frame> {
        match &mut self.parked {
            Some(parked) => {
                parked.frames.push_back(frame);
                None
            }
            None => Some(frame),
        }
    }

    /// The probes a parked session waited for are answered (or skipped, and then so is the
    /// rest of the batch: the segment is skipping): take the held messages, then the client's.
    pub(super) async fn unpark(&mut self) -> Result<Flow, SessionError> {
        let waits = self.parked.as_ref().is_some_and(|p| p.until > self.syncs_done);
        if !self.is_parked() || self.queue.holds_probe() || waits {
            return Ok(Flow::Continue);
        }
        for frame in self.parked.take().map(|p| p.frames).unwrap_or_default() {
            // Parked again: `process` holds the rest.
            if self.process(frame).await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        if self.is_parked() {
            return Ok(Flow::Continue);
        }
        self.on_client_data().await
    }

    /// A probe was answered with `frame` (RowDescription or NoData).
    pub(super) fn probe_answered(&mut self, server: Bytes, params: Option<Bytes>, frame: FrameRef<'_>) {
        let Some(rows) = backend::result_shape(frame.tag(), frame.body()) else {
            self.probe_lost(&server);
            return;
        };
        let shape = Shape { rows, params: params.unwrap_or_default() };
        let generation = self.shared.shapes.learn(self.prepared_ok_key(&server), rows);
        self.server_mut().obj.prepared.described(&server, shape.clone(), generation);
        self.statements.adopt_all(&server, &shape);
        // A statement whose Close is in flight comes back with its shape if the Close is skipped.
        self.queue.adopt_shape(&server, &shape);
    }

    /// A probe got no answer: if its Parse succeeded, the copy's shape is unknown; it is not
    /// used again.
    pub(super) fn probe_lost(&mut self, server: &Bytes) {
        let prepared = &mut self.server_mut().obj.prepared;
        if prepared.get(server) == Held::Pending {
            prepared.mark_stale(server);
        }
    }

    /// A Bind or Describe of `server` failed with `frame`: a 0A000 means its result type
    /// changed since it was prepared on this connection.
    pub(super) fn revalidation_failed(&mut self, server: &Bytes, frame: FrameRef<'_>) {
        if backend::error_fields(frame.body()).code != "0A000" {
            return;
        }
        debug!(pool = %self.key, statement = %String::from_utf8_lossy(server), "server statement refused: result type changed");
        let key = self.prepared_ok_key(server);
        if let Some(shape) = self.server_mut().obj.prepared.mark_stale(server) {
            self.shared.shapes.changed(key, shape.rows);
        }
    }
}

/// The error Postgres gives a Bind (`frame`) of `stmt` whose parameter formats or values do not
/// match the statement's parameters (known from its shape or, in a `failed` transaction, its
/// text); `None` when they match or the count is not known.
fn wrong_parameter_count(frame: &Frame, stmt: &Statement, failed: bool) -> Option<String> {
    let wanted = match stmt.shape.as_ref() {
        Some(shape) => shape.params.get(5..7).map(|n| u16::from_be_bytes([n[0], n[1]]))?,
        // Not described yet. In a failed transaction the statement cannot be prepared on this
        // connection to find out (the Parse would fail first, with 25P02), so it is counted as
        // Postgres counts it: the types the Parse declared, or the highest `$n` if higher.
        None if failed => {
            let text = std::str::from_utf8(&stmt.query).ok()?;
            let n = max_param(text).max(u32::try_from(stmt.param_types.len()).ok()?);
            u16::try_from(n).ok()?
        }
        None => return None,
    };
    let bind = crate::wire::frontend::bind(frame.body())?;
    // Counts are unsigned 16-bit on the wire, as Postgres reads them.
    let formats = u16::from_be_bytes(bind.params_and_formats.get(..2)?.try_into().ok()?);
    let at = 2 + 2 * usize::from(formats);
    let supplied = u16::from_be_bytes(bind.params_and_formats.get(at..at + 2)?.try_into().ok()?);
    if formats > 1 && formats != supplied {
        Some(format!("bind message has {formats} parameter formats but {supplied} parameters"))
    } else if supplied != wanted {
        let name = String::from_utf8_lossy(bind.statement);
        Some(format!(
            "bind message supplies {supplied} parameters, but prepared statement \"{name}\" requires {wanted}"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_learns_shapes_and_bumps_its_generation_only_on_change() {
        let r = ShapeRegistry::default();
        assert!(r.current(1, 10), "nothing known: any copy may be used");
        assert!(!r.confirms(1, 10));
        assert_eq!(r.learn(1, 10), 0, "first shape: nothing to invalidate");
        assert!(r.current(1, 10) && r.confirms(1, 10));
        assert_eq!(r.learn(1, 10), 0);
        assert_eq!(r.learn(1, 11), 1, "changed: copies checked before must look again");
        assert!(!r.current(1, 10));
        r.changed(1, 10);
        assert_eq!(r.generation(), 1, "a refusal of an older shape changes nothing");
        r.changed(1, 11);
        assert_eq!(r.generation(), 2);
        assert!(!r.current(1, 11) && !r.current(1, 12), "changed to something not known yet");
        assert_eq!(r.learn(1, 12), 3);
        assert!(r.current(1, 12));
    }
}
