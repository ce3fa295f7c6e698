//! Analyses reused across literal values: `UPDATE t SET v = v + 5 WHERE id = 7` and `… + 9
//! WHERE id = 12` are the same statement but two texts, and a simple-protocol client (pgbench,
//! psql scripts, ORMs that inline values) sends a new text every time. Parsing each costs far
//! more than forwarding it; with the cache on every write must be analysed to be invalidated.
//!
//! A *template* is the analysis of one text, kept under the statement's *shape*: its tokens with
//! every literal replaced by its kind (so `IN (1, 2)` and `IN (1, 2, 3)`, `5` and `'5'`, `'x'`
//! and `E'x'` are different shapes). A text of the same shape has the same parse tree but for
//! the literals' values, so its analysis is the template's with its own span, LIMIT site (by
//! token) and row pins' values (`rows`) read from its literal tokens. Only statements whose
//! analysis depends on no literal value otherwise are templates: `SELECT`, `INSERT`, `UPDATE`,
//! `DELETE` without settings, `nextval('…')`, dynamic SQL, a literal LIMIT, wrappers or parse
//! errors, and whose pinned values each match exactly one literal token (so which token holds
//! each is certain). A miss of a simple-protocol read pays the same (its text is new too).

use std::sync::Arc;

use super::analyze::{Analysis, StatementAnalysis};
use super::kind::StatementKind;
use super::lex::{StatementSpan, TokKind, Token};
use super::limit::LimitSite;
use super::rows::Operand;

/// Where a template's pinned value comes from in a text of its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Param(usize),
    /// The `index`-th literal token, negated when the statement writes `-` before it.
    Literal {
        index: usize,
        negative: bool,
    },
}

/// An analysis to reuse for texts of one shape.
#[derive(Debug)]
pub struct Template {
    /// The shape it was made for, compared in full (its hash only finds it).
    shape: Box<[u8]>,
    analysis: Arc<Analysis>,
    /// Per pinned column, per value: its slot.
    slots: Vec<Vec<Slot>>,
    /// Where a read's LIMIT goes or is, by token (byte offsets differ between texts).
    limit: LimitSlot,
}

/// A [`LimitSite`] by token index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitSlot {
    None,
    /// `Missing`: after this token.
    After(usize),
    /// `LIMIT $n`: this token.
    Param(u32, usize),
}

/// Whether `st` may have a template: it starts with SELECT, INSERT, UPDATE or DELETE.
pub fn may_have_template(src: &str, st: &StatementSpan) -> bool {
    st.tokens.first().is_some_and(|t| ["select", "insert", "update", "delete"].iter().any(|kw| t.is_word(src, kw)))
}

/// The shape of statement `st` of `src`: each token's kind and text, literals' text left out.
pub fn shape(src: &str, st: &StatementSpan) -> Vec<u8> {
    let mut out = Vec::with_capacity(st.span.len() + st.tokens.len() * 2);
    let bytes = src.as_bytes();
    for t in &st.tokens {
        let text = &bytes[t.span.clone()];
        let piece = match t.kind {
            // The prefix before the quote (`E`, `B`, `$tag$`…) changes what a string means.
            TokKind::String => &text[..memchr::memchr(b'\'', text).unwrap_or(text.len())],
            TokKind::Number => &[],
            _ => text,
        };
        out.push(t.kind as u8);
        out.extend_from_slice(piece);
        out.push(0xff); // not in UTF-8 text: pieces cannot run into each other
    }
    out
}

/// The literal tokens of `st`, in order.
fn literals(st: &StatementSpan) -> impl Iterator<Item = &Token> {
    st.tokens.iter().filter(|t| matches!(t.kind, TokKind::String | TokKind::Number))
}

/// A plain `'…'` literal's value, quotes removed and doubled quotes undone.
fn plain_string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

impl Template {
    /// The bytes it holds, the analysis it copies from included (for the memo's weigher).
    pub fn weight(&self) -> usize {
        use std::mem::size_of;
        size_of::<Template>()
            + self.shape.len()
            + self.slots.capacity() * size_of::<Vec<Slot>>()
            + self.slots.iter().map(|s| s.capacity() * size_of::<Slot>()).sum::<usize>()
            + super::weight::analysis(&self.analysis)
    }

    /// The template `analysis` (of `src`, statement `st`) makes, if it may be reused.
    pub fn of(src: &str, st: &StatementSpan, shape: Vec<u8>, analysis: &Arc<Analysis>) -> Option<Template> {
        let [s] = analysis.statements.as_slice() else { return None };
        let reusable = matches!(s.kind, StatementKind::Write | StatementKind::Read)
            && s.wrapper.is_none()
            && s.parse_error.is_none()
            && s.settings.is_empty()
            && s.sequences_written.is_empty()
            && !s.dynamic_sql;
        if !reusable {
            return None;
        }
        let token_ending = |at: usize| st.tokens.iter().position(|t| t.span.end == at);
        let limit = match &s.limit {
            LimitSite::None => LimitSlot::None,
            LimitSite::Missing { insert_at } => LimitSlot::After(token_ending(*insert_at)?),
            LimitSite::Param { index, span } => {
                LimitSlot::Param(*index, st.tokens.iter().position(|t| t.span == *span)?)
            }
            // A literal's value, or bytes that are not one token.
            _ => return None,
        };
        let lits: Vec<&Token> = literals(st).collect();
        let slot = |op: &Operand| -> Option<Slot> {
            let (negative, wanted) = match op {
                Operand::Param(n) => return Some(Slot::Param(*n)),
                Operand::Number(n) => match n.strip_prefix('-') {
                    Some(abs) => (true, abs),
                    None => (false, n.as_str()),
                },
                Operand::Str(_) => (false, ""),
            };
            let matches: Vec<usize> = lits
                .iter()
                .enumerate()
                .filter(|(_, t)| match op {
                    Operand::Str(s) => plain_string(t.text(src)).as_deref() == Some(s.as_str()),
                    _ => t.kind == TokKind::Number && t.text(src) == wanted,
                })
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [index] => Some(Slot::Literal { index: *index, negative }),
                _ => None,
            }
        };
        let slots = match &s.rows {
            Some(rows) => rows
                .columns
                .iter()
                .map(|c| c.values.iter().map(slot).collect::<Option<Vec<_>>>())
                .collect::<Option<_>>()?,
            None => Vec::new(),
        };
        Some(Template { shape: shape.into_boxed_slice(), analysis: analysis.clone(), slots, limit })
    }

    /// The analysis of `src` (statement `st`, of this template's shape); `None` when a literal
    /// is not what the template needs there (then the text is analysed in full).
    pub fn instantiate(&self, src: &str, st: &StatementSpan, shape: &[u8]) -> Option<Analysis> {
        if *self.shape != *shape {
            return None;
        }
        let template = self.analysis.statements.first()?;
        let mut s: StatementAnalysis = template.clone();
        s.span = st.span.clone();
        s.limit = match self.limit {
            LimitSlot::None => LimitSite::None,
            LimitSlot::After(i) => LimitSite::Missing { insert_at: st.tokens.get(i)?.span.end },
            LimitSlot::Param(index, i) => LimitSite::Param { index, span: st.tokens.get(i)?.span.clone() },
        };
        if let Some(rows) = s.rows.as_mut() {
            let mut lits = literals(st);
            // Slots in the order of their literals, mostly: a backward one starts over.
            let mut seen = 0;
            for (column, slots) in rows.columns.iter_mut().zip(&self.slots) {
                for (value, slot) in column.values.iter_mut().zip(slots) {
                    *value = match *slot {
                        Slot::Param(n) => Operand::Param(n),
                        Slot::Literal { index, negative } => {
                            if index < seen {
                                (lits, seen) = (literals(st), 0);
                            }
                            let t = lits.nth(index - seen)?;
                            seen = index + 1;
                            match t.kind {
                                TokKind::Number if negative => {
                                    Operand::Number(smol_str::format_smolstr!("-{}", t.text(src)))
                                }
                                TokKind::Number => Operand::Number(t.text(src).into()),
                                _ => Operand::Str(plain_string(t.text(src))?.into()),
                            }
                        }
                    };
                }
            }
        }
        Some(Analysis {
            statements: vec![s],
            fingerprint: self.analysis.fingerprint.clone(),
            fingerprint_hash: self.analysis.fingerprint_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::analyze::analyze_uncached;
    use super::super::lex::split_statements;
    use super::*;

    /// The analysis of `text` from the template of `first` (`None`: another shape, or no template).
    fn via_template(first: &str, text: &str) -> Option<Analysis> {
        let st0 = split_statements(first).remove(0);
        let st = split_statements(text).remove(0);
        let shape0 = shape(first, &st0);
        let t = Template::of(first, &st0, shape0, &Arc::new(analyze_uncached(first)))?;
        t.instantiate(text, &st, &shape(text, &st))
    }

    #[test]
    fn a_template_gives_what_a_full_analysis_gives() {
        for (first, text) in [
            (
                "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5678",
                "UPDATE pgbench_accounts SET abalance = abalance + -77 WHERE aid = 77",
            ),
            ("UPDATE t SET v = 1 WHERE id = -5", "UPDATE t SET v = 1 WHERE id = -6"),
            ("DELETE FROM t WHERE id IN (1, 2) AND k = 'it''s'", "DELETE FROM t WHERE id IN (3, 4) AND k = 'x'"),
            (
                "INSERT INTO t (id, name) VALUES (1, 'a'), (2, 'b')",
                "INSERT INTO t (id, name) VALUES (9, 'q'), (8, 'a')",
            ),
            ("UPDATE t SET id = 2 WHERE id = 1", "UPDATE t SET id = 5 WHERE id = 5"),
            ("UPDATE t SET x = $1 WHERE id = $2", "UPDATE t SET x = $1 WHERE id = $2"),
            (
                "SELECT abalance FROM pgbench_accounts WHERE aid = 5",
                "SELECT abalance FROM pgbench_accounts WHERE aid = 123456",
            ),
            ("SELECT * FROM t WHERE k = 'a' FOR UPDATE", "SELECT * FROM t WHERE k = 'long value' FOR UPDATE"),
            ("SELECT * FROM t WHERE k = 'a' LIMIT $1", "SELECT * FROM t WHERE k = 'bcd' LIMIT $1"),
            (
                "SELECT a.x FROM t a JOIN u ON u.id = a.u WHERE a.id IN (1, 2)",
                "SELECT a.x FROM t a JOIN u ON u.id = a.u WHERE a.id IN (30, 40)",
            ),
        ] {
            let reused = via_template(first, text).unwrap_or_else(|| panic!("`{first}` is a template for `{text}`"));
            assert_eq!(format!("{reused:?}"), format!("{:?}", analyze_uncached(text)), "{text}");
        }
    }

    #[test]
    fn statements_whose_analysis_depends_on_literals_or_shape_are_not_reused() {
        for (first, text) in [
            ("UPDATE t SET v = 1 WHERE id = 1", "UPDATE t SET v = 2 WHERE id = 2"), // which literal pins: ambiguous
            ("DELETE FROM t WHERE id IN (1, 2)", "DELETE FROM t WHERE id IN (1, 2, 3)"),
            ("DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = '1'"),
            ("DELETE FROM t WHERE k = 'a'", "DELETE FROM t WHERE k = E'a'"),
            ("INSERT INTO t (id) VALUES (nextval('a'))", "INSERT INTO t (id) VALUES (nextval('b'))"),
            ("SELECT * FROM t WHERE id = 1 LIMIT 5", "SELECT * FROM t WHERE id = 2 LIMIT 6"),
            ("SELECT set_config('a', 'b', false)", "SELECT set_config('a', 'c', false)"),
            ("SELECT nextval('a')", "SELECT nextval('b')"),
        ] {
            assert!(via_template(first, text).is_none(), "`{first}` must not stand for `{text}`");
        }
    }
}
