//! Extended-protocol batches that start at a clean point (no transaction, nothing in flight)
//! are gathered until Sync, then either answered whole from the cache — no server involved —
//! or processed message by message as usual (arming a cache fill when the batch is one
//! cacheable statement). Drivers send `Parse?/Bind/Describe?/Execute/Sync` per statement, so
//! gathering adds no round trip: the client waits for Sync's answer anyway.
//!
//! Not every client does: a libpq pipeline may send statements without Sync or Flush and wait
//! for what Postgres sends unasked — an error (flushed at once), a full output buffer. A batch
//! the client stops sending before its Sync therefore goes to the server as it is after
//! [`BATCH_PAUSE`] (it can no longer be answered from the cache: that needs its Sync).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::caching::Execution;
use super::isolation::begin_form;
use super::queue::{Entry, Kind, Request};
use super::statements::Statement;
use super::{Flow, Lifecycle, Session, SessionError};
use crate::admin::query_stats::Outcome;
use crate::cache::{CachedResult, Lookup, Recorder};
use crate::sql::query_id::QueryId;
use crate::wire::Frame;
use crate::wire::build;
use crate::wire::frontend::{self, tag};

/// A batch larger than this is not worth holding back: process it as it comes.
const MAX_GATHERED: usize = 64;
/// Nor is one with a frame larger than this (a Bind of a big value): it goes at once, so a
/// bulk load's frames reach the server as they come — its error reaches a client still
/// writing (asyncpg's `executemany` stops early on it) — and a batch holds at most
/// `MAX_GATHERED` small frames.
const MAX_GATHERED_FRAME: usize = 16 * 1024;

/// How long a batch waits for the rest of its messages once the client has stopped sending
/// (a statement's messages split across reads arrive within microseconds; a pipeline that
/// waits for an error sends nothing more).
pub(super) const BATCH_PAUSE: Duration = Duration::from_millis(2);

/// (name, text, parameter types) of a Parse in a batch.
type BatchParse<'a> = (&'a [u8], &'a [u8], Vec<u32>);

/// What to do with a gathered batch.
enum Plan {
    /// Everything answered by the proxy itself (statements defined or dropped locally).
    Local(Bytes),
    /// Everything answered from the cache: `parses` ParseCompletes, the entry, `describe`
    /// whether its RowDescription was asked for (see [`write_hit`]).
    Hit { entry: Arc<CachedResult>, parses: usize, describe: bool },
    /// Forward, recording the answer; `parses` and `describe` as for `Hit` (for an expired
    /// answer served in its place, see `stale`).
    Fill { recorder: Box<Recorder>, parses: usize, describe: bool },
    /// Forward, uncached.
    Forward,
}

impl Session {
    /// Is `t` to be gathered into the current batch?
    pub(super) fn gathering(&self, t: u8) -> bool {
        let extended = matches!(t, tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE | tag::SYNC);
        extended && !self.segment.is_skipping() && (!self.batch.is_empty() || self.cache_usable())
    }

    /// Gather `frame` right away if it is part of a batch and does not end it; else give it
    /// back. Synchronous, so the frames before a Sync cost no future (an `async` call per frame
    /// copied a state machine of a few KiB each time).
    pub(super) fn gather_quietly(&mut self, frame: Frame) -> Option<Frame> {
        let t = frame.tag();
        if t != tag::SYNC
            && self.batch.len() + 1 < MAX_GATHERED
            && frame.len() <= MAX_GATHERED_FRAME
            && self.gathering(t)
        {
            self.batch.push(frame);
            return None;
        }
        Some(frame)
    }

    pub(super) async fn gather(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let t = frame.tag();
        let big = frame.len() > MAX_GATHERED_FRAME;
        self.batch.push(frame);
        if t == tag::SYNC || big || self.batch.len() >= MAX_GATHERED {
            return self.dispatch_batch().await;
        }
        Ok(Flow::Continue)
    }

    /// [`BATCH_PAUSE`] ran out with the batch still open: it goes to the server as it is.
    pub(super) async fn batch_paused(&mut self) -> Result<Flow, SessionError> {
        self.batch_deadline = None;
        if self.batch.is_empty() || self.is_parked() {
            return Ok(Flow::Continue);
        }
        self.dispatch_batch().await
    }

    /// Answer or process the gathered batch.
    pub(super) async fn dispatch_batch(&mut self) -> Result<Flow, SessionError> {
        self.batch_deadline = None;
        let frames = std::mem::take(&mut self.batch);
        if let Some(head) = self.leading_begin(&frames) {
            let n = head.frames;
            // A block's BEGIN with its first statement (pgjdbc): if that is a hit, the block is
            // held and the whole batch needs no server. Only the cache is asked about the rest:
            // the answers `plan` gives without a server (a held BEGIN, dropped statements) take
            // effect when given, and the batch is not answered so.
            let form = begin_form(head.text());
            self.read_only_ahead = form.is_some_and(|f| f.read_only);
            let plan = self.plan_read(&frames[n..]).await;
            self.read_only_ahead = false;
            match plan {
                Plan::Hit { entry, parses, describe } => {
                    if let Some(tag) = self.hold_begin(head.text()).await {
                        self.exchange_answered(
                            entry.query.as_ref(),
                            None,
                            Outcome::Hit,
                            entry.rows,
                            entry.frames.len(),
                        );
                        self.register_parses(&frames);
                        self.answer_with(entry.frames.len() + 64, |out| {
                            head.answer(out, tag);
                            write_hit(out, &entry, parses, describe, b'T');
                        });
                        self.keep_batch_buffer(frames);
                        return Ok(Flow::Continue);
                    }
                }
                Plan::Fill { recorder, .. } if form.is_some_and(|f| f.holdable && !f.characteristics) => {
                    return self.begin_then_fill(frames, n, recorder).await;
                }
                _ => {}
            }
            return self.process_batch(frames).await;
        }
        match self.plan(&frames).await {
            Plan::Local(reply) => {
                self.register_parses(&frames);
                self.answer(reply);
            }
            Plan::Hit { entry, parses, describe } => {
                self.exchange_answered(entry.query.as_ref(), None, Outcome::Hit, entry.rows, entry.frames.len());
                self.register_parses(&frames);
                let status = self.tx.status();
                self.answer_with(entry.frames.len() + 32, |out| write_hit(out, &entry, parses, describe, status));
            }
            Plan::Fill { recorder, parses, describe } => {
                let resend = self.batch_resend_for(&frames);
                if self.server.is_none() && self.shared.cache.serves_stale() && self.lifecycle != Lifecycle::Draining {
                    // Its server now, so that if none can be had an expired answer may stand in
                    // for the whole batch (see `stale`).
                    if let Err(e) = self.ensure_server().await {
                        if self.serve_stale_batch(&e, &recorder.key, parses, describe) {
                            self.register_parses(&frames);
                            self.keep_batch_buffer(frames);
                            return Ok(Flow::Continue);
                        }
                        // As when its first message finds no server: the rest skips to Sync.
                        self.refuse(frames[0].tag(), &e);
                        return self.process_batch(frames).await;
                    }
                }
                // The segment this batch opens records its answer (see `state::Segment`).
                self.segment.open_recording(recorder);
                let flow = self.process_batch(frames).await?;
                if let Some(resend) = resend
                    && flow == Flow::Continue
                {
                    self.keep_batch_resend(resend);
                }
                return Ok(flow);
            }
            Plan::Forward => return self.process_batch(frames).await,
        }
        self.keep_batch_buffer(frames);
        Ok(Flow::Continue)
    }

    /// A batch `BEGIN …; <cacheable read>; Sync` whose read missed: the BEGIN (one that cannot
    /// fail) goes first with a Sync of the proxy's own — inside the block it begins, a Sync
    /// ends nothing — so that the read's exchange is a segment of its own, recorded by
    /// `recorder` (the BEGIN's answer is not part of it).
    async fn begin_then_fill(
        &mut self,
        mut frames: Vec<Frame>,
        n: usize,
        recorder: Box<Recorder>,
    ) -> Result<Flow, SessionError> {
        let rest = frames.split_off(n);
        for frame in frames {
            if self.process(frame).await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        if self.server.is_none() || self.segment.is_skipping() {
            // No server could be had (the client was answered), or the BEGIN failed: the rest
            // goes the usual way, unrecorded.
            return self.process_batch(rest).await;
        }
        let mut sync = BytesMut::new();
        build::sync(&mut sync);
        self.forward(&Frame::from_bytes(sync.freeze()), Entry::Server(Request::hidden(Kind::Sync)));
        self.segment.sync();
        self.segment.open_recording(recorder);
        self.process_batch(rest).await
    }

    /// Process the frames of a batch one by one, as they would have been without gathering.
    pub(super) async fn process_batch(&mut self, mut frames: Vec<Frame>) -> Result<Flow, SessionError> {
        for frame in frames.drain(..) {
            if self.process(frame).await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        self.keep_batch_buffer(frames);
        Ok(Flow::Continue)
    }

    /// Give a finished batch's buffer back, emptied, so the next batch gathers without
    /// allocating (unless processing it started a new batch meanwhile).
    fn keep_batch_buffer(&mut self, mut frames: Vec<Frame>) {
        if self.batch.is_empty() {
            frames.clear();
            self.batch = frames;
        }
    }

    /// How to answer the batch: by the proxy alone (it only drops or re-prepares statements,
    /// or begins or ends a block that may be held — such an answer takes effect here), from
    /// the cache, recording, or the usual way.
    async fn plan(&mut self, frames: &[Frame]) -> Plan {
        if frames.last().map(Frame::tag) != Some(tag::SYNC) {
            return Plan::Forward;
        }
        if let Some(reply) = self.closes_only(frames) {
            return Plan::Local(reply);
        }
        if let Some(reply) = self.known_parses_only(frames) {
            return Plan::Local(reply);
        }
        if let Some(reply) = self.held_batch(frames).await {
            return Plan::Local(reply);
        }
        self.plan_read(frames).await
    }

    /// Is the batch `Parse* Bind Describe(portal)? Execute(all rows) Sync` of one cacheable
    /// read, and is its answer in the cache? Changes nothing in the session but its statistics'
    /// query id (a fill's recorder takes effect only when its segment opens).
    async fn plan_read(&mut self, frames: &[Frame]) -> Plan {
        if frames.last().map(Frame::tag) != Some(tag::SYNC) {
            return Plan::Forward;
        }
        if !self.cache_usable() {
            return Plan::Forward;
        }
        let mut parses: smallvec::SmallVec<[BatchParse<'_>; 2]> = smallvec::SmallVec::new();
        let mut bind = None;
        let mut describe = false;
        let mut executed = false;
        for f in &frames[..frames.len() - 1] {
            match (f.tag(), bind.is_some(), executed) {
                (tag::PARSE, false, false) => {
                    let Some(p) = frontend::parse(f.body()) else { return Plan::Forward };
                    if !p.name.is_empty() && (!self.renaming() || self.statements.contains(p.name)) {
                        return Plan::Forward;
                    }
                    parses.push((p.name, p.query, p.param_types));
                }
                (tag::BIND, false, false) => bind = Some(f),
                (tag::DESCRIBE, true, false) if !describe => {
                    let Some(d) = frontend::target(f.body()) else { return Plan::Forward };
                    if d.kind != b'P' {
                        return Plan::Forward;
                    }
                    describe = true;
                }
                (tag::EXECUTE, true, false) => {
                    let Some(e) = frontend::execute(f.body()) else { return Plan::Forward };
                    if e.max_rows != 0 {
                        return Plan::Forward; // partial results are never cached
                    }
                    executed = true;
                }
                _ => return Plan::Forward,
            }
        }
        let (Some(bind), true) = (bind, executed) else { return Plan::Forward };
        let Some(b) = frontend::bind(bind.body()) else { return Plan::Forward };
        if !b.portal.is_empty() && !self.tx.is_idle() {
            // In a block a named portal outlives the Sync (until a Close or the block's end):
            // answered from the cache, it would not be on the server for what the client does
            // with it next (fuzzer, seed 210238: a second Bind of the name got BindComplete
            // where Postgres says 42P03).
            return Plan::Forward;
        }
        // A statement parsed earlier: its text and types, held here (the session is borrowed
        // mutably below).
        let known: (Bytes, Vec<u32>, Option<u64>);
        let (text, param_types, shape): (&[u8], &[u32], Option<u64>) =
            match parses.iter().rev().find(|(name, ..)| *name == b.statement) {
                Some((_, query, types)) => (query, types, None),
                None if b.statement.is_empty() => return Plan::Forward,
                None => match self.statements.get(b.statement) {
                    Some(stmt) => {
                        known = (stmt.query.clone(), stmt.param_types.clone(), stmt.shape.as_ref().map(|s| s.rows));
                        (&known.0, &known.1, known.2)
                    }
                    None => return Plan::Forward,
                },
            };
        let exec = Execution { bind_tail: b.params_and_formats, param_types, shape };
        let hit = |entry: Arc<CachedResult>| {
            let answers = !describe || entry.description().is_some();
            if answers { Plan::Hit { entry, parses: parses.len(), describe } } else { Plan::Forward }
        };
        let hit_first = if self.policy.is_none() { self.cached_answer(text, Some(exec)) } else { None };
        // The statement's identity in statistics: a hit's entry holds it (filled under it).
        if self.tally.on && hit_first.as_ref().is_none_or(|e| e.query.is_none()) {
            self.tally.id = QueryId::of_bytes(text);
        }
        if let Some(entry) = hit_first {
            return hit(entry);
        }
        let Ok(text_str) = std::str::from_utf8(text) else { return Plan::Forward };
        // The policy sees every Parse; a statement it refuses or rewrites goes the long way.
        self.resolve_tables(text_str).await;
        let verdict = match self.check_policy(text_str) {
            Ok(v) if v.rewrite.is_none() && v.notices.is_empty() => v,
            _ => return Plan::Forward,
        };
        let Some(s) = self.cacheable_now(&verdict.analysis) else {
            return Plan::Forward;
        };
        match self.cache_lookup(text, s, Some(exec)).await {
            Lookup::Hit(entry) => hit(entry),
            Lookup::Fill(recorder) => Plan::Fill { recorder: Box::new(recorder), parses: parses.len(), describe },
            Lookup::Wait(_) | Lookup::Bypass => Plan::Forward,
        }
    }

    /// Named statements are renamed, no server is held and nothing is open or in flight: a
    /// batch that only defines or drops statements can be answered by the proxy alone.
    fn statements_are_local(&self) -> bool {
        self.renaming()
            && self.server.is_none()
            && self.tx.is_idle()
            && self.queue.is_quiet(false)
            && self.segment.is_synced()
    }

    /// `Close(statement)* Sync` of renamed statements with nothing open: drivers send it when
    /// they drop a statement. Nothing to do on any server, so no server is taken for it.
    fn closes_only(&mut self, frames: &[Frame]) -> Option<Bytes> {
        if !self.statements_are_local() {
            return None;
        }
        let body = &frames[..frames.len() - 1];
        let all_closes = body.iter().all(|f| {
            f.tag() == tag::CLOSE && frontend::target(f.body()).is_some_and(|c| c.kind == b'S' && !c.name.is_empty())
        });
        if !all_closes {
            return None;
        }
        let mut out = BytesMut::new();
        for f in body {
            if let Some(c) = frontend::target(f.body()) {
                self.statements.remove(c.name);
            }
            build::close_complete(&mut out);
        }
        build::ready_for_query(&mut out, b'I');
        Some(out.freeze())
    }

    /// `Parse(named)+ Sync` of statements that already prepared fine for this database, role and
    /// search_path: answered without a server (pgbench -M prepared and libpq's PQprepare send
    /// this synchronously; taking a server for it could deadlock a client thread that holds
    /// others). The server prepares it when the client first binds it.
    fn known_parses_only(&mut self, frames: &[Frame]) -> Option<Bytes> {
        // Table rules need the session's table names resolved first: the long way.
        if !self.statements_are_local() || self.policy.as_ref().is_some_and(|p| p.has_table_rules()) {
            return None;
        }
        let body = &frames[..frames.len() - 1];
        if body.is_empty() || body.iter().any(|f| f.tag() != tag::PARSE) {
            // Most batches: a statement executed. Turned away before anything is allocated.
            return None;
        }
        let mut names = Vec::with_capacity(body.len());
        for f in body {
            if f.tag() != tag::PARSE {
                return None;
            }
            let p = frontend::parse(f.body())?;
            if p.name.is_empty() || self.statements.contains(p.name) || names.iter().any(|(n, _)| *n == p.name) {
                return None;
            }
            let text = std::str::from_utf8(p.query).ok()?;
            match self.check_policy(text) {
                Ok(v) if v.rewrite.is_none() && v.notices.is_empty() => {}
                _ => return None,
            }
            let stmt = Statement::new(p.query, &p.param_types);
            if !self.shared.prepared_ok.contains_key(&self.prepared_ok_key(&stmt.server_name)) {
                return None;
            }
            names.push((p.name, stmt));
        }
        let mut out = BytesMut::new();
        for (name, stmt) in names {
            self.statements.insert(Bytes::copy_from_slice(name), stmt);
            build::parse_complete(&mut out);
        }
        build::ready_for_query(&mut out, b'I');
        Some(out.freeze())
    }

    /// Key of "this statement prepared fine" for this session's database, role and search_path.
    pub(super) fn prepared_ok_key(&self, server_name: &[u8]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        server_name.hash(&mut h);
        self.key.database.hash(&mut h);
        self.key.user.hash(&mut h);
        self.wanted.get("role").hash(&mut h);
        self.wanted.get("search_path").hash(&mut h);
        h.finish()
    }

    /// A batch answered from the cache still defines the statements it parsed.
    fn register_parses(&mut self, frames: &[Frame]) {
        for f in frames.iter().filter(|f| f.tag() == tag::PARSE) {
            let Some(p) = frontend::parse(f.body()) else { continue };
            if p.name.is_empty() {
                // Drivers repeat the same unnamed text: keep the copy already held.
                if self.unnamed_query.as_deref() != Some(p.query) {
                    self.unnamed_query = Some(Bytes::copy_from_slice(p.query));
                }
                self.unnamed_types.clone_from(&p.param_types);
                // The client has this unnamed statement; no server does (see `own_unnamed`).
                self.parse_unnamed_locally(f);
            } else {
                self.statements.insert(Bytes::copy_from_slice(p.name), Statement::new(p.query, &p.param_types));
            }
        }
    }
}

/// The whole answer to a cacheable batch from a hit: a ParseComplete per Parse, BindComplete,
/// the RowDescription if the portal was described (the caller checked the entry has it), the
/// rows, ReadyForQuery.
pub(super) fn write_hit(out: &mut BytesMut, entry: &CachedResult, parses: usize, describe: bool, status: u8) {
    for _ in 0..parses {
        build::parse_complete(out);
    }
    build::bind_complete(out);
    if describe {
        out.extend_from_slice(entry.description().unwrap_or_default());
    }
    out.extend_from_slice(entry.rows());
    build::ready_for_query(out, status);
}
