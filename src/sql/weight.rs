//! What an analysis holds in memory, for the memo's weigher (see `memo`): the heap behind
//! every field, from lengths and capacities, plus the structures themselves. Parts shared
//! with other analyses (a template's column uses, fingerprints statistics keep) are counted
//! in full: an over-estimate, never an under-estimate of what one entry keeps alive
//! (`tests/analysis_weight.rs` holds it between 1× and 2× of what a counting allocator sees an
//! analysis keep; it measures within 2–17 % above).

use std::mem::size_of;

use super::analyze::{Analysis, StatementAnalysis};
use super::rows::RowPins;
use super::settings::SettingChange;
use super::tables::TableRef;
use super::walk::ColumnUses;

/// Bytes an `Arc`'s counts add to what it points to.
const ARC_COUNTS: usize = 2 * size_of::<usize>();

/// The bytes `a` holds: itself and everything it owns.
pub fn analysis(a: &Analysis) -> usize {
    size_of::<Analysis>() + ARC_COUNTS + a.fingerprint.len() + ARC_COUNTS + vec(&a.statements, statement)
}

fn statement(s: &StatementAnalysis) -> usize {
    smol(&s.keyword)
        + s.parse_error.as_ref().map_or(0, String::capacity)
        + inline_tables(&s.tables_read)
        + inline_tables(&s.tables_written)
        + tables(&s.sequences_written)
        + tables(&s.temp_tables_created)
        + vec(&s.functions, |f| f.name.capacity())
        + vec(&s.settings, setting)
        + s.savepoint.as_ref().map_or(0, String::capacity)
        + size_of::<ColumnUses>()
        + ARC_COUNTS
        + columns(&s.columns)
        + s.rows.as_ref().map_or(0, rows)
        + s.fingerprint.len()
        + ARC_COUNTS
}

fn columns(c: &ColumnUses) -> usize {
    vec(&c.idents, |parts| vec(parts, String::capacity))
        + vec(&c.wildcards, |w| w.qualifier.as_ref().map_or(0, String::capacity) + tables(&w.tables))
        + vec(&c.aliases, |(alias, t)| alias.capacity() + table(t))
        + vec(&c.targets, |(t, column)| table(t) + column.capacity())
}

fn rows(r: &RowPins) -> usize {
    size_of::<RowPins>()
        + table(&r.table)
        + vec(&r.columns, |pin| {
            smol(&pin.column)
                + vec(&pin.values, |v| match v {
                    super::rows::Operand::Number(s) | super::rows::Operand::Str(s) => smol(s),
                    super::rows::Operand::Param(_) => 0,
                })
        })
}

fn setting(s: &SettingChange) -> usize {
    s.name.as_ref().map_or(0, String::capacity) + s.value.as_ref().map_or(0, String::capacity)
}

fn tables(v: &Vec<TableRef>) -> usize {
    vec(v, table)
}

/// A [`super::analyze::Tables`]: its buffer only when it spilled out of line.
fn inline_tables(v: &super::analyze::Tables) -> usize {
    let buffer = if v.spilled() { v.capacity() * size_of::<TableRef>() } else { 0 };
    buffer + v.iter().map(table).sum::<usize>()
}

fn table(t: &TableRef) -> usize {
    t.schema.as_ref().map_or(0, smol) + smol(&t.name)
}

/// What a short-string name owns: nothing when it is held inline.
fn smol(s: &smol_str::SmolStr) -> usize {
    if s.is_heap_allocated() { s.len() } else { 0 }
}

/// A vector's buffer and what each element owns.
fn vec<T>(v: &Vec<T>, owned: impl Fn(&T) -> usize) -> usize {
    v.capacity() * size_of::<T>() + v.iter().map(owned).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached;

    #[test]
    fn a_larger_statement_weighs_more_and_at_least_its_structures() {
        let small = analyze_uncached("SELECT 1");
        let large = analyze_uncached(
            "SELECT a.id, a.x, b.y, upper(b.z) FROM s.a a JOIN s.b b ON b.id = a.id WHERE a.id IN (1, 2, 3) AND b.k = 'v'",
        );
        assert!(analysis(&small) >= size_of::<Analysis>() + size_of::<StatementAnalysis>());
        assert!(analysis(&large) > analysis(&small) + 200, "{} vs {}", analysis(&large), analysis(&small));
    }
}
