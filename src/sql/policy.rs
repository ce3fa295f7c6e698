//! Policies: compiled from `policies:`, matched per session (first match by user and/or
//! database), and checked against every statement's [`Analysis`].
//!
//! The global switches `safety.enabled` / `limit.enabled` are applied at compile time: with
//! safety off a policy keeps only its `limit`, with limit off it loses its `limit`. A policy
//! with no rules checks nothing, so an app under it sees no difference.

use super::analyze::{Analysis, StatementAnalysis, Wrapper};
use super::columns::denied_column;
use super::functions::{self, DEFAULT_DENIED, LOCKED_SETTINGS};
use super::kind::{StatementKind, TxKind};
use super::lexing_guard;
use super::limit::LimitRule;
use super::refusal::{FEATURE_NOT_SUPPORTED, INSUFFICIENT_PRIVILEGE, PROGRAM_LIMIT_EXCEEDED, Refusal, SYNTAX_ERROR};
use super::settings::SetVia;
use super::tables::TableRef;
use crate::config::policy::{LimitConfig, OnParseError, PolicyConfig, SafetyConfig};
use std::sync::Arc;

/// A configuration error in `policies:`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// An entry without a name.
    #[error("policies[{0}].name: a policy needs a name")]
    MissingName(usize),
    /// An unknown statement kind or keyword in `deny_statements`.
    #[error(
        "policies[{index}].deny_statements: {value:?} is neither a statement kind (read, write, ddl, transaction, set, utility, unknown) nor a statement's first keyword"
    )]
    UnknownKind { index: usize, value: String },
    /// A `deny_columns` entry that is not `table.column`.
    #[error("policies[{index}].deny_columns: {value:?} is not table.column")]
    BadColumn { index: usize, value: String },
    /// `limit.inject` or `limit.max` is zero, or inject above max.
    #[error("policies[{index}].limit: {why}")]
    BadLimit { index: usize, why: &'static str },
    /// Two entries with one name (refusals and logs name the policy).
    #[error("policies[{index}].name: {name:?} is already the name of policies[{first}]")]
    DuplicateName { index: usize, first: usize, name: String },
}

const KINDS: &[&str] = &["read", "write", "ddl", "transaction", "set", "utility", "unknown"];

/// The words a PostgreSQL statement may start with (`deny_statements` takes these besides the
/// kinds): a typo such as `dll` is refused rather than silently never matching.
const STATEMENT_KEYWORDS: &[&str] = &[
    "abort",
    "alter",
    "analyze",
    "analyse",
    "begin",
    "call",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "commit",
    "copy",
    "create",
    "deallocate",
    "declare",
    "delete",
    "discard",
    "do",
    "drop",
    "end",
    "execute",
    "explain",
    "fetch",
    "grant",
    "import",
    "insert",
    "listen",
    "load",
    "lock",
    "merge",
    "move",
    "notify",
    "prepare",
    "reassign",
    "refresh",
    "reindex",
    "release",
    "reset",
    "revoke",
    "rollback",
    "savepoint",
    "security",
    "select",
    "set",
    "show",
    "start",
    "table",
    "truncate",
    "unlisten",
    "update",
    "vacuum",
    "values",
    "with",
];

/// A table pattern from config: `name`, `schema.name`, `schema.*`, `*`.
#[derive(Debug, Clone)]
struct TablePattern {
    schema: Option<smol_str::SmolStr>,
    name: Option<smol_str::SmolStr>,
}

impl TablePattern {
    fn parse(s: &str) -> TablePattern {
        let t = TableRef::parse(s);
        TablePattern { schema: t.schema, name: (t.name != "*").then_some(t.name) }
    }
    fn matches(&self, t: &TableRef) -> bool {
        match (&self.name, &self.schema) {
            (None, None) => true,
            // An unqualified name is taken to live in `public`, or in `pg_catalog` for `pg_*`.
            (None, Some(s)) => match t.schema.as_deref() {
                Some(ts) => ts == s,
                None => s == "public" || (s == "pg_catalog" && t.name.starts_with("pg_")),
            },
            (Some(n), schema) => t.matches(&TableRef { schema: schema.clone(), name: n.clone() }),
        }
    }
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    user: Option<String>,
    database: Option<String>,
    guarded: bool,
    read_only: bool,
    deny_statements: Vec<String>,
    allow_tables: Option<Vec<TablePattern>>,
    deny_tables: Vec<TablePattern>,
    deny_columns: Vec<(TableRef, String)>,
    deny_functions: Vec<String>,
    require_where: bool,
    max_statements: Option<usize>,
    on_parse_error: OnParseError,
    max_cost: Option<f64>,
    limit: Option<LimitRule>,
    notice: bool,
}

/// All policies, in config order.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    list: Vec<Arc<Policy>>,
}

impl Policies {
    /// Compiles `policies:` with the global switches applied.
    pub fn from_config(
        safety: &SafetyConfig,
        limit: &LimitConfig,
        list: &[PolicyConfig],
    ) -> Result<Policies, PolicyError> {
        for (index, c) in list.iter().enumerate() {
            if let Some(first) = list[..index].iter().position(|p| !c.name.is_empty() && p.name == c.name) {
                return Err(PolicyError::DuplicateName { index, first, name: c.name.clone() });
            }
        }
        let list = list
            .iter()
            .enumerate()
            .map(|(i, c)| Policy::compile(i, c, safety.enabled, limit.enabled).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Policies { list })
    }

    /// Every policy, in config order.
    pub fn all(&self) -> &[Arc<Policy>] {
        &self.list
    }

    /// The policy for a session: the first whose `user` and `database` match; `None` = no checks.
    pub fn for_session(&self, user: &str, database: &str) -> Option<Arc<Policy>> {
        self.list
            .iter()
            .find(|p| {
                p.user.as_deref().is_none_or(|u| u == user) && p.database.as_deref().is_none_or(|d| d == database)
            })
            .filter(|p| !p.is_empty())
            .cloned()
    }
}

impl Policy {
    fn compile(index: usize, c: &PolicyConfig, safety: bool, limit_on: bool) -> Result<Policy, PolicyError> {
        if c.name.is_empty() {
            return Err(PolicyError::MissingName(index));
        }
        let mut deny_statements = Vec::new();
        for k in &c.deny_statements {
            let k = k.to_ascii_lowercase();
            if !KINDS.contains(&k.as_str()) && !STATEMENT_KEYWORDS.contains(&k.as_str()) {
                return Err(PolicyError::UnknownKind { index, value: k });
            }
            deny_statements.push(k);
        }
        let mut deny_columns = Vec::new();
        for col in &c.deny_columns {
            let lower = col.to_ascii_lowercase();
            let Some((table, column)) = lower.rsplit_once('.') else {
                return Err(PolicyError::BadColumn { index, value: col.clone() });
            };
            deny_columns.push((TableRef::parse(table), column.to_string()));
        }
        let limit = c.limit.as_ref().filter(|_| limit_on).and_then(|l| {
            (l.inject.is_some() || l.max.is_some()).then_some(LimitRule {
                inject: l.inject,
                max: l.max,
                catalogs: l.catalogs,
                exempt_schemas: l.exempt_schemas.clone(),
            })
        });
        if let Some(l) = &limit {
            if l.inject == Some(0) || l.max == Some(0) {
                return Err(PolicyError::BadLimit { index, why: "inject and max must be at least 1" });
            }
            if let (Some(inject), Some(max)) = (l.inject, l.max)
                && inject > max
            {
                return Err(PolicyError::BadLimit { index, why: "inject must not be above max (max caps it)" });
            }
        }
        let safety_rules = safety && c.has_rules();
        let mut deny_functions: Vec<String> = c.deny_functions.iter().map(|f| f.to_ascii_lowercase()).collect();
        if c.default_deny_functions.unwrap_or(true) {
            deny_functions.extend(DEFAULT_DENIED.iter().map(|s| s.to_string()));
        }
        let p = Policy {
            name: c.name.clone(),
            user: c.user.clone(),
            database: c.database.clone(),
            guarded: safety_rules || limit.is_some(),
            read_only: safety && c.read_only,
            deny_statements: if safety { deny_statements } else { vec![] },
            allow_tables: c
                .allow_tables
                .as_ref()
                .filter(|_| safety)
                .map(|v| v.iter().map(|s| TablePattern::parse(&s.to_ascii_lowercase())).collect()),
            deny_tables: if safety {
                c.deny_tables.iter().map(|s| TablePattern::parse(&s.to_ascii_lowercase())).collect()
            } else {
                vec![]
            },
            deny_columns: if safety { deny_columns } else { vec![] },
            deny_functions: if safety_rules { deny_functions } else { vec![] },
            require_where: safety && c.require_where,
            max_statements: c.max_statements.filter(|_| safety),
            on_parse_error: c.on_parse_error,
            max_cost: c.max_cost.filter(|_| safety),
            notice: c.limit.as_ref().is_some_and(|l| l.notice) && limit.is_some(),
            limit,
        };
        Ok(p)
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// No rules (after the global switches): nothing is checked or rewritten.
    pub fn is_empty(&self) -> bool {
        !self.guarded
    }
    /// The LIMIT rule, if any (for [`super::limit::rewrite`]).
    pub fn limit_rule(&self) -> Option<&LimitRule> {
        self.limit.as_ref()
    }
    /// Whether to send a NoticeResponse when a result is limited.
    pub fn limit_notice(&self) -> bool {
        self.notice
    }
    /// `read_only`: the session is also read-only on the server (`default_transaction_read_only`),
    /// so a write the analysis cannot see (inside a function) is refused by Postgres.
    pub fn read_only(&self) -> bool {
        self.read_only
    }
    /// `max_cost`, checked through [`super::cost::check_cost`].
    pub fn max_cost(&self) -> Option<f64> {
        self.max_cost
    }

    fn refuse(&self, rule: &'static str, sqlstate: &'static str, what: String) -> Refusal {
        Refusal::new(sqlstate, format!("{what} by policy \"{}\"", self.name)).by(&self.name, rule)
    }

    /// Startup parameters (name, value) of a session under this policy: lexing settings refused.
    pub fn check_startup_params<N: AsRef<str>, V: AsRef<str>>(&self, params: &[(N, V)]) -> Result<(), Refusal> {
        if self.is_empty() {
            return Ok(());
        }
        lexing_guard::check_startup_params(params)
            .map_err(|why| self.refuse("settings", INSUFFICIENT_PRIVILEGE, format!("{why}; it is denied")))
    }

    /// Checks every statement of a query string (also use it for each Parse), with unqualified
    /// table names taken to live in `public` (`pg_catalog` for `pg_*`).
    pub fn check(&self, analysis: &Analysis) -> Result<(), Refusal> {
        self.check_with(analysis, &|_| None)
    }

    /// Whether table rules apply: then an unqualified name should be resolved with the
    /// session's real `search_path` ([`Policy::check_with`]).
    pub fn has_table_rules(&self) -> bool {
        self.allow_tables.is_some() || !self.deny_tables.is_empty()
    }

    /// [`Policy::check`], with `schema_of` telling the schema an unqualified table name resolves
    /// to in the session (`None`: not known or no such table; then as [`Policy::check`]).
    pub fn check_with(&self, analysis: &Analysis, schema_of: &dyn Fn(&str) -> Option<String>) -> Result<(), Refusal> {
        if self.is_empty() {
            return Ok(());
        }
        if let Some(max) = self.max_statements
            && analysis.statements.len() > max
        {
            return Err(self.refuse(
                "max_statements",
                PROGRAM_LIMIT_EXCEEDED,
                format!("{} statements in one query string exceed max_statements {max}", analysis.statements.len()),
            ));
        }
        analysis.statements.iter().try_for_each(|s| self.check_statement(s, schema_of))
    }

    fn check_statement(
        &self,
        s: &StatementAnalysis,
        schema_of: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), Refusal> {
        let keyword = s.keyword.as_str();
        let kinds = [Some(s.kind), s.inner_kind];
        for k in kinds.iter().flatten() {
            if self.deny_statements.iter().any(|d| d == k.config_name() || d == keyword) {
                return Err(self.refuse(
                    "deny_statements",
                    INSUFFICIENT_PRIVILEGE,
                    format!("{} statement ({}) is denied", keyword.to_uppercase(), k.config_name()),
                ));
            }
        }
        if let Some(err) = &s.parse_error
            && self.on_parse_error == OnParseError::Reject
        {
            return Err(self.refuse(
                "on_parse_error",
                SYNTAX_ERROR,
                format!("statement could not be analyzed ({err}) and is rejected"),
            ));
        }
        // A DO block runs code none of the rules can see (functions included): never under a
        // guarded policy.
        if keyword == "do" {
            return Err(self.refuse("do", FEATURE_NOT_SUPPORTED, "DO blocks cannot be checked; DO is denied".into()));
        }
        // Server-side files, programs and libraries are outside any table rule.
        if s.copy_server_side {
            return Err(self.refuse(
                "server_files",
                INSUFFICIENT_PRIVILEGE,
                "COPY to or from a server file or program is denied".into(),
            ));
        }
        if keyword == "load" {
            return Err(self.refuse("server_files", INSUFFICIENT_PRIVILEGE, "LOAD is denied".into()));
        }
        if self.read_only {
            self.check_stays_read_only(s)?;
        }
        // EXECUTE runs a prepared statement this policy already checked at PREPARE (or Parse).
        if self.read_only && keyword != "execute" {
            if s.locking {
                return Err(self.refuse(
                    "read_only",
                    INSUFFICIENT_PRIVILEGE,
                    "SELECT FOR UPDATE/SHARE locks rows; it is denied (read_only)".into(),
                ));
            }
            let inner_writes = matches!(s.wrapper, Some(Wrapper::Prepare | Wrapper::Declare))
                && matches!(s.inner_kind, Some(StatementKind::Write | StatementKind::Ddl | StatementKind::Unknown));
            if s.may_write() || inner_writes {
                return Err(self.refuse(
                    "read_only",
                    INSUFFICIENT_PRIVILEGE,
                    format!("{} may write; it is denied (read_only)", keyword.to_uppercase()),
                ));
            }
        }
        if s.dynamic_sql
            && (self.allow_tables.is_some() || !self.deny_tables.is_empty() || !self.deny_columns.is_empty())
        {
            return Err(self.refuse(
                "dynamic_sql",
                FEATURE_NOT_SUPPORTED,
                "SQL executed from text (DO, EXECUTE, CALL, query_to_xml, dblink) cannot be checked; it is denied"
                    .into(),
            ));
        }
        for written in s.tables() {
            // Messages name the table as the statement wrote it; the rules see where it is.
            let t = match written.schema.as_ref().map_or_else(|| schema_of(&written.name), |_| None) {
                Some(schema) => &TableRef { schema: Some(schema.into()), name: written.name.clone() },
                None => written,
            };
            if self.deny_tables.iter().any(|p| p.matches(t)) {
                return Err(self.refuse(
                    "deny_tables",
                    INSUFFICIENT_PRIVILEGE,
                    format!("table \"{written}\" is denied"),
                ));
            }
            if let Some(allow) = &self.allow_tables
                && !allow.iter().any(|p| p.matches(t))
            {
                return Err(self.refuse(
                    "allow_tables",
                    INSUFFICIENT_PRIVILEGE,
                    format!("table \"{written}\" is not in allow_tables; it is denied"),
                ));
            }
        }
        if let Some((table, col)) = denied_column(s, &self.deny_columns) {
            return Err(self.refuse(
                "deny_columns",
                INSUFFICIENT_PRIVILEGE,
                format!("column \"{table}.{col}\" is denied"),
            ));
        }
        for f in &s.functions {
            if self.deny_functions.iter().any(|p| functions::matches_pattern(p, &f.name)) {
                return Err(self.refuse(
                    "deny_functions",
                    INSUFFICIENT_PRIVILEGE,
                    format!("function \"{}\" is denied", f.name),
                ));
            }
        }
        // `SET SESSION CHARACTERISTICS` (followed as the `default_transaction_*` settings): what
        // it may not do is `check_stays_read_only`'s to say.
        let characteristics = s.kind == StatementKind::Transaction(TxKind::SetCharacteristics);
        for c in s.settings.iter().filter(|_| !characteristics) {
            let Some(name) = &c.name else {
                if c.via == SetVia::SetConfig {
                    return Err(self.refuse(
                        "settings",
                        INSUFFICIENT_PRIVILEGE,
                        "set_config() with a computed setting name is denied".into(),
                    ));
                }
                continue;
            };
            if c.via == SetVia::Reset {
                continue;
            }
            if c.via == SetVia::SetConfig && c.value.is_none() {
                if lexing_guard::violation(name, "?").is_some() {
                    return Err(self.refuse(
                        "settings",
                        INSUFFICIENT_PRIVILEGE,
                        format!("set_config('{name}', <computed>) is denied"),
                    ));
                }
            } else if let Some(why) = lexing_guard::violation(name, c.value.as_deref().unwrap_or_default()) {
                return Err(self.refuse("settings", INSUFFICIENT_PRIVILEGE, format!("{why}; it is denied")));
            }
            if LOCKED_SETTINGS.contains(&name.as_str())
                && !(name == "client_encoding" || name == "standard_conforming_strings")
            {
                return Err(self.refuse(
                    "settings",
                    INSUFFICIENT_PRIVILEGE,
                    format!("changing setting \"{name}\" is denied"),
                ));
            }
        }
        if self.require_where && s.missing_where {
            return Err(self.refuse(
                "require_where",
                INSUFFICIENT_PRIVILEGE,
                format!("{} without WHERE is denied (require_where)", keyword.to_uppercase()),
            ));
        }
        Ok(())
    }
}

impl Policy {
    /// Under `read_only` the server connection itself is read-only
    /// (`default_transaction_read_only = on`, set by the session): nothing may turn that off —
    /// no `RESET ALL`, `DISCARD ALL`, `RESET default_transaction_read_only`, nor a transaction
    /// or session characteristic `READ WRITE`. (`SET` and `set_config` of the setting are
    /// refused for every guarded policy.)
    fn check_stays_read_only(&self, s: &StatementAnalysis) -> Result<(), Refusal> {
        let words = s.fingerprint.to_ascii_lowercase();
        let read_write = matches!(s.kind, StatementKind::Transaction(TxKind::Begin | TxKind::SetCharacteristics))
            && words.contains("read write");
        let discard_all = s.keyword == "discard" && words.contains("all");
        let resets = s.settings.iter().any(|c| {
            c.via == SetVia::Reset
                && c.name
                    .as_deref()
                    .is_none_or(|n| n == "default_transaction_read_only" || n == "transaction_read_only")
        });
        if read_write || discard_all || resets {
            let what = s.keyword.to_uppercase();
            return Err(self.refuse(
                "read_only",
                INSUFFICIENT_PRIVILEGE,
                format!("{what} would make the session writable; it is denied (read_only)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
