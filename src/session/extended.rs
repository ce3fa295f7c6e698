//! Extended-protocol messages that name statements: Parse (checked against the policy, LIMIT
//! applied, named statements renamed to shared server statements in transaction mode), Bind and
//! Describe (re-preparing on a server that lacks the statement, with the result-shape check of
//! `shapes`), Close (answered locally for a renamed statement), and SQL `DEALLOCATE` of a
//! renamed statement.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::keywords::may_change_session;
use super::queue::{Entry, Kind, OnFail, Request};
use super::shapes::Gate;
use super::state::Effects;
use super::statements::Statement;
use super::{Flow, Session};
use crate::cache::rowkey::BindValues;
use crate::config::PoolMode;
use crate::wire::Frame;
use crate::wire::build;
use crate::wire::frame::FrameRef;
use crate::wire::frontend::{self, tag};

impl Session {
    /// Are named statements renamed to shared server statements? (Transaction mode: the next
    /// transaction may run on a connection that never saw the client's Parse.)
    pub(super) fn renaming(&self) -> bool {
        self.mode == PoolMode::Transaction && self.pins.is_empty()
    }

    pub(super) async fn on_parse(&mut self, frame: &Frame) -> Flow {
        let Some(p) = frontend::parse(frame.body()) else {
            return self.protocol_violation("invalid Parse message");
        };
        if self.tally.on {
            self.tally.id = crate::sql::query_id::QueryId::of_bytes(p.query);
        }
        self.segment.open();
        if crate::sql::database_ddl::may_name_database(p.query) {
            self.vacate_databases(p.query).await;
        }
        if p.name.is_empty() && self.pure_pass_through() && !self.tx.following() && self.is_plain_parse(frame, p.query)
        {
            // Nothing to check, rewrite, follow or invalidate later: forward, remember no text
            // (its Bind then has no text to look at either).
            self.local_unnamed = None;
            self.unnamed_query = None;
            self.forward(frame, Entry::forward(Kind::Parse));
            return Flow::Continue;
        }
        if self.wait_for_name(frame, p.name) {
            return Flow::Continue;
        }
        // Every Parse is checked, and a LIMIT rewrite applies to what the server prepares.
        let mut query = Bytes::copy_from_slice(p.query);
        let mut notice = None;
        if let Ok(text) = std::str::from_utf8(p.query) {
            self.look_up_catalog(text).await;
            if self.shared.cache.enabled() && !self.cache_usable() {
                // Not gathered into a batch (see `batch`): a read is counted here, once per
                // Parse, if the session or its transaction keeps it from the cache.
                self.cacheable_now(&crate::sql::analyze(text));
            }
        }
        if let Some(text) = std::str::from_utf8(p.query).ok().filter(|_| self.policy.is_some()) {
            self.resolve_tables(text).await;
            match self.check_policy(text) {
                Ok(verdict) => {
                    if let Err(refusal) = self.check_cost(text, &verdict).await {
                        self.refuse_statement(&refusal, false);
                        return Flow::Continue;
                    }
                    if let Some(text) = verdict.rewrite.as_ref().and_then(|r| r.text.clone()) {
                        query = Bytes::from(text);
                    }
                    notice = verdict.notices.into_iter().next();
                }
                Err(refusal) => {
                    self.refuse_statement(&refusal, false);
                    return Flow::Continue;
                }
            }
        }
        let rewritten = query != p.query;
        if let Some(notice) = notice {
            self.limited.note(query.clone(), notice);
        }
        let name = Bytes::copy_from_slice(p.name);
        if p.name.is_empty() {
            self.local_unnamed = std::str::from_utf8(&query).ok().and_then(|t| self.deallocate_target(t));
            if self.local_unnamed.is_some() {
                let mut out = BytesMut::new();
                build::parse_complete(&mut out);
                self.queue.push(Entry::Synth(out.freeze()));
                return Flow::Continue;
            }
        }
        // A DISCARD ALL / DEALLOCATE ALL earlier in this segment frees the name (or, failing,
        // skips this Parse).
        let replaced = self.statements.dropped_in_segment(p.name, self.syncs_sent);
        let replaced = if replaced { self.statements.remove(p.name).map(Box::new) } else { None };
        let taken_by_renamed = self.statements.get(p.name).is_some_and(|s| s.is_renamed(p.name));
        if p.name.is_empty() || !(self.renaming() || taken_by_renamed) {
            let mut entry = Entry::forward(Kind::Parse);
            if p.name.is_empty() {
                self.unnamed_query = Some(query.clone());
                self.unnamed_types = p.param_types.clone();
            } else {
                // Session mode (or pinned): the client's name is the server's. If the Parse
                // fails there (the name is taken: 42P05) or is skipped, the name keeps what it
                // stood for — the proxy keys cached answers by the text it says it runs.
                let replaced = replaced.or_else(|| self.statements.get(p.name).cloned().map(Box::new));
                // Until it is answered, later segments' uses of the name wait (`wait_for_name`):
                // the undo restores what the name had when it was sent.
                let undo = OnFail::Unreplace { client: name.clone(), replaced };
                entry = Entry::Server(Request::forward(Kind::Parse).on_fail(undo));
                self.statements.note_change(p.name, self.syncs_sent, self.syncs_done);
                self.statements.insert(name, Statement::under_own_name(p.name, &query, &p.param_types));
            }
            let sent = if rewritten {
                let mut out = BytesMut::new();
                build::parse(&mut out, p.name, &query, &p.param_types);
                Frame::from_bytes(out.freeze())
            } else {
                frame.clone()
            };
            if p.name.is_empty() {
                self.parse_unnamed(&sent, false);
            }
            self.forward(&sent, entry);
            return Flow::Continue;
        }
        if self.statements.contains(p.name) {
            // Taken (see the in-flight check above): Postgres refuses it — but only after the
            // checks that come first (syntax, failed transaction, analysis), and only if no
            // earlier error skips it. The server decides, on a name it surely holds.
            self.parse_under_taken_name(p.name, &query, &p.param_types);
            return Flow::Continue;
        }
        let mut stmt = Statement::new(&query, &p.param_types);
        stmt.seq = self.syncs_sent;
        self.statements.note_change(p.name, self.syncs_sent, self.syncs_done);
        // Prepared afresh even if this connection holds it: a copy from before a schema change
        // would give the client the old result type (Postgres analyzes every Parse anew).
        self.statements.insert(name.clone(), stmt.clone());
        self.prepare_copy(&stmt, Some((name, replaced)));
        Flow::Continue
    }

    /// Whether `frame`, which uses the client's statement `name`, must wait (and is parked):
    /// a Parse or Close of that name in an earlier segment is unanswered, and if an error
    /// skipped it, the name is not what the proxy took it to be.
    fn wait_for_name(&mut self, frame: &Frame, name: &[u8]) -> bool {
        if name.is_empty() {
            return false;
        }
        match self.statements.change_in_flight(name, self.syncs_done, self.syncs_sent) {
            Some(seq) => {
                self.park_until(frame, seq + 1);
                true
            }
            None => false,
        }
    }

    /// A Parse under a client name that is taken: sent to the server under a name the server
    /// holds at that point (an empty statement, which even a failed transaction accepts), so it
    /// fails exactly as Postgres would fail it — a syntax error, 25P02 or an analysis error
    /// before 42P05 — and the failure skips the segment and aborts the transaction as there.
    fn parse_under_taken_name(&mut self, client: &[u8], query: &[u8], param_types: &[u32]) {
        const TAKEN: &[u8] = b"pgcached_taken";
        build::close(&mut self.to_server, b'S', TAKEN);
        self.queue.push(Entry::Server(Request::hidden(Kind::Close)));
        build::parse(&mut self.to_server, TAKEN, b"", &[]);
        self.queue.push(Entry::Server(Request::hidden(Kind::Parse)));
        build::parse(&mut self.to_server, TAKEN, query, param_types);
        let on_fail = OnFail::TakenName(Bytes::copy_from_slice(client));
        self.queue.push(Entry::Server(Request::forward(Kind::Parse).on_fail(on_fail)));
    }

    /// Whether an unnamed Parse's text can change no session state (see `may_change_session`);
    /// if so it is now the client's unnamed statement. Drivers send the same Parse over and
    /// over: the client's last one remembers the answer.
    fn is_plain_parse(&mut self, frame: &Frame, text: &[u8]) -> bool {
        match &self.unnamed_parse {
            Some(held) if held.frame.as_bytes() == frame.as_bytes() => {
                if !held.plain {
                    return false;
                }
            }
            _ => {
                if may_change_session(text) || self.may_call_state_setter(text) {
                    return false;
                }
                self.remember_unnamed(frame, true);
            }
        }
        if let Some(lease) = &mut self.server {
            lease.obj.unnamed_owner = self.id;
        }
        true
    }

    pub(super) fn on_bind(&mut self, frame: &Frame) -> Flow {
        if self.pure_pass_through()
            && self.unnamed_query.is_none()
            && !self.tx.following()
            && frontend::bind_is_unnamed(frame.body())
        {
            // The unnamed statement's text needs no following (see `on_parse`), and nothing
            // is checked or capped: nothing in the Bind to look at. A malformed one is the
            // server's to refuse, as it would be without pgcached.
            self.segment.open();
            if !self.portals.is_empty() {
                self.bind_portal(b"", None);
            }
            self.own_unnamed();
            self.forward(frame, Entry::forward(Kind::Bind));
            return Flow::Continue;
        }
        let Some(b) = frontend::bind(frame.body()) else {
            return self.protocol_violation("invalid Bind message");
        };
        if self.wait_for_name(frame, b.statement) {
            return Flow::Continue;
        }
        self.segment.open();
        // A name a DISCARD ALL earlier in this segment drops is unknown to the server too.
        let dropped = self.statements.dropped_in_segment(b.statement, self.syncs_sent);
        let known = if b.statement.is_empty() || dropped { None } else { self.statements.get(b.statement).cloned() };
        let renamed = |s: &Statement| s.is_renamed(b.statement);
        if let Some(stmt) = known.as_ref().filter(|s| renamed(s)) {
            match self.gate(frame, stmt, false) {
                Gate::Go => {}
                Gate::Parked | Gate::Done => return Flow::Continue,
            }
        }
        // What runs: note its writes (invalidated at commit) and settings.
        let (text, types) = match &known {
            Some(stmt) => (Some(stmt.query.clone()), stmt.param_types.as_slice()),
            None if b.statement.is_empty() => (self.unnamed_query.clone(), self.unnamed_types.as_slice()),
            None => (None, &[][..]),
        };
        if let Some(text) = text.as_deref().filter(|_| self.tally.on) {
            self.tally.id = crate::sql::query_id::QueryId::of_bytes(text);
        }
        self.limited.bind(b.portal, text.as_ref());
        let effects = match text.as_deref().map(std::str::from_utf8) {
            // Nothing to follow: see `keywords::may_change_session`.
            Some(Ok(text))
                if self.pure_pass_through()
                    && !self.tx.following()
                    && !may_change_session(text.as_bytes())
                    && !self.may_call_state_setter(text.as_bytes()) =>
            {
                None
            }
            Some(Ok(text)) => {
                let analysis = crate::sql::analyze(text);
                let params =
                    if analysis.settings().next().is_some() { frontend::bind_text_params(&b) } else { Vec::new() };
                // The parameter types, owned (the session is borrowed mutably below), only when
                // the statement pins rows by them.
                let pins_rows = analysis.statements.iter().any(|s| s.rows.is_some());
                let types = if pins_rows { types.to_vec() } else { Vec::new() };
                let bind =
                    if pins_rows { BindValues::parse(b.params_and_formats, &types) } else { BindValues::default() };
                self.follow_statements(&analysis, &params, &bind)
            }
            // Not UTF-8, or a statement this client never parsed here: assume the worst.
            Some(Err(_)) | None if !b.statement.is_empty() || text.is_some() => self.note_opaque_statement(),
            _ => None,
        };
        // A Parse holds one statement (Postgres refuses more): its effects are the portal's.
        let effects = effects.and_then(|e| e.first().cloned());
        self.bind_portal(b.portal, effects);
        let text = text.as_deref().and_then(|t| std::str::from_utf8(t).ok());
        // `LIMIT $n` under a policy's limit: the parameter is capped here.
        let capped = match self.cap_limit_params(text, b.params_and_formats) {
            Ok(capped) => capped,
            Err(refusal) => {
                self.refuse_statement(&refusal, false);
                return Flow::Continue;
            }
        };
        let stmt = known.filter(|s| renamed(s));
        if b.statement.is_empty() {
            self.own_unnamed();
        }
        if stmt.is_none() && capped.is_none() {
            // Unnamed, session mode, or unknown to this client: the server answers as Postgres
            // would (an unknown name is unknown there too: server names are all pgcached_*).
            self.forward(frame, Entry::forward(Kind::Bind));
            return Flow::Continue;
        }
        if let Some(stmt) = &stmt {
            self.remember_rename(&stmt.server_name, b.statement);
        }
        let statement = stmt.as_ref().map_or(b.statement, |s| &s.server_name[..]);
        let params_and_formats = capped.as_deref().unwrap_or(b.params_and_formats);
        let mut out = BytesMut::with_capacity(frame.len() + statement.len() + 16);
        out.put_u8(tag::BIND);
        out.put_u32(0);
        out.put_slice(b.portal);
        out.put_u8(0);
        out.put_slice(statement);
        out.put_u8(0);
        out.put_slice(params_and_formats);
        patch_len(&mut out);
        self.to_server.extend_from_slice(&out);
        let on_fail = stmt.map_or(OnFail::Nothing, |s| OnFail::Revalidates(s.server_name));
        self.queue.push(Entry::Server(Request::forward(Kind::Bind).on_fail(on_fail)));
        Flow::Continue
    }

    pub(super) fn on_describe(&mut self, frame: &Frame) -> Flow {
        let Some(d) = frontend::target(frame.body()) else {
            return self.protocol_violation("invalid Describe message");
        };
        if d.kind == b'S' && self.wait_for_name(frame, d.name) {
            return Flow::Continue;
        }
        self.segment.open();
        let dropped = d.kind == b'S' && self.statements.dropped_in_segment(d.name, self.syncs_sent);
        let stmt = if d.kind == b'S' && !d.name.is_empty() && !dropped {
            self.statements.get(d.name).filter(|s| s.is_renamed(d.name)).cloned()
        } else {
            None
        };
        let Some(stmt) = stmt else {
            if d.kind == b'S' && d.name.is_empty() {
                self.own_unnamed();
            }
            self.forward(frame, Entry::forward(Kind::Describe));
            return Flow::Continue;
        };
        match self.gate(frame, &stmt, true) {
            Gate::Go => {}
            Gate::Parked | Gate::Done => return Flow::Continue,
        }
        self.remember_rename(&stmt.server_name, d.name);
        let mut out = BytesMut::new();
        out.put_u8(tag::DESCRIBE);
        out.put_u32(0);
        out.put_u8(b'S');
        out.put_slice(&stmt.server_name);
        out.put_u8(0);
        patch_len(&mut out);
        self.to_server.extend_from_slice(&out);
        let on_fail = OnFail::Revalidates(stmt.server_name);
        self.queue.push(Entry::Server(Request::forward(Kind::Describe).on_fail(on_fail)));
        Flow::Continue
    }

    pub(super) fn on_close(&mut self, frame: &Frame) -> Flow {
        let Some(c) = frontend::target(frame.body()) else {
            return self.protocol_violation("invalid Close message");
        };
        self.segment.open();
        if c.kind == b'P' {
            self.bind_portal(c.name, None);
        }
        if c.kind == b'S' && !c.name.is_empty() {
            if self.wait_for_name(frame, c.name) {
                return Flow::Continue;
            }
            if self.statements.dropped_in_segment(c.name, self.syncs_sent) {
                // Gone on the server already (see `ClientStatements::dropped`).
                self.forward(frame, Entry::forward(Kind::Close));
                return Flow::Continue;
            }
            let gone = self.statements.remove(c.name);
            if gone.as_ref().is_some_and(|s| s.is_renamed(c.name)) {
                // The server statement is shared: only the client's name goes away — unless an
                // earlier error makes the server skip this Close, as it skips the one sent in
                // its place (a name no connection holds; the answer is the same CloseComplete).
                self.statements.note_change(c.name, self.syncs_sent, self.syncs_done);
                build::close(&mut self.to_server, b'S', b"pgcached_none");
                let on_fail = match gone {
                    Some(stmt) => {
                        OnFail::KeepStatement { client: Bytes::copy_from_slice(c.name), stmt: Box::new(stmt) }
                    }
                    None => OnFail::Nothing,
                };
                self.queue.push(Entry::Server(Request::forward(Kind::Close).on_fail(on_fail)));
                return Flow::Continue;
            }
            if let Some(stmt) = gone {
                // Under the client's own name: if an earlier error skips this Close, the server
                // still holds the statement, and so must the proxy (it keeps the connection).
                self.statements.note_change(c.name, self.syncs_sent, self.syncs_done);
                let on_fail = OnFail::KeepStatement { client: Bytes::copy_from_slice(c.name), stmt: Box::new(stmt) };
                self.forward(frame, Entry::Server(Request::forward(Kind::Close).on_fail(on_fail)));
                return Flow::Continue;
            }
        }
        self.forward(frame, Entry::forward(Kind::Close));
        Flow::Continue
    }

    /// Remember which client name a server name stood for, so a server error about it can be
    /// told in the client's words.
    fn remember_rename(&mut self, server_name: &Bytes, client_name: &[u8]) {
        if self.renamed.len() > 1024 {
            self.renamed.clear();
        }
        self.renamed.insert(server_name.clone(), Bytes::copy_from_slice(client_name));
    }

    /// An ErrorResponse that names a server statement (`pgcached_…`), re-encoded with the
    /// client's name for it (`client`, or the last one that server name stood for); `None` when
    /// it names none.
    pub(super) fn error_in_client_words(&self, frame: FrameRef<'_>, client: Option<&Bytes>) -> Option<Bytes> {
        let body = frame.body();
        let needle = b"\"pgcached_";
        let at = body.windows(needle.len()).position(|w| w == needle)? + 1;
        let end = at + body[at..].iter().position(|&b| b == b'"')?;
        let client = client.or_else(|| self.renamed.get(&body[at..end]))?;
        let mut out = BytesMut::with_capacity(frame.len());
        out.put_u8(frame.tag());
        out.put_u32(0);
        out.put_slice(&body[..at]);
        out.put_slice(client);
        out.put_slice(&body[end..]);
        patch_len(&mut out);
        Some(out.freeze())
    }

    /// The renamed client statement a `DEALLOCATE [PREPARE] name` text refers to, if any.
    fn deallocate_target(&self, text: &str) -> Option<Bytes> {
        // Checked for every query: decide on the first word before splitting anything.
        let starts_deallocate = text.trim_start().get(..10).is_some_and(|w| w.eq_ignore_ascii_case("deallocate"));
        if !starts_deallocate {
            return None;
        }
        let words: Vec<&str> = text.trim().trim_end_matches(';').split_whitespace().collect();
        let name = match words.as_slice() {
            [d, n] if d.eq_ignore_ascii_case("deallocate") => n,
            [d, p, n] if d.eq_ignore_ascii_case("deallocate") && p.eq_ignore_ascii_case("prepare") => n,
            _ => return None,
        };
        let name = name.trim_matches('"');
        let renamed = self.statements.get(name.as_bytes()).is_some_and(|s| s.is_renamed(name.as_bytes()));
        renamed.then(|| Bytes::copy_from_slice(name.as_bytes()))
    }

    /// Answer `DEALLOCATE [PREPARE] name` (simple Query) for a renamed client statement locally.
    pub(super) fn answer_deallocate(&mut self, text: &str) -> bool {
        let Some(name) = self.deallocate_target(text) else { return false };
        self.statements.remove(&name);
        let mut out = deallocate_complete();
        build::ready_for_query(&mut out, self.tx.status());
        self.queue.push(Entry::Synth(out.freeze()));
        true
    }

    /// The unnamed statement is a `DEALLOCATE` of a renamed client statement (sent with the
    /// extended protocol, as PQexecParams or pgjdbc do): its Bind, Describe, Execute and Close
    /// are answered here, and the Execute forgets the client's name.
    pub(super) fn answer_local_unnamed(&mut self, frame: &Frame) -> bool {
        let Some(name) = self.local_unnamed.clone() else { return false };
        let body = frame.body();
        let mut out = BytesMut::new();
        match frame.tag() {
            tag::BIND => match frontend::bind(body) {
                Some(b) if b.statement.is_empty() => build::bind_complete(&mut out),
                _ => {
                    // The unnamed portal now belongs to another statement.
                    self.local_unnamed = None;
                    return false;
                }
            },
            tag::DESCRIBE => match frontend::target(body) {
                Some(t) if t.kind == b'S' && t.name.is_empty() => {
                    out.extend_from_slice(b"t\0\0\0\x06\0\0n\0\0\0\x04");
                }
                Some(t) if t.kind == b'P' && t.name.is_empty() => out.extend_from_slice(b"n\0\0\0\x04"),
                _ => return false,
            },
            tag::EXECUTE if frontend::execute(body).is_some_and(|e| e.portal.is_empty()) => {
                self.statements.remove(&name);
                out = deallocate_complete();
            }
            tag::CLOSE if frontend::target(body).is_some_and(|t| t.name.is_empty()) => build::close_complete(&mut out),
            _ => return false,
        }
        self.segment.open();
        self.queue.push(Entry::Synth(out.freeze()));
        true
    }

    /// The client's unnamed statement is now `parse` (the Parse as sent), on the server
    /// connection held: that connection's unnamed statement is this client's. `plain`: its
    /// text is known to change no session state.
    pub(super) fn parse_unnamed(&mut self, parse: &Frame, plain: bool) {
        self.remember_unnamed(parse, plain);
        if let Some(lease) = &mut self.server {
            lease.obj.unnamed_owner = self.id;
        }
    }

    /// The client's unnamed statement is now `parse`, answered without a server (a cache hit):
    /// no server connection holds it, whatever it held before.
    pub(super) fn parse_unnamed_locally(&mut self, parse: &Frame) {
        let plain = self.unnamed_parse.as_ref().is_some_and(|h| h.plain && h.frame.as_bytes() == parse.as_bytes());
        self.remember_unnamed(parse, plain);
        if let Some(lease) = &mut self.server
            && lease.obj.unnamed_owner == self.id
        {
            lease.obj.unnamed_owner = 0;
        }
    }

    /// Keep `parse` as the client's unnamed statement: a copy (see `UnnamedParse`), made only
    /// when it changes.
    fn remember_unnamed(&mut self, parse: &Frame, plain: bool) {
        match &mut self.unnamed_parse {
            Some(held) if held.frame.as_bytes() == parse.as_bytes() => held.plain = plain,
            _ => {
                let frame = Frame::from_bytes(Bytes::copy_from_slice(parse.as_bytes()));
                self.unnamed_parse = Some(super::UnnamedParse { frame, plain });
            }
        }
    }

    /// Before a Bind or Describe of the unnamed statement: make the server connection's unnamed
    /// statement this client's. It may be another client's (transaction pooling) or none, where
    /// this client parsed one in an earlier transaction or had its Parse answered from the
    /// cache: send the client's Parse again (answer dropped), or, if the client has none, close
    /// the connection's so the server answers 26000 as it would directly.
    #[inline]
    fn own_unnamed(&mut self) {
        let id = self.id;
        let lease = self.server.as_mut().expect("the session holds a server here");
        if lease.obj.unnamed_owner == id {
            return;
        }
        lease.obj.unnamed_owner = id;
        match &self.unnamed_parse {
            Some(held) => {
                self.to_server.extend_from_slice(held.frame.as_bytes());
                self.queue.push(Entry::Server(Request::hidden(Kind::Parse)));
            }
            None => {
                build::close(&mut self.to_server, b'S', b"");
                self.queue.push(Entry::Server(Request::hidden(Kind::Close)));
            }
        }
    }

    /// The statement bound to `portal` has `effects` (`None`: nothing to follow, or the portal
    /// is gone).
    fn bind_portal(&mut self, portal: &[u8], effects: Option<Arc<Effects>>) {
        self.portals.retain(|(name, _)| name != portal);
        if let Some(effects) = effects {
            self.portals.push((Bytes::copy_from_slice(portal), effects));
        }
    }

    /// The effects an Execute of the portal named in `frame` brings (see `bind_portal`).
    pub(super) fn portal_effects(&self, frame: &Frame) -> Option<Box<[Arc<Effects>]>> {
        if self.portals.is_empty() {
            return None;
        }
        let portal = frontend::execute(frame.body())?.portal;
        let (_, effects) = self.portals.iter().find(|(name, _)| name == portal)?;
        Some(Box::new([effects.clone()]))
    }
}

/// CommandComplete `DEALLOCATE`.
fn deallocate_complete() -> BytesMut {
    let mut out = BytesMut::new();
    build::command_complete(&mut out, "DEALLOCATE");
    out
}

/// Patch the length field of the frame that starts at the beginning of `out`.
pub(super) fn patch_len(out: &mut BytesMut) {
    let len = (out.len() - 1) as u32;
    out[1..5].copy_from_slice(&len.to_be_bytes());
}
