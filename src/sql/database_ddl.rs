//! Statements Postgres refuses while other sessions are connected to a database they name:
//! `DROP DATABASE x`, `ALTER DATABASE x RENAME TO …`, `ALTER DATABASE x SET TABLESPACE …` and
//! `CREATE DATABASE … [TEMPLATE t]` (its template, `template1` when none is named) fail with
//! 55006 "database … is being accessed by other users" after waiting 5 s for them to leave.
//! A pool's idle server connections are such sessions, ones no client opened: the session
//! closes them before it sends the statement (`session/vacate.rs`).
//!
//! Read from the tokens (sqlparser does not know every option of these statements); a text
//! whose tokens do not have the shape names nothing, and the statement goes as it is.

use super::lex::{TokKind, Token, contains_ignore_ascii_case, split_statements};

/// The word every such statement has; a text without it (checked on bytes, in any case) is
/// none of them.
const DATABASE: &[u8] = b"database";

/// The database `CREATE DATABASE` copies when it names no template.
const DEFAULT_TEMPLATE: &str = "template1";

/// Whether `text` may be one of these statements: it starts (after blanks and comments) with
/// `d`, `a` or `c` (`DROP`, `ALTER`, `CREATE`) and holds the word `database`. Cheap enough for
/// every statement of the pass-through path: most start with another letter.
pub fn may_name_database(text: &[u8]) -> bool {
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first.map(u8::to_ascii_lowercase), Some(b'd' | b'a' | b'c' | b'-' | b'/')) {
        return false;
    }
    contains_ignore_ascii_case(text, DATABASE)
}

/// The databases the statements of `text` need free of other sessions, folded as Postgres folds
/// identifiers.
pub fn databases_needed_free(text: &str) -> Vec<String> {
    split_statements(text).iter().filter_map(|s| needed_free(text, &s.tokens)).collect()
}

fn needed_free(src: &str, toks: &[Token]) -> Option<String> {
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(src, w));
    if !is(1, "database") {
        return None;
    }
    if is(0, "drop") {
        let at = if is(2, "if") && is(3, "exists") { 4 } else { 2 };
        return toks.get(at)?.identifier(src);
    }
    if is(0, "alter") {
        let moves = is(3, "rename") || (is(3, "set") && is(4, "tablespace"));
        return if moves { toks.get(2)?.identifier(src) } else { None };
    }
    if is(0, "create") {
        return Some(template(src, toks.get(3..)?).unwrap_or_else(|| DEFAULT_TEMPLATE.to_string()));
    }
    None
}

/// The `TEMPLATE [=] t` option among `CREATE DATABASE x`'s options (an identifier, a string
/// or `DEFAULT`).
fn template(src: &str, options: &[Token]) -> Option<String> {
    let at = options.iter().position(|t| t.is_word(src, "template"))?;
    let mut value = options.get(at + 1)?;
    if value.kind == TokKind::Op && value.text(src) == "=" {
        value = options.get(at + 2)?;
    }
    if value.is_word(src, "default") {
        return None;
    }
    match value.kind {
        TokKind::String => plain_string(value.text(src)),
        _ => value.identifier(src),
    }
}

/// The value of a plain `'…'` literal (`''` as `'`); `None` for the other string forms.
fn plain_string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

#[cfg(test)]
mod tests {
    use super::{databases_needed_free, may_name_database};

    fn named(text: &str) -> Vec<String> {
        assert!(may_name_database(text.as_bytes()), "the byte check lets {text:?} through");
        databases_needed_free(text)
    }

    #[test]
    fn drop_rename_and_move_name_their_database() {
        assert_eq!(named("DROP DATABASE testdb"), ["testdb"]);
        assert_eq!(named("drop database if exists \"Test\"\"DB\" with (force)"), ["Test\"DB"]);
        assert_eq!(named("  /* c */ DROP DATABASE App"), ["app"]);
        assert_eq!(named("-- c\nALTER DATABASE a RENAME TO b"), ["a"]);
        assert_eq!(named("ALTER DATABASE a SET TABLESPACE t"), ["a"]);
    }

    #[test]
    fn create_database_names_its_template() {
        assert_eq!(named("CREATE DATABASE x"), ["template1"]);
        assert_eq!(named("CREATE DATABASE x WITH OWNER = bob TEMPLATE = tpl ENCODING 'UTF8'"), ["tpl"]);
        assert_eq!(named("create database x template 'My''Tpl'"), ["My'Tpl"]);
        assert_eq!(named("CREATE DATABASE x TEMPLATE DEFAULT"), ["template1"]);
        assert_eq!(named("CREATE DATABASE x TEMPLATE \"T\""), ["T"]);
    }

    #[test]
    fn other_statements_name_nothing() {
        for text in [
            "ALTER DATABASE a SET work_mem = '1MB'",
            "ALTER DATABASE a OWNER TO bob",
            "DELETE FROM database WHERE id = 1",
            "COMMENT ON DATABASE a IS 'x'",
            "CREATE TABLE database (id int)",
            "DROP TABLE database",
        ] {
            assert!(databases_needed_free(text).is_empty(), "{text}");
        }
        for text in ["SELECT 'drop database x'", "UPDATE t SET database = 1", "COMMIT", "", "  "] {
            assert!(!may_name_database(text.as_bytes()), "{text}");
        }
    }
}
