//! The queue of expected replies: one entry per client message that gets an answer, in order.
//!
//! It tells answers to forward from answers to messages the proxy injected (to drop), and holds
//! the answers the proxy gives itself (to send when their turn comes), so the client sees
//! exactly the sequence Postgres would have sent. After an ErrorResponse in the extended
//! protocol the server skips everything up to Sync; the queue does the same with its entries.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::state::{Effects, Pins};
use crate::cache::Recorder;
use crate::wire::backend::tag;

/// What kind of message an entry answers; decides which server frame completes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
    Query,
    FunctionCall,
}

/// What to undo when the message an entry answers failed or was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnFail {
    Nothing,
    /// A Parse under this server name did not happen: the server does not have it.
    ForgetServerStatement(Bytes),
    /// The client's Parse failed: forget the client's name and the server statement. If it
    /// replaced a statement of that name a `DISCARD ALL` / `DEALLOCATE ALL` earlier in its
    /// segment was to drop, and that did not happen, the name stands for that one again.
    ForgetStatement {
        client: Bytes,
        server: Bytes,
        replaced: Option<Box<super::statements::Statement>>,
    },
    /// The client's Parse under its own name (session mode, or pinned) failed or was skipped:
    /// the name stands for what it stood for before (`replaced`: nothing, when `None`) — unless
    /// a `DISCARD ALL` / `DEALLOCATE ALL` dropped that meanwhile.
    Unreplace {
        client: Bytes,
        replaced: Option<Box<super::statements::Statement>>,
    },
    /// The client's Close of its statement was skipped: the name still stands for `stmt`.
    KeepStatement {
        client: Bytes,
        stmt: Box<super::statements::Statement>,
    },
    /// A Parse under a taken client name, sent as one under the server name `pgcached_taken`:
    /// its error names the client's.
    TakenName(Bytes),
    /// A hidden Close of this stale server statement was skipped: the server still has it.
    KeepStale(Bytes),
    /// The hidden Describe after a Parse of this server statement got no answer: if the Parse
    /// itself succeeded, the statement's shape is unknown, so it is not used again.
    ProbeLost(Bytes),
    /// A Bind or Describe of this renamed server statement: Postgres revalidates it, and a
    /// 0A000 (result type changed) means the statement is stale on this connection. Skipped:
    /// nothing to undo.
    Revalidates(Bytes),
    /// A Query skipped after an error: counts as answered (see `Session::syncs_done`).
    Unanswered,
}

/// A request the server will answer.
#[derive(Debug)]
pub struct Request {
    pub kind: Kind,
    /// Whether the client sees the answer (false: the proxy's own, dropped).
    pub forward: bool,
    pub on_fail: OnFail,
    /// What only some requests carry, boxed so that the usual entry stays small (it is moved
    /// in and out of the queue for every message).
    pub tracked: Option<Box<Tracked>>,
    /// A client's Query or Sync: the exchange it ends, reported at its ReadyForQuery (see
    /// `stats`). Not part of `tracked`: the rows of a Query so marked still pass straight.
    pub stat: Option<Box<super::stats::Mark>>,
}

/// The parts of a [`Request`] the session follows or records.
#[derive(Debug, Default)]
pub struct Tracked {
    /// What the statements it runs do to the session, in order (a Query: one per statement; an
    /// Execute: its portal's), taken into account as the server reports each complete.
    pub effects: Option<Box<[Arc<Effects>]>>,
    /// Statements of `effects` the server reported complete so far.
    pub done: usize,
    /// The recording of this exchange's answer: a Query's own, or (on a Sync) the answer of
    /// the Describe and Execute before it. Ends with the entry: stored at its ReadyForQuery,
    /// dropped (and its stampede followers released) if the entry goes any other way.
    pub fill: Option<Box<Recorder>>,
    /// Notices due when a statement's result was cut at its policy limit (see
    /// `sql::LimitNotice`), and the statements completed so far (CommandCompletes seen).
    pub notices: Vec<crate::sql::LimitNotice>,
    pub completed: usize,
    /// The client's Query, kept while it may be sent again on another server connection
    /// (see `session::retry`): dropped at the first frame of its answer.
    pub resend: Option<super::retry::Resend>,
}

impl Request {
    /// A client request whose answer goes to the client.
    #[inline]
    pub fn forward(kind: Kind) -> Request {
        Request { kind, forward: true, on_fail: OnFail::Nothing, tracked: None, stat: None }
    }

    /// A request of the proxy's own: its answer is dropped.
    #[inline]
    pub fn hidden(kind: Kind) -> Request {
        Request { forward: false, ..Request::forward(kind) }
    }

    #[inline]
    pub fn on_fail(mut self, on_fail: OnFail) -> Request {
        self.on_fail = on_fail;
        self
    }

    #[inline]
    pub fn effects(mut self, effects: Option<Box<[Arc<Effects>]>>) -> Request {
        if effects.is_some() {
            self.tracked.get_or_insert_default().effects = effects;
        }
        self
    }

    #[inline]
    pub fn recording(mut self, fill: Option<Box<Recorder>>) -> Request {
        if fill.is_some() {
            self.tracked.get_or_insert_default().fill = fill;
        }
        self
    }

    #[inline]
    pub fn notices(mut self, notices: Vec<crate::sql::LimitNotice>) -> Request {
        if !notices.is_empty() {
            self.tracked.get_or_insert_default().notices = notices;
        }
        self
    }

    /// May be sent again as `resend` if its server connection dies before answering.
    #[inline]
    pub fn resend(mut self, resend: Option<super::retry::Resend>) -> Request {
        if resend.is_some() {
            self.tracked.get_or_insert_default().resend = resend;
        }
        self
    }

    /// Whether this request may still be sent again (see `session::retry`).
    pub fn resendable(&self) -> bool {
        self.tracked.as_ref().is_some_and(|t| t.resend.is_some())
    }

    /// The copy kept for sending this request again, taken out (no longer resendable). When it
    /// was all the request tracked, the request is plain again: its rows pass straight.
    pub fn take_resend(&mut self) -> Option<super::retry::Resend> {
        let tracked = self.tracked.as_mut()?;
        let resend = tracked.resend.take();
        if tracked.effects.is_none() && tracked.fill.is_none() && tracked.notices.is_empty() {
            self.tracked = None;
        }
        resend
    }

    /// A statement of this request completed with command tag `tag`: the notice due for it, if
    /// its result was cut.
    pub fn notice_due(&mut self, tag: &[u8]) -> Option<String> {
        let tracked = self.tracked.as_deref_mut()?;
        if tracked.notices.is_empty() {
            return None;
        }
        let at = tracked.completed;
        tracked.completed += 1;
        tracked.notices.iter().find(|n| n.statement == at && n.cut(tag)).map(|n| n.text.clone())
    }

    /// The effects of the next statement to complete (and count it as completed).
    pub fn next_effects(&mut self) -> Option<Arc<Effects>> {
        let tracked = self.tracked.as_mut()?;
        let slot = tracked.effects.as_mut()?.get_mut(tracked.done)?;
        tracked.done += 1;
        // Taken out: only the statements still pending are read here from now on
        // (`pending_effects`), and the transaction's log, holding the only reference, moves
        // its writes when it settles instead of copying them.
        static COMPLETED: std::sync::LazyLock<Arc<Effects>> = std::sync::LazyLock::new(Arc::default);
        Some(std::mem::replace(slot, COMPLETED.clone()))
    }

    /// Effects of statements not reported complete yet.
    pub fn pending_effects(&self) -> &[Arc<Effects>] {
        match self.tracked.as_deref() {
            Some(Tracked { effects: Some(e), done, .. }) => &e[(*done).min(e.len())..],
            _ => &[],
        }
    }

    /// Whether this request records its answer for the cache.
    pub fn fills(&self) -> bool {
        self.tracked.as_ref().is_some_and(|t| t.fill.is_some())
    }

    /// The fill this request holds, taken out.
    pub fn take_fill(&mut self) -> Option<Box<Recorder>> {
        self.tracked.as_mut()?.fill.take()
    }

    fn fill_mut(&mut self) -> Option<&mut Recorder> {
        self.tracked.as_mut()?.fill.as_deref_mut()
    }
}

#[derive(Debug)]
pub enum Entry {
    /// The server will answer.
    Server(Request),
    /// The proxy answers with these bytes when the entry reaches the head.
    Synth(Bytes),
    /// The client ended a COPY FROM STDIN here (CopyDone / CopyFail): a boundary, no reply.
    CopyEnd,
    /// The proxy's own Describe of a server statement it just sent a Parse for (answer dropped,
    /// recorded as the statement's result shape; see `shapes`). `params` keeps the
    /// ParameterDescription until the RowDescription / NoData completes it.
    Probe { server: Bytes, params: Option<Bytes> },
}

impl Entry {
    #[inline]
    pub fn forward(kind: Kind) -> Entry {
        Entry::Server(Request::forward(kind))
    }

    /// The kind of the server request this entry waits for, if it waits for one.
    pub fn server_kind(&self) -> Option<Kind> {
        match self {
            Entry::Server(r) => Some(r.kind),
            _ => None,
        }
    }

    #[inline]
    fn records(&self) -> bool {
        matches!(self, Entry::Server(Request { tracked: Some(t), .. }) if t.fill.is_some())
    }
}

/// Where a server frame leaves the head entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More frames belong to the head entry.
    Continue,
    /// The head entry is answered.
    Complete,
    /// The head entry failed (extended protocol): it and everything up to Sync are skipped.
    Fail,
}

pub fn step(kind: Kind, server_tag: u8) -> Step {
    use Kind::*;
    match (kind, server_tag) {
        (Query | FunctionCall | Sync, tag::READY_FOR_QUERY) => Step::Complete,
        // An error at Sync (e.g. a deferred constraint at the implicit commit) still ends in
        // ReadyForQuery, as does any error inside a simple query.
        (Query | FunctionCall | Sync, _) => Step::Continue,
        (_, tag::ERROR_RESPONSE) => Step::Fail,
        (Parse, tag::PARSE_COMPLETE) | (Bind, tag::BIND_COMPLETE) | (Close, tag::CLOSE_COMPLETE) => Step::Complete,
        (Describe, tag::ROW_DESCRIPTION | tag::NO_DATA) => Step::Complete,
        (Execute, tag::COMMAND_COMPLETE | tag::EMPTY_QUERY | tag::PORTAL_SUSPENDED) => Step::Complete,
        _ => Step::Continue,
    }
}

/// Frames that can arrive at any time and belong to no request.
pub fn is_async(server_tag: u8) -> bool {
    matches!(server_tag, tag::NOTICE_RESPONSE | tag::NOTIFICATION | tag::PARAMETER_STATUS)
}

#[derive(Default, Debug)]
pub struct ReplyQueue {
    entries: VecDeque<Entry>,
    /// Entries holding a fill: zero on nearly every exchange, so a forwarded frame needs no
    /// look for a recorder.
    fills: usize,
    /// Bytes of the proxy's own answers waiting in the queue (they count against the client's
    /// back-pressure limit like bytes already in its write buffer).
    synth_bytes: usize,
}

impl ReplyQueue {
    #[inline]
    pub fn push(&mut self, entry: Entry) {
        match &entry {
            Entry::Server(Request { tracked: None, .. }) => {}
            Entry::Synth(bytes) => self.synth_bytes += bytes.len(),
            other => self.fills += usize::from(other.records()),
        }
        self.entries.push_back(entry);
    }

    /// Bytes of the proxy's own answers waiting in the queue.
    #[inline]
    pub fn synth_bytes(&self) -> usize {
        self.synth_bytes
    }

    /// Is some entry recording its answer?
    #[inline]
    pub fn recording(&self) -> bool {
        self.fills > 0
    }

    /// The fill recording the head's answer: the one held by the first Query or Sync at or
    /// after the head (the end of the head's exchange), if it holds one.
    pub fn head_recorder(&mut self) -> Option<&mut Recorder> {
        if self.fills == 0 {
            return None;
        }
        let end = self.entries.iter_mut().find(|e| matches!(e.server_kind(), Some(Kind::Query | Kind::Sync)))?;
        match end {
            Entry::Server(request) => request.fill_mut(),
            _ => None,
        }
    }

    /// Every entry, head first (for what requests in flight may still do).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn head(&self) -> Option<&Entry> {
        self.entries.front()
    }

    pub fn head_mut(&mut self) -> Option<&mut Entry> {
        self.entries.front_mut()
    }

    /// Is a Describe of the proxy's own still unanswered?
    pub fn holds_probe(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Probe { .. }))
    }

    pub fn pop(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.forget(&entry);
        Some(entry)
    }

    /// The entry pushed last (the end of the latest exchange sent).
    pub fn last(&self) -> Option<&Entry> {
        self.entries.back()
    }

    /// The entry pushed last, to change what it tracks (not whether it records).
    pub fn last_mut(&mut self) -> Option<&mut Entry> {
        self.entries.back_mut()
    }

    /// Take out the entry pushed last.
    pub fn pop_last(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_back()?;
        self.forget(&entry);
        Some(entry)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `entry` left the queue: it no longer counts.
    fn forget(&mut self, entry: &Entry) {
        match entry {
            Entry::Server(Request { tracked: None, .. }) => {}
            Entry::Synth(bytes) => self.synth_bytes -= bytes.len(),
            other => self.fills -= usize::from(other.records()),
        }
    }

    /// Drop the head, a forwarded request with nothing to undo, follow or record (the caller
    /// checked: see `Session::passes_straight`). Such an entry owns nothing, so it is let go
    /// without running its drop glue — an out-of-line call per reply on the hot path.
    #[inline]
    pub fn pop_plain(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            match entry {
                Entry::Server(Request { on_fail: OnFail::Nothing, tracked: None, stat: None, .. }) => {
                    std::mem::forget(entry)
                }
                other => self.fills -= usize::from(other.records()),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Is a Synth entry (or COPY boundary) at the head? Checked after every server frame.
    #[inline]
    pub fn synth_at_head(&self) -> bool {
        matches!(self.entries.front(), Some(Entry::Synth(_) | Entry::CopyEnd))
    }

    /// Pop the Synth entries (and COPY boundaries) now at the head, in order.
    pub fn take_ready_synth(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(Entry::Synth(_) | Entry::CopyEnd) = self.entries.front() {
            if let Some(Entry::Synth(bytes)) = self.entries.pop_front() {
                self.synth_bytes -= bytes.len();
                out.push(bytes);
            }
        }
        out
    }

    /// Whether a message went to the server behind the head request (in COPY FROM STDIN: one
    /// Postgres answers with 08P01 and a FATAL, since only copy data may come then).
    pub fn server_messages_behind_head(&self) -> bool {
        self.entries.iter().skip(1).any(|e| matches!(e, Entry::Server(_)))
    }

    /// The head request started a COPY FROM STDIN. Postgres ignores Sync (and Flush) while in
    /// copy-in mode, so Syncs the client sent after the request and before its CopyDone /
    /// CopyFail get no reply: drop their entries. Returns whether the client already ended the
    /// copy (if not, Syncs it sends until then must not be queued either), and how many Syncs
    /// were dropped (the session counts them as answered).
    pub fn start_copy_in(&mut self) -> (bool, u64) {
        let mut i = 1;
        let mut dropped = 0;
        while i < self.entries.len() {
            match self.entries[i] {
                Entry::CopyEnd => return (true, dropped),
                Entry::Server(Request { kind: Kind::Sync, .. }) => {
                    if let Some(removed) = self.entries.remove(i) {
                        self.fills -= usize::from(removed.records());
                        dropped += 1;
                    }
                }
                _ => i += 1,
            }
        }
        (false, dropped)
    }

    /// The head failed: remove it and every entry up to (not including) the next Sync, and
    /// return what must be undone for them.
    /// (Undo in the order returned: last skipped first, so that each undo finds the state its
    /// message left.)
    pub fn fail_until_sync(&mut self) -> Vec<OnFail> {
        let mut undo = Vec::new();
        while let Some(entry) = self.entries.front() {
            if entry.server_kind() == Some(Kind::Sync) {
                break;
            }
            match self.pop() {
                // A Query the proxy sent mid-pipeline (see `Session::fail_statement`) is
                // skipped too: its ReadyForQuery never comes.
                Some(Entry::Server(Request { kind: Kind::Query, .. })) => undo.push(OnFail::Unanswered),
                Some(Entry::Server(Request { on_fail, .. })) if on_fail != OnFail::Nothing => {
                    undo.push(on_fail);
                }
                Some(Entry::Probe { server, .. }) => undo.push(OnFail::ProbeLost(server)),
                _ => {}
            }
        }
        undo.reverse();
        undo
    }

    /// What the statements not yet complete will leave on the connection: the rest of the
    /// head request's and every later one's (see `Effects::pins`).
    pub fn pins_pending(&self) -> Pins {
        let mut pins = Pins::default();
        for entry in &self.entries {
            if let Entry::Server(request) = entry {
                for effects in request.pending_effects() {
                    pins.add(effects.pins);
                }
            }
        }
        pins
    }

    /// Server statements whose Parse is still unanswered (each is followed by its probe).
    pub fn parses_in_flight(&self) -> Vec<Bytes> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Probe { server, .. } => Some(server.clone()),
                _ => None,
            })
            .collect()
    }

    /// A statement kept for the undo of a Close in flight (see [`OnFail::KeepStatement`]) that
    /// runs on server statement `server_name` and has no shape yet takes `shape`.
    pub fn adopt_shape(&mut self, server_name: &[u8], shape: &crate::server::prepared::Shape) {
        for entry in &mut self.entries {
            if let Entry::Server(Request { on_fail: OnFail::KeepStatement { stmt, .. }, .. }) = entry
                && stmt.shape.is_none()
                && stmt.server_name == server_name
            {
                stmt.shape = Some(shape.clone());
            }
        }
    }

    /// Nothing outstanding can change the transaction status or produce results: only Syncs,
    /// Closes and the proxy's own answers — and, outside a transaction block (`in_block`
    /// false), Parses and Describes. In a block their error (a name taken, a statement
    /// unknown, bad SQL) fails the block, and every statement after it gets 25P02 (fuzzer,
    /// seed 190252: a cached read pipelined behind such a Parse was answered).
    pub fn is_quiet(&self, in_block: bool) -> bool {
        self.entries.iter().all(|e| match e {
            Entry::Server(r) => match r.kind {
                Kind::Sync | Kind::Close => true,
                Kind::Parse | Kind::Describe => !in_block,
                _ => false,
            },
            Entry::Synth(_) | Entry::CopyEnd | Entry::Probe { .. } => true,
        })
    }

    /// Requests that end with ReadyForQuery still outstanding.
    pub fn pending_ready(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.server_kind(), Some(Kind::Sync | Kind::Query | Kind::FunctionCall)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_completes_on_its_own_reply() {
        assert_eq!(step(Kind::Parse, b'1'), Step::Complete);
        assert_eq!(step(Kind::Describe, b't'), Step::Continue);
        assert_eq!(step(Kind::Describe, b'n'), Step::Complete);
        assert_eq!(step(Kind::Execute, b'D'), Step::Continue);
        assert_eq!(step(Kind::Execute, b's'), Step::Complete);
        assert_eq!(step(Kind::Execute, b'E'), Step::Fail);
        assert_eq!(step(Kind::Query, b'E'), Step::Continue, "a simple query goes on to ReadyForQuery");
        assert_eq!(step(Kind::Query, b'Z'), Step::Complete);
        assert_eq!(step(Kind::Sync, b'E'), Step::Continue, "an error at commit still ends in ReadyForQuery");
    }

    #[test]
    fn a_failure_skips_to_sync_and_collects_undo_work() {
        let mut q = ReplyQueue::default();
        q.push(Entry::forward(Kind::Bind));
        q.push(Entry::Server(
            Request::hidden(Kind::Parse).on_fail(OnFail::ForgetServerStatement(Bytes::from_static(b"s1"))),
        ));
        q.push(Entry::Synth(Bytes::from_static(b"x")));
        q.push(Entry::forward(Kind::Sync));
        q.push(Entry::forward(Kind::Execute));
        let undo = q.fail_until_sync();
        assert_eq!(undo, vec![OnFail::ForgetServerStatement(Bytes::from_static(b"s1"))]);
        assert_eq!(q.head().and_then(Entry::server_kind), Some(Kind::Sync));
        assert_eq!(q.pending_ready(), 1);
    }

    #[test]
    fn a_parse_or_describe_in_flight_is_quiet_only_outside_a_block() {
        for kind in [Kind::Parse, Kind::Describe] {
            let mut q = ReplyQueue::default();
            q.push(Entry::forward(kind));
            q.push(Entry::forward(Kind::Sync));
            assert!(q.is_quiet(false), "{kind:?} outside a block: its error ends with its Sync");
            assert!(!q.is_quiet(true), "{kind:?} in a block: its error fails the block");
        }
        let mut q = ReplyQueue::default();
        q.push(Entry::forward(Kind::Close));
        q.push(Entry::Synth(Bytes::from_static(b"x")));
        q.push(Entry::forward(Kind::Sync));
        assert!(q.is_quiet(true), "a Close never fails");
        q.push(Entry::forward(Kind::Execute));
        assert!(!q.is_quiet(false));
    }

    #[test]
    fn a_skipped_probe_is_reported_lost() {
        let mut q = ReplyQueue::default();
        q.push(Entry::forward(Kind::Bind));
        q.push(Entry::Probe { server: Bytes::from_static(b"s1"), params: None });
        assert!(q.holds_probe());
        q.push(Entry::forward(Kind::Sync));
        assert_eq!(q.fail_until_sync(), vec![OnFail::ProbeLost(Bytes::from_static(b"s1"))]);
        assert!(!q.holds_probe());
    }

    #[test]
    fn syncs_sent_during_copy_in_expect_no_reply() {
        // tokio-postgres: Bind, Execute, Sync, CopyData…, CopyDone, Sync.
        let mut q = ReplyQueue::default();
        q.push(Entry::forward(Kind::Execute));
        q.push(Entry::forward(Kind::Sync));
        q.push(Entry::CopyEnd);
        q.push(Entry::forward(Kind::Sync));
        assert_eq!(q.start_copy_in(), (true, 1));
        assert_eq!(q.pending_ready(), 1, "only the Sync after CopyDone is answered");
        q.pop();
        assert!(q.take_ready_synth().is_empty());
        assert_eq!(q.head().and_then(Entry::server_kind), Some(Kind::Sync));
    }

    #[test]
    fn synthesized_answers_come_out_when_they_reach_the_head() {
        let mut q = ReplyQueue::default();
        q.push(Entry::Synth(Bytes::from_static(b"a")));
        q.push(Entry::Synth(Bytes::from_static(b"b")));
        q.push(Entry::forward(Kind::Sync));
        q.push(Entry::Synth(Bytes::from_static(b"c")));
        assert_eq!(q.take_ready_synth(), vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert!(q.take_ready_synth().is_empty());
        q.pop();
        assert_eq!(q.take_ready_synth(), vec![Bytes::from_static(b"c")]);
    }
}
