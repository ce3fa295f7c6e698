//! The session's side of the guard rails: every query string and every Parse is checked against
//! the session's policy (statement kinds, tables, columns, functions, …) before anything reaches
//! a server, and a refusal is reported the way Postgres reports a failing statement.

use bytes::BytesMut;
use tracing::info;

use super::Session;
use super::queue::{Entry, Kind, OnFail};
use crate::sql::{self, Refusal, Verdict};
use crate::wire::build::{self, Severity};

/// Run on the server to put an open transaction in the failed state, as a real error would.
const ABORT_TRANSACTION: &str = "SELECT 1/0 /* pgcached: a refused statement aborts the transaction */";

impl Session {
    /// Analyze `text` and apply the policy (memoized analysis; no policy → nothing checked).
    pub(super) fn check_policy(&self, text: &str) -> Result<Verdict, Refusal> {
        sql::guard(self.policy.as_deref(), text)
    }

    /// Report a refusal in queue order. In an open transaction the server's transaction is
    /// failed too, so the client sees exactly what Postgres would show after an error.
    /// `simple`: a Query (answered with ReadyForQuery); else an extended message (the rest of
    /// the batch is skipped until Sync).
    pub(super) fn refuse_statement(&mut self, refusal: &Refusal, simple: bool) {
        info!(pool = %self.key, policy = self.policy.as_ref().map(|p| p.name()), sqlstate = refusal.sqlstate, message = %refusal.message, "statement refused");
        let in_transaction = self.tx_status != b'I' || self.unsynced;
        if in_transaction && self.server.is_some() {
            let mut out = BytesMut::new();
            build::query(&mut out, ABORT_TRANSACTION);
            self.to_server.extend_from_slice(&out);
            self.queue.push(Entry::Server { kind: Kind::Query, forward: false, on_fail: OnFail::Nothing });
        }
        let mut out = BytesMut::new();
        build::error_response(&mut out, Severity::Error, refusal.sqlstate, &refusal.message);
        if simple {
            let status = if self.tx_status == b'I' { b'I' } else { b'E' };
            build::ready_for_query(&mut out, status);
        } else {
            self.skip_until_sync = true;
        }
        self.queue.push(Entry::Synth(out.freeze()));
    }

    /// NoticeResponses telling the client its result was limited.
    pub(super) fn push_notices(&mut self, notices: &[String]) {
        for text in notices {
            let mut out = BytesMut::new();
            build::notice_response(&mut out, "01000", text);
            self.queue.push(Entry::Synth(out.freeze()));
        }
    }
}
