//! The one call the session makes per query string (simple Query) or per Parse: analyze
//! (memoized), check the policy, compute the LIMIT rewrite and the notices to send.
//! `max_cost` is checked separately and asynchronously with [`super::cost::check_cost`].

use super::analyze::Analysis;
use super::limit::{self, LimitChange, LimitRewrite};
use super::memo::analyze;
use super::policy::Policy;
use super::refusal::Refusal;
use std::sync::Arc;

/// What to do with a query string that passed its policy.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The analysis of the original text (memoized; shared).
    pub analysis: Arc<Analysis>,
    /// The LIMIT rewrite, if the policy has a `limit` rule and something changed. Send
    /// `rewrite.text` instead of the original when it is `Some`; cap parameters listed in
    /// `rewrite.changes` as [`LimitChange::CapParam`] at Bind.
    pub rewrite: Option<LimitRewrite>,
    /// NoticeResponse messages to send (the policy's `limit.notice`), one per limited statement,
    /// each when that statement's result was really cut.
    pub notices: Vec<LimitNotice>,
}

/// A NoticeResponse due when statement `statement` of the string (0 for a Parse) returns `rows`
/// rows or more: its result was cut at the limit the policy added or capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitNotice {
    pub statement: usize,
    pub rows: u64,
    pub text: String,
}

impl LimitNotice {
    /// Whether a statement that completed with command tag `tag` (`SELECT 5`, `COPY 5`) was cut.
    pub fn cut(&self, tag: &[u8]) -> bool {
        let rows = tag.rsplit(|b| *b == b' ').next().and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok());
        rows.is_some_and(|n| n >= self.rows)
    }
}

/// Analyzes `text` and applies `policy` (`None`: no policy, nothing checked or rewritten).
pub fn guard(policy: Option<&Policy>, text: &str) -> Result<Verdict, Refusal> {
    guard_with(policy, text, &|_| None)
}

/// [`guard`], with `schema_of` resolving unqualified table names as the session would (see
/// [`Policy::check_with`]).
pub fn guard_with(
    policy: Option<&Policy>,
    text: &str,
    schema_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Verdict, Refusal> {
    let analysis = analyze(text);
    let Some(policy) = policy.filter(|p| !p.is_empty()) else {
        return Ok(Verdict { analysis, rewrite: None, notices: Vec::new() });
    };
    policy.check_with(&analysis, schema_of)?;
    let rewrite = policy.limit_rule().and_then(|rule| limit::rewrite(text, &analysis, rule));
    let notices = match (&rewrite, policy.limit_notice()) {
        (Some(r), true) => r
            .changes
            .iter()
            .filter_map(|c| {
                let (statement, rows) = match *c {
                    LimitChange::Injected { statement, limit } => (statement, limit),
                    LimitChange::Capped { statement, to, .. } => (statement, to),
                    LimitChange::CapParam { .. } => return None,
                };
                Some(LimitNotice { statement, rows, text: limit::notice_text(policy.name(), c) })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Verdict { analysis, rewrite, notices })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::{LimitConfig, PolicyConfig, SafetyConfig};
    use crate::sql::Policies;

    fn policies(yaml: &str) -> Policies {
        let list: Vec<PolicyConfig> = serde_yaml::from_str(yaml).expect("yaml");
        Policies::from_config(&SafetyConfig::default(), &LimitConfig::default(), &list).expect("ok")
    }

    #[test]
    fn no_policy_means_no_checks_and_no_rewrite() {
        let v = guard(None, "DELETE FROM t").expect("no policy");
        assert!(v.rewrite.is_none() && v.notices.is_empty());
        assert!(v.analysis.may_write());
    }

    #[test]
    fn a_bi_policy_refuses_and_limits() {
        let p = policies("- {name: bi, user: bi, read_only: true, limit: {inject: 50, max: 500, notice: true}}");
        let bi = p.for_session("bi", "db").expect("bi policy");
        let r = guard(Some(&bi), "DELETE FROM t").expect_err("read only");
        assert_eq!(r.sqlstate, "42501");
        let v = guard(Some(&bi), "SELECT * FROM t -- all").expect("a read");
        assert_eq!(v.rewrite.and_then(|r| r.text).as_deref(), Some("SELECT * FROM t LIMIT 50 -- all"));
        let text = "pgcached: result limited to 50 rows by policy \"bi\" (LIMIT 50 added)".to_string();
        assert_eq!(v.notices, [LimitNotice { statement: 0, rows: 50, text }]);
    }

    #[test]
    fn a_notice_is_due_only_when_the_rows_reached_the_limit() {
        let n = LimitNotice { statement: 0, rows: 50, text: String::new() };
        assert!(n.cut(b"SELECT 50") && n.cut(b"COPY 50"));
        assert!(!n.cut(b"SELECT 49") && !n.cut(b"SELECT") && !n.cut(b""));
    }
}
