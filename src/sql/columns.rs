//! The `deny_columns` rule: finds a use of a denied `table.column` in a statement, through
//! plain and qualified references, `*` and `t.*`, whole-row references (`row_to_json(t)`,
//! `SELECT t FROM t`), and write targets (INSERT column lists, UPDATE SET).
//!
//! It is deliberately conservative: an unqualified column with a denied name counts whenever the
//! statement touches the denied table, even if another table in scope has a column of that name.
//! Views that expose the column under another name are out of its reach (deny the view).

use super::analyze::StatementAnalysis;
use super::tables::TableRef;
use std::collections::HashSet;

/// The first denied `(table, column)` the statement uses, if any.
pub fn denied_column<'a>(s: &StatementAnalysis, denied: &'a [(TableRef, String)]) -> Option<(&'a TableRef, &'a str)> {
    let uses = &s.columns;
    for (table, col) in denied {
        if !s.tables().any(|t| t.matches(table)) {
            continue;
        }
        // Names that refer to the table in this statement: its own name and its aliases (a set,
        // so a statement with many aliases and identifiers stays linear).
        let names: HashSet<&str> = std::iter::once(table.name.as_str())
            .chain(uses.aliases.iter().filter(|(_, t)| t.matches(table)).map(|(a, _)| a.as_str()))
            .collect();
        let refers = |q: &str| names.contains(q);
        let hit = uses.idents.iter().any(|parts| match parts.as_slice() {
            [c] => c == col || refers(c),
            [.., q, c] => c == col && refers(q),
            [] => false,
        }) || uses.wildcards.iter().any(|w| match &w.qualifier {
            None => w.tables.iter().any(|t| t.matches(table)),
            Some(q) => refers(q),
        }) || uses.targets.iter().any(|(t, c)| c == col && t.matches(table));
        if hit {
            return Some((table, col));
        }
    }
    None
}
