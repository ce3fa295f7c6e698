//! Config types for the guard rails: `safety:` and `limit:` (global kill switches) and the
//! `policies:` list. The rules themselves are compiled and enforced in [`crate::sql::policy`].
//!
//! A session gets the first policy whose `user` and `database` (each optional) both match; an
//! entry with neither matches everyone, so put it last as the default. A session matching no
//! policy, or a policy with no rules, is not checked at all.

use serde::Deserialize;

/// `safety:` — the global switch for every policy rule except `limit`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// `false` turns every policy check off (statements, tables, columns, functions, cost).
    pub enabled: bool,
}
impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig { enabled: true }
    }
}

/// `limit:` — the global switch for LIMIT injection and capping.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// `false` turns every policy's `limit:` off.
    pub enabled: bool,
}
impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig { enabled: true }
    }
}

/// What to do with a statement the analyzer cannot parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnParseError {
    /// Refuse it (SQLSTATE 42601): fail closed. The default.
    #[default]
    Reject,
    /// Forward it unchecked (statement-kind rules still apply from its first keyword).
    Forward,
}

/// A policy's `limit:` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyLimitConfig {
    /// Add `LIMIT inject` to top-level, non-aggregated reads without LIMIT/FETCH.
    pub inject: Option<u64>,
    /// Cap an existing LIMIT above `max` (and LIMIT ALL, and `LIMIT $n` at Bind) to `max`; also
    /// the injected limit when `inject` is not set.
    pub max: Option<u64>,
    /// Send a NoticeResponse telling the client its result was limited.
    pub notice: bool,
    /// Limit reads of system catalogs only (`pg_catalog`, `information_schema`) too; by default
    /// they are left whole (metadata for psql, drivers, ORMs and BI tools).
    pub catalogs: bool,
    /// More schemas left whole like the system catalogs: a read whose every table is qualified
    /// with one of these (or is a system catalog) is not limited. Names as Postgres folds them
    /// (unquoted: lower case).
    pub exempt_schemas: Vec<String>,
}

/// One entry of `policies:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Name shown in refusals (`… is denied by policy "bi"`) and logs.
    pub name: String,
    /// Role name the policy applies to (exact match); absent = any user.
    pub user: Option<String>,
    /// Database the policy applies to (exact match); absent = any database.
    pub database: Option<String>,
    /// Refuse every statement that may write: DML, DDL, COPY FROM, SELECT INTO, writing
    /// functions (nextval, set_config…), dynamic SQL (DO, CALL, EXECUTE, query_to_xml…).
    pub read_only: bool,
    /// Statement kinds (`read`, `write`, `ddl`, `transaction`, `set`, `utility`, `unknown`) or
    /// leading keywords (`truncate`, `copy`, `vacuum`, `listen`…) to refuse.
    pub deny_statements: Vec<String>,
    /// If set, only these tables may be touched (`name`, `schema.name`, `schema.*`, `*`).
    pub allow_tables: Option<Vec<String>>,
    /// Tables that may not be touched (same patterns as `allow_tables`).
    pub deny_tables: Vec<String>,
    /// Columns that may not be read or written, as `table.column` or `schema.table.column`;
    /// enforced through `*`, `t.*`, whole-row references and every clause.
    pub deny_columns: Vec<String>,
    /// Extra functions to refuse (`name`, `schema.name`, `prefix*`), on top of the built-in list.
    pub deny_functions: Vec<String>,
    /// Keep the built-in denied functions (pg_read_file, lo_import, dblink*, …). Default true.
    pub default_deny_functions: Option<bool>,
    /// Refuse UPDATE and DELETE without WHERE.
    pub require_where: bool,
    /// Most statements allowed in one query string (1 = no multi-statement strings).
    pub max_statements: Option<usize>,
    /// What to do with statements the analyzer cannot parse: `reject` (default) or `forward`.
    pub on_parse_error: OnParseError,
    /// Refuse reads whose EXPLAIN total cost is above this.
    pub max_cost: Option<f64>,
    /// LIMIT injection / capping for this policy.
    pub limit: Option<PolicyLimitConfig>,
}

impl PolicyConfig {
    /// Whether the policy sets any rule (an empty policy checks nothing).
    pub fn has_rules(&self) -> bool {
        self.read_only
            || !self.deny_statements.is_empty()
            || self.allow_tables.is_some()
            || !self.deny_tables.is_empty()
            || !self.deny_columns.is_empty()
            || !self.deny_functions.is_empty()
            || self.require_where
            || self.max_statements.is_some()
            || self.max_cost.is_some()
            || self.limit.as_ref().is_some_and(|l| l.inject.is_some() || l.max.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_policy_deserializes() {
        let y = r#"
name: bi
user: metabase
read_only: true
deny_statements: [ddl, copy]
allow_tables: ["public.*", "pg_catalog.*"]
deny_tables: [secrets]
deny_columns: [users.ssn]
deny_functions: ["my_schema.*"]
require_where: true
max_statements: 1
on_parse_error: forward
max_cost: 100000
limit: { inject: 1000, max: 10000, notice: true }
"#;
        let p: PolicyConfig = serde_yaml::from_str(y).expect("valid policy");
        assert!(p.has_rules());
        assert_eq!(p.on_parse_error, OnParseError::Forward);
        assert_eq!(p.limit.unwrap().max, Some(10000));
    }

    #[test]
    fn a_policy_with_only_a_name_has_no_rules() {
        let p: PolicyConfig = serde_yaml::from_str("name: app\nuser: app").expect("valid");
        assert!(!p.has_rules());
        assert!(serde_yaml::from_str::<PolicyConfig>("name: x\nreadonly: true").is_err());
    }
}
