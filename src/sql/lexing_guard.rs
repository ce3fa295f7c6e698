//! Settings that change how Postgres lexes SQL text, refused under a guarded policy.
//!
//! The analysis lexes with `standard_conforming_strings = on` and UTF-8. If a client could turn
//! backslash escapes back on, or pick a client encoding whose multibyte characters can end in
//! `\` or `'` bytes, Postgres and this module would disagree about where a string ends:
//! `SELECT 'x\'' ; DROP TABLE t; -- '` is one SELECT here and two statements to a server with
//! `standard_conforming_strings = off`. So these may not change by SET, set_config(), startup
//! options, or (the proxy checks the server's ParameterStatus) by role/database defaults.

/// Why a setting is refused, or `None` when it is harmless.
pub fn violation(name: &str, value: &str) -> Option<String> {
    let name = name.trim().to_ascii_lowercase();
    let v = unquote(value);
    match name.as_str() {
        "standard_conforming_strings" if !is_true(&v) => {
            Some(format!("standard_conforming_strings = {value} changes how SQL strings are lexed"))
        }
        "client_encoding" | "names" if !is_utf8(&v) => {
            Some(format!("client_encoding {value} is not UTF-8; it changes how SQL text is lexed"))
        }
        "backslash_quote" if !matches!(v.as_str(), "safe_encoding" | "off" | "false" | "no" | "0" | "default") => {
            Some(format!("backslash_quote = {value} changes how SQL strings are lexed"))
        }
        _ => None,
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
    v.trim().to_ascii_lowercase()
}

/// What Postgres' `parse_bool` reads as true (plus DEFAULT, which is on).
fn is_true(v: &str) -> bool {
    super::settings::is_true(v) || v == "default"
}

fn is_utf8(v: &str) -> bool {
    matches!(v, "utf8" | "utf-8" | "unicode" | "utf_8")
}

/// Checks startup parameters (`name`, `value`), including `-c name=value` / `--name=value` in
/// `options`. Returns the first violation.
pub fn check_startup_params<N: AsRef<str>, V: AsRef<str>>(params: &[(N, V)]) -> Result<(), String> {
    for (n, v) in params {
        let (n, v) = (n.as_ref(), v.as_ref());
        if n.eq_ignore_ascii_case("options") {
            for (name, value) in crate::wire::frame::startup_options(v) {
                if let Some(why) = violation(&name, &value) {
                    return Err(why);
                }
            }
        } else if let Some(why) = violation(n, v) {
            return Err(why);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_strings_and_foreign_encodings_are_refused() {
        assert!(violation("standard_conforming_strings", "off").is_some());
        assert!(violation("standard_conforming_strings", "'of'").is_some());
        assert!(violation("standard_conforming_strings", "on").is_none());
        assert!(violation("client_encoding", "'SJIS'").is_some());
        assert!(violation("client_encoding", "UTF8").is_none());
        assert!(violation("search_path", "a").is_none());
    }

    #[test]
    fn startup_options_are_checked() {
        assert!(check_startup_params(&[("options", "-c standard_conforming_strings=off")]).is_err());
        assert!(check_startup_params(&[("options", "--standard-conforming-strings=off")]).is_err());
        assert!(check_startup_params(&[("options", "-cclient_encoding=BIG5")]).is_err());
        assert!(check_startup_params(&[("client_encoding", "GBK")]).is_err());
        assert!(check_startup_params(&[("client_encoding", "UTF8"), ("application_name", "x")]).is_ok());
    }
}
