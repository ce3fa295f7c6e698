//! Refusals: what a policy answers instead of letting a statement through. The proxy turns one
//! into an ErrorResponse (severity ERROR, this SQLSTATE and message); the session stays usable.

/// A statement refused by a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// SQLSTATE for the ErrorResponse.
    pub sqlstate: &'static str,
    /// Message for the client; names the rule and the policy.
    pub message: String,
    /// The policy and the rule (its config key) that refused, for statistics.
    pub policy: String,
    pub rule: &'static str,
}

/// `insufficient_privilege`: a denied statement, table, column, function or setting.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// `program_limit_exceeded`: EXPLAIN cost above `max_cost`, too many statements.
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `feature_not_supported`: a form the proxy cannot check (dynamic SQL under table rules).
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `syntax_error`: the analyzer could not parse the statement and the policy rejects that.
pub const SYNTAX_ERROR: &str = "42601";

impl Refusal {
    pub(crate) fn new(sqlstate: &'static str, message: String) -> Refusal {
        Refusal { sqlstate, message: format!("pgcached: {message}"), policy: String::new(), rule: "" }
    }

    /// Name the policy and rule that refused.
    pub(crate) fn by(mut self, policy: &str, rule: &'static str) -> Refusal {
        self.policy = policy.to_string();
        self.rule = rule;
        self
    }
}
