//! From decoded changes to invalidations: the relation map (relation id → table, columns,
//! key) that Relation messages keep current, and one committed transaction's footprint,
//! applied to the cache once, at its Commit.
//!
//! Precision is what the stream allows. A column whose values a change carries (an inserted
//! or new row; an old row under `REPLICA IDENTITY FULL`; the identity's columns of an old row
//! under `DEFAULT`/`INDEX`) is bumped at those values only; a column it does not carry (the
//! old non-key columns under `DEFAULT`, an unchanged TOAST value, a type row keys do not
//! support) is bumped wide — every value of it — which is what entries pinned on it need. A
//! NULL pins no equality read, so it bumps nothing. `TRUNCATE` is table level. A change to a
//! relation the stream never described, which should not happen, flushes the database.

use std::collections::HashMap;

use super::decode::{OldRow, Relation, Value};
use crate::cache::rowkey::{ColumnKeys, ColumnKind, PinValue, key};
use crate::cache::versions::RowWrite;
use crate::cache::{InvalidationCause, ResultCache};

/// Past this many distinct values of one column in one transaction, the column is bumped wide
/// (bounded memory for bulk loads; the over-invalidation is what a bulk load costs anyway).
const MAX_VALUES_PER_COLUMN: usize = 4096;

/// A relation as the stream last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    /// `"schema"."name"`, as the cache's version keys read it.
    table: String,
    /// Per column: its name, how its values compare (`None`: row keys do not support the
    /// type), whether the replica identity holds it.
    columns: Vec<(String, Option<ColumnKind>, bool)>,
}

/// Relation id → what it is, per database followed (pgoutput describes each relation before
/// its first change on every connection, and again after DDL or any cache invalidation).
#[derive(Debug, Default)]
pub struct RelationMap {
    by_id: HashMap<u32, Known>,
}

impl RelationMap {
    /// Learn `rel`, and say how it compares with what was known.
    pub fn learn(&mut self, rel: &Relation) -> Learned {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let known = Known {
            table: format!("{}.{}", quote(&rel.schema), quote(&rel.name)),
            columns: rel.columns.iter().map(|c| (c.name.clone(), kind(c.type_oid), c.key)).collect(),
        };
        match self.by_id.insert(rel.id, known.clone()) {
            None => Learned::New,
            Some(old) if old == known => Learned::Same,
            Some(_) => Learned::Changed,
        }
    }

    /// The `"schema"."name"` of relation `id`.
    pub fn table(&self, id: u32) -> Option<&str> {
        self.by_id.get(&id).map(|k| k.table.as_str())
    }
}

/// What a Relation message taught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// First described on this connection: it may have changed (DDL around the proxy) since
    /// answers reading it were filled, and nothing can tell.
    New,
    /// Described again (pgoutput does so after any cache invalidation of the relation), same.
    Same,
    /// Its name or columns changed: DDL around the proxy.
    Changed,
}

/// How values of a column of type `oid` compare, as the catalog's row columns classify them
/// (`int2`/`int4`/`int8`, `uuid`, `text`/`varchar`).
fn kind(oid: u32) -> Option<ColumnKind> {
    match oid {
        20 | 21 | 23 => Some(ColumnKind::Int),
        2950 => Some(ColumnKind::Uuid),
        25 | 1043 => Some(ColumnKind::Text),
        _ => None,
    }
}

/// What one transaction changed, collected until its Commit.
#[derive(Debug, Default)]
pub struct Footprint {
    /// Per table: per column, the keys of the values written there (`None`: wide).
    rows: HashMap<String, HashMap<String, Option<Vec<u64>>>>,
    truncated: Vec<String>,
    /// A change to a relation the stream never described.
    unknown: bool,
    changes: u64,
}

/// How much of a row a change carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carried {
    /// Every column (NULL means NULL).
    Whole,
    /// Only the replica identity's columns.
    Key,
}

impl Footprint {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.truncated.is_empty() && !self.unknown
    }

    /// Row changes seen (for the stream's counters).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn insert(&mut self, map: &RelationMap, relation: u32, new: &[Value<'_>]) {
        self.row(map, relation, new, Carried::Whole);
    }

    pub fn update(&mut self, map: &RelationMap, relation: u32, old: Option<&OldRow<'_>>, new: &[Value<'_>]) {
        self.row(map, relation, new, Carried::Whole);
        match old {
            Some(old) => self.old(map, relation, old),
            // The identity did not change: the new row holds its old values; the rest of the
            // old row is not sent.
            None => self.row(map, relation, new, Carried::Key),
        }
    }

    pub fn delete(&mut self, map: &RelationMap, relation: u32, old: &OldRow<'_>) {
        self.old(map, relation, old);
    }

    pub fn truncate(&mut self, map: &RelationMap, relations: &[u32]) {
        for id in relations {
            match map.table(*id) {
                Some(t) => self.truncated.push(t.to_owned()),
                None => self.unknown = true,
            }
        }
        self.changes += 1;
    }

    fn old(&mut self, map: &RelationMap, relation: u32, old: &OldRow<'_>) {
        match old {
            OldRow::Key(values) => self.row(map, relation, values, Carried::Key),
            OldRow::Full(values) => self.row(map, relation, values, Carried::Whole),
        }
    }

    fn row(&mut self, map: &RelationMap, relation: u32, values: &[Value<'_>], carried: Carried) {
        self.changes += 1;
        let Some(known) = map.by_id.get(&relation) else {
            self.unknown = true;
            return;
        };
        let table = self.rows.entry(known.table.clone()).or_default();
        for (i, (name, kind, in_key)) in known.columns.iter().enumerate() {
            let Some(kind) = kind else { continue };
            let slot = table.entry(name.clone()).or_insert_with(|| Some(Vec::new()));
            let Some(keys) = slot else { continue };
            let value = if carried == Carried::Key && !in_key { None } else { values.get(i) };
            let k = match value {
                Some(Value::Null) => continue,
                Some(Value::Text(v)) => std::str::from_utf8(v).ok().and_then(|s| key(*kind, &PinValue::Str(s.into()))),
                Some(Value::Unchanged) | None => None,
            };
            match k {
                Some(k) if keys.len() < MAX_VALUES_PER_COLUMN => keys.push(k),
                _ => *slot = None,
            }
        }
    }

    /// Invalidate what the transaction changed in `database`'s cached answers.
    pub fn apply(self, cache: &ResultCache, database: &str) {
        let cause = InvalidationCause::Replication;
        if self.unknown {
            cache.flush_database(database, cause);
            return;
        }
        if !self.truncated.is_empty() {
            cache.invalidate_tables(database, self.truncated.iter().map(String::as_str), cause);
        }
        if self.rows.is_empty() {
            return;
        }
        let columns: Vec<(&String, ColumnKeys)> = self
            .rows
            .iter()
            .map(|(table, cols)| {
                let exact = cols.iter().filter_map(|(c, v)| Some((c.as_str().into(), v.clone()?))).collect();
                (table, exact)
            })
            .collect();
        let writes: Vec<RowWrite<'_>> =
            columns.iter().map(|(table, cols)| RowWrite { table: table.as_str(), columns: cols.as_slice() }).collect();
        cache.invalidate_rows_by(database, &writes, cause);
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
