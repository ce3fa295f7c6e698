//! Statements that change what a new session starts with: `ALTER DATABASE d SET|RESET …` and
//! `ALTER ROLE|USER r [IN DATABASE d] SET|RESET …` (`r` may be `ALL`). Postgres applies them at
//! login: sessions already open keep the values they logged in with, and so would a pool's
//! server connections, which new clients get — so the proxy retires those when such a
//! statement commits (`pool::Pools::new_login_defaults`, DECISIONS 54).
//!
//! Read from the tokens (a text whose tokens do not have the shape changes nothing here).

use super::lex::{Token, split_statements};

/// Whether a statement of `text` changes login defaults.
pub fn changes_login_defaults(text: &str) -> bool {
    split_statements(text).iter().any(|s| changes(text, &s.tokens))
}

fn changes(src: &str, toks: &[Token]) -> bool {
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(src, w));
    if !is(0, "alter") {
        return false;
    }
    // The database or role's name is token 2 (one token, quoted or not).
    let at = if is(1, "database") {
        3
    } else if is(1, "role") || is(1, "user") {
        if is(3, "in") && is(4, "database") { 6 } else { 3 }
    } else {
        return false;
    };
    (is(at, "set") && !is(at + 1, "tablespace")) || is(at, "reset")
}

#[cfg(test)]
mod tests {
    use super::changes_login_defaults;

    #[test]
    fn what_changes_a_new_sessions_defaults() {
        for text in [
            "ALTER DATABASE app SET work_mem = '8MB'",
            "alter database \"My App\" set timezone to 'UTC'",
            "ALTER DATABASE app RESET ALL",
            "ALTER ROLE app SET search_path = x, public",
            "ALTER USER app RESET work_mem",
            "ALTER ROLE ALL SET statement_timeout = 0",
            "ALTER ROLE app IN DATABASE app SET work_mem = '1MB'",
            "ALTER ROLE ALL IN DATABASE app RESET ALL",
            "SELECT 1; ALTER DATABASE app SET DateStyle = 'ISO, DMY'",
        ] {
            assert!(changes_login_defaults(text), "{text}");
        }
        for text in [
            "ALTER DATABASE app SET TABLESPACE fast",
            "ALTER DATABASE app RENAME TO other",
            "ALTER DATABASE app OWNER TO bob",
            "ALTER DATABASE app WITH CONNECTION LIMIT 5",
            "ALTER ROLE app WITH PASSWORD 'x'",
            "ALTER ROLE app RENAME TO bob",
            "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET user 'x')",
            "ALTER TABLE t SET (fillfactor = 50)",
            "SET work_mem = '8MB'",
            "SELECT 'ALTER DATABASE app SET work_mem = 1'",
        ] {
            assert!(!changes_login_defaults(text), "{text}");
        }
    }
}
