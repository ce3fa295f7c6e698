//! Statements sqlparser cannot read whose meaning needs no grammar, analysed from their tokens
//! (verified against sqlparser 0.63): `REFRESH MATERIALIZED VIEW [CONCURRENTLY] v [WITH [NO]
//! DATA]` (writes `v`), `VACUUM (option, …) …` (reads and writes no rows) and `ALTER DEFAULT
//! PRIVILEGES …` (changes the privileges of objects created later, none that exist). A statement
//! of these kinds whose tokens do not have the expected shape is left to the parser, which fails
//! and the caller fails closed.

use super::lex::Token;
use super::tables::TableRef;

/// What the tokens of such a statement say.
#[derive(Debug, PartialEq, Eq)]
pub enum Utility {
    /// `REFRESH MATERIALIZED VIEW`: the view whose rows it replaces.
    Refresh(TableRef),
    /// `VACUUM` with an option list: no rows read or written.
    Vacuum,
    /// `ALTER DEFAULT PRIVILEGES`: nothing that exists changes.
    DefaultPrivileges,
}

/// The statement `toks` of `src`, when it is one of the statements this module reads.
pub fn recognize(src: &str, toks: &[Token]) -> Option<Utility> {
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(src, w));
    if is(0, "vacuum") && toks.get(1).is_some_and(|t| t.is_punct(src, '(')) {
        return Some(Utility::Vacuum);
    }
    if is(0, "alter") && is(1, "default") && is(2, "privileges") {
        return Some(Utility::DefaultPrivileges);
    }
    if is(0, "refresh") && is(1, "materialized") && is(2, "view") {
        let mut i = 3;
        if is(i, "concurrently") {
            i += 1;
        }
        let (view, rest) = relation_name(src, &toks[i.min(toks.len())..])?;
        let tail_ok = match rest {
            [] => true,
            [w, d] => w.is_word(src, "with") && d.is_word(src, "data"),
            [w, n, d] => w.is_word(src, "with") && n.is_word(src, "no") && d.is_word(src, "data"),
            _ => false,
        };
        return tail_ok.then_some(Utility::Refresh(view));
    }
    None
}

/// A possibly qualified relation name at the start of `toks` (the last two parts, folded as
/// Postgres folds identifiers), and the tokens after it.
fn relation_name<'t>(src: &str, toks: &'t [Token]) -> Option<(TableRef, &'t [Token])> {
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        parts.push(toks.get(i)?.identifier(src)?);
        i += 1;
        if !toks.get(i).is_some_and(|t| t.is_punct(src, '.')) {
            break;
        }
        i += 1;
    }
    let name = parts.pop()?;
    if parts.len() > 2 {
        return None;
    }
    Some((TableRef { schema: parts.pop().map(Into::into), name: name.into() }, &toks[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn of(s: &str) -> Option<Utility> {
        recognize(s, &tokenize(s))
    }

    fn refresh(schema: Option<&str>, name: &str) -> Option<Utility> {
        Some(Utility::Refresh(TableRef { schema: schema.map(Into::into), name: name.into() }))
    }

    #[test]
    fn refresh_names_its_view_folded() {
        assert_eq!(of("REFRESH MATERIALIZED VIEW Totals"), refresh(None, "totals"));
        assert_eq!(
            of("refresh materialized view concurrently app.\"Sums\" with no data"),
            refresh(Some("app"), "Sums")
        );
        assert_eq!(of("REFRESH MATERIALIZED VIEW db.app.t WITH DATA"), refresh(Some("app"), "t"));
        assert_eq!(of("REFRESH MATERIALIZED VIEW \"a\"\"b\""), refresh(None, "a\"b"));
        // Not the expected shape: left to the parser.
        assert_eq!(of("REFRESH MATERIALIZED VIEW"), None);
        assert_eq!(of("REFRESH MATERIALIZED VIEW t, u"), None);
        assert_eq!(of("REFRESH MATERIALIZED VIEW t WITH"), None);
        assert_eq!(of("REFRESH MATERIALIZED VIEW a.b.c.d"), None);
    }

    #[test]
    fn vacuum_with_options_and_default_privileges_are_known() {
        assert_eq!(of("VACUUM (VERBOSE, ANALYZE) t (a)"), Some(Utility::Vacuum));
        assert_eq!(of("VACUUM t"), None, "sqlparser reads it");
        assert_eq!(
            of("ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO bi"),
            Some(Utility::DefaultPrivileges)
        );
        assert_eq!(of("ALTER TABLE t ADD c int DEFAULT 1"), None);
    }
}
