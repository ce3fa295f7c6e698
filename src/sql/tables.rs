//! Table references: how a relation name written in SQL is folded and compared.
//!
//! Postgres folds unquoted identifiers to lower case and keeps quoted ones as written; a table
//! is compared by that folded form, with its schema when the statement wrote one.

use serde::Serialize;
use smol_str::SmolStr;
use sqlparser::ast::{Ident, ObjectName};
use std::fmt;

/// A relation as the statement names it, folded the way Postgres folds identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TableRef {
    /// The schema, when the statement qualified the name.
    pub schema: Option<SmolStr>,
    /// The relation name.
    pub name: SmolStr,
}

impl TableRef {
    /// A system catalog: `pg_catalog.*`, `information_schema.*`, or an unqualified `pg_*` name
    /// (`pg_catalog` comes first in every search path).
    pub fn is_system_catalog(&self) -> bool {
        match self.schema.as_deref() {
            Some(s) => s == "pg_catalog" || s == "information_schema",
            None => self.name.starts_with("pg_"),
        }
    }

    /// Builds a reference from a folded `schema.name` or `name` string (config lists use it).
    pub fn parse(s: &str) -> TableRef {
        match s.rsplit_once('.') {
            Some((schema, name)) => TableRef { schema: Some(schema.into()), name: name.into() },
            None => TableRef { schema: None, name: s.into() },
        }
    }

    /// Builds a reference from a parsed object name (the last two parts: a database prefix is
    /// dropped). Returns `None` for names that are not plain identifiers.
    /// In the session's own temporary schema: `pg_temp.x` (or `pg_temp_3.x`). Every session
    /// has its own, so the same name stands for different objects (or none) in each.
    pub fn is_temp_schema(&self) -> bool {
        self.schema.as_deref().is_some_and(|s| {
            s.strip_prefix("pg_temp").is_some_and(|n| n.is_empty() || n.strip_prefix('_').is_some_and(is_number))
        })
    }

    pub fn from_object_name(name: &ObjectName) -> Option<TableRef> {
        let parts: Vec<String> = name.0.iter().map(|p| p.as_ident().map(fold)).collect::<Option<_>>()?;
        match parts.as_slice() {
            [] => None,
            [n] => Some(TableRef { schema: None, name: n.into() }),
            [.., s, n] => Some(TableRef { schema: Some(s.into()), name: n.into() }),
        }
    }

    /// Whether `self` (from a statement) is the table `rule` names (from a config list). An
    /// unqualified name on either side matches any schema, so a rule for `users` also catches
    /// `public.users` and a rule for `public.users` also catches a bare `users`.
    pub fn matches(&self, rule: &TableRef) -> bool {
        self.name == rule.name
            && match (&self.schema, &rule.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Folds an identifier like Postgres: unquoted → lower case, quoted → as written.
pub fn fold(id: &Ident) -> String {
    if id.quote_style.is_some() { id.value.clone() } else { id.value.to_lowercase() }
}

/// Folds a dotted object name into `a.b.c`.
pub fn fold_name(name: &ObjectName) -> String {
    name.0.iter().map(|p| p.as_ident().map(fold).unwrap_or_else(|| p.to_string())).collect::<Vec<_>>().join(".")
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_schema_is_pg_temp_or_pg_temp_n() {
        for (name, temp) in [
            ("pg_temp.x", true),
            ("pg_temp_3.x", true),
            ("public.x", false),
            ("x", false),
            ("pg_temporary.x", false),
            ("pg_temp_.x", false),
            ("pg_toast_temp_3.x", false),
        ] {
            assert_eq!(TableRef::parse(name).is_temp_schema(), temp, "{name}");
        }
    }

    #[test]
    fn unqualified_rules_match_any_schema() {
        let t = TableRef::parse("public.users");
        assert!(t.matches(&TableRef::parse("users")));
        assert!(TableRef::parse("users").matches(&t));
        assert!(!t.matches(&TableRef::parse("other.users")));
        assert_eq!(t.to_string(), "public.users");
    }
}
