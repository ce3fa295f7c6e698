//! Which tables a function body writes, read from its source text: for trigger functions, whose
//! writes Postgres makes on behalf of the statement that fired them (an audit row, a counter).
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
    fn what_cannot_be_told_is_unknown() {
        assert_eq!(body_writes("plpgsql", "BEGIN EXECUTE 'DELETE FROM ' || TG_ARGV[0]; RETURN NULL; END"), None);
        assert_eq!(body_writes("plpgsql", "BEGIN PERFORM app.log_it(NEW.id); RETURN NEW; END"), None);
        assert_eq!(body_writes("plpython3u", "plpy.execute('delete from t')"), None);
        assert_eq!(body_writes("plpgsql", "BEGIN x := $q$ delete $q$; END"), None);
    }
}
