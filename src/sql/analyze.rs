//! The analysis of a query string: one [`StatementAnalysis`] per statement (split the way the
//! server splits), and the whole-string verdicts the cache and the policies ask for.
//!
//! Each statement is classified from its tokens, then parsed by sqlparser (after
//! [`preprocess`](super::preprocess) works around its Postgres gaps) and walked. A statement
//! sqlparser cannot parse keeps its lexical kind and `parse_error`; callers fail closed on it.

use super::fingerprint::{fingerprint, hash64};
use super::functions::{self, Volatility};
use super::kind::{StatementKind, classify, savepoint_name};
use super::lex::{StatementSpan, TokKind, Token, depth_estimate, split_statements};
use super::limit::{LimitSite, find_limit_site};
use super::rows::{RowPins, read_pins, write_pins};
use super::settings::{SetVia, SettingChange, parse_set, session_characteristics};
use super::tables::TableRef;
use super::utility::Utility;
use super::walk::{ColumnUses, FunctionCall, walk};
use serde::Serialize;
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

/// What wraps a statement whose real content is another statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wrapper {
    /// `EXPLAIN …` without ANALYZE: plans, does not run.
    Explain,
    /// `EXPLAIN ANALYZE …`: runs the statement.
    ExplainAnalyze,
    /// `PREPARE name AS …`: runs it later, at EXECUTE.
    Prepare,
    /// `DECLARE c CURSOR FOR …`.
    Declare,
}

/// Tables a statement reads or writes: nearly always one, held inline (an analysis is copied
/// per write of a template's shape).
pub type Tables = smallvec::SmallVec<[TableRef; 1]>;

/// The analysis of one statement.
#[derive(Debug, Clone, Serialize)]
pub struct StatementAnalysis {
    /// Byte range of the statement in the query string (without the `;`).
    pub span: Range<usize>,
    /// The first keyword, lowercased (`select`, `copy`, `do`…), for `deny_statements`.
    pub keyword: smol_str::SmolStr,
    /// What the statement does.
    pub kind: StatementKind,
    /// For a [`Wrapper`]: the kind of the statement inside (what a policy must judge).
    pub inner_kind: Option<StatementKind>,
    /// Set when the statement is EXPLAIN / PREPARE / DECLARE around another one.
    pub wrapper: Option<Wrapper>,
    /// sqlparser's error, when it could not parse the statement (tables etc. are then unknown).
    pub parse_error: Option<String>,
    /// Tables the statement reads (CTE names excluded), schema-qualified when written so.
    pub tables_read: Tables,
    /// Tables the statement writes (DML targets, COPY FROM, SELECT INTO, DDL objects).
    pub tables_written: Tables,
    /// Sequences `nextval` / `setval` write, where a literal names them (see `functions::writes_sequence`).
    pub sequences_written: Vec<TableRef>,
    /// Functions called, with their built-in volatility.
    pub functions: Vec<FunctionCall>,
    /// Top-level LIMIT / FETCH, and where a LIMIT would go: see [`LimitSite`].
    pub limit: LimitSite,
    /// Aggregate functions at the top level, GROUP BY or HAVING.
    pub aggregates: bool,
    /// SELECT DISTINCT at the top level.
    pub distinct: bool,
    /// Window functions anywhere.
    pub window: bool,
    /// FOR UPDATE / SHARE anywhere.
    pub locking: bool,
    /// A CTE that is INSERT / UPDATE / DELETE / MERGE.
    pub data_modifying_cte: bool,
    /// `SELECT … INTO t`.
    pub select_into: bool,
    /// Runs SQL the analysis cannot see: `DO`, `CALL`, `query_to_xml('…')`, dblink…
    pub dynamic_sql: bool,
    /// A `DO` block whose body may leave session state the proxy cannot follow (settings,
    /// temporary objects, `LISTEN`, advisory locks: see `body_writes::may_leave_session_state`).
    pub opaque_session_state: bool,
    /// UPDATE / DELETE without WHERE (for `require_where`).
    pub missing_where: bool,
    /// Temporary objects this statement creates (`CREATE TEMP TABLE / VIEW / SEQUENCE`, or any
    /// object in `pg_temp`): they live on its server connection and are the session's own.
    pub temp_tables_created: Vec<TableRef>,
    /// `COPY … TO/FROM 'file'` or `PROGRAM '…'`: reads or writes the server's files.
    pub copy_server_side: bool,
    /// `EXECUTE name`: runs a prepared statement whose text is not here (may write; a policy
    /// checked it at PREPARE).
    pub executes_prepared: bool,
    /// Settings changed by SET / RESET / set_config().
    pub settings: Vec<SettingChange>,
    /// The savepoint a SAVEPOINT / RELEASE / ROLLBACK TO names.
    pub savepoint: Option<String>,
    /// `DECLARE … WITH HOLD`: a cursor that outlives its transaction (session state).
    pub hold_cursor: bool,
    /// Column uses, for `deny_columns` (shared: the same for every text of a template's shape).
    pub columns: Arc<ColumnUses>,
    /// The rows of its one table it reads or changes, where equality pins them (see `rows`).
    pub rows: Option<RowPins>,
    /// Literals replaced by `?`, whitespace normalized (shared: statistics keep it).
    pub fingerprint: Arc<str>,
    /// Stable hash of `fingerprint`.
    pub fingerprint_hash: u64,
}

impl StatementAnalysis {
    /// Whether running it may change data: writes, DDL, unknown statements, writing functions,
    /// dynamic SQL, EXPLAIN ANALYZE of a write.
    pub fn may_write(&self) -> bool {
        matches!(self.kind, StatementKind::Write | StatementKind::Ddl | StatementKind::Unknown)
            || !self.tables_written.is_empty()
            || self.executes_prepared
            || self.dynamic_sql
            || self.data_modifying_cte
            || self.select_into
            || self.parse_error.is_some() && !matches!(self.kind, StatementKind::Read)
            || self.functions.iter().any(|f| functions::writes(&f.name))
    }

    /// A read that writes nothing (`SELECT nextval(…)` is not one).
    pub fn is_read_only(&self) -> bool {
        self.kind == StatementKind::Read && !self.may_write()
    }

    /// Whether no call keeps the answer from being cached: each is immutable, a stable
    /// function the cache key determines ([`functions::keyed`]), or not in the built-in list
    /// (the session asks `pg_proc`: see `session::calls`).
    pub fn calls_may_be_cached(&self) -> bool {
        self.functions.iter().all(|f| match f.volatility {
            Volatility::Immutable | Volatility::Unknown => true,
            Volatility::Stable => functions::keyed(&f.name),
            Volatility::Volatile => false,
        })
    }

    /// Whether every function is known immutable (the cache may still need pg_proc for
    /// `Unknown` ones: see [`Self::unknown_functions`]).
    pub fn is_deterministic(&self) -> bool {
        self.functions.iter().all(|f| f.volatility == Volatility::Immutable)
    }

    /// Functions the built-in list does not know: look them up in pg_proc.
    pub fn unknown_functions(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().filter(|f| f.volatility == Volatility::Unknown).map(|f| f.name.as_str())
    }

    /// Whether it names an object in the session's temporary schema (`pg_temp.x`): each
    /// session has its own, so what it reads there is never another session's answer.
    pub fn names_temp_schema(&self) -> bool {
        self.tables_read.iter().any(TableRef::is_temp_schema)
            || self.functions.iter().any(|f| TableRef::parse(&f.name).is_temp_schema())
    }

    /// Whether it reads a system catalog (`pg_catalog.*`, `information_schema.*`, or an
    /// unqualified `pg_*` name): not cacheable unless configured.
    pub fn reads_system_catalog(&self) -> bool {
        self.tables_read.iter().any(TableRef::is_system_catalog)
    }

    /// Whether it reads tables and all of them are system catalogs (metadata: its size is
    /// bounded by the schema's).
    pub fn reads_only_system_catalogs(&self) -> bool {
        !self.tables_read.is_empty() && self.tables_read.iter().all(TableRef::is_system_catalog)
    }

    /// Every table the statement touches (read or written).
    pub fn tables(&self) -> impl Iterator<Item = &TableRef> {
        self.tables_read.iter().chain(self.tables_written.iter())
    }
}

/// The analysis of a whole query string.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// One entry per non-empty statement, in order.
    pub statements: Vec<StatementAnalysis>,
    /// Fingerprints of the statements joined with `; ` (shared: statistics keep it).
    pub fingerprint: Arc<str>,
    /// Stable hash of `fingerprint`.
    pub fingerprint_hash: u64,
}

impl Analysis {
    /// All statements are reads that write nothing (an empty string is read-only).
    pub fn is_read_only(&self) -> bool {
        self.statements.iter().all(StatementAnalysis::is_read_only)
    }
    /// Some statement may write.
    pub fn may_write(&self) -> bool {
        self.statements.iter().any(StatementAnalysis::may_write)
    }
    /// Union of the tables written, across statements, without duplicates.
    pub fn tables_written(&self) -> Vec<TableRef> {
        dedup(self.statements.iter().flat_map(|s| s.tables_written.iter().cloned()).collect()).into_vec()
    }
    /// Union of the tables read, across statements, without duplicates.
    pub fn tables_read(&self) -> Vec<TableRef> {
        dedup(self.statements.iter().flat_map(|s| s.tables_read.iter().cloned()).collect()).into_vec()
    }
    /// Some statement failed to parse.
    pub fn has_parse_error(&self) -> bool {
        self.statements.iter().any(|s| s.parse_error.is_some())
    }
    /// Every setting change, in order.
    pub fn settings(&self) -> impl Iterator<Item = &SettingChange> {
        self.statements.iter().flat_map(|s| s.settings.iter())
    }
}

fn dedup(mut v: Tables) -> Tables {
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

/// Analyzes `text` without the memo (see [`crate::sql::analyze()`] for the memoized entry point).
pub fn analyze_uncached(text: &str) -> Analysis {
    let statements: Vec<StatementAnalysis> =
        split_statements(text).iter().map(|s| analyze_statement(text, s, 0)).collect();
    let fingerprint: Arc<str> = match statements.as_slice() {
        [one] => one.fingerprint.clone(),
        many => many.iter().map(|s| &*s.fingerprint).collect::<Vec<_>>().join("; ").into(),
    };
    let fingerprint_hash = hash64(&fingerprint);
    Analysis { statements, fingerprint, fingerprint_hash }
}

/// `DECLARE name … WITH HOLD … FOR …`: the options before FOR include WITH HOLD.
fn declares_hold_cursor(src: &str, toks: &[Token]) -> bool {
    if word(src, toks.first()) != "declare" {
        return false;
    }
    let options = toks.iter().take_while(|t| !t.is_word(src, "for")).collect::<Vec<_>>();
    options.windows(2).any(|w| w[0].is_word(src, "with") && w[1].is_word(src, "hold"))
}

/// `DO [LANGUAGE l] body` (either order): whether the body may leave session state (see
/// [`super::body_writes::may_leave_session_state`]); true for a body in a form not read here
/// (`E'…'`, more than one string).
fn do_block_may_leave_state(src: &str, toks: &[Token]) -> bool {
    let mut language = "plpgsql".to_string();
    let mut bodies = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            TokKind::String => bodies.push(t.text(src)),
            TokKind::Word if t.is_word(src, "language") => {
                if let Some(l) = toks.get(i + 1).and_then(|l| l.identifier(src)) {
                    language = l;
                }
            }
            _ => {}
        }
    }
    let [quoted] = bodies.as_slice() else { return true };
    let body = if let Some(inner) = quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(rest) = quoted.strip_prefix('$')
        && let Some(end) = rest.find('$')
        && let Some(inner) = rest[end + 1..].strip_suffix(&quoted[..end + 2])
    {
        inner.to_string()
    } else {
        return true;
    };
    super::body_writes::may_leave_session_state(&language, &body)
}

fn word(src: &str, t: Option<&Token>) -> String {
    t.filter(|t| t.kind == TokKind::Word).map(|t| t.text(src).to_ascii_lowercase()).unwrap_or_default()
}

/// Where the statement inside EXPLAIN / PREPARE / DECLARE starts, and whether EXPLAIN analyzes.
fn unwrap_inner(src: &str, toks: &[Token]) -> Option<(Wrapper, usize)> {
    let first = word(src, toks.first());
    match first.as_str() {
        "explain" => {
            let mut analyze = false;
            let mut i = 1;
            if toks.get(1).is_some_and(|t| t.is_punct(src, '(')) {
                let mut j = 2;
                while j < toks.len() && !toks[j].is_punct(src, ')') {
                    let w = word(src, toks.get(j));
                    if w == "analyze" || w == "analyse" {
                        let v = word(src, toks.get(j + 1));
                        let off = matches!(v.as_str(), "false" | "off")
                            || toks.get(j + 1).is_some_and(|t| t.text(src) == "0");
                        analyze |= !off;
                    }
                    j += 1;
                }
                i = j + 1;
            } else {
                while matches!(word(src, toks.get(i)).as_str(), "analyze" | "analyse" | "verbose") {
                    analyze |= word(src, toks.get(i)) != "verbose";
                    i += 1;
                }
            }
            Some((if analyze { Wrapper::ExplainAnalyze } else { Wrapper::Explain }, i))
        }
        "prepare" if word(src, toks.get(1)) != "transaction" => {
            let i = toks.iter().position(|t| t.is_word(src, "as"))?;
            Some((Wrapper::Prepare, i + 1))
        }
        "declare" => {
            let i = toks.iter().position(|t| t.is_word(src, "for"))?;
            Some((Wrapper::Declare, i + 1))
        }
        _ => None,
    }
}

/// Deepest tree (see [`depth_estimate`]) analysed on the caller's stack: real queries stay far
/// below it, and a tree of this depth is parsed, walked and dropped well within a 2 MiB thread
/// stack.
const STACK_DEPTH: usize = 1000;
/// Deepest tree analysed at all. Deeper than [`STACK_DEPTH`] (what tools generate: thousands of
/// `OR` terms, `CASE` branches, `UNION ALL` arms) it is analysed on a stack of its own, sized
/// [`STACK_PER_LEVEL`] per level (reserved, touched only as deep as the tree goes).
const MAX_DEPTH: usize = 20_000;
const STACK_PER_LEVEL: usize = 4 << 10;
/// Most wrappers (`EXPLAIN EXPLAIN …`, `PREPARE a AS PREPARE …`) unwrapped.
const MAX_WRAPPERS: usize = 4;

fn analyze_statement(src: &str, st: &StatementSpan, wrappers: usize) -> StatementAnalysis {
    let toks = &st.tokens;
    let fp = fingerprint(src, toks);
    let fingerprint_hash = hash64(&fp);
    let kind = classify(src, toks);
    let mut a = StatementAnalysis {
        span: st.span.clone(),
        keyword: word(src, toks.first()).into(),
        kind,
        inner_kind: None,
        wrapper: None,
        parse_error: None,
        tables_read: Tables::new(),
        tables_written: Tables::new(),
        sequences_written: vec![],
        functions: vec![],
        limit: LimitSite::None,
        aggregates: false,
        distinct: false,
        window: false,
        locking: false,
        data_modifying_cte: false,
        select_into: false,
        dynamic_sql: false,
        opaque_session_state: false,
        missing_where: false,
        copy_server_side: false,
        temp_tables_created: vec![],
        executes_prepared: word(src, toks.first()) == "execute",
        settings: session_characteristics(src, toks).unwrap_or_else(|| parse_set(src, toks).into_iter().collect()),
        savepoint: savepoint_name(src, toks),
        hold_cursor: declares_hold_cursor(src, toks),
        columns: Arc::default(),
        rows: None,
        fingerprint: fp.into(),
        fingerprint_hash,
    };
    if let Some((wrapper, i)) = unwrap_inner(src, toks) {
        if wrappers >= MAX_WRAPPERS {
            a.parse_error = Some("too many nested EXPLAIN/PREPARE/DECLARE".into());
            return a;
        }
        if i >= toks.len() {
            a.parse_error = Some("nothing after EXPLAIN/PREPARE/DECLARE".into());
            return a;
        }
        let inner_span = StatementSpan { span: toks[i].span.start..st.span.end, tokens: toks[i..].to_vec() };
        let inner = analyze_statement(src, &inner_span, wrappers + 1);
        a.wrapper = Some(wrapper);
        a.inner_kind = Some(inner.kind);
        a.parse_error = inner.parse_error;
        a.functions = inner.functions;
        a.columns = inner.columns;
        a.dynamic_sql = inner.dynamic_sql;
        a.locking = inner.locking;
        a.missing_where = inner.missing_where && matches!(wrapper, Wrapper::ExplainAnalyze | Wrapper::Prepare);
        match wrapper {
            Wrapper::ExplainAnalyze => {
                a.kind = inner.kind;
                a.tables_read = inner.tables_read;
                a.tables_written = inner.tables_written;
                a.data_modifying_cte = inner.data_modifying_cte;
                a.select_into = inner.select_into;
            }
            _ => {
                // Plans, cursors and prepared statements do not write now; their tables are
                // still what a policy must judge.
                a.tables_read = dedup(inner.tables_read.into_iter().chain(inner.tables_written).collect());
                if wrapper == Wrapper::Declare {
                    a.kind = StatementKind::Utility;
                }
            }
        }
        return a;
    }
    match word(src, toks.first()).as_str() {
        // Anonymous code blocks and server-side execution: nothing to parse that means anything.
        "do" | "call" => {
            a.dynamic_sql = true;
            if word(src, toks.first()) == "do" {
                a.opaque_session_state = do_block_may_leave_state(src, toks);
                return a;
            }
        }
        _ => {}
    }
    // Nothing in these needs the grammar (and sqlparser lacks some of them, e.g. `COMMIT
    // PREPARED`, `RESET TIME ZONE`, `CHECKPOINT`): their kind and settings come from the tokens.
    let lexical_only = matches!(a.kind, StatementKind::Transaction(_))
        || (a.kind == StatementKind::SessionSet && !a.settings.is_empty())
        || matches!(
            word(src, toks.first()).as_str(),
            "checkpoint" | "listen" | "unlisten" | "notify" | "discard" | "deallocate" | "close" | "fetch" | "move"
        );
    if lexical_only {
        return a;
    }
    match super::utility::recognize(src, toks) {
        Some(Utility::Refresh(view)) => {
            a.tables_written = Tables::from_elem(view, 1);
            return a;
        }
        Some(Utility::Vacuum | Utility::DefaultPrivileges) => return a,
        None => {}
    }
    let depth = depth_estimate(src, toks);
    if depth > MAX_DEPTH {
        a.parse_error = Some(format!("statement nested deeper than {MAX_DEPTH} levels; not analyzed"));
        return a;
    }
    if depth > STACK_DEPTH {
        // Parsed, walked and dropped (the tree's drop recurses as deep) on the larger stack.
        return stacker::grow((depth + 256) * STACK_PER_LEVEL, move || analyze_tree(src, toks, a));
    }
    analyze_tree(src, toks, a)
}

/// The part of [`analyze_statement`] that parses the statement and walks its tree.
fn analyze_tree(src: &str, toks: &[Token], mut a: StatementAnalysis) -> StatementAnalysis {
    let text = super::preprocess::for_parser(src, toks);
    let parsed = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(64)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements());
    let stmt = match parsed {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        Ok(v) => {
            a.parse_error = Some(format!("expected one statement, parsed {}", v.len()));
            return a;
        }
        Err(e) => {
            a.parse_error = Some(e.to_string());
            return a;
        }
    };
    let w = walk(&stmt);
    a.rows = read_pins(&stmt).or_else(|| write_pins(&stmt));
    // A write target is also visited as a relation once; it is read only if it appears again.
    let mut targets: std::collections::HashMap<&TableRef, usize> = std::collections::HashMap::new();
    for t in &w.written {
        *targets.entry(t).or_default() += 1;
    }
    let read: Vec<TableRef> = w
        .relations
        .iter()
        .filter(|r| match targets.get_mut(r) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect();
    a.tables_read = dedup(read.into());
    a.tables_written = dedup(w.written.into());
    a.sequences_written = w.sequences;
    a.functions = w.functions;
    a.columns = Arc::new(w.columns);
    a.aggregates = w.aggregates;
    a.distinct = w.distinct;
    a.window = w.window;
    a.locking = w.locking;
    a.data_modifying_cte = w.data_modifying_cte;
    a.select_into = w.select_into;
    a.copy_server_side = w.copy_server_side;
    a.temp_tables_created = w.temp_created;
    a.dynamic_sql |= a.functions.iter().any(|f| functions::executes_sql(&f.name));
    a.missing_where = match &stmt {
        Statement::Update(u) => u.selection.is_none(),
        Statement::Delete(d) => d.selection.is_none(),
        _ => false,
    };
    a.settings.extend(set_config_calls(&stmt));
    if a.kind == StatementKind::Read && (a.data_modifying_cte || a.select_into || !a.tables_written.is_empty()) {
        a.kind = StatementKind::Write;
    }
    if a.kind == StatementKind::Read && matches!(stmt, Statement::Query(_)) && !a.select_into {
        a.limit = find_limit_site(src, toks);
    }
    if let Statement::Copy { source: sqlparser::ast::CopySource::Query(_), to: true, .. } = &stmt {
        // `COPY (query) TO …`: the query's rows are what a limit rule caps.
        a.limit = copy_query_tokens(src, toks).map_or(LimitSite::None, |inner| find_limit_site(src, inner));
    }
    a
}

/// The tokens of the query inside `COPY ( … ) TO`, without the parentheses.
fn copy_query_tokens<'t>(src: &str, toks: &'t [Token]) -> Option<&'t [Token]> {
    if !toks.get(1)?.is_punct(src, '(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(1) {
        if t.is_punct(src, '(') {
            depth += 1;
        } else if t.is_punct(src, ')') {
            depth -= 1;
            if depth == 0 {
                return toks.get(2..i).filter(|inner| !inner.is_empty());
            }
        }
    }
    None
}

/// `set_config(name, value, is_local)` calls: literal arguments as written, Bind parameters
/// (`$n`) by number, anything else (an expression) as unknown.
fn set_config_calls(stmt: &Statement) -> Vec<SettingChange> {
    /// One argument: a literal, a Bind parameter number, or neither.
    enum Arg {
        Literal(Option<String>),
        Param(usize),
        Computed,
    }
    fn arg(a: Option<&FunctionArg>) -> Arg {
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) = a else { return Arg::Computed };
        // `$1::text` is as good as `$1`.
        let e = match e {
            Expr::Cast { expr, .. } => expr.as_ref(),
            e => e,
        };
        match e {
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => {
                    p.strip_prefix('$').and_then(|n| n.parse().ok()).map_or(Arg::Computed, Arg::Param)
                }
                Value::SingleQuotedString(s) => Arg::Literal(Some(s.clone())),
                Value::Null => Arg::Literal(None),
                other => Arg::Literal(Some(other.to_string())),
            },
            _ => Arg::Computed,
        }
    }
    struct V(Vec<SettingChange>);
    impl Visitor for V {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && functions::base_name(&super::tables::fold_name(&f.name)) == "set_config"
            {
                let args = match &f.args {
                    FunctionArguments::List(l) => l.args.iter().collect::<Vec<_>>(),
                    _ => vec![],
                };
                let mut change = SettingChange {
                    name: None,
                    value: None,
                    local: false,
                    via: SetVia::SetConfig,
                    name_param: None,
                    value_param: None,
                    local_param: None,
                };
                match arg(args.first().copied()) {
                    Arg::Literal(name) => change.name = name.map(|n| n.to_ascii_lowercase()),
                    Arg::Param(n) => change.name_param = Some(n),
                    Arg::Computed => {}
                }
                match arg(args.get(1).copied()) {
                    Arg::Literal(value) => change.value = value,
                    Arg::Param(n) => change.value_param = Some(n),
                    Arg::Computed => {}
                }
                match arg(args.get(2).copied()) {
                    Arg::Literal(local) => change.local = local.as_deref().is_some_and(super::settings::is_true),
                    Arg::Param(n) => change.local_param = Some(n),
                    // Unknown: taken as session-wide, the change that outlives the transaction.
                    Arg::Computed => {}
                }
                self.0.push(change);
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = V(Vec::new());
    let _ = stmt.visit(&mut v);
    v.0
}

#[cfg(test)]
#[path = "analyze_tests.rs"]
mod tests;
