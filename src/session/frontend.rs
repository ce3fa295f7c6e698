//! Client frames: decide where each goes. Extended-protocol messages that start at a clean
//! point are gathered until Sync (see `batch.rs`) so a whole batch can be answered from the
//! cache; everything else is forwarded to the server (taken from the pool if needed) with its
//! expected replies noted in the queue, or answered locally when no server can be had.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tracing::{debug, warn};

use super::catalog_memo::WriteFacts;
use super::effects;
use super::keywords::{may_change_session, words_may_change_session};
use super::queue::{Entry, Kind, Request};
use super::state::{Effects, Lifecycle, Pins};
use super::{Flow, Session, SessionError};
use crate::admin::query_stats::Outcome;
use crate::cache::rowkey::BindValues;
use crate::cache::{Lookup, Recorder, SettingsSetter};
use crate::config::PoolMode;
use crate::pool::PoolError;
use crate::sql::{Analysis, StatementKind, surely_uncached};
use crate::wire::Frame;
use crate::wire::build::{self, Severity};
use crate::wire::frame::take_frame;
use crate::wire::frontend::{self, tag};

impl Session {
    /// Handle every whole frame the client has sent.
    pub(super) async fn on_client_data(&mut self) -> Result<Flow, SessionError> {
        let max = self.shared.config.limits.max_message_size.as_u64() as usize;
        // Parked (see `shapes`): the rest waits in the buffer, which bounds it. So does a
        // client that does not read what it is sent (back-pressure), and one that terminated.
        self.client_held = false;
        while !self.is_parked() && self.lifecycle != Lifecycle::Terminating {
            if self.client_backlogged() {
                self.client_held = !self.client_rbuf.is_empty();
                break;
            }
            let frame = match take_frame(&mut self.client_rbuf, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "client sent a malformed or oversized message");
                    return Ok(self.protocol_violation(&e.to_string()));
                }
            };
            self.tally.message();
            let t = frame.tag();
            let flow = if t == tag::QUERY && self.nothing_before(&frame) {
                // The usual pure pass-through Query: straight to the server, none of the checks
                // below can apply (see `Session::process` and `Session::on_query`).
                self.forward_query(&frame).await?
            } else {
                let Some(frame) = self.gather_quietly(frame) else { continue };
                if self.can_process_held(t) {
                    // Most extended messages of a forwarded batch: no future per frame.
                    self.process_held(&frame)
                } else {
                    self.on_client_frame(frame).await?
                }
            };
            if let tag::QUERY | tag::SYNC = t {
                self.tally.exchange_handled();
            }
            if flow == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        if !self.batch.is_empty() && self.batch_deadline.is_none() {
            // The client stopped before the batch's Sync (a pipeline waiting for an error, or
            // a frame split across reads): it waits a moment for the rest, no longer.
            self.batch_deadline = Some(Instant::now() + super::batch::BATCH_PAUSE);
        }
        self.emit_ready_synth();
        Ok(Flow::Continue)
    }

    async fn on_client_frame(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let t = frame.tag();
        if t == tag::TERMINATE {
            if !self.batch.is_empty() && self.dispatch_batch().await? == Flow::Close {
                return Ok(Flow::Close);
            }
            return Ok(self.terminate(true));
        }
        if self.gathering(t) {
            return self.gather(frame).await;
        }
        if !self.batch.is_empty() {
            // e.g. a simple Query arriving while an extended batch is open.
            if self.dispatch_batch().await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        self.process(frame).await
    }

    /// Handle one frame now (no gathering).
    pub(super) async fn process(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        // Parked (see `shapes`): held, in order, until the proxy's Describe is answered.
        let Some(frame) = self.park_behind(frame) else { return Ok(Flow::Continue) };
        let t = frame.tag();
        if self.segment.is_skipping() {
            if t == tag::SYNC {
                self.segment.sync();
                if self.server.is_some() {
                    self.forward(&frame, Entry::forward(Kind::Sync));
                } else {
                    self.synth_ready();
                }
            }
            return Ok(Flow::Continue);
        }
        if t == tag::QUERY {
            return self.on_query(&frame).await;
        }
        if self.server.is_none() {
            if matches!(t, tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL | tag::FLUSH) {
                // Leftovers of a COPY whose server is gone (Postgres ignores them too), or a
                // Flush with nothing to flush.
                return Ok(Flow::Continue);
            }
            if let Some(flow) = self.get_server(t).await {
                return Ok(flow);
            }
        }
        if t == tag::PARSE {
            return Ok(self.on_parse(&frame).await);
        }
        Ok(self.process_held(&frame))
    }

    /// Whether a Query can be forwarded as it is, right now: a [`Session::plain_query`] with
    /// nothing gathered, parked or being skipped ahead of it.
    fn nothing_before(&self, frame: &Frame) -> bool {
        !self.segment.is_skipping() && self.batch.is_empty() && !self.is_parked() && self.plain_query(frame)
    }

    /// Pure pass-through (no policy to check, no cache to fill or invalidate), no transaction
    /// being followed (see `state`), and a text that cannot set, pin or deallocate anything:
    /// nothing to decode or parse. A Query is one C string filling its body (Postgres refuses
    /// bytes after the NUL), so the scan takes the body without its last byte, unsearched for a
    /// first NUL: at worst it sees more than the text, which can only find more words.
    fn plain_query(&self, frame: &Frame) -> bool {
        self.pure_pass_through()
            && !self.tx.following()
            && frame.body().strip_suffix(b"\0").is_some_and(|text| self.changes_no_session_state(text))
    }

    /// Whether a frame with tag `t` may go straight to [`Session::process_held`] (what
    /// [`Session::process`] would do with it, minus the checks that cannot apply): a server is
    /// held, nothing is gathered or parked, no batch is being skipped, and it is neither a Query,
    /// a Parse nor a Terminate.
    fn can_process_held(&self, t: u8) -> bool {
        !matches!(t, tag::QUERY | tag::PARSE | tag::TERMINATE)
            && self.server.is_some()
            && !self.segment.is_skipping()
            && self.batch.is_empty()
            && !self.is_parked()
            && !self.gathering(t)
    }

    /// Handle a client frame other than Query and Parse while a server is held: none of this
    /// waits.
    fn process_held(&mut self, frame: &Frame) -> Flow {
        let t = frame.tag();
        if matches!(t, tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE) && self.answer_local_unnamed(frame) {
            return Flow::Continue;
        }
        match t {
            tag::BIND => return self.on_bind(frame),
            tag::DESCRIBE => return self.on_describe(frame),
            tag::CLOSE => return self.on_close(frame),
            tag::EXECUTE => {
                self.tally.executes = true;
                self.segment.open();
                let effects = self.portal_effects(frame);
                self.note_drops(effects.as_deref());
                let notice = self.limited.for_execute(frame);
                let entry = match (effects, notice) {
                    (None, None) => Entry::forward(Kind::Execute),
                    (effects, notice) => Entry::Server(
                        Request::forward(Kind::Execute).effects(effects).notices(notice.into_iter().collect()),
                    ),
                };
                self.forward(frame, entry);
            }
            tag::SYNC if self.copy_in => {
                // Ignored by Postgres in copy-in mode: no reply to expect.
                self.to_server.extend_from_slice(frame.as_bytes());
            }
            tag::SYNC => {
                // The segment's fill (if any) now records until this Sync is answered.
                let entry = match self.segment.sync() {
                    None => Entry::forward(Kind::Sync),
                    fill => Entry::Server(Request::forward(Kind::Sync).recording(fill)),
                };
                self.forward(frame, entry);
            }
            tag::COPY_DONE | tag::COPY_FAIL => {
                self.copy_in = false;
                self.forward(frame, Entry::CopyEnd);
            }
            tag::FUNCTION_CALL => self.forward(frame, Entry::forward(Kind::FunctionCall)),
            // Flush, COPY data, and anything unknown (the server answers it as Postgres does).
            _ => self.to_server.extend_from_slice(frame.as_bytes()),
        }
        Flow::Continue
    }

    /// No policy to check and no cache to fill or invalidate: statements matter only for the
    /// session state they may change (see [`may_change_session`]).
    pub(super) fn pure_pass_through(&self) -> bool {
        self.policy.is_none() && !self.shared.cache.enabled()
    }

    /// Whether `text` surely changes nothing the proxy follows about the session: the byte scan
    /// finds none of the words, or (when the session's SQL lexes as the server reads it) none
    /// is where it could act.
    pub(super) fn changes_no_session_state(&self, text: &[u8]) -> bool {
        let quiet = !may_change_session(text)
            || !self.lexing_unreliable() && std::str::from_utf8(text).is_ok_and(|t| !words_may_change_session(t));
        quiet && !self.may_call_state_setter(text)
    }

    /// Take a server for a client message; `Some(flow)` when none could be had (the client has
    /// been answered) or the session must end.
    async fn get_server(&mut self, t: u8) -> Option<Flow> {
        self.get_server_or_stale(t, None).await
    }

    /// [`Self::get_server`] for a cacheable read whose answer `stale` may still be in the
    /// cache past its TTL: served instead of the error when Postgres is unreachable (see `stale`).
    async fn get_server_or_stale(&mut self, t: u8, stale: Option<&crate::cache::CacheKey>) -> Option<Flow> {
        // A block whose BEGIN the proxy answered is a transaction in progress: it may finish.
        if self.lifecycle == Lifecycle::Draining && self.held_begin.is_none() {
            build::error_response(
                &mut self.to_client,
                Severity::Fatal,
                "57P01",
                "terminating connection because pgcached is shutting down",
            );
            return Some(Flow::Close);
        }
        match self.ensure_server().await {
            Ok(()) => None,
            Err(e) if stale.is_some_and(|key| self.serve_stale(&e, key)) => Some(Flow::Continue),
            Err(e) => {
                self.refuse(t, &e);
                Some(Flow::Continue)
            }
        }
    }

    /// Send `frame` to the server and expect `entry`'s answer.
    ///
    /// After a `RESET ALL` / `DISCARD ALL`, the server connection holds its own defaults where
    /// the client wants its startup values: the proxy puts them back once the reset is answered
    /// (see `Session::apply_sets`). Until then, from the Query or Sync that ends the reset's
    /// exchange, the client's next messages wait (one round trip, only for a pipeline behind
    /// a reset), so that they run after the restore, as directly after the reset.
    pub(super) fn forward(&mut self, frame: &Frame, mut entry: Entry) {
        let mut hold = false;
        if let Entry::Server(request) = &mut entry {
            let resets = request.pending_effects().iter().any(|e| e.resets_settings);
            if let Kind::Sync | Kind::Query = request.kind {
                self.syncs_sent += 1;
                if request.forward && self.tally.on && (request.kind == Kind::Query || self.tally.executes) {
                    let query = (request.kind == Kind::Query).then(|| frontend::query_text(frame.body())).flatten();
                    request.stat = Some(self.exchange_mark(query, request.fills()));
                }
                hold = resets || std::mem::take(&mut self.reset_unsynced);
            } else if resets {
                self.reset_unsynced = true;
            }
        }
        self.to_server.extend_from_slice(frame.as_bytes());
        self.queue.push(entry);
        if hold {
            self.hold_client_until(self.syncs_sent);
        }
    }

    async fn on_query(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        let body = frame.body();
        if crate::sql::database_ddl::may_name_database(body) {
            self.vacate_databases(body.strip_suffix(b"\0").unwrap_or(body)).await;
        }
        if self.plain_query(frame) {
            return self.forward_query(frame).await;
        }
        let Some(text) = frontend::query_text(frame.body()) else {
            return Ok(self.protocol_violation("invalid Query message"));
        };
        if self.policy.is_none() && self.cache_usable() && !surely_uncached(text) {
            // Before decoding: an entry exists only for a text that was analyzed (UTF-8).
            if let Some(entry) = self.cached_answer(text, None) {
                self.replay_simple(&entry.frames);
                self.exchange_answered(entry.query.as_ref(), Some(text), Outcome::Hit, entry.rows, entry.frames.len());
                return Ok(Flow::Continue);
            }
        }
        let Ok(text) = std::str::from_utf8(text) else {
            // Not UTF-8 (e.g. a LATIN1 session): nothing to analyze, forward as is.
            return self.forward_query_with(frame, None, None, Vec::new()).await;
        };
        if self.policy.is_some() {
            // Named if it is refused (the analysis is memoized: `check_policy` finds it again).
            self.tally.id = Some(crate::sql::query_id::QueryId::of(&crate::sql::analyze(text)));
        }
        self.resolve_tables(text).await;
        self.look_up_catalog(text).await;
        let verdict = match self.check_policy(text) {
            Ok(v) if self.tally.on => {
                self.tally.id = Some(crate::sql::query_id::QueryId::of(&v.analysis));
                v
            }
            Ok(v) => v,
            Err(refusal) => {
                if !self.hold_refusal_until_settled(frame) {
                    self.refuse_statement(&refusal, true);
                }
                return Ok(Flow::Continue);
            }
        };
        if let Err(refusal) = self.check_cost(text, &verdict).await {
            if !self.hold_refusal_until_settled(frame) {
                self.refuse_statement(&refusal, true);
            }
            return Ok(Flow::Continue);
        }
        if self.answer_deallocate(text) || self.answer_held(&verdict.analysis, text).await {
            return Ok(Flow::Continue);
        }
        let new_text = verdict.rewrite.as_ref().and_then(|r| r.text.clone());
        let rewritten = new_text.as_ref().map(|t| {
            let mut out = BytesMut::new();
            build::query(&mut out, t);
            Frame::from_bytes(out.freeze())
        });
        let sent = rewritten.as_ref().unwrap_or(frame);
        let sent_text = new_text.as_deref().unwrap_or(text);
        let mut fill = None;
        let analysis = verdict.analysis.clone();
        if let Some(s) = self.cacheable_now(&analysis) {
            match self.cache_lookup(sent_text.as_bytes(), s, None).await {
                Lookup::Hit(entry) => {
                    self.notice_if_cut(&verdict.notices, &entry.frames);
                    self.replay_simple(&entry.frames);
                    self.exchange_answered(
                        entry.query.as_ref(),
                        Some(sent_text.as_bytes()),
                        Outcome::Hit,
                        entry.rows,
                        entry.frames.len(),
                    );
                    return Ok(Flow::Continue);
                }
                Lookup::Fill(recorder) => fill = Some(recorder),
                Lookup::Wait(_) | Lookup::Bypass => {}
            }
        }
        let sent = sent.clone();
        let notices = verdict.notices.clone();
        self.forward_query_with(&sent, Some(&verdict.analysis), fill, notices).await
    }

    /// Forward a Query with nothing to follow (see [`Session::plain_query`]).
    async fn forward_query(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        if self.server.is_none()
            && let Some(flow) = self.get_server(tag::QUERY).await
        {
            return Ok(flow);
        }
        self.query_drops_unnamed();
        self.forward(frame, Entry::forward(Kind::Query));
        Ok(Flow::Continue)
    }

    /// A simple Query destroys the unnamed statement (Postgres's `exec_simple_query`): the
    /// client has none now, and neither has the server connection that runs it.
    pub(super) fn query_drops_unnamed(&mut self) {
        self.unnamed_parse = None;
        let id = self.id;
        if let Some(lease) = &mut self.server {
            lease.obj.unnamed_owner = id;
        }
    }

    /// Forward a Query whose statements are `analysis` (`None`: a text the proxy cannot read),
    /// recording its answer with `fill`, with the `notices` due if its results are cut. The
    /// statements are followed once the server is held: what they leave on it is marked there.
    async fn forward_query_with(
        &mut self,
        frame: &Frame,
        analysis: Option<&Analysis>,
        fill: Option<Recorder>,
        notices: Vec<crate::sql::LimitNotice>,
    ) -> Result<Flow, SessionError> {
        let checked_out = self.server.is_none();
        if checked_out && let Some(flow) = self.get_server_or_stale(tag::QUERY, fill.as_ref().map(|f| &f.key)).await {
            // `fill` is dropped: its followers go upstream themselves.
            return Ok(flow);
        }
        let effects = match analysis {
            Some(analysis) => self.follow_statements(analysis, &[], &BindValues::default()),
            None => self.note_opaque_statement(),
        };
        self.query_drops_unnamed();
        self.note_drops(effects.as_deref());
        let resend = analysis.and_then(|a| self.resend_for(frame, a, checked_out));
        let request = Request::forward(Kind::Query)
            .effects(effects)
            .recording(fill.map(Box::new))
            .notices(notices)
            .resend(resend);
        self.forward(frame, Entry::Server(request));
        Ok(Flow::Continue)
    }

    /// What statements about to run change for the session (see `effects`): pins, privacy
    /// and custom settings take effect now; the effects of each statement are returned, to
    /// travel with the request that runs them and take effect when the server reports it
    /// complete. `params`: the text of the Bind parameters (for `set_config($1, $2, false)`).
    pub(super) fn follow_statements(
        &mut self,
        analysis: &Analysis,
        params: &[Option<String>],
        bind: &BindValues<'_>,
    ) -> Option<Box<[Arc<Effects>]>> {
        let unknown_writer = |s: &crate::sql::StatementAnalysis| self.judge_calls(s).may_write;
        let mut plan = effects::plan(analysis, params, bind, self.lexing_unreliable(), &unknown_writer);
        self.private.add(plan.private);
        let calls = self.calls_setting_functions(analysis);
        if plan.untracked_settings || calls.as_ref().is_some_and(|c| c.sets) {
            // A setting the proxy cannot follow (computed set_config, SESSION AUTHORIZATION):
            // it must not leak to the next client of this server, and this session's results
            // can no longer be keyed safely.
            self.settings_untracked();
            if let Some(statements) = plan.statements.as_mut() {
                // Also after a DISCARD ALL that completes before them (see `observe_command`).
                for effects in statements.iter_mut() {
                    Arc::make_mut(effects).pins.add(Pins::UNTRACKED_SETTINGS);
                }
            }
        }
        // Placeholders: the server connection may hold them from now on; the client, once
        // the statement that defines them has run (an error before it skips it).
        match calls.map(|c| c.defines) {
            Some(Some(names)) if !names.is_empty() => {
                self.define_on_server(&names);
                match plan.statements.as_mut() {
                    Some(statements) => {
                        for effects in statements.iter_mut() {
                            Arc::make_mut(effects).defines.extend(names.iter().cloned());
                        }
                    }
                    None => self.defined_by_client(&names),
                }
            }
            Some(None) => self.placeholders_unknown(),
            _ => {}
        }
        if plan.unknown_placeholders {
            self.placeholders_unknown();
        }
        if !plan.placeholders.is_empty() {
            self.define_on_server(&plan.placeholders);
        }
        if !plan.pins.is_empty() && self.mode == PoolMode::Transaction && !self.pins.contains(plan.pins) {
            debug!(pool = %self.key, reasons = ?plan.pins.names(), "pinned to its server connection");
        }
        self.pins.add(plan.pins);
        if plan.statements.is_some() {
            self.tx.sent();
        }
        plan.statements
    }

    /// Statements about to be sent in this segment drop every prepared statement: from here
    /// on, names the client had are not to be counted on (see `ClientStatements`).
    fn note_drops(&mut self, effects: Option<&[Arc<Effects>]>) {
        if effects.is_some_and(|e| e.iter().any(|e| e.drops_statements)) {
            self.statements.note_drop_all(self.syncs_sent);
        }
    }

    /// Look up, before `text` is sent, what the user functions it calls may do to settings
    /// (see `calls_setting_functions`) and what its writes may change (see `invalidate`), so
    /// that the decisions when it runs and commits are made on what the catalog says rather
    /// than on "not looked up yet". Memoized per database: one catalog query per name until DDL.
    pub(super) async fn look_up_catalog(&mut self, text: &str) {
        let Some(catalog) = self.catalog() else { return };
        let analysis = crate::sql::analyze(text);
        super::calls::look_up_calls(&catalog, &analysis, self.shared.cache.enabled()).await;
        for name in analysis.statements.iter().flat_map(|s| s.unknown_functions()) {
            if catalog.may_set_settings_known(name).is_none() {
                // Boxed: a catalog query is a large state machine, rare on this path.
                if let Err(e) = Box::pin(catalog.may_set_settings(name)).await {
                    debug!(error = %e, function = %name, "catalog look-up failed");
                }
            }
        }
        if !self.shared.cache.enabled() {
            return;
        }
        // One statement writing one table, as the last did: its answers are at hand.
        let single = match analysis.statements.as_slice() {
            [s] if s.sequences_written.is_empty() => match s.tables_written.as_slice() {
                [t] => Some((t, s.kind == StatementKind::Write && s.rows.is_some())),
                _ => None,
            },
            _ => None,
        };
        if let Some((t, with_columns)) = single
            && self.write_facts.as_ref().is_some_and(|f| f.hold(&catalog, t, with_columns))
        {
            return;
        }
        let written: Vec<&str> = analysis
            .statements
            .iter()
            .flat_map(|s| s.tables_written.iter().chain(&s.sequences_written))
            .map(|t| t.name.as_str())
            .collect();
        for table in written {
            if catalog.write_closure_known(table).is_none()
                && let Err(e) = Box::pin(catalog.write_closure(table)).await
            {
                debug!(error = %e, %table, "catalog look-up failed");
            }
        }
        // How the rows a write pins compare (see `rowkey`).
        let pinned = analysis.statements.iter().filter(|s| s.kind == StatementKind::Write);
        for relation in pinned.filter_map(|s| s.rows.as_ref()).map(|r| crate::cache::rowkey::relation(&r.table)) {
            if catalog.row_columns_known(&relation).is_none()
                && let Err(e) = Box::pin(catalog.row_columns(&relation)).await
            {
                debug!(error = %e, %relation, "catalog look-up failed");
            }
        }
        if let Some((t, with_columns)) = single {
            self.write_facts = WriteFacts::read(&catalog, t, with_columns);
        }
    }

    /// What the functions a statement calls may do to settings where the proxy cannot see it
    /// (`set_config` inside a user function: `SELECT set_tenant(2)`): change them, and define
    /// which custom ones. Answered from the catalog's memo; a function not looked up yet counts
    /// as one that may do anything, and is looked up meanwhile so its next call is judged by
    /// what it is. `None`: it calls no such function (nothing allocated on that common path).
    fn calls_setting_functions(&self, analysis: &Analysis) -> Option<SettingsSetter> {
        let mut names = analysis.statements.iter().flat_map(|s| s.unknown_functions()).peekable();
        names.peek()?;
        let Some(catalog) = self.catalog() else {
            return Some(SettingsSetter { sets: true, defines: None });
        };
        let mut may = SettingsSetter { sets: false, defines: Some(Vec::new().into()) };
        for name in names {
            match catalog.may_set_settings_known(name) {
                Some(setter) => {
                    may.sets |= setter.sets;
                    may.defines = match (may.defines, setter.defines) {
                        (Some(a), Some(b)) => Some(a.iter().chain(b.iter()).cloned().collect()),
                        _ => None,
                    };
                }
                None => {
                    may = SettingsSetter { sets: true, defines: None };
                    let (catalog, name) = (catalog.clone(), name.to_string());
                    tokio::spawn(async move {
                        if let Err(e) = catalog.may_set_settings(&name).await {
                            debug!(error = %e, function = %name, "catalog look-up failed");
                        }
                    });
                }
            }
        }
        Some(may)
    }

    /// ReadyForQuery from the proxy itself, in queue order.
    fn synth_ready(&mut self) {
        let mut out = BytesMut::new();
        build::ready_for_query(&mut out, self.tx.status());
        self.queue.push(Entry::Synth(out.freeze()));
    }

    /// The proxy could not get a server for this message: answer it the way Postgres would
    /// answer a failing statement, keeping the session usable.
    pub(super) fn refuse(&mut self, t: u8, err: &PoolError) {
        if matches!(err, PoolError::Cancelled) {
            debug!(pool = %self.key, "statement cancelled while it waited for a server connection");
        } else {
            warn!(pool = %self.key, error = %err, "no server connection for a client request");
        }
        let mut out = BytesMut::new();
        build::error_response(&mut out, Severity::Error, err.sqlstate(), &err.to_string());
        self.queue.push(Entry::Synth(out.freeze()));
        self.fail_held();
        match t {
            tag::QUERY | tag::FUNCTION_CALL => self.synth_ready(),
            tag::SYNC => {
                self.segment.sync();
                self.synth_ready();
            }
            _ => self.segment.skip(),
        }
    }

    pub(super) fn protocol_violation(&mut self, message: &str) -> Flow {
        build::error_response(&mut self.to_client, Severity::Fatal, "08P01", &format!("pgcached: {message}"));
        Flow::Close
    }
}
