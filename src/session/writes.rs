//! What committing a transaction must invalidate: the tables its statements wrote, by rows
//! where they pinned them, and whether something the proxy cannot name was written (see `state`
//! for when it is owed, `caching` for how it is invalidated).

use smol_str::SmolStr;

use crate::cache::rowkey::PinValue;
use crate::sql::TableRef;

/// What committing a statement's transaction must invalidate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Tables written (unqualified names: see `cache::names`).
    pub tables: Vec<SmolStr>,
    /// Of `tables`, those whose written rows the statements pin; the others are invalidated as
    /// a whole.
    pub rows: Vec<RowsWritten>,
    /// Something the proxy cannot name may have been written: the session's whole database.
    pub database: bool,
    /// DDL, privileges, roles: every database.
    pub all: bool,
    /// What new sessions start with changed (`ALTER DATABASE/ROLE … SET`, with `all`): pooled
    /// server connections logged in before it are retired (`sql::login_defaults`).
    pub login_defaults: bool,
}

/// The rows a transaction wrote in one table, by the values of the columns its statements
/// pinned (`sql::rows`, parameters bound): every row written, before and after, holds one of
/// them. Columns not listed may have changed anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsWritten {
    pub table: TableRef,
    pub columns: Vec<(SmolStr, Vec<PinValue>)>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && !self.database && !self.all
    }

    /// Add what `other` writes. A table written by rows in both stays so, by the columns both
    /// pin (with the values of both); written as a whole by either, it is so.
    pub fn merge(&mut self, other: &Writes) {
        if *self == Writes::default() {
            self.absorb(other.clone());
            return;
        }
        let before = self.tables.clone();
        for t in &other.tables {
            if !self.tables.contains(t) {
                self.tables.push(t.clone());
            }
        }
        let by_rows = |w: &[RowsWritten], name: &str| w.iter().position(|r| r.table.name == *name);
        let mut rows = Vec::new();
        for t in &self.tables {
            let mine = by_rows(&self.rows, t).map(|i| &self.rows[i]);
            let theirs = by_rows(&other.rows, t).map(|i| &other.rows[i]);
            let merged = match (before.contains(t), mine, other.tables.contains(t), theirs) {
                (true, Some(a), true, Some(b)) if a.table == b.table => {
                    let columns = a
                        .columns
                        .iter()
                        .filter_map(|(c, va)| {
                            let (_, vb) = b.columns.iter().find(|(cb, _)| cb == c)?;
                            Some((c.clone(), va.iter().chain(vb).cloned().collect()))
                        })
                        .collect::<Vec<_>>();
                    (!columns.is_empty()).then(|| RowsWritten { table: a.table.clone(), columns })
                }
                (true, Some(a), false, _) => Some(a.clone()),
                (false, _, true, Some(b)) => Some(b.clone()),
                _ => None,
            };
            rows.extend(merged);
        }
        self.rows = rows;
        self.database |= other.database;
        self.all |= other.all;
        self.login_defaults |= other.login_defaults;
    }

    /// [`Self::merge`] of a statement's writes the caller no longer needs: the first (every
    /// autocommit statement's) is moved in rather than copied.
    pub fn absorb(&mut self, other: Writes) {
        if *self != Writes::default() {
            return self.merge(&other);
        }
        *self = other;
        self.tables.sort_unstable();
        self.tables.dedup();
    }
}
