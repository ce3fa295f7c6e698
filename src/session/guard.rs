//! The session's side of the guard rails: every query string and every Parse is checked against
//! the session's policy (statement kinds, tables, columns, functions, …) before anything reaches
//! a server, and a refusal is reported the way Postgres reports a failing statement.

use std::collections::HashMap;

use bytes::BytesMut;
use tracing::{debug, info};

use super::Session;
use super::queue::{Entry, Kind, Request};
use crate::sql::{self, Refusal, Verdict};
use crate::wire::Frame;
use crate::wire::build::{self, Severity};

/// Run on the server to put an open transaction in the failed state, as a real error would.
pub(super) const ABORT_TRANSACTION: &str = "SELECT 1/0 /* pgcached: a refused statement aborts the transaction */";

/// Where this session's unqualified table names resolve, for a policy's table rules: worked
/// out with the session's own `search_path` and role, for the settings generation and catalog
/// epoch it was worked out at. Only names found are kept (a table created later must be seen).
#[derive(Debug, Default)]
pub(super) struct TableSchemas {
    generation: u64,
    epoch: u64,
    map: HashMap<String, String>,
}

/// Names kept before the map starts over.
const MAX_TABLE_SCHEMAS: usize = 10_000;

impl Session {
    /// Analyze `text` and apply the policy (memoized analysis; no policy → nothing checked),
    /// unqualified table names resolved as far as [`Session::resolve_tables`] found them.
    pub(super) fn check_policy(&self, text: &str) -> Result<Verdict, Refusal> {
        let schemas = self.policy.as_ref().filter(|p| p.has_table_rules()).and_then(|_| self.table_schemas_now());
        sql::guard_with(self.policy.as_deref(), text, &|name| schemas.and_then(|s| s.map.get(name).cloned()))
    }

    /// The resolutions, if they still hold for the session's settings and the catalog.
    fn table_schemas_now(&self) -> Option<&TableSchemas> {
        let s = &self.table_schemas;
        let epoch = self.shared.catalogs.epoch(&self.key.database);
        (s.generation == self.wanted.generation() && s.epoch == epoch).then_some(s)
    }

    /// Before `text` is checked against a policy with table rules: find the schema each of its
    /// unqualified tables resolves to with this session's `search_path` (the server's default,
    /// `"$user", public`, when the client set none) — a rule for `public.*` must not pass a
    /// table the session reads from another schema. A failed look-up leaves the name to the
    /// rules' default reading (`public`).
    pub(super) async fn resolve_tables(&mut self, text: &str) {
        if !self.policy.as_ref().is_some_and(|p| p.has_table_rules()) {
            return;
        }
        let epoch = self.shared.catalogs.epoch(&self.key.database);
        if self.table_schemas_now().is_none() || self.table_schemas.map.len() > MAX_TABLE_SCHEMAS {
            self.table_schemas = TableSchemas { generation: self.wanted.generation(), epoch, map: HashMap::new() };
        }
        let analysis = sql::analyze(text);
        let mut names: Vec<&str> = analysis
            .statements
            .iter()
            .flat_map(|s| s.tables())
            .filter(|t| t.schema.is_none() && !self.table_schemas.map.contains_key(t.name.as_str()))
            .map(|t| t.name.as_str())
            .collect();
        names.dedup();
        if names.is_empty() {
            return;
        }
        let Some(catalog) = self.catalog() else { return };
        let role = self.wanted.get("role").filter(|r| !r.eq_ignore_ascii_case("none")).unwrap_or(&self.key.user);
        let path =
            crate::cache::search_path_schemas(self.wanted.get("search_path").unwrap_or("\"$user\", public"), role);
        for name in names {
            // Boxed: a catalog query is a large state machine, rare on this path.
            match Box::pin(catalog.resolve(name, &path)).await {
                Ok(Some(schema)) => {
                    self.table_schemas.map.insert(name.to_string(), schema);
                }
                Ok(None) => {}
                Err(e) => debug!(error = %e, table = name, "could not resolve a table name for the policy"),
            }
        }
    }

    /// The policy's `max_cost` for what will run: the rewritten text when the LIMIT rule
    /// changed it (a LIMIT makes a read cheaper), else `text`. Only under a `max_cost` policy.
    /// The future owns what it needs (the session is not `Sync`).
    pub(super) fn check_cost(
        &self,
        text: &str,
        verdict: &Verdict,
    ) -> impl Future<Output = Result<(), Refusal>> + Send + 'static {
        let work = self.policy.clone().filter(|p| p.max_cost().is_some()).map(|policy| {
            let (text, analysis) = match verdict.rewrite.as_ref().and_then(|r| r.text.as_deref()) {
                Some(rewritten) => (rewritten.to_string(), sql::analyze(rewritten)),
                None => (text.to_string(), verdict.analysis.clone()),
            };
            let session = (self.key.database.clone(), self.key.user.clone(), self.wanted.get("search_path"));
            (policy, text, analysis, self.shared.clone(), session.0, session.1, session.2.map(str::to_string))
        });
        async move {
            let Some((policy, text, analysis, shared, database, role, search_path)) = work else {
                return Ok(());
            };
            let estimator = shared.costs.for_session(&database, &role, search_path.as_deref());
            // Boxed: an EXPLAIN round trip is a large state machine, and this future is part
            // of every Query's and Parse's.
            Box::pin(sql::check_cost(&policy, &estimator, &text, &analysis)).await
        }
    }

    /// The Bind parameter tail with `LIMIT $n` parameters capped (`None`: unchanged), for the
    /// statement `text` as prepared.
    pub(super) fn cap_limit_params(&self, text: Option<&str>, tail: &[u8]) -> Result<Option<Vec<u8>>, Refusal> {
        let Some(text) = text else {
            return Ok(None);
        };
        sql::cap_bind_params(tail, &sql::param_caps(self.policy.as_deref(), text))
    }

    /// Report a refusal in queue order (see [`Session::fail_statement`]).
    /// `simple`: a Query (answered with ReadyForQuery); else an extended message (the rest of
    /// the batch is skipped until Sync).
    pub(super) fn refuse_statement(&mut self, refusal: &Refusal, simple: bool) {
        let policy = match refusal.policy.as_str() {
            "" => self.policy.as_ref().map_or("", |p| p.name()),
            named => named,
        };
        let client = self.cancel.slot.describe().map(|(info, ..)| info);
        let fingerprint = self.tally.id.as_ref().map(|id| id.text.clone());
        info!(
            pool = %self.key,
            policy,
            rule = refusal.rule,
            sqlstate = refusal.sqlstate,
            fingerprint = fingerprint.as_deref().unwrap_or(""),
            peer = ?client.as_ref().map(|c| c.addr),
            application_name = client.as_ref().map_or("", |c| c.application_name.as_str()),
            message = %refusal.message,
            "statement refused"
        );
        self.shared.traffic.refused(policy, refusal.rule);
        self.exchange_answered(None, None, crate::admin::query_stats::Outcome::Refused, 0, 0);
        let mut out = BytesMut::new();
        build::error_response(&mut out, Severity::Error, refusal.sqlstate, &refusal.message);
        self.fail_statement(out, simple);
    }

    /// A simple Query about to be refused while the transaction status is not settled: the
    /// status its own ReadyForQuery must carry, and whether the server's block must be failed,
    /// are not known yet (a pipelined `BEGIN` may have opened one). Hold it, and the client's
    /// messages after it, until they are; it is checked again then. True when held.
    pub(super) fn hold_refusal_until_settled(&mut self, frame: &Frame) -> bool {
        if self.status_settled() {
            return false;
        }
        self.park_until(frame, self.syncs_sent);
        true
    }

    /// Answer a statement the proxy fails itself with `reply` (ending in its ErrorResponse), in
    /// queue order. In an open transaction the server's transaction is failed too, so the
    /// client sees exactly what Postgres would show after an error. `simple`: as for
    /// [`Session::refuse_statement`].
    pub(super) fn fail_statement(&mut self, reply: BytesMut, simple: bool) {
        self.fail_held();
        let in_transaction = !self.tx.is_idle() || !self.segment.is_synced();
        // Postgres's order: the error, then what failing the transaction reports (a setting
        // the block had changed, rolled back: ParameterStatus), then ReadyForQuery.
        self.queue.push(Entry::Synth(reply.freeze()));
        if in_transaction && self.server.is_some() {
            let mut out = BytesMut::new();
            build::query(&mut out, ABORT_TRANSACTION);
            self.to_server.extend_from_slice(&out);
            self.queue.push(Entry::Server(Request::hidden(Kind::Query)));
            // Its ReadyForQuery counts in `syncs_done` like any other.
            self.syncs_sent += 1;
        }
        if simple {
            let status = if self.tx.is_idle() { b'I' } else { b'E' };
            let mut ready = BytesMut::with_capacity(6);
            build::ready_for_query(&mut ready, status);
            self.queue.push(Entry::Synth(ready.freeze()));
        } else {
            // Drops a cache fill armed for the batch: it has no answer to record.
            self.segment.skip();
        }
    }

    /// The notice due for a cached answer `frames` (one statement's, ending in its
    /// CommandComplete) if its rows reached the limit: answered ahead of it.
    pub(super) fn notice_if_cut(&mut self, notices: &[crate::sql::LimitNotice], frames: &[u8]) {
        let Some(notice) = notices.first() else { return };
        let mut rest = frames;
        let mut tag: &[u8] = &[];
        while let Ok(Some(frame)) = crate::wire::frame::peek_frame(rest, usize::MAX) {
            if frame.tag() == crate::wire::backend::tag::COMMAND_COMPLETE {
                tag = crate::wire::backend::command_tag(frame.body()).unwrap_or_default();
            }
            rest = &rest[frame.len()..];
        }
        if notice.cut(tag) {
            let mut out = BytesMut::new();
            build::notice_response(&mut out, "01000", &notice.text);
            self.answer(out.freeze());
        }
    }
}
