//! LIMIT injection and capping as minimal textual edits of the original query string.
//!
//! The analysis records, per top-level read, where its LIMIT is (or where one would go): see
//! [`LimitSite`]. [`rewrite`] then inserts ` LIMIT N` or replaces just the limit value; every
//! other byte of the text stays as the client sent it. `LIMIT $n` is reported instead, so the
//! proxy caps the parameter at Bind.

use super::analyze::Analysis;
use super::kind::StatementKind;
use super::lex::{TokKind, Token};
use serde::Serialize;
use std::ops::Range;

/// Where a read's top-level LIMIT is, or where one would be inserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSite {
    /// Not a plain top-level read (nothing to limit).
    None,
    /// No LIMIT / FETCH: a ` LIMIT N` goes at this byte offset (before FOR UPDATE/SHARE, after
    /// the last token otherwise, so trailing comments and `;` stay after it).
    Missing {
        /// Byte offset in the query string.
        insert_at: usize,
    },
    /// `LIMIT 10` / `FETCH FIRST 10 ROWS ONLY`: the value and the bytes of its token.
    Literal {
        /// The limit.
        value: u64,
        /// Bytes of the number (empty range for `FETCH FIRST ROW ONLY`, whose value is 1).
        span: Range<usize>,
    },
    /// `LIMIT ALL`: the bytes of `ALL`.
    All {
        /// Bytes of the `ALL` keyword.
        span: Range<usize>,
    },
    /// `LIMIT $n`.
    Param {
        /// The parameter number `n` (1-based, as written).
        index: u32,
        /// Bytes of `$n`.
        span: Range<usize>,
    },
    /// `LIMIT <expression>` (`LIMIT NULL`, `LIMIT 10 * 10`): the bytes of the expression.
    Expression {
        /// Bytes of the expression.
        span: Range<usize>,
    },
}

impl LimitSite {
    /// Whether the read already has a top-level LIMIT or FETCH.
    pub fn has_limit(&self) -> bool {
        !matches!(self, LimitSite::None | LimitSite::Missing { .. })
    }
}

/// Index of the `)` matching the `(` at `open`, if any.
fn matching(src: &str, toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(src, '(') {
            depth += 1;
        } else if t.is_punct(src, ')') {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Finds the [`LimitSite`] of a read statement from its tokens.
pub fn find_limit_site(src: &str, toks: &[Token]) -> LimitSite {
    if toks.is_empty() {
        return LimitSite::None;
    }
    // Parentheses wrapping the whole statement: its top level is inside them.
    let mut d = 0usize;
    while d < toks.len() / 2 && toks[d].is_punct(src, '(') && matching(src, toks, d) == Some(toks.len() - 1 - d) {
        d += 1;
    }
    let last = &toks[toks.len() - 1];
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(src, w));
    let mut depth = 0usize;
    let mut lock_at: Option<usize> = None;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct(src, '(') {
            depth += 1;
            continue;
        }
        if t.is_punct(src, ')') {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth != d || t.kind != TokKind::Word {
            continue;
        }
        if t.is_word(src, "limit") {
            return value_site(src, toks, i + 1, d);
        }
        if t.is_word(src, "fetch") && (is(i + 1, "first") || is(i + 1, "next")) {
            if is(i + 2, "row") || is(i + 2, "rows") {
                let at = toks[i + 1].span.end;
                return LimitSite::Literal { value: 1, span: at..at };
            }
            return value_site(src, toks, i + 2, d);
        }
        if t.is_word(src, "for") && lock_at.is_none() && ["update", "share", "no", "key"].iter().any(|w| is(i + 1, w)) {
            lock_at = Some(i.checked_sub(1).map_or(t.span.start, |p| toks[p].span.end));
        }
    }
    let insert_at = if d > 0 { last.span.end } else { lock_at.unwrap_or(last.span.end) };
    LimitSite::Missing { insert_at }
}

/// The site of a limit value starting at token `i`, at paren depth `d`.
fn value_site(src: &str, toks: &[Token], i: usize, d: usize) -> LimitSite {
    let Some(t) = toks.get(i) else {
        return LimitSite::None;
    };
    // The expression runs to the next OFFSET / FETCH / FOR / ROW(S) at depth d, or to the end.
    let mut depth = d;
    let mut end = t.span.end;
    for u in &toks[i..] {
        if u.is_punct(src, '(') {
            depth += 1;
        } else if u.is_punct(src, ')') {
            if depth == d {
                break;
            }
            depth -= 1;
        } else if depth == d && ["offset", "fetch", "for", "row", "rows", "only"].iter().any(|w| u.is_word(src, w)) {
            break;
        }
        end = u.span.end;
    }
    let single = end == t.span.end;
    match t.kind {
        TokKind::Number if single => match t.text(src).parse::<u64>() {
            Ok(value) => LimitSite::Literal { value, span: t.span.clone() },
            Err(_) => LimitSite::Expression { span: t.span.start..end },
        },
        TokKind::Param if single => match t.text(src)[1..].parse::<u32>() {
            Ok(index) => LimitSite::Param { index, span: t.span.clone() },
            Err(_) => LimitSite::Expression { span: t.span.start..end },
        },
        TokKind::Word if single && t.is_word(src, "all") => LimitSite::All { span: t.span.clone() },
        _ => LimitSite::Expression { span: t.span.start..end },
    }
}

/// A policy's `limit:` rule, as the rewrite needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitRule {
    /// LIMIT added to reads without one.
    pub inject: Option<u64>,
    /// Cap for existing limits (and the injected one when `inject` is not set).
    pub max: Option<u64>,
    /// Limit reads of system catalogs only (`pg_catalog`, `information_schema`) too. Off by
    /// default: metadata (psql `\d`, driver and ORM reflection, BI field sync) is bounded by the
    /// schema, and a tool shown a cut schema is wrong without an error.
    pub catalogs: bool,
    /// More schemas whose reads are left whole like the system catalogs' (a metadata schema):
    /// a read all of whose tables are qualified with one of these (or are system catalogs).
    pub exempt_schemas: Vec<String>,
}

impl LimitRule {
    /// Whether `s` reads only what this rule leaves whole.
    fn exempts(&self, s: &super::StatementAnalysis) -> bool {
        !self.catalogs && s.reads_only_system_catalogs()
            || !s.tables_read.is_empty()
                && s.tables_read.iter().all(|t| {
                    (!self.catalogs && t.is_system_catalog())
                        || t.schema.as_ref().is_some_and(|schema| self.exempt_schemas.iter().any(|e| e == schema))
                })
    }
}

/// One change made to one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitChange {
    /// ` LIMIT n` was added.
    Injected {
        /// Index of the statement in the analysis.
        statement: usize,
        /// The limit added.
        limit: u64,
    },
    /// An existing limit (`None` = ALL or an expression) was capped to `to`.
    Capped {
        /// Index of the statement in the analysis.
        statement: usize,
        /// The limit the client asked for, when it was a literal.
        from: Option<u64>,
        /// The cap.
        to: u64,
    },
    /// `LIMIT $param`: the proxy must cap the parameter's value to `max` at Bind.
    CapParam {
        /// Index of the statement in the analysis.
        statement: usize,
        /// Parameter number (1-based).
        param: u32,
        /// The cap.
        max: u64,
    },
}

/// The result of [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRewrite {
    /// The new query text, or `None` when only parameters need capping.
    pub text: Option<String>,
    /// What changed, in statement order.
    pub changes: Vec<LimitChange>,
}

/// Applies `rule` to every top-level, non-aggregated read of `text` (whose analysis is
/// `analysis`). Returns `None` when nothing changes.
pub fn rewrite(text: &str, analysis: &Analysis, rule: &LimitRule) -> Option<LimitRewrite> {
    let inject = match (rule.inject, rule.max) {
        (Some(n), Some(m)) => Some(n.min(m)),
        (n, m) => n.or(m),
    };
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut changes = Vec::new();
    for (statement, s) in analysis.statements.iter().enumerate() {
        // Reads, and `COPY (query) TO …` (its query's site: see the analysis).
        let copies_query = s.keyword == "copy" && s.limit != LimitSite::None;
        if !(s.kind == StatementKind::Read || copies_query) || s.wrapper.is_some() || s.parse_error.is_some() {
            continue;
        }
        if rule.exempts(s) {
            continue;
        }
        match (&s.limit, rule.max) {
            (LimitSite::Missing { insert_at }, _) if !s.aggregates => {
                if let Some(n) = inject {
                    edits.push((*insert_at..*insert_at, format!(" LIMIT {n}")));
                    changes.push(LimitChange::Injected { statement, limit: n });
                }
            }
            (LimitSite::Literal { value, span }, Some(m)) if *value > m && !span.is_empty() => {
                edits.push((span.clone(), m.to_string()));
                changes.push(LimitChange::Capped { statement, from: Some(*value), to: m });
            }
            (LimitSite::All { span }, Some(m)) => {
                edits.push((span.clone(), m.to_string()));
                changes.push(LimitChange::Capped { statement, from: None, to: m });
            }
            (LimitSite::Expression { span }, Some(m)) => {
                let expr = &text[span.clone()];
                edits.push((span.clone(), format!("LEAST(({expr}), {m})")));
                changes.push(LimitChange::Capped { statement, from: None, to: m });
            }
            (LimitSite::Param { index, .. }, Some(m)) => {
                changes.push(LimitChange::CapParam { statement, param: *index, max: m })
            }
            _ => {}
        }
    }
    if changes.is_empty() {
        return None;
    }
    let text = (!edits.is_empty()).then(|| {
        let mut out = String::with_capacity(text.len() + 16 * edits.len());
        let mut last = 0;
        for (range, with) in &edits {
            out.push_str(&text[last..range.start]);
            out.push_str(with);
            last = range.end;
        }
        out.push_str(&text[last..]);
        out
    });
    Some(LimitRewrite { text, changes })
}

/// The NoticeResponse message telling the client its result was limited.
pub fn notice_text(policy: &str, change: &LimitChange) -> String {
    match change {
        LimitChange::Injected { limit, .. } => {
            format!("pgcached: result limited to {limit} rows by policy \"{policy}\" (LIMIT {limit} added)")
        }
        LimitChange::Capped { from: Some(f), to, .. } => {
            format!("pgcached: LIMIT {f} capped to {to} rows by policy \"{policy}\"")
        }
        LimitChange::Capped { to, .. } | LimitChange::CapParam { max: to, .. } => {
            format!("pgcached: result limited to {to} rows by policy \"{policy}\"")
        }
    }
}

#[cfg(test)]
#[path = "limit_tests.rs"]
mod tests;
