//! Every state a session can be in, and the one place each of them changes.
//!
//! A session's state is four small machines, each fed by what the server itself reports
//! (ReadyForQuery status, CommandComplete tags, ErrorResponses), never by guesses from the
//! client's text alone:
//!
//! | machine | states | changed by |
//! |---|---|---|
//! | [`Transaction`] | idle / in a block (with its savepoint stack) / failed, and what the transaction owes at its end | [`Transaction::completed`] (a statement's CommandComplete), [`Transaction::error`], [`Transaction::ready`] (ReadyForQuery) |
//! | [`Segment`] | synced / open (with the cache fill it arms) / skipping to Sync | the client's extended messages and Sync, an error before the client's Sync |
//! | [`Pins`] | why a client keeps its server connection (transaction pooling) | statements sent (LISTEN, PREPARE, temp tables, advisory locks, WITH HOLD cursors) |
//! | [`Lifecycle`] | running / draining (shutdown) / terminating (client left, replies still due) | shutdown, Terminate, client EOF |
//! | [`Private`] | why the session's answers are not cached | temporary objects, untracked settings, unreadable statements (added when sent; `DISCARD` removes) |
//!
//! Beside them the session keeps one flag of the COPY sub-protocol (`copy_in`: the server is
//! in COPY FROM STDIN and the client has not ended it, set by CopyInResponse, cleared by
//! CopyDone / CopyFail or an error), and the reply queue (`queue`) of what it still expects.
//!
//! What a statement does to the session — the transaction control it is, the tables its commit
//! invalidates, the settings it changes — is worked out when it is sent (`effects`) and carried
//! by the queue entry of the request that runs it; it takes effect here when the server reports
//! the statement complete. A statement that fails never takes effect; a statement in a savepoint
//! that is rolled back is undone with it, exactly as in Postgres:
//!
//! - `ROLLBACK TO s` keeps everything logged before `s` (Postgres tags it `ROLLBACK`, like a
//!   whole rollback: the statement's own effects say which it was);
//! - `COMMIT` of a failed transaction is tagged `ROLLBACK` and commits nothing;
//! - an error outside a block fails the implicit transaction (a multi-statement Query, or the
//!   messages before Sync): nothing logged since the last boundary survives its ReadyForQuery.
//!
//! Statements are followed only when they may matter: a session in pure pass-through forwards
//! plain statements without analysing them. Once a statement with effects has gone out, every
//! statement is analysed until the transaction settles ([`Transaction::following`]), so a
//! savepoint the log does not know was created before anything logged, and rolling back to it
//! undoes the whole log.

use std::sync::Arc;

use super::isolation::Isolation;
use super::params::SetEffect;
pub use super::writes::{RowsWritten, Writes};
use crate::cache::Recorder;

/// Transaction control a statement performs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// `BEGIN` / `START TRANSACTION`, with the isolation level it names (`None`: the default)
    /// and whether it names `READ ONLY`.
    Begin {
        isolation: Option<Isolation>,
        read_only: bool,
    },
    Commit,
    Rollback,
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    /// `PREPARE TRANSACTION`: the transaction leaves the session; its settings stay (as at a
    /// commit) and its writes are owed now (they land at `COMMIT PREPARED`, which the proxy
    /// cannot tie to them, so that statement owes its whole database).
    PrepareTransaction,
}

/// What one statement does to the session once the server reports it complete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub control: Option<Control>,
    pub writes: Writes,
    /// Session-level setting changes (`SET LOCAL` and local `set_config` end with the
    /// transaction and are not followed).
    pub sets: Vec<SetEffect>,
    /// `DISCARD ALL` / `DEALLOCATE ALL`: every prepared statement goes (see
    /// `ClientStatements::note_drop_all`).
    pub drops_statements: bool,
    /// `RESET ALL` / `DISCARD ALL`: every setting goes back to the server connection's own
    /// defaults, where the client wants its startup values (see `Session::forward`).
    pub resets_settings: bool,
    /// Custom settings it defines (see `Session::placeholders`): the client's once it ran.
    pub defines: Vec<String>,
    /// It changes settings or the transaction's characteristics (`SET LOCAL`, `SET`,
    /// `set_config`, `SET TRANSACTION`): in a block, later reads may see what no cache key
    /// holds (the proxy follows session settings only from the commit on).
    pub private_reads: bool,
    /// Connection state it leaves behind (see [`Pins`]): what a `DISCARD ALL` before it in
    /// the same pipeline does not undo.
    pub pins: Pins,
}

impl Effects {
    /// Nothing for the session to follow: the statement needs no entry in the log.
    pub fn is_empty(&self) -> bool {
        self.control.is_none()
            && self.writes.is_empty()
            && self.sets.is_empty()
            && !self.drops_statements
            && !self.resets_settings
            && self.defines.is_empty()
            && !self.private_reads
            && self.pins.is_empty()
    }
}

/// What a transaction made permanent when it ended: the caller invalidates `writes` and
/// applies `sets` to the client's and the server's settings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub writes: Writes,
    pub sets: Vec<SetEffect>,
}

impl Settled {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.sets.is_empty()
    }
}

#[derive(Debug)]
struct Savepoint {
    name: String,
    /// Log entries made before it: rolling back to it keeps exactly these.
    mark: usize,
}

/// What the proxy saw of the transaction block open now (see `isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The level its `BEGIN` named (`None`: the session's default).
    pub isolation: Option<Isolation>,
    /// Its `BEGIN` named `READ ONLY`: its reads see `transaction_read_only` on, so they are
    /// keyed apart from other blocks' and autocommit reads (see `caching::settings_digest`).
    pub read_only: bool,
    /// A statement in it changed settings or its characteristics (see `Effects::private_reads`).
    pub private_reads: bool,
}

/// The session's transaction: the status the server last reported, the savepoints open in
/// it, and the effects of the statements completed in it, kept until it ends.
#[derive(Debug)]
pub struct Transaction {
    /// ReadyForQuery status: `I` idle, `T` in a block, `E` in a failed block.
    status: u8,
    /// The block open now, if the proxy saw it begin (`None` also outside a block).
    block: Option<Block>,
    savepoints: Vec<Savepoint>,
    /// Effects of completed statements since the transaction began, in order.
    log: Vec<Arc<Effects>>,
    /// An error since the last boundary: the implicit transaction (or the block, until a
    /// `ROLLBACK TO`) commits nothing.
    failed: bool,
    /// Statements with effects went out since the transaction last settled: follow every
    /// statement until it does (see the module doc).
    following: bool,
}

impl Default for Transaction {
    fn default() -> Transaction {
        Transaction {
            status: b'I',
            block: None,
            savepoints: Vec::new(),
            log: Vec::new(),
            failed: false,
            following: false,
        }
    }
}

impl Transaction {
    /// The status of the last ReadyForQuery (`I`, `T` or `E`).
    pub fn status(&self) -> u8 {
        self.status
    }

    /// No transaction block is open (as of the last ReadyForQuery).
    pub fn is_idle(&self) -> bool {
        self.status == b'I'
    }

    /// The block open now, if the proxy saw it begin.
    pub fn block(&self) -> Option<Block> {
        self.block
    }

    /// Whether a statement completed in this transaction wrote anything.
    pub fn wrote(&self) -> bool {
        self.log.iter().any(|e| !e.writes.is_empty())
    }

    /// Everything the statements completed in this transaction wrote so far.
    pub fn writes(&self) -> Writes {
        let mut writes = Writes::default();
        for e in &self.log {
            writes.merge(&e.writes);
        }
        writes
    }

    /// The proxy answered a `BEGIN` itself (see `held`): the client is in a block that has
    /// not reached Postgres yet.
    pub fn begin_held(&mut self, isolation: Option<Isolation>, read_only: bool) {
        *self = Transaction {
            status: b'T',
            block: Some(Block { isolation, read_only, private_reads: false }),
            following: true,
            ..Transaction::default()
        };
    }

    /// A statement of a block that has not reached Postgres failed (the proxy refused it):
    /// the block is failed, as an error there would leave it.
    pub fn fail_held(&mut self) {
        self.status = b'E';
    }

    /// The proxy answered the `COMMIT` / `ROLLBACK` of a block that never reached Postgres.
    pub fn end_held(&mut self) {
        *self = Transaction::default();
    }

    /// Whether every statement must be analysed and followed right now.
    #[inline(always)]
    pub fn following(&self) -> bool {
        self.following
    }

    /// A statement with effects was sent.
    pub fn sent(&mut self) {
        self.following = true;
    }

    /// The server reported a statement with `effects` complete, with command tag `tag`.
    /// Returns what a commit it performed made permanent.
    pub fn completed(&mut self, effects: &Arc<Effects>, tag: &[u8]) -> Option<Settled> {
        match &effects.control {
            // COMMIT of a failed transaction is a rollback (and says so in its tag).
            Some(Control::Commit) if tag == b"ROLLBACK" => self.discard(),
            Some(Control::Commit | Control::PrepareTransaction) => return Some(self.settle()),
            Some(Control::Rollback) => self.discard(),
            Some(Control::Savepoint(name)) => {
                self.savepoints.push(Savepoint { name: name.clone(), mark: self.log.len() });
            }
            Some(Control::Release(name)) => {
                // Its writes and settings now belong to the enclosing level.
                let at = self.find(name).unwrap_or(0);
                self.savepoints.truncate(at);
            }
            Some(Control::RollbackTo(name)) => {
                self.failed = false;
                match self.find(name) {
                    Some(at) => {
                        self.log.truncate(self.savepoints[at].mark);
                        // The savepoint itself stays, as in Postgres.
                        self.savepoints.truncate(at + 1);
                    }
                    // Unknown: created before anything was followed (see the module doc).
                    None => {
                        self.log.clear();
                        self.savepoints.clear();
                    }
                }
            }
            // A BEGIN inside a block changes nothing (Postgres warns).
            Some(Control::Begin { isolation, read_only }) if self.status == b'I' && self.block.is_none() => {
                self.block = Some(Block { isolation: *isolation, read_only: *read_only, private_reads: false });
            }
            Some(Control::Begin { .. }) | None => {}
        }
        if effects.private_reads
            && let Some(block) = &mut self.block
        {
            block.private_reads = true;
        }
        if !effects.writes.is_empty() || !effects.sets.is_empty() {
            self.log.push(effects.clone());
        }
        None
    }

    /// The server reported an error for a request: the current transaction (implicit, or the
    /// block until a `ROLLBACK TO`) commits nothing logged so far.
    pub fn error(&mut self) {
        self.failed = true;
    }

    /// ReadyForQuery with `status`. `last`: no other request that ends in ReadyForQuery is
    /// outstanding. Returns what the transaction that ended here made permanent.
    pub fn ready(&mut self, status: u8, last: bool) -> Option<Settled> {
        if status == b'I' && self.log.is_empty() && self.savepoints.is_empty() && !self.failed {
            // Nearly every ReadyForQuery: nothing was logged, nothing to settle.
            self.status = status;
            self.block = None;
            self.following &= !last;
            return None;
        }
        self.status = status;
        let settled = match status {
            b'I' => {
                self.block = None;
                let settled = if self.failed {
                    self.discard();
                    None
                } else {
                    Some(self.settle())
                };
                self.failed = false;
                settled
            }
            b'E' => {
                self.failed = true;
                None
            }
            _ => {
                self.failed = false;
                None
            }
        };
        if last && status == b'I' {
            self.following = false;
        }
        settled.filter(|s| !s.is_empty())
    }

    /// The outcome of what was sent is unknown (the server or the client was lost mid-way):
    /// everything the transaction logged may have committed. `in_flight`: the effects of the
    /// requests still outstanding. Returns what must be invalidated; the transaction is over.
    pub fn abandon<'a>(&mut self, in_flight: impl IntoIterator<Item = &'a Effects>) -> Writes {
        let mut writes = Writes::default();
        for e in &self.log {
            writes.merge(&e.writes);
        }
        for e in in_flight {
            writes.merge(&e.writes);
        }
        *self = Transaction::default();
        writes
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.savepoints.iter().rposition(|s| s.name == name)
    }

    /// The transaction ends and commits nothing. A failed one is over too: what completes
    /// after it (`COMMIT; SET …` in one Query, a failed block's `COMMIT` being a rollback) runs
    /// in a transaction of its own.
    fn discard(&mut self) {
        self.log.clear();
        self.savepoints.clear();
        self.failed = false;
    }

    /// Everything logged becomes permanent: fold it, in order, into one [`Settled`].
    fn settle(&mut self) -> Settled {
        let mut settled = Settled::default();
        for e in self.log.drain(..) {
            // Moved, not copied: the log holds the last reference (see `Request::next_effects`).
            let e = Arc::unwrap_or_clone(e);
            settled.writes.absorb(e.writes);
            settled.sets.extend(e.sets);
        }
        self.savepoints.clear();
        self.failed = false;
        settled
    }
}

/// Where the client's extended-protocol stream stands relative to Sync.
#[derive(Debug, Default)]
pub enum Segment {
    /// Everything sent is followed by a Sync (or was a simple Query).
    #[default]
    Synced,
    /// Extended messages went out since the last Sync. `fill` records the answer of the
    /// cacheable batch this segment is; it moves to the Sync's queue entry when the Sync goes
    /// out, and is dropped (releasing any waiters) if the segment ends any other way.
    Open { fill: Option<Box<Recorder>> },
    /// An error ended the segment before its Sync: the client's messages are dropped until
    /// the Sync, as the server does.
    Skipping,
}

impl Segment {
    #[inline]
    pub fn is_synced(&self) -> bool {
        matches!(self, Segment::Synced)
    }

    #[inline]
    pub fn is_skipping(&self) -> bool {
        matches!(self, Segment::Skipping)
    }

    /// An extended message went out: the segment is open (keeping its fill, if any).
    #[inline]
    pub fn open(&mut self) {
        if self.is_synced() {
            *self = Segment::Open { fill: None };
        }
    }

    /// Open a segment that records its answer with `fill` (at a clean point only).
    pub fn open_recording(&mut self, fill: Box<Recorder>) {
        *self = Segment::Open { fill: Some(fill) };
    }

    /// The segment failed: skip to Sync (its fill, if any, is dropped).
    pub fn skip(&mut self) {
        *self = Segment::Skipping;
    }

    /// The Sync went out (or was answered by the proxy): returns the segment's fill.
    #[inline]
    pub fn sync(&mut self) -> Option<Box<Recorder>> {
        match std::mem::take(self) {
            Segment::Open { fill } => fill,
            _ => None,
        }
    }

    /// Drop a fill armed for this segment (the proxy answered the batch itself).
    pub fn disarm(&mut self) {
        if let Segment::Open { fill } = self {
            *fill = None;
        }
    }
}

/// Why a client keeps its server connection for the rest of its session under transaction
/// pooling: state that lives on that connection and nowhere else. A set of reasons; any of them
/// also decides what the connection needs before another client may have it
/// ([`ReleaseAction`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pins(u8);

impl Pins {
    /// A temporary table, view, sequence… (`CREATE TEMP`, `pg_temp.x`).
    pub const TEMP_OBJECTS: Pins = Pins(1);
    /// A statement prepared with SQL `PREPARE`.
    pub const SQL_PREPARED: Pins = Pins(1 << 1);
    /// `LISTEN`: notifications go to the connection that listens.
    pub const LISTEN: Pins = Pins(1 << 2);
    /// A session-level advisory lock (`pg_advisory_lock`, `pg_try_advisory_lock`, shared).
    pub const ADVISORY_LOCK: Pins = Pins(1 << 3);
    /// A cursor `WITH HOLD` that outlives its transaction.
    pub const HOLD_CURSOR: Pins = Pins(1 << 4);
    /// Settings changed where the proxy cannot follow their values (a function's `set_config`,
    /// `SET SESSION AUTHORIZATION`, a computed setting name): they stay where they were set,
    /// as they would on a connection of the client's own.
    pub const UNTRACKED_SETTINGS: Pins = Pins(1 << 5);
    /// Statements prepared under the client's own names while it was pinned (they exist on this
    /// connection only), still there after what unpinned it: parsed after a `DISCARD ALL` in
    /// the same pipeline.
    pub const OWN_NAMES: Pins = Pins(1 << 6);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn add(&mut self, other: Pins) {
        self.0 |= other.0;
    }

    pub fn contains(self, other: Pins) -> bool {
        self.0 & other.0 == other.0
    }

    /// The reasons' names, for logs.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Pins::TEMP_OBJECTS, "temporary objects"),
            (Pins::SQL_PREPARED, "SQL PREPARE"),
            (Pins::LISTEN, "LISTEN"),
            (Pins::ADVISORY_LOCK, "advisory lock"),
            (Pins::HOLD_CURSOR, "WITH HOLD cursor"),
            (Pins::UNTRACKED_SETTINGS, "settings set out of sight"),
            (Pins::OWN_NAMES, "statements under the client's names"),
        ]
        .into_iter()
        .filter(|(p, _)| self.contains(*p))
        .map(|(_, n)| n)
        .collect()
    }
}

/// What a server connection needs before another client may have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseAction {
    /// Nothing: the next client's settings are applied at checkout as usual.
    Reuse,
    /// `SET SESSION AUTHORIZATION DEFAULT; RESET ALL`: settings the proxy could not follow.
    ResetSettings,
    /// `DISCARD ALL`: temporary objects, prepared statements, LISTEN, advisory locks, cursors,
    /// settings — everything a session can leave behind.
    Discard,
    /// Close it: the server is mid-exchange (or its state is otherwise unknown: custom
    /// settings defined under names the proxy could not see, which no reset undefines).
    Close,
}

/// Settings a client changed on a server connection where the proxy could not follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untracked {
    /// None: the proxy knows what the connection holds.
    Nothing,
    /// Values of settings (a function's `set_config`, `SET SESSION AUTHORIZATION`): a reset
    /// undoes them.
    Values,
    /// Custom settings whose names the proxy could not see (a computed `set_config` name, a
    /// function's `SET` or dynamic SQL): Postgres keeps a placeholder once defined, so only a
    /// new connection is clean.
    CustomNames,
}

impl ReleaseAction {
    /// What to do with a server connection given back by a session.
    /// `idle`: nothing outstanding and no transaction open; `ending`: the client is leaving;
    /// `session_mode`: `pool.mode: session`; `untracked`: what the proxy could not follow.
    pub fn decide(idle: bool, ending: bool, session_mode: bool, pins: Pins, untracked: Untracked) -> ReleaseAction {
        if !idle || untracked == Untracked::CustomNames {
            ReleaseAction::Close
        } else if ending && (session_mode || !pins.is_empty()) {
            ReleaseAction::Discard
        } else if untracked == Untracked::Values {
            ReleaseAction::ResetSettings
        } else {
            ReleaseAction::Reuse
        }
    }
}

/// Why a session's answers may not be cached (none: they may). Reasons are added as the
/// session does something that makes its answers private to it, and removed when Postgres
/// says the cause is gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Private(u8);

impl Private {
    /// Temporary objects may shadow the tables other sessions read under the same names.
    pub const TEMP_OBJECTS: Private = Private(1);
    /// Settings changed where the proxy could not see their values (a computed `set_config`,
    /// `SET SESSION AUTHORIZATION`, a function that may set them): the key cannot hold them.
    /// Known again after `RESET ALL` / `DISCARD ALL`.
    pub const UNTRACKED_SETTINGS: Private = Private(1 << 1);
    /// A statement the proxy could not read (not UTF-8, or lexed differently by the server).
    pub const OPAQUE: Private = Private(1 << 2);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn add(&mut self, reason: Private) {
        self.0 |= reason.0;
    }

    pub fn remove(&mut self, reason: Private) {
        self.0 &= !reason.0;
    }

    pub fn contains(self, reason: Private) -> bool {
        self.0 & reason.0 == reason.0
    }
}

/// Where the session is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lifecycle {
    #[default]
    Running,
    /// pgcached is shutting down: no new work; the session ends once its server is given back.
    Draining,
    /// The client sent Terminate (or closed its socket) after messages the server must still
    /// run, as Postgres would: nothing more is read from the client; the session ends when
    /// every reply is in.
    Terminating,
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
