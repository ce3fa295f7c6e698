//! What a body of code does, read from its source text: which tables a function body writes
//! (for trigger functions, whose writes Postgres makes on behalf of the statement that fired
//! them: an audit row, a counter), and whether a `DO` block may leave session state behind.
//!
//! Conservative by construction: the answer is `None` ("may write anything") unless the body is
//! SQL or PL/pgSQL, runs no dynamic SQL (`EXECUTE`) and calls no function the proxy does not
//! know as a built-in — a user function it calls could write anything. A name taken for a
//! write target that is not one only over-invalidates.

use super::functions::{self, Volatility};

/// Words that may stand before `(` in a body without being a function call.
const NOT_CALLS: &[&str] = &[
    "if",
    "in",
    "values",
    "exists",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "any",
    "all",
    "some",
    "array",
    "row",
    "cast",
    "into",
    "on",
    "using",
    "elsif",
    "case",
    "when",
    "and",
    "or",
    "not",
    "return",
    "returning",
    "select",
    "from",
    "where",
    "set",
    "over",
    "filter",
    "within",
    "extract",
    "position",
    "substring",
    "trim",
    "overlay",
    "while",
    "for",
    "foreach",
    "perform",
    "then",
    "else",
    "as",
    "by",
    "join",
    "union",
    "with",
    "is",
    "like",
    "ilike",
    "between",
    "interval",
    "varchar",
    "char",
    "character",
    "numeric",
    "decimal",
    "timestamp",
    "time",
    "bit",
    "varbit",
    "float",
    "raise",
    "conflict",
    "do",
    "enum",
    "grouping",
    "rollup",
    "cube",
    "lateral",
    "only",
];

/// The tables `body` (of a function in language `language`) writes, lower-cased without
/// schema (see `cache::names`); `None` when that cannot be told from the text.
pub fn body_writes(language: &str, body: &str) -> Option<Vec<String>> {
    if !matches!(language, "sql" | "plpgsql") {
        return None;
    }
    let tokens = tokenize(body)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let word = tokens[i].as_str();
        let next = |k: usize| tokens.get(i + k).map(String::as_str);
        let target_at = match (word, next(1)) {
            ("insert" | "merge", Some("into")) => Some(i + 2),
            ("delete", Some("from")) => Some(i + 2),
            ("update" | "copy", _) => Some(i + 1),
            ("truncate", Some("table")) => Some(i + 2),
            ("truncate", _) => Some(i + 1),
            ("execute", _) => return None,
            _ => None,
        };
        if let Some(mut at) = target_at {
            if tokens.get(at).map(String::as_str) == Some("only") {
                at += 1;
            }
            if let Some((name, end)) = qualified_name(&tokens, at) {
                out.push(name);
                i = end;
                continue;
            }
        }
        if next(1) == Some("(") && is_word(word) && !NOT_CALLS.contains(&word) {
            let name = qualified_tail(&tokens, i);
            if functions::volatility(&name) == Volatility::Unknown {
                return None;
            }
        }
        i += 1;
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// Whether running `body` (in `language`) may leave session state on its connection that the
/// proxy cannot follow from the outside: a setting (`SET`, `RESET`, `set_config`), a temporary
/// object (any word with `temp`: `CREATE TEMP TABLE`, `pg_temp.x`), `LISTEN`, an advisory lock,
/// a `PREPARE`d statement — or anything, through dynamic SQL or a call of a function that is
/// not a built-in (a `CALL` too). True for what cannot be read (another language, a nested
/// dollar quote).
pub fn may_leave_session_state(language: &str, body: &str) -> bool {
    if !matches!(language, "sql" | "plpgsql") {
        return true;
    }
    let Some(tokens) = tokenize(body) else { return true };
    let mut statement_start = true;
    for (i, word) in tokens.iter().enumerate() {
        let word = word.as_str();
        if statement_start && matches!(word, "set" | "reset") {
            return true;
        }
        let state_word = matches!(word, "set_config" | "execute" | "listen" | "prepare");
        if state_word || word.contains("temp") || word.contains("advisory") {
            return true;
        }
        let names_object = name_start(&tokens, i)
            .checked_sub(1)
            .is_some_and(|before| matches!(tokens[before].as_str(), "into" | "table" | "type" | "exists" | "on"));
        if tokens.get(i + 1).is_some_and(|t| t == "(") && is_word(word) && !NOT_CALLS.contains(&word) && !names_object {
            let name = qualified_tail(&tokens, i);
            if functions::volatility(&name) == Volatility::Unknown {
                return true;
            }
        }
        statement_start = matches!(word, ";" | "begin" | "then" | "else" | "loop");
    }
    false
}

fn is_word(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The relation name starting at token `at` (`t`, `s . t`), its last part, and the index after it.
fn qualified_name(tokens: &[String], at: usize) -> Option<(String, usize)> {
    let first = tokens.get(at).filter(|t| is_word(t))?;
    let mut name = first.clone();
    let mut end = at + 1;
    while tokens.get(end).map(String::as_str) == Some(".") && tokens.get(end + 1).is_some_and(|t| is_word(t)) {
        name = tokens[end + 1].clone();
        end += 2;
    }
    Some((name, end))
}

/// The function name ending at token `at`, with its schema if written (`pg_catalog.now`).
fn qualified_tail(tokens: &[String], at: usize) -> String {
    if at >= 2 && tokens[at - 1] == "." && is_word(&tokens[at - 2]) {
        format!("{}.{}", tokens[at - 2], tokens[at])
    } else {
        tokens[at].clone()
    }
}

/// Where the name ending at token `at` starts (`s . t`: at `s`).
fn name_start(tokens: &[String], at: usize) -> usize {
    if at >= 2 && tokens[at - 1] == "." && is_word(&tokens[at - 2]) { at - 2 } else { at }
}

/// Words (lower-cased; quoted identifiers keep their case) and single punctuation characters,
/// with comments and string literals left out. `None` for text it cannot split safely (a
/// dollar-quoted string inside the body).
fn tokenize(body: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                    } else if chars[i] == '\'' {
                        break;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            '"' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                tokens.push(chars[start..i.min(chars.len())].iter().collect::<String>().to_lowercase());
                i += 1;
            }
            '$' => return None,
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                tokens.push(chars[start..i].iter().collect::<String>().to_lowercase());
            }
            c if c.is_whitespace() => i += 1,
            c => {
                tokens.push(c.to_string());
                i += 1;
            }
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_triggers_name_what_they_write() {
        let body = "BEGIN
            INSERT INTO app.audit_log (table_name, op, at) VALUES (TG_TABLE_NAME, TG_OP, now());
            UPDATE counters SET n = n + 1 WHERE name = 'orders'; -- DELETE FROM nope
            DELETE FROM ONLY \"Stale\" WHERE id = OLD.id;
            RETURN NEW;
        END";
        assert_eq!(body_writes("plpgsql", body), Some(vec!["audit_log".into(), "counters".into(), "stale".into()]));
        assert_eq!(body_writes("sql", "SELECT 1"), Some(vec![]));
        assert_eq!(
            body_writes("plpgsql", "BEGIN PERFORM pg_notify('c', format('%I', TG_TABLE_NAME)); RETURN NULL; END"),
            Some(vec![])
        );
    }

    #[test]
    fn a_body_that_may_leave_session_state_is_told() {
        for body in [
            "BEGIN SET search_path = app; END",
            "BEGIN IF true THEN RESET ALL; END IF; END",
            "BEGIN PERFORM set_config('app.tenant', '5', false); END",
            "BEGIN CREATE TEMP TABLE scratch (x int); END",
            "BEGIN CREATE TABLE pg_temp.scratch (x int); END",
            "BEGIN LISTEN jobs; END",
            "BEGIN PERFORM pg_advisory_lock(7); END",
            "BEGIN EXECUTE format('SET work_mem = %L', '1GB'); END",
            "BEGIN PERFORM app.set_tenant(5); END",
            "BEGIN CALL app.setup(); END",
            "BEGIN x := $q$ SET $q$; END",
        ] {
            assert!(may_leave_session_state("plpgsql", body), "{body}");
        }
        assert!(may_leave_session_state("plpython3u", "pass"));
        for body in [
            "BEGIN UPDATE accounts SET balance = 0 WHERE id = 1; END",
            "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN
               CREATE TYPE mood AS ENUM ('ok', 'sad'); END IF; END",
            "DECLARE n int; BEGIN SELECT count(*) INTO n FROM t; RAISE NOTICE '% set', n; END",
            "INSERT INTO log VALUES (now())",
            "BEGIN CREATE TABLE IF NOT EXISTS app.t (id int); INSERT INTO app.t (id) VALUES (1); END",
            "BEGIN CREATE TYPE pair AS (a int, b int); CREATE INDEX ON t (id); END",
        ] {
            assert!(!may_leave_session_state("plpgsql", body), "{body}");
        }
    }

    #[test]
    fn what_cannot_be_told_is_unknown() {
        assert_eq!(body_writes("plpgsql", "BEGIN EXECUTE 'DELETE FROM ' || TG_ARGV[0]; RETURN NULL; END"), None);
        assert_eq!(body_writes("plpgsql", "BEGIN PERFORM app.log_it(NEW.id); RETURN NEW; END"), None);
        assert_eq!(body_writes("plpython3u", "plpy.execute('delete from t')"), None);
        assert_eq!(body_writes("plpgsql", "BEGIN x := $q$ delete $q$; END"), None);
    }
}
