//! Transactions held off the server: under transaction pooling, a `BEGIN` (READ COMMITTED,
//! nothing in it that could fail on the server) is answered by the proxy, and goes to Postgres
//! only with the first statement that needs a server. A transaction whose reads are all
//! answered from the cache — an ORM's `BEGIN; SELECT …; COMMIT` — never takes a server
//! connection; its `COMMIT` or `ROLLBACK` is answered with the tag and status Postgres sends
//! for a transaction that did nothing.
//!
//! What the client sees is what Postgres would send, with one difference: the transaction's
//! start (`now()`, `transaction_timestamp()`, and the `xact_start` of `pg_stat_activity`) is
//! the moment its first statement reached Postgres, not the `BEGIN` — the READ COMMITTED
//! snapshot is first taken then in Postgres too. A statement the proxy fails in a held block
//! (a refusal, no server to be had) fails the block, as an error would: the server's block is
//! failed too before anything else runs there.

use bytes::{Bytes, BytesMut};

use super::Session;
use super::isolation::{Isolation, begin_form};
use crate::admin::query_stats::Outcome;
use crate::config::PoolMode;
use crate::server::{ServerConn, ServerError};
use crate::sql::{Analysis, StatementKind, TxKind, first_word};
use crate::wire::Frame;
use crate::wire::build;
use crate::wire::frontend::{self, tag};

/// One parameterless statement run through the unnamed portal at the head of a batch (see
/// [`Session::plain_head`]).
pub(super) struct PlainHead {
    /// Frames it takes (Parse if any, Bind, Describe if any, Execute).
    pub frames: usize,
    /// It was parsed in the batch (the answer has a ParseComplete), not bound from a statement
    /// the client prepared earlier.
    pub parsed: bool,
    /// Its portal was described (the answer has a NoData).
    pub described: bool,
    /// Its text (UTF-8, checked).
    text: Bytes,
}

impl PlainHead {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.text).expect("checked when made")
    }

    /// Its answer up to its CommandComplete (`tag`).
    pub fn answer(&self, out: &mut BytesMut, tag: &str) {
        if self.parsed {
            build::parse_complete(out);
        }
        build::bind_complete(out);
        if self.described {
            build::no_data(out);
        }
        build::command_complete(out, tag);
    }
}

/// The frames a [`PlainHead`] at the head of a batch would take, told by their tags alone
/// (`Parse? Bind Describe? Execute`), before anything is decoded.
#[derive(Clone, Copy)]
struct HeadShape {
    parsed: bool,
    described: bool,
}

impl HeadShape {
    fn of(frames: &[Frame]) -> Option<HeadShape> {
        let parsed = frames.first()?.tag() == tag::PARSE;
        let [bind, rest @ ..] = &frames[usize::from(parsed)..] else { return None };
        let described = rest.first().is_some_and(|f| f.tag() == tag::DESCRIBE);
        let execute = rest.get(usize::from(described))?;
        ((bind.tag(), execute.tag()) == (tag::BIND, tag::EXECUTE)).then_some(HeadShape { parsed, described })
    }

    fn frames(self) -> usize {
        usize::from(self.parsed) + 2 + usize::from(self.described)
    }
}

/// Whether `text` may be a `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK` or
/// `ABORT` by its first word (a text that starts with a comment may be anything).
fn may_be_transaction_statement(text: &[u8]) -> bool {
    let word = first_word(text);
    let leading = text.iter().find(|b| !b.is_ascii_whitespace());
    if word.is_empty() && leading.is_some_and(|b| matches!(b, b'/' | b'-')) {
        return true;
    }
    [&b"begin"[..], b"start", b"commit", b"end", b"rollback", b"abort"].iter().any(|w| w.eq_ignore_ascii_case(word))
}

impl Session {
    /// Answer a simple-protocol `BEGIN`, `COMMIT` or `ROLLBACK` without the server if it may
    /// be (see the module doc); `false`: it goes the usual way.
    pub(super) async fn answer_held(&mut self, analysis: &Analysis, text: &str) -> bool {
        let Some((tag, status)) = self.take_held(analysis, text).await else { return false };
        self.answer_with(32, |out| {
            build::command_complete(out, tag);
            build::ready_for_query(out, status);
        });
        // Forwarded with the block's first statement that needs a server (or not at all).
        self.exchange_answered(None, Some(text.as_bytes()), Outcome::Forwarded, 0, tag.len() + 12);
        true
    }

    /// `Parse Bind Describe(portal)? Execute Sync` of one `BEGIN` / `COMMIT` / `ROLLBACK`
    /// the proxy may answer itself (what `pgbench -M extended` and drivers that send every
    /// statement in the extended protocol send): the whole answer. Not under a policy (its
    /// checks of a Parse are the usual way's).
    pub(super) async fn held_batch(&mut self, frames: &[Frame]) -> Option<Bytes> {
        let shape = HeadShape::of(frames).filter(|s| frames.len() == s.frames() + 1)?;
        if frames[shape.frames()].tag() != tag::SYNC {
            return None;
        }
        let head = self.plain_head(frames, shape)?;
        if !head.parsed && begin_form(head.text()).is_some() {
            // A named BEGIN on its own (pgbench -M prepared) is not held: such a client may
            // next prepare a statement synchronously (libpq's PQprepare), and that Parse would
            // wait for a server connection while the client's other connections hold the pool
            // (DECISIONS 41). pgjdbc pipelines its named BEGIN with the block's first statement
            // (`dispatch_batch`), which is held.
            return None;
        }
        let analysis = crate::sql::analyze(head.text());
        let (command, status) = self.take_held(&analysis, head.text()).await?;
        let mut out = BytesMut::with_capacity(64);
        head.answer(&mut out, command);
        build::ready_for_query(&mut out, status);
        self.exchange_answered(None, Some(head.text().as_bytes()), Outcome::Forwarded, 0, out.len());
        Some(out.freeze())
    }

    /// A `BEGIN` at the head of a longer batch, as pgjdbc sends a block's first statement (not
    /// under a policy). Whether it may be held is decided with the rest.
    pub(super) fn leading_begin(&self, frames: &[Frame]) -> Option<PlainHead> {
        // Most batches are one statement and its Sync (only a BEGIN and its Sync: see
        // `held_batch`): told apart before anything is decoded.
        let shape = HeadShape::of(frames).filter(|s| frames.len() > s.frames() + 1)?;
        let head = self.plain_head(frames, shape)?;
        begin_form(head.text()).is_some().then_some(head)
    }

    /// `Parse? Bind Describe(portal)? Execute` of one parameterless statement through the
    /// unnamed portal, at the head of `frames`, under no policy: parsed there, or bound from a
    /// statement the client prepared earlier (pgjdbc names its `BEGIN` and `COMMIT` once it
    /// has used them a few times). The Execute's row limit is not looked at: the callers take
    /// only transaction statements, which return no rows.
    fn plain_head(&self, frames: &[Frame], shape: HeadShape) -> Option<PlainHead> {
        if self.policy.is_some() {
            return None;
        }
        let HeadShape { parsed, described } = shape;
        let bind = &frames[usize::from(parsed)];
        let execute = &frames[shape.frames() - 1];
        // The callers take only transaction statements: every other batch (each read of an
        // ORM's block) is turned away by its first word before its Bind is decoded.
        let parse = if parsed {
            let p = frontend::parse(frames[0].body())?;
            if !may_be_transaction_statement(p.query) {
                return None;
            }
            Some(p)
        } else {
            None
        };
        let b = frontend::bind(bind.body())?;
        let text = match parse {
            Some(p) => {
                // A Parse under a name the client holds goes the usual way: Postgres refuses
                // it (42P05), and the block with it.
                if self.statements.contains(p.name) || b.statement != p.name || !p.param_types.is_empty() {
                    return None;
                }
                frames[0].as_bytes().slice_ref(p.query)
            }
            None => {
                if b.statement.is_empty() || self.statements.dropped_in_segment(b.statement, self.syncs_sent) {
                    return None;
                }
                let known = self.statements.get(b.statement)?;
                if !known.param_types.is_empty() || !may_be_transaction_statement(&known.query) {
                    return None;
                }
                known.query.clone()
            }
        };
        let whole_portal = frontend::execute(execute.body()).is_some_and(|e| e.portal.is_empty());
        let portal_described = !described
            || frontend::target(frames[usize::from(parsed) + 1].body())
                .is_some_and(|t| t.kind == b'P' && t.name.is_empty());
        if !(b.portal.is_empty()
            && whole_portal
            && portal_described
            && frontend::bind_values(b.params_and_formats)?.is_empty())
        {
            return None;
        }
        std::str::from_utf8(&text).ok()?;
        Some(PlainHead { frames: shape.frames(), parsed, described, text })
    }

    /// Hold a `BEGIN`, or end a held block, if `analysis` is one such statement and the session
    /// may: the command tag and the transaction status to answer with.
    async fn take_held(&mut self, analysis: &Analysis, text: &str) -> Option<(&'static str, u8)> {
        let [s] = analysis.statements.as_slice() else { return None };
        match s.kind {
            StatementKind::Transaction(TxKind::Begin) => self.hold_begin(text).await.map(|tag| (tag, b'T')),
            StatementKind::Transaction(TxKind::Commit | TxKind::Rollback) if self.held_begin.is_some() => {
                self.end_held(text, s.kind == StatementKind::Transaction(TxKind::Commit)).map(|tag| (tag, b'I'))
            }
            _ => None,
        }
    }

    /// Hold `text` (a `BEGIN`) if the session may (see the module doc): its command tag.
    pub(super) async fn hold_begin(&mut self, text: &str) -> Option<&'static str> {
        let may = self.shared.cache.enabled()
            && self.mode == PoolMode::Transaction
            && self.server.is_none()
            && self.held_begin.is_none()
            && self.tx.is_idle()
            && self.queue.is_empty()
            && self.segment.is_synced()
            && self.private.is_empty()
            && self.lifecycle == super::Lifecycle::Running;
        if !may {
            return None;
        }
        // A block with characteristics of its own goes to the server: its reads are private.
        let form = begin_form(text).filter(|f| f.holdable && !f.characteristics)?;
        let read_committed = match form.isolation {
            Some(level) => level == Isolation::ReadCommitted,
            None => self.default_isolation_now().await == Some(Isolation::ReadCommitted),
        };
        if !read_committed {
            return None;
        }
        self.tx.begin_held(form.isolation, form.read_only);
        self.held_begin = Some(text.to_string());
        Some(form.tag)
    }

    /// `COMMIT` / `END` / `ROLLBACK` / `ABORT` of a block that never reached Postgres: the tag
    /// Postgres gives (`ROLLBACK` for a failed block's COMMIT). `AND CHAIN` goes the usual way
    /// (the block reaches the server first).
    fn end_held(&mut self, text: &str, commit: bool) -> Option<&'static str> {
        let words: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let plain = matches!(
            words.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            [_] | [_, "work" | "transaction"]
                | [_, "and", "no", "chain"]
                | [_, "work" | "transaction", "and", "no", "chain"]
        );
        if !plain || self.server.is_some() || !self.queue.is_empty() {
            return None;
        }
        let tag = if commit && self.tx.status() == b'T' { "COMMIT" } else { "ROLLBACK" };
        self.tx.end_held();
        self.held_begin = None;
        Some(tag)
    }

    /// On a server connection just taken: begin the held block there (failed, if a statement
    /// of it failed already), before the client's statement.
    pub(super) async fn begin_held_on(&mut self, obj: &mut ServerConn) -> Result<(), ServerError> {
        let Some(begin) = self.held_begin.take() else { return Ok(()) };
        if let Err(e) = obj.run_hidden(&begin).await {
            // Not begun: the client's block is still held (and fails with this statement).
            obj.broken = true;
            self.held_begin = Some(begin);
            return Err(e);
        }
        if self.tx.status() == b'E' {
            // Expected to fail: that is its purpose.
            let _ = obj.run_hidden(super::guard::ABORT_TRANSACTION).await;
        }
        Ok(())
    }

    /// A statement of a held block failed without reaching Postgres: the block is failed.
    pub(super) fn fail_held(&mut self) {
        if self.held_begin.is_some() && self.server.is_none() {
            self.tx.fail_held();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::may_be_transaction_statement;

    #[test]
    fn only_transaction_words_or_a_leading_comment_may_be_a_transaction_statement() {
        for text in [
            "BEGIN",
            "begin isolation level read committed",
            " START TRANSACTION",
            "COMMIT",
            "end;",
            "ROLLBACK",
            "abort",
            "/* app */ BEGIN",
            "-- x\nCOMMIT",
        ] {
            assert!(may_be_transaction_statement(text.as_bytes()), "{text}");
        }
        for text in ["SELECT 1", "SET x = 1", "beginning", "", "(SELECT 1)", "SAVEPOINT a"] {
            assert!(!may_be_transaction_statement(text.as_bytes()), "{text}");
        }
    }
}
