//! Which rows a statement reads or changes, where its text pins them by equality: the finer
//! grain of cache invalidation (see `cache::row_versions`).
//!
//! A read `SELECT … FROM t WHERE id = 5 AND …` sees only rows of `t` whose `id` is 5; a write
//! `UPDATE t SET x = 1 WHERE id IN (5, 6)` changes only rows whose `id` is 5 or 6, before and
//! after. Only shapes whose meaning is certain from the text alone are pinned: one plain table,
//! no joins, no subqueries, top-level `AND`ed `column = value` / `column IN (values)`, values
//! that are literals or parameters. Whether a value compares as the text says depends on the
//! column's type and collation, which the catalog knows (`cache::rowkey`); everything else is
//! `None` here, and its callers fall back to table level.

use std::ops::ControlFlow;

use serde::Serialize;
use smol_str::SmolStr;
use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, ConflictTarget, Expr, FromTable, ObjectName, OnConflictAction, OnInsert, Query,
    SetExpr, Statement, TableFactor, TableObject, TableWithJoins, UnaryOperator, Value, Visit, Visitor,
};

use super::tables::{TableRef, fold};

/// A value a pin compares a column with, as the statement wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Operand {
    /// A numeric literal, sign included (`-5`).
    Number(SmolStr),
    /// A plain `'…'` literal, quotes removed (type decided by the column).
    Str(SmolStr),
    /// Bind parameter `$n` (1-based).
    Param(usize),
}

/// One column a statement pins: its rows all have one of `values` there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnPin {
    /// The column, folded as Postgres folds identifiers.
    pub column: SmolStr,
    pub values: Vec<Operand>,
}

/// The rows of one table a statement depends on (a read) or changes (a write: before and after
/// the change), by the columns it pins. Columns not listed may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowPins {
    pub table: TableRef,
    pub columns: Vec<ColumnPin>,
}

/// The pins of a read: a single SELECT of plain tables with a WHERE clause, and no subquery or
/// CTE that could see other rows. With joins, the first table whose columns the WHERE pins
/// (qualified by its name or alias: an unqualified column could be any table's) drives: the
/// read depends on its pinned rows and on the other tables as a whole. A table named twice
/// (a self-join) is not pinned: one of its names may see any row.
pub fn read_pins(stmt: &Statement) -> Option<RowPins> {
    let Statement::Query(q) = stmt else { return None };
    if q.with.is_some() || count_queries(stmt) != 1 {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else { return None };
    let mut targets = Vec::new();
    for from in &sel.from {
        targets.push(Target::of_factor(&from.relation)?);
        for join in &from.joins {
            targets.push(Target::of_factor(&join.relation)?);
        }
    }
    let filter = sel.selection.as_ref()?;
    let qualified_only = targets.len() > 1;
    targets.iter().enumerate().find_map(|(i, target)| {
        let named_twice = targets.iter().enumerate().any(|(j, o)| j != i && o.table.name == target.table.name);
        let pins = target.pins(filter, qualified_only);
        (!named_twice && !pins.is_empty()).then(|| RowPins { table: target.table.clone(), columns: pins })
    })
}

/// The pins of a write: `INSERT … VALUES` (with `ON CONFLICT (columns)` at most), `UPDATE` and
/// `DELETE` of one table without FROM / USING.
pub fn write_pins(stmt: &Statement) -> Option<RowPins> {
    let pins = match stmt {
        Statement::Insert(i) => insert_pins(i)?,
        Statement::Update(u) => {
            if u.from.is_some() {
                return None;
            }
            let target = Target::of(&u.table)?;
            let mut pins = target.pins(u.selection.as_ref()?, false);
            for a in &u.assignments {
                match &a.target {
                    AssignmentTarget::ColumnName(name) => {
                        let column = last_folded(name)?;
                        // The rows move: the new value counts too; an expression can be anything.
                        match operand(&a.value) {
                            Some(v) => {
                                pins.iter_mut().filter(|p| p.column == column).for_each(|p| p.values.push(v.clone()))
                            }
                            None => pins.retain(|p| p.column != column),
                        }
                    }
                    AssignmentTarget::Tuple(names) => {
                        for name in names {
                            let column = last_folded(name)?;
                            pins.retain(|p| p.column != column);
                        }
                    }
                }
            }
            RowPins { table: target.table, columns: pins }
        }
        Statement::Delete(d) => {
            if !d.tables.is_empty() || d.using.is_some() {
                return None;
            }
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
            let [from] = from.as_slice() else { return None };
            let target = Target::of(from)?;
            RowPins { columns: target.pins(d.selection.as_ref()?, false), table: target.table }
        }
        _ => return None,
    };
    (!pins.columns.is_empty()).then_some(pins)
}

/// `INSERT INTO t (columns) VALUES (…), (…)`: each column's values over the rows, where every row
/// gives one as a literal or parameter.
fn insert_pins(i: &sqlparser::ast::Insert) -> Option<RowPins> {
    let TableObject::TableName(name) = &i.table else { return None };
    let table = TableRef::from_object_name(name)?;
    let source = i.source.as_ref()?;
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else { return None };
    let columns: Vec<String> = i.columns.iter().map(last_folded).collect::<Option<_>>()?;
    let mut pins: Vec<ColumnPin> = Vec::new();
    for (n, column) in columns.iter().enumerate() {
        let values: Option<Vec<Operand>> =
            values.rows.iter().map(|row| row.get(n).filter(|_| row.len() == columns.len()).and_then(operand)).collect();
        if let Some(values) = values {
            pins.push(ColumnPin { column: column.into(), values });
        }
    }
    match &i.on {
        None => {}
        Some(OnInsert::OnConflict(c)) => match (&c.conflict_target, &c.action) {
            (_, OnConflictAction::DoNothing) => {}
            // The existing row updated equals the new one on the conflict columns only, and
            // only where DO UPDATE leaves them.
            (Some(ConflictTarget::Columns(target)), OnConflictAction::DoUpdate(update)) => {
                let target: Vec<String> = target.iter().map(fold).collect();
                let mut assigned = Vec::new();
                for a in &update.assignments {
                    match &a.target {
                        AssignmentTarget::ColumnName(n) => assigned.push(last_folded(n)?),
                        AssignmentTarget::Tuple(ns) => {
                            assigned.extend(ns.iter().map(last_folded).collect::<Option<Vec<_>>>()?)
                        }
                    }
                }
                pins.retain(|p| target.iter().any(|t| *t == p.column) && !assigned.iter().any(|a| *a == p.column));
            }
            _ => return None,
        },
        Some(_) => return None,
    }
    Some(RowPins { table, columns: pins })
}

/// The one plain table a statement reads or writes, with its alias.
struct Target {
    table: TableRef,
    alias: Option<String>,
}

impl Target {
    fn of(from: &TableWithJoins) -> Option<Target> {
        if !from.joins.is_empty() {
            return None;
        }
        Target::of_factor(&from.relation)
    }

    fn of_factor(relation: &TableFactor) -> Option<Target> {
        let TableFactor::Table { name, alias, args: None, with_hints, .. } = relation else { return None };
        if !with_hints.is_empty() {
            return None;
        }
        let alias = match alias {
            Some(a) if !a.columns.is_empty() => return None,
            Some(a) => Some(fold(&a.name)),
            None => None,
        };
        Some(Target { table: TableRef::from_object_name(name)?, alias })
    }

    /// The pins among the top-level conjuncts of `filter` (one entry per column: the first
    /// conjunct that pins it; every row satisfies all of them). `qualified_only`: other tables
    /// are in scope, so a bare column name may be theirs.
    fn pins(&self, filter: &Expr, qualified_only: bool) -> Vec<ColumnPin> {
        let mut conj = Vec::new();
        conjuncts(filter, &mut conj);
        let mut pins: Vec<ColumnPin> = Vec::new();
        for e in conj {
            let pin = match e {
                Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                    let column = |e: &Expr| self.column(e).filter(|_| !qualified_only || !is_bare(e));
                    match (column(left), operand(right), column(right), operand(left)) {
                        (Some(c), Some(v), _, _) | (_, _, Some(c), Some(v)) => Some((c, vec![v])),
                        _ => None,
                    }
                }
                Expr::InList { expr, list, negated: false } => {
                    let values: Option<Vec<Operand>> = list.iter().map(operand).collect();
                    let column = self.column(expr).filter(|_| !qualified_only || !is_bare(expr));
                    column.zip(values).filter(|(_, v)| !v.is_empty())
                }
                _ => None,
            };
            if let Some((column, values)) = pin
                && !pins.iter().any(|p| p.column == column)
            {
                pins.push(ColumnPin { column: column.into(), values });
            }
        }
        pins
    }

    /// The column of this table `e` names (`c`, `t.c`, `alias.c`, `schema.t.c`).
    fn column(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Nested(inner) => self.column(inner),
            Expr::Identifier(id) => Some(fold(id)),
            Expr::CompoundIdentifier(parts) => {
                let folded: Vec<String> = parts.iter().map(fold).collect();
                let qualifier_ok = match (folded.as_slice(), &self.alias) {
                    ([q, _], Some(alias)) => q == alias,
                    ([q, _], None) => *q == self.table.name,
                    ([s, t, _], None) => *t == self.table.name && self.table.schema.as_ref().is_none_or(|ts| ts == s),
                    _ => false,
                };
                qualifier_ok.then(|| folded.last().cloned()).flatten()
            }
            _ => None,
        }
    }
}

/// A column named without a table.
fn is_bare(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_bare(inner),
        Expr::CompoundIdentifier(_) => false,
        _ => true,
    }
}

fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        _ => out.push(e),
    }
}

/// A literal or parameter, as written.
fn operand(e: &Expr) -> Option<Operand> {
    match e {
        Expr::Nested(inner) => operand(inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) => Some(Operand::Number(n.into())),
            Value::SingleQuotedString(s) => Some(Operand::Str(s.into())),
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok().filter(|n| *n > 0).map(Operand::Param),
            _ => None,
        },
        Expr::UnaryOp { op: op @ (UnaryOperator::Minus | UnaryOperator::Plus), expr } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) if *op == UnaryOperator::Minus => {
                    Some(Operand::Number(smol_str::format_smolstr!("-{n}")))
                }
                Value::Number(n, false) => Some(Operand::Number(n.into())),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// The last part of a (column) name, folded.
fn last_folded(name: &ObjectName) -> Option<String> {
    name.0.last()?.as_ident().map(fold)
}

/// How many queries (the statement's own, subqueries, CTEs) a statement holds.
fn count_queries(stmt: &Statement) -> usize {
    struct Count(usize);
    impl Visitor for Count {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.0 += 1;
            ControlFlow::Continue(())
        }
    }
    let mut c = Count(0);
    let _ = stmt.visit(&mut c);
    c.0
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
