//! Session settings changed by a statement: `SET`, `SET LOCAL`, `RESET`, `RESET ALL`, and the
//! special forms (`SET TIME ZONE`, `SET NAMES`, `SET SCHEMA`, `SET ROLE`, `SET SESSION
//! AUTHORIZATION`), read from the tokens so the raw value text is exactly what the client sent.
//! `set_config()` calls are added by the analysis from the AST.

use super::lex::{TokKind, Token};
use serde::Serialize;

/// How a setting was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetVia {
    /// `SET …`
    Set,
    /// `RESET …`
    Reset,
    /// `SELECT set_config(…)`
    SetConfig,
}

/// One setting change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    /// Parameter name, lowercased (`search_path`, `timezone`, `role`); `None` for `RESET ALL`, or
    /// for a `set_config()` whose name is not a literal.
    pub name: Option<String>,
    /// Raw value text as written (`a, "B"`, `'UTC'`, `DEFAULT`); `None` for RESET. For
    /// `set_config()` the unquoted literal value, or `None` if not a literal.
    pub value: Option<String>,
    /// `SET LOCAL` or `set_config(…, true)`: ends with the transaction.
    pub local: bool,
    /// Which statement form changed it.
    pub via: SetVia,
    /// `set_config($n, …)`: the name is Bind parameter `n` (1-based); `name` is then `None`.
    pub name_param: Option<usize>,
    /// `set_config(…, $n, …)`: the value is Bind parameter `n`; `value` is then `None`.
    pub value_param: Option<usize>,
    /// `set_config(…, …, $n)`: whether it is local is Bind parameter `n`; `local` is then false.
    pub local_param: Option<usize>,
}

impl SettingChange {
    /// A change read from a SET / RESET statement (no Bind parameters).
    fn statement(name: Option<String>, value: Option<String>, local: bool, via: SetVia) -> SettingChange {
        SettingChange { name, value, local, via, name_param: None, value_param: None, local_param: None }
    }
}

/// What Postgres' `parse_bool` reads as true: a prefix of `true` or `yes`, `on`, `1` (any case,
/// surrounding blanks ignored).
pub fn is_true(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    let prefix_of = |w: &str| !v.is_empty() && w.starts_with(v.as_str());
    prefix_of("true") || prefix_of("yes") || v == "on" || v == "1"
}

/// Reads a SET / RESET statement; `None` if the tokens are not one.
pub fn parse_set(src: &str, toks: &[Token]) -> Option<SettingChange> {
    let word = |i: usize| toks.get(i).filter(|t| t.kind == TokKind::Word).map(|t| t.text(src).to_ascii_lowercase());
    let first = word(0)?;
    let reset = match first.as_str() {
        "set" => false,
        "reset" => true,
        _ => return None,
    };
    let mut i = 1;
    let mut local = false;
    match word(i).as_deref() {
        Some("local") if !reset => {
            local = true;
            i += 1;
        }
        Some("session") if !reset && word(i + 1).as_deref() != Some("authorization") => i += 1,
        _ => {}
    }
    let via = if reset { SetVia::Reset } else { SetVia::Set };
    let rest = |j: usize| -> Option<String> {
        let t = toks.get(j)?;
        Some(src[t.span.start..toks[toks.len() - 1].span.end].to_string())
    };
    let special = |name: &str, skip: usize| {
        SettingChange::statement(Some(name.to_string()), if reset { None } else { rest(i + skip) }, local, via)
    };
    match (word(i).as_deref(), word(i + 1).as_deref()) {
        (Some("time"), Some("zone")) => return Some(special("timezone", 2)),
        (Some("session"), Some("authorization")) => {
            return Some(special("session_authorization", 2));
        }
        (Some("xml"), Some("option")) => return Some(special("xmloption", 2)),
        (Some("role"), _) => return Some(special("role", 1)),
        (Some("names"), _) if !reset => return Some(special("client_encoding", 1)),
        (Some("schema"), _) if !reset => return Some(special("search_path", 1)),
        (Some("constraints"), _) if !reset => return Some(special("constraints", 1)),
        (Some("all"), None) if reset => {
            return Some(SettingChange::statement(None, None, local, via));
        }
        _ => {}
    }
    // name [. name]* { TO | = } value
    let mut name = String::new();
    loop {
        let t = toks.get(i)?;
        match t.kind {
            TokKind::Word => name.push_str(&t.text(src).to_ascii_lowercase()),
            TokKind::QuotedIdent => name.push_str(t.text(src).trim_matches('"')),
            _ => return None,
        }
        i += 1;
        if toks.get(i).is_some_and(|t| t.is_punct(src, '.')) {
            name.push('.');
            i += 1;
        } else {
            break;
        }
    }
    if reset {
        return Some(SettingChange::statement(Some(name), None, local, via));
    }
    let sep = toks.get(i)?;
    if !(sep.is_word(src, "to") || (sep.kind == TokKind::Op && sep.text(src) == "=")) {
        return None;
    }
    Some(SettingChange::statement(Some(name), rest(i + 1), local, via))
}

/// `SET SESSION CHARACTERISTICS AS TRANSACTION mode [, …]` as the settings it changes (it is
/// `SET default_transaction_isolation` / `_read_only` / `_deferrable`, as Postgres documents);
/// `None` if the tokens are not that statement or a mode is not understood.
pub fn session_characteristics(src: &str, toks: &[Token]) -> Option<Vec<SettingChange>> {
    let words: Vec<String> = toks
        .iter()
        .map(|t| if t.is_punct(src, ',') { ",".to_string() } else { t.text(src).to_ascii_lowercase() })
        .collect();
    let head = ["set", "session", "characteristics", "as", "transaction"];
    if words.len() <= head.len() || !words.iter().zip(head).all(|(w, h)| w == h) {
        return None;
    }
    let set =
        |name: &str, value: &str| SettingChange::statement(Some(name.into()), Some(value.into()), false, SetVia::Set);
    let mut changes = Vec::new();
    for mode in words[head.len()..].split(|w| w == ",") {
        let mode: Vec<&str> = mode.iter().map(String::as_str).collect();
        changes.push(match mode.as_slice() {
            ["isolation", "level", "serializable"] => set("default_transaction_isolation", "'serializable'"),
            ["isolation", "level", "repeatable", "read"] => set("default_transaction_isolation", "'repeatable read'"),
            ["isolation", "level", "read", "committed"] => set("default_transaction_isolation", "'read committed'"),
            ["isolation", "level", "read", "uncommitted"] => set("default_transaction_isolation", "'read uncommitted'"),
            ["read", "only"] => set("default_transaction_read_only", "on"),
            ["read", "write"] => set("default_transaction_read_only", "off"),
            ["deferrable"] => set("default_transaction_deferrable", "on"),
            ["not", "deferrable"] => set("default_transaction_deferrable", "off"),
            _ => return None,
        });
    }
    Some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn set(s: &str) -> SettingChange {
        parse_set(s, &tokenize(s)).expect("a SET statement")
    }

    #[test]
    fn search_path_keeps_raw_value_text() {
        let c = set("SET search_path TO a, \"B\"");
        assert_eq!(c.name.as_deref(), Some("search_path"));
        assert_eq!(c.value.as_deref(), Some("a, \"B\""));
        assert!(!c.local);
    }

    #[test]
    fn special_forms_map_to_parameter_names() {
        assert_eq!(set("SET TIME ZONE 'UTC'").name.as_deref(), Some("timezone"));
        assert_eq!(set("SET TIME ZONE 'UTC'").value.as_deref(), Some("'UTC'"));
        assert_eq!(set("set names 'LATIN1'").name.as_deref(), Some("client_encoding"));
        assert_eq!(set("SET SESSION AUTHORIZATION bob").name.as_deref(), Some("session_authorization"));
        assert_eq!(set("SET ROLE admin").value.as_deref(), Some("admin"));
        assert_eq!(set("SET SCHEMA 'x'").name.as_deref(), Some("search_path"));
        assert_eq!(set("SET CONSTRAINTS ALL DEFERRED").value.as_deref(), Some("ALL DEFERRED"));
    }

    #[test]
    fn session_characteristics_are_the_default_transaction_settings() {
        let of = |s: &str| session_characteristics(s, &tokenize(s));
        let pairs =
            |s: &str| of(s).map(|v| v.into_iter().map(|c| (c.name.unwrap(), c.value.unwrap())).collect::<Vec<_>>());
        assert_eq!(
            pairs("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            Some(vec![("default_transaction_isolation".into(), "'repeatable read'".into())])
        );
        assert_eq!(
            pairs("set session characteristics as transaction read only, not deferrable"),
            Some(vec![
                ("default_transaction_read_only".into(), "on".into()),
                ("default_transaction_deferrable".into(), "off".into())
            ])
        );
        assert!(of("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL CHAOS").is_none());
        assert!(of("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").is_none());
    }

    #[test]
    fn local_and_reset_forms() {
        let c = set("SET LOCAL statement_timeout = 5");
        assert!(c.local);
        assert_eq!(c.value.as_deref(), Some("5"));
        let r = set("RESET x.y");
        assert_eq!((r.name.as_deref(), r.value, r.via), (Some("x.y"), None, SetVia::Reset));
        assert_eq!(set("RESET ALL").name, None);
        assert_eq!(set("RESET TIME ZONE").name.as_deref(), Some("timezone"));
        assert_eq!(set("SET SESSION DateStyle TO ISO").name.as_deref(), Some("datestyle"));
    }
}
