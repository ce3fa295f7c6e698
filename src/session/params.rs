//! Session parameters that must hold for a client whichever server connection it lands on.
//!
//! A client's *wanted* values are what it set (startup packet, `SET`, or a ParameterStatus the
//! server reported while running the client's statements). A server connection's *dirty* values
//! are what some client left set on it. On checkout the two are compared and the differences are
//! fixed with one hidden statement (`set_config(...)` / `RESET ...`), like PgBouncer does for the
//! reported parameters; unreported ones (`search_path`, `extra_float_digits`, …) are tracked from
//! the `SET`/`RESET`/`set_config()` statements the SQL analysis finds.

use std::collections::BTreeMap;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// Parameters a client may not carry across servers: they describe the server or are fixed.
const SERVER_OWNED: &[&str] = &[
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "session_authorization",
    "in_hot_standby",
    "scram_iterations",
];

/// Is `name` a parameter the proxy carries for a client?
pub fn is_tracked(name: &str) -> bool {
    !NOT_SETTINGS.contains(&name) && !SERVER_OWNED.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Parameter names are compared case-insensitively, as Postgres does.
fn norm(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A set of parameter values keyed by lowercase name (the original spelling is kept for SQL).
#[derive(Clone, Debug, Default)]
pub struct ParamSet {
    values: BTreeMap<String, (String, String)>,
    /// Changes with every change of `values`, and no two sets ever share a value unless one is
    /// a copy of the other with the same values (0: never changed, i.e. empty): what is derived
    /// from a set can be memoized under it.
    generation: u64,
}

impl PartialEq for ParamSet {
    fn eq(&self, other: &ParamSet) -> bool {
        self.values == other.values
    }
}

impl Eq for ParamSet {}

impl std::hash::Hash for ParamSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.values.hash(state);
    }
}

/// Source of [`ParamSet::generation`] values, process-wide so they are never reused.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ParamSet {
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(norm(name), (name.to_string(), value.to_string()));
        self.changed();
    }

    pub fn remove(&mut self, name: &str) {
        if self.values.remove(&norm(name)).is_some() {
            self.changed();
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        // Looked up per transaction: no allocation for names already in lower case.
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.values.get(&norm(name))
        } else {
            self.values.get(name)
        };
        found.map(|(_, v)| v.as_str())
    }

    pub fn clear(&mut self) {
        if !self.values.is_empty() {
            self.values.clear();
            self.changed();
        }
    }

    /// See the field's doc.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.values().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The statement that brings a server whose client-set values are `dirty` to the values
/// `wanted`, or `None` when they already agree. Updates `dirty` to what it will be afterwards.
pub fn sync_statement(wanted: &ParamSet, dirty: &mut ParamSet) -> Option<String> {
    if wanted.generation == dirty.generation {
        // The same values (see `generation`): the usual checkout, decided without comparing.
        return None;
    }
    let mut resets = Vec::new();
    let mut sets = Vec::new();
    for (name, value) in wanted.iter() {
        if dirty.get(name) != Some(value) {
            sets.push(format!("pg_catalog.set_config({}, {}, false)", literal(name), literal(value)));
        }
    }
    for (name, _) in dirty.iter() {
        if wanted.get(name).is_none() {
            resets.push(format!("RESET {}", ident(name)));
        }
    }
    if sets.is_empty() && resets.is_empty() {
        // Equal values: share the generation so that the next comparison is a single one.
        dirty.generation = wanted.generation;
        return None;
    }
    *dirty = wanted.clone();
    let mut sql = resets.join("; ");
    if !sets.is_empty() {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql.push_str("SELECT ");
        sql.push_str(&sets.join(", "));
    }
    Some(sql)
}

/// A SQL string literal (standard_conforming_strings-independent: `E''` with escapes).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A quoted identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Startup parameters as wanted values (`options=-c a=b --c=d` included).
pub fn from_startup(params: &[(String, String)]) -> ParamSet {
    let mut set = ParamSet::default();
    for (name, value) in params {
        if name == "options" {
            for (n, v) in crate::wire::frame::startup_options(value) {
                set.set(&n, &v);
            }
        } else if is_tracked(name) {
            set.set(name, value);
        }
    }
    set
}

/// What a `SET`/`RESET` statement does to session parameters (from the SQL analysis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetEffect {
    Set { name: String, value: String },
    Reset { name: String },
    ResetAll,
}

/// The value as `set_config` wants it: a single quoted literal is unquoted; a list stays as
/// written (`a, "B"` is what `SHOW` prints and `set_config` accepts).
pub fn set_value(value: &str) -> String {
    if value.starts_with('\'') && value.ends_with('\'') && value.len() >= 2 && !value[1..value.len() - 1].contains('\'')
    {
        value[1..value.len() - 1].to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generations_change_with_values_and_only_copies_share_one() {
        let mut a = ParamSet::default();
        let mut b = ParamSet::default();
        assert_eq!(a.generation(), b.generation(), "both empty");
        a.set("TimeZone", "UTC");
        b.set("TimeZone", "Asia/Tokyo");
        assert_ne!(a.generation(), b.generation());
        let before = a.generation();
        a.remove("timezone");
        assert_ne!(a.generation(), before);
        let copy = b.clone();
        assert_eq!((copy.generation(), copy.get("timezone")), (b.generation(), Some("Asia/Tokyo")));
        b.set("timezone", "UTC");
        assert_ne!(b.generation(), copy.generation());
        assert_eq!(b.get("TIMEZONE"), Some("UTC"));
    }

    use super::*;

    #[test]
    fn set_values_are_unquoted_only_when_one_literal() {
        assert_eq!(set_value("'Europe/Paris'"), "Europe/Paris");
        assert_eq!(set_value("a, \"B\""), "a, \"B\"");
        assert_eq!(set_value("'a', 'b'"), "'a', 'b'", "a list of literals stays as written");
        assert_eq!(set_value("42"), "42");
    }

    #[test]
    fn sync_sets_what_differs_and_resets_what_the_client_never_set() {
        let mut wanted = ParamSet::default();
        wanted.set("TimeZone", "UTC");
        wanted.set("application_name", "it's");
        let mut dirty = ParamSet::default();
        dirty.set("timezone", "UTC");
        dirty.set("search_path", "x");
        let sql = sync_statement(&wanted, &mut dirty).unwrap();
        assert_eq!(sql, "RESET \"search_path\"; SELECT pg_catalog.set_config(E'application_name', E'it''s', false)");
        assert_eq!(dirty, wanted);
        assert_eq!(sync_statement(&wanted, &mut dirty), None);
    }

    #[test]
    fn equal_sets_share_a_generation_and_still_see_later_changes() {
        let mut wanted = ParamSet::default();
        wanted.set("TimeZone", "UTC");
        let mut dirty = ParamSet::default();
        dirty.set("timezone", "UTC");
        assert_ne!(dirty.generation(), wanted.generation());
        assert_eq!(sync_statement(&wanted, &mut dirty), None);
        assert_eq!(dirty.generation(), wanted.generation(), "equal values: the generation is shared");
        // A change on either side after that is still a difference.
        dirty.set("search_path", "x");
        assert_eq!(sync_statement(&wanted, &mut dirty).as_deref(), Some("RESET \"search_path\""));
        wanted.set("TimeZone", "Asia/Tokyo");
        assert!(sync_statement(&wanted, &mut dirty).unwrap().contains("Asia/Tokyo"));
    }

    #[test]
    fn startup_options_are_parsed() {
        let p = from_startup(&[
            ("user".into(), "u".into()),
            ("options".into(), "-c search_path=a\\ b --statement-timeout=5s -cwork_mem=64MB".into()),
            ("server_version".into(), "1".into()),
        ]);
        assert_eq!(p.get("search_path"), Some("a b"));
        assert_eq!(p.get("statement_timeout"), Some("5s"));
        assert_eq!(p.get("work_mem"), Some("64MB"));
        assert_eq!(p.get("user"), None);
        assert_eq!(p.get("server_version"), None);
    }
}
