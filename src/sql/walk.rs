//! The AST walk: one pass of sqlparser's visitor over a parsed statement that collects the
//! tables read and written (with CTE names scoped the way Postgres scopes them), the functions
//! called, column uses for `deny_columns`, and the shape facts (aggregation, locking, …).

use super::functions::{self, Volatility};
use super::tables::{TableRef, fold, fold_name};
use serde::Serialize;
use sqlparser::ast::{
    AssignmentTarget, CopySource, CopyTarget, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    JoinConstraint, JoinOperator, ObjectName, ObjectType, Query, Select, SelectItem, SelectItemQualifiedWildcardKind,
    SetExpr, Statement, TableFactor, TableObject, Visit, Visitor,
};
use std::ops::ControlFlow;

/// A function call found in a statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FunctionCall {
    /// Folded name as written (`pg_catalog.now`, `my_fn`).
    pub name: String,
    /// Built-in volatility; [`Volatility::Unknown`] for functions the proxy must look up.
    pub volatility: Volatility,
}

/// A `*` or `q.*` that expands to columns (select list, RETURNING, function argument).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wildcard {
    /// `Some(q)` for `q.*`.
    pub qualifier: Option<String>,
    /// Tables in the FROM clause of the SELECT (or the DML target) the `*` belongs to.
    pub tables: Vec<TableRef>,
}

/// Column uses, collected for `deny_columns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnUses {
    /// Every identifier and compound identifier used as an expression, folded (`["u", "ssn"]`).
    pub idents: Vec<Vec<String>>,
    /// Every wildcard that expands to columns.
    pub wildcards: Vec<Wildcard>,
    /// Aliases (and bare names) of tables: `(alias, table)`.
    pub aliases: Vec<(String, TableRef)>,
    /// Columns named as write targets (INSERT column lists, UPDATE SET targets): `(table, column)`.
    pub targets: Vec<(TableRef, String)>,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct WalkResult {
    pub relations: Vec<TableRef>,
    pub written: Vec<TableRef>,
    /// Sequences written by `nextval('s')` / `setval('s', …)` with the name as a literal.
    pub sequences: Vec<TableRef>,
    pub functions: Vec<FunctionCall>,
    pub columns: ColumnUses,
    pub aggregates: bool,
    pub window: bool,
    pub distinct: bool,
    pub locking: bool,
    pub data_modifying_cte: bool,
    pub select_into: bool,
    pub copy_from: bool,
    /// COPY to or from a server file or program.
    pub copy_server_side: bool,
    /// Temporary tables created (CREATE TEMP TABLE, SELECT INTO TEMP).
    pub temp_created: Vec<TableRef>,
}

struct Frame {
    /// Addresses of this WITH's CTE bodies, to know when the walk enters one.
    ctes: Vec<*const Query>,
    names: Vec<String>,
    recursive: bool,
    visible: usize,
}

struct Walker {
    frames: Vec<Frame>,
    /// The name of a table function (`FROM f(x)`), which the visitor reports as a relation next.
    skip_relation: Option<*const ObjectName>,
    depth: usize,
    out: WalkResult,
}

/// Walks one parsed statement.
pub fn walk(stmt: &Statement) -> WalkResult {
    let mut w = Walker { frames: Vec::new(), skip_relation: None, depth: 0, out: WalkResult::default() };
    let _ = stmt.visit(&mut w);
    w.out
}

fn is_dml(body: &SetExpr) -> bool {
    matches!(body, SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_))
}

impl Walker {
    fn is_cte(&self, name: &ObjectName) -> bool {
        if name.0.len() != 1 {
            return false;
        }
        let Some(n) = name.0[0].as_ident().map(fold) else {
            return false;
        };
        self.frames.iter().any(|f| f.names[..f.visible].contains(&n))
    }

    fn table(&self, name: &ObjectName) -> Option<TableRef> {
        if self.is_cte(name) { None } else { TableRef::from_object_name(name) }
    }

    /// An object `CREATE` makes: the session's own when `temporary` (`CREATE TEMP …`) or
    /// made in its temporary schema (`pg_temp.x`, any kind of object).
    fn created(&mut self, name: &ObjectName, temporary: bool) {
        if let Some(t) = self.table(name)
            && (temporary || t.is_temp_schema())
        {
            self.out.temp_created.push(t);
        }
    }

    fn write(&mut self, name: &ObjectName) {
        if let Some(t) = self.table(name) {
            self.out.written.push(t);
        }
    }

    fn write_factor(&mut self, f: &TableFactor) {
        if let TableFactor::Table { name, .. } = f {
            self.write(name);
        }
    }

    fn tables_of(&self, select: &Select) -> Vec<TableRef> {
        let mut v = Vec::new();
        for twj in &select.from {
            for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
                if let TableFactor::Table { name, args: None, .. } = f
                    && let Some(t) = self.table(name)
                {
                    v.push(t);
                }
            }
        }
        v
    }

    fn items(&mut self, items: &[SelectItem], tables: Vec<TableRef>) {
        for it in items {
            match it {
                SelectItem::Wildcard(_) => {
                    self.out.columns.wildcards.push(Wildcard { qualifier: None, tables: tables.clone() })
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(n) => fold_name(n),
                        SelectItemQualifiedWildcardKind::Expr(e) => e.to_string().to_lowercase(),
                    };
                    let q = q.rsplit('.').next().unwrap_or_default().to_string();
                    self.out.columns.wildcards.push(Wildcard { qualifier: Some(q), tables: tables.clone() })
                }
                _ => {}
            }
        }
    }

    fn statement(&mut self, s: &Statement) {
        match s {
            Statement::Insert(i) => {
                if let TableObject::TableName(n) = &i.table {
                    self.write(n);
                    if let Some(t) = self.table(n) {
                        for c in &i.columns {
                            self.out.columns.targets.push((t.clone(), fold_name(c)));
                        }
                        if let Some(r) = &i.returning {
                            self.items(r, vec![t.clone()]);
                        }
                    }
                }
            }
            Statement::Update(u) => {
                self.write_factor(&u.table.relation);
                let tables: Vec<TableRef> = match &u.table.relation {
                    TableFactor::Table { name, .. } => self.table(name).into_iter().collect(),
                    _ => vec![],
                };
                for a in &u.assignments {
                    let cols = match &a.target {
                        AssignmentTarget::ColumnName(n) => std::slice::from_ref(n),
                        AssignmentTarget::Tuple(v) => v.as_slice(),
                    };
                    for c in cols {
                        let col = fold_name(c);
                        let col = col.rsplit('.').next().unwrap_or_default();
                        for t in &tables {
                            self.out.columns.targets.push((t.clone(), col.to_string()));
                        }
                    }
                }
                if let Some(r) = &u.returning {
                    self.items(r, tables);
                }
            }
            Statement::Delete(d) => {
                for n in &d.tables {
                    self.write(n);
                }
                let from = match &d.from {
                    sqlparser::ast::FromTable::WithFromKeyword(v) | sqlparser::ast::FromTable::WithoutKeyword(v) => v,
                };
                let mut tables = Vec::new();
                for twj in from {
                    self.write_factor(&twj.relation);
                    if let TableFactor::Table { name, .. } = &twj.relation {
                        tables.extend(self.table(name));
                    }
                }
                if let Some(r) = &d.returning {
                    self.items(r, tables);
                }
            }
            Statement::Merge(m) => self.write_factor(&m.table),
            Statement::Truncate(t) => {
                for n in &t.table_names {
                    self.write(&n.name);
                }
            }
            Statement::Copy { target: CopyTarget::File { .. } | CopyTarget::Program { .. }, .. } => {
                self.out.copy_server_side = true;
                if let Statement::Copy { source: CopySource::Table { table_name, .. }, to, .. } = s
                    && let Some(t) = self.table(table_name)
                {
                    if *to {
                        self.out.relations.push(t);
                    } else {
                        self.out.written.push(t);
                    }
                }
            }
            Statement::Copy { source: CopySource::Table { table_name, columns }, to, .. } => {
                if let Some(t) = self.table(table_name) {
                    if columns.is_empty() {
                        self.out.columns.wildcards.push(Wildcard { qualifier: None, tables: vec![t.clone()] });
                    }
                    for c in columns {
                        self.out.columns.targets.push((t.clone(), fold(c)));
                    }
                    if *to {
                        self.out.relations.push(t);
                    } else {
                        self.out.copy_from = true;
                        self.out.written.push(t);
                    }
                }
            }
            Statement::CreateTable(c) => {
                self.write(&c.name);
                self.created(&c.name, c.temporary);
            }
            Statement::AlterTable(a) => self.write(&a.name),
            Statement::CreateView(v) => {
                self.write(&v.name);
                self.created(&v.name, v.temporary);
            }
            Statement::CreateSequence { temporary, name, .. } => self.created(name, *temporary),
            Statement::CreateType { name, .. } => self.created(name, false),
            Statement::CreateDomain(d) => self.created(&d.name, false),
            Statement::CreateFunction(f) => self.created(&f.name, false),
            Statement::CreateIndex(c) => self.write(&c.table_name),
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::View | ObjectType::MaterializedView,
                names,
                ..
            } => {
                for n in names {
                    self.write(n);
                }
            }
            _ => {}
        }
    }

    fn function(&mut self, f: &sqlparser::ast::Function) {
        let name = fold_name(&f.name);
        if f.over.is_some() {
            self.out.window = true;
        } else if self.depth <= 1 && functions::is_aggregate(&name) {
            self.out.aggregates = true;
        }
        if let FunctionArguments::List(list) = &f.args {
            for a in &list.args {
                let arg = match a {
                    FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. } | FunctionArg::Unnamed(arg) => {
                        arg
                    }
                };
                if let FunctionArgExpr::QualifiedWildcard(q) = arg {
                    let q = fold_name(q).rsplit('.').next().unwrap_or_default().to_string();
                    self.out.columns.wildcards.push(Wildcard { qualifier: Some(q), tables: vec![] });
                }
            }
        }
        if functions::writes_sequence(&name)
            && let Some(seq) = sequence_argument(f)
        {
            // `nextval('s')` writes the sequence `s` and nothing else: reads of `s` are stale
            // after it, no other table is.
            self.out.sequences.push(seq);
        }
        let volatility = functions::volatility(&name);
        self.out.functions.push(FunctionCall { name, volatility });
    }
}

/// The sequence named by the first argument of `nextval` / `setval` when it is a string literal
/// (`'s'`, `'app.s'`, `'s'::regclass`) Postgres folds as the proxy does: no quotes inside.
fn sequence_argument(f: &sqlparser::ast::Function) -> Option<TableRef> {
    let FunctionArguments::List(list) = &f.args else { return None };
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) = list.args.first()? else { return None };
    let expr = match expr {
        Expr::Cast { expr, .. } => expr.as_ref(),
        e => e,
    };
    let Expr::Value(v) = expr else { return None };
    let sqlparser::ast::Value::SingleQuotedString(text) = &v.value else { return None };
    let ok = !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$');
    ok.then(|| TableRef::parse(&text.to_lowercase()))
}

/// The constraint of the join kinds Postgres has.
fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => Some(c),
        _ => None,
    }
}

/// SQL value functions Postgres spells without parentheses; sqlparser may see identifiers.
const VALUE_FUNCTIONS: &[&str] = &[
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_catalog",
    "current_schema",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
];

impl Visitor for Walker {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let w = self;
        // Entering a CTE body: for a non-recursive WITH it sees only the CTEs before it.
        if let Some(top) = w.frames.last_mut()
            && let Some(i) = top.ctes.iter().position(|c| std::ptr::eq(*c, q))
        {
            top.visible = if top.recursive { top.names.len() } else { i };
        }
        w.depth += 1;
        if !q.locks.is_empty() {
            w.out.locking = true;
        }
        let (ctes, names, recursive) = match &q.with {
            Some(with) => {
                if with.cte_tables.iter().any(|c| is_dml(&c.query.body)) {
                    w.out.data_modifying_cte = true;
                }
                (
                    with.cte_tables.iter().map(|c| &*c.query as *const Query).collect(),
                    with.cte_tables.iter().map(|c| fold(&c.alias.name)).collect::<Vec<_>>(),
                    with.recursive,
                )
            }
            None => (Vec::new(), Vec::new(), false),
        };
        let visible = names.len();
        w.frames.push(Frame { ctes, names, recursive, visible });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let w = self;
        w.frames.pop();
        w.depth -= 1;
        // Leaving a CTE body: the rest of the query sees every CTE again.
        if let Some(top) = w.frames.last_mut()
            && top.ctes.iter().any(|c| std::ptr::eq(*c, q))
        {
            top.visible = top.names.len();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        let w = self;
        if w.depth <= 1 {
            let grouped = match &s.group_by {
                GroupByExpr::All(_) => true,
                GroupByExpr::Expressions(v, _) => !v.is_empty(),
            };
            if grouped || s.having.is_some() {
                w.out.aggregates = true;
            }
            if s.distinct.is_some() {
                w.out.distinct = true;
            }
        }
        if let Some(into) = &s.into {
            w.out.select_into = true;
            let temporary = into.temporary;
            for t in &into.targets {
                let name = t.to_string();
                let parts: Vec<&str> = name.split('.').collect();
                let folded: Vec<String> = parts
                    .iter()
                    .map(|p| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                        Some(q) => q.to_string(),
                        None => p.to_lowercase(),
                    })
                    .collect();
                let t = TableRef::parse(&folded.join("."));
                if temporary {
                    w.out.temp_created.push(t.clone());
                }
                w.out.written.push(t);
            }
        }
        let tables = w.tables_of(s);
        for twj in &s.from {
            for j in &twj.joins {
                match join_constraint(&j.join_operator) {
                    Some(JoinConstraint::Using(cols)) => {
                        w.out.columns.idents.extend(cols.iter().map(|c| vec![fold_name(c)]))
                    }
                    // A natural join compares every same-named column: like a `*` for the rule.
                    Some(JoinConstraint::Natural) => {
                        w.out.columns.wildcards.push(Wildcard { qualifier: None, tables: tables.clone() })
                    }
                    _ => {}
                }
            }
        }
        w.items(&s.projection, tables);
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        let w = self;
        if w.skip_relation.take().is_some_and(|p| std::ptr::eq(p, r)) {
            return ControlFlow::Continue(());
        }
        if let Some(t) = w.table(r) {
            w.out.relations.push(t);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        let w = self;
        if let TableFactor::Table { name, args: Some(_), .. } = f {
            // `FROM f(args)`: a set-returning function, not a relation.
            w.skip_relation = Some(name as *const ObjectName);
            let name = fold_name(name);
            let volatility = functions::volatility(&name);
            w.out.functions.push(FunctionCall { name, volatility });
            return ControlFlow::Continue(());
        }
        if let TableFactor::Table { name, alias, .. } = f
            && let Some(t) = w.table(name)
        {
            w.out.columns.aliases.push((t.name.to_string(), t.clone()));
            if let Some(a) = alias {
                if !a.columns.is_empty() {
                    // `users AS u(a, b, c)` renames columns by position: any of them may be a
                    // denied one.
                    w.out.columns.wildcards.push(Wildcard { qualifier: None, tables: vec![t.clone()] });
                }
                w.out.columns.aliases.push((fold(&a.name), t));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let w = self;
        match e {
            Expr::Function(f) => w.function(f),
            Expr::Identifier(id) => {
                let n = fold(id);
                if id.quote_style.is_none() && VALUE_FUNCTIONS.contains(&n.as_str()) {
                    let volatility = functions::volatility(&n);
                    w.out.functions.push(FunctionCall { name: n, volatility });
                } else {
                    w.out.columns.idents.push(vec![n]);
                }
            }
            Expr::CompoundIdentifier(ids) => w.out.columns.idents.push(ids.iter().map(fold).collect()),
            Expr::QualifiedWildcard(q, _) => {
                let q = fold_name(q).rsplit('.').next().unwrap_or_default().to_string();
                w.out.columns.wildcards.push(Wildcard { qualifier: Some(q), tables: vec![] });
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        self.statement(s);
        ControlFlow::Continue(())
    }
}
