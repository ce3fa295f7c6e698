//! Rewrites a statement's text, for sqlparser only, around the Postgres syntax it gets wrong
//! (verified against sqlparser 0.63): `FROM ONLY t` (reported as a table named `ONLY`),
//! `FROM t*` (fails to parse), `TABLE t` (fails to parse) and `FOR NO KEY UPDATE` / `FOR KEY
//! SHARE` (fail to parse; read as `FOR UPDATE` / `FOR SHARE`), and `ROWS FROM (f(…), g(…)) [WITH
//! ORDINALITY]` (fails to parse; read as the subquery `(SELECT * FROM f(…), g(…))`, which calls
//! the same functions), and `expr::type COLLATE "C"` (fails to parse after a cast; in a query or
//! DML statement every `COLLATE name` is read as `|| ''`, which keeps the expression's columns
//! and, like a collation, keeps a predicate from pinning rows). The result is never sent to
//! Postgres; it only has to mean the same tables, columns and functions to the analysis.

use super::lex::{TokKind, Token};

/// Keywords after which a table name follows.
const TABLE_INTRO: &[&str] = &["from", "join", "update", "table", "truncate", "into", "using", "only"];
/// Keywords that end a FROM list.
const FROM_END: &[&str] = &[
    "where",
    "group",
    "having",
    "order",
    "limit",
    "offset",
    "fetch",
    "for",
    "union",
    "intersect",
    "except",
    "window",
    "returning",
    "on",
    "set",
    "select",
    "values",
];

/// Statements whose `COLLATE` clauses are in expressions.
const EXPRESSION_STATEMENTS: &[&str] = &[
    "select", "with", "values", "table", "insert", "update", "delete", "merge", "explain", "declare", "prepare", "copy",
];

/// How many tokens the (possibly qualified) name at the start of `toks` spans.
fn qualified_name_len(src: &str, toks: &[Token]) -> usize {
    let is_name = |i: usize| toks.get(i).is_some_and(|t| matches!(t.kind, TokKind::Word | TokKind::QuotedIdent));
    let mut n = usize::from(is_name(0));
    while n > 0 && toks.get(n).is_some_and(|t| t.is_punct(src, '.')) && is_name(n + 1) {
        n += 2;
    }
    n
}

/// Returns the text to hand to sqlparser for the statement `src[span]` with tokens `toks`.
pub fn for_parser(src: &str, toks: &[Token]) -> String {
    let mut out = String::with_capacity(src.len() + 16);
    let start = toks.first().map_or(0, |t| t.span.start);
    let mut last = start;
    let mut in_from: Vec<bool> = vec![false];
    let mut prev: Option<&Token> = None;
    let mut prev2: Option<&Token> = None;
    let word = |t: Option<&Token>| t.filter(|t| t.kind == TokKind::Word).map(|t| t.text(src).to_ascii_lowercase());
    // Tokens of a `ROWS FROM (` / `WITH ORDINALITY` being dropped, and the FROM depth inside
    // the `ROWS FROM (…)` whose closing parenthesis may be followed by `WITH ORDINALITY`.
    let mut drop = 0usize;
    let mut rows_from_depth: Option<usize> = None;
    let mut after_rows_from = false;
    // Queries and DML, where a `COLLATE` clause is part of an expression (not a column
    // definition).
    let expressions = toks.first().is_some_and(|t| t.is_punct(src, '('))
        || word(toks.first()).is_some_and(|w| EXPRESSION_STATEMENTS.contains(&w.as_str()));
    for (i, t) in toks.iter().enumerate() {
        let lower = word(Some(t));
        let mut replace: Option<&str> = None;
        let closed_rows_from = std::mem::take(&mut after_rows_from);
        if drop > 0 {
            drop -= 1;
            replace = Some("");
            if t.is_punct(src, '(') {
                in_from.push(false);
                rows_from_depth = Some(in_from.len());
            }
        } else if t.is_punct(src, '(') {
            in_from.push(false);
        } else if t.is_punct(src, ')') {
            if rows_from_depth == Some(in_from.len()) {
                rows_from_depth = None;
                after_rows_from = true;
            }
            if in_from.len() > 1 {
                in_from.pop();
            }
        } else if closed_rows_from
            && lower.as_deref() == Some("with")
            && word(toks.get(i + 1)).as_deref() == Some("ordinality")
        {
            replace = Some("");
            drop = 1;
        } else if let Some(w) = &lower {
            let top = in_from.last_mut().expect("never empty");
            if w == "from" || w == "join" || w == "using" {
                *top = true;
            } else if FROM_END.contains(&w.as_str()) {
                *top = false;
            }
            let prevw = word(prev);
            let next = toks.get(i + 1);
            let next_is_name = next.is_some_and(|n| matches!(n.kind, TokKind::Word | TokKind::QuotedIdent));
            if w == "only"
                && next_is_name
                && (prevw.as_deref().is_some_and(|p| TABLE_INTRO.contains(&p))
                    || prev.is_some_and(|p| p.is_punct(src, ',')))
            {
                replace = Some("");
            }
            // `TABLE t` as a query: at the start, after `(`, or after a set operator.
            let query_start = prev.is_none()
                || prev.is_some_and(|p| p.is_punct(src, '('))
                || matches!(prevw.as_deref(), Some("union" | "intersect" | "except" | "all" | "distinct"))
                    && !matches!(word(prev2).as_deref(), Some("select"));
            // `FOR NO KEY UPDATE` / `FOR KEY SHARE`: drop `NO` and `KEY`.
            if (w == "no" && prevw.as_deref() == Some("for") && word(toks.get(i + 1)).as_deref() == Some("key"))
                || (w == "key"
                    && (prevw.as_deref() == Some("for")
                        || prevw.as_deref() == Some("no") && word(prev2).as_deref() == Some("for")))
            {
                replace = Some("");
            }
            if w == "collate" && expressions && next_is_name {
                replace = Some("|| ''");
                drop = qualified_name_len(src, &toks[i + 1..]);
            }
            if w == "table" && query_start && next_is_name {
                replace = Some("SELECT * FROM");
            }
            // `ROWS FROM (`, in a FROM list: the subquery `(SELECT * FROM`.
            let in_from_list = prevw.as_deref().is_some_and(|p| p == "from" || p == "join" || p == "lateral")
                || prev.is_some_and(|p| p.is_punct(src, ','));
            if w == "rows"
                && in_from_list
                && word(toks.get(i + 1)).as_deref() == Some("from")
                && toks.get(i + 2).is_some_and(|t| t.is_punct(src, '('))
            {
                replace = Some("(SELECT * FROM");
                drop = 2;
            }
        } else if t.kind == TokKind::Op && t.text(src) == "*" && *in_from.last().expect("never empty") {
            // `FROM t*`: a star right after a table name in a FROM list (inheritance, the default).
            let after_name = prev.is_some_and(|p| matches!(p.kind, TokKind::Word | TokKind::QuotedIdent))
                && prev2.is_some_and(|p| {
                    p.is_punct(src, ',')
                        || p.is_punct(src, '.')
                        || word(Some(p)).is_some_and(|w| TABLE_INTRO.contains(&w.as_str()))
                });
            if after_name {
                replace = Some("");
            }
        }
        if let Some(r) = replace {
            out.push_str(&src[last..t.span.start]);
            out.push_str(r);
            if r.is_empty() {
                out.push(' ');
            }
            last = t.span.end;
        }
        prev2 = prev;
        prev = Some(t);
    }
    let end = toks.last().map_or(start, |t| t.span.end);
    out.push_str(&src[last..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn pp(s: &str) -> String {
        for_parser(s, &tokenize(s))
    }

    #[test]
    fn only_is_dropped_before_table_names() {
        assert_eq!(pp("SELECT * FROM ONLY t"), "SELECT * FROM   t");
        assert_eq!(pp("DELETE FROM ONLY s.t WHERE a"), "DELETE FROM   s.t WHERE a");
        assert_eq!(pp("SELECT * FROM t FETCH FIRST 1 ROWS ONLY"), "SELECT * FROM t FETCH FIRST 1 ROWS ONLY");
    }

    #[test]
    fn inheritance_star_is_dropped_only_in_from() {
        assert_eq!(pp("SELECT a*b FROM t*, u * WHERE c*d > 1"), "SELECT a*b FROM t , u   WHERE c*d > 1");
    }

    #[test]
    fn rows_from_becomes_a_subquery_of_its_functions() {
        let words = |s: &str| pp(s).split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            words("SELECT * FROM ROWS FROM (f(1), g(2)) WITH ORDINALITY AS t(a, b, n)"),
            "SELECT * FROM (SELECT * FROM f(1), g(2)) AS t(a, b, n)"
        );
        assert_eq!(words("SELECT * FROM x, rows from (f()) AS t"), "SELECT * FROM x, (SELECT * FROM f()) AS t");
        assert_eq!(pp("SELECT rows FROM t"), "SELECT rows FROM t");
    }

    #[test]
    fn collate_clauses_in_expressions_become_a_concatenation() {
        let words = |s: &str| pp(s).split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            words("SELECT a::text COLLATE \"C\" FROM t ORDER BY b COLLATE pg_catalog.\"default\" DESC"),
            "SELECT a::text || '' FROM t ORDER BY b || '' DESC"
        );
        assert_eq!(words("(SELECT 'x' COLLATE \"C\")"), "(SELECT 'x' || '' )");
        let ddl = "CREATE TABLE t (a text COLLATE \"C\")";
        assert_eq!(pp(ddl), ddl, "a column definition keeps its collation");
    }

    #[test]
    fn table_query_becomes_select_star() {
        assert_eq!(pp("TABLE t"), "SELECT * FROM t");
        assert_eq!(pp("TABLE a UNION ALL TABLE b"), "SELECT * FROM a UNION ALL SELECT * FROM b");
        assert_eq!(pp("LOCK TABLE t"), "LOCK TABLE t");
    }
}
