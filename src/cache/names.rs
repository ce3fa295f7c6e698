//! Table-name normalization: the one rule that makes a write and a read of the same table meet
//! on the same version counter, whatever spelling each statement used.
//!
//! The rule (see [`version_key`]): the schema is dropped, quotes are removed and the result is
//! lower-cased. So `public.t`, `T`, `"public"."T"` and a trigger's `"public"."t"` all share one
//! counter. This over-invalidates (a write to `a.t` also invalidates reads of `b.t`, and the
//! quoted `"T"` shares with `t`), but it never under-invalidates: a bare name resolved through
//! a `search_path` the proxy cannot see is always covered. Correctness first; the cost is a few
//! extra misses for schemas that reuse table names.

use std::borrow::Cow;

/// A parsed relation name: optional schema and the relation, each unquoted. Unquoted parts
/// are lower-cased (as PostgreSQL folds them); quoted parts keep their case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelName {
    pub schema: Option<String>,
    pub name: String,
}

impl RelName {
    /// Parse `name`, `schema.name`, `"Schema"."Na.me"` or `db.schema.name` (the database part
    /// is dropped). Returns `None` for an empty name.
    pub fn parse(text: &str) -> Option<RelName> {
        if is_plain(text) {
            // The common case (`orders`): nothing to unquote, split or fold.
            return Some(RelName { schema: None, name: text.to_owned() });
        }
        let mut parts = split_ident(text.trim());
        let name = parts.pop().filter(|n| !n.is_empty())?;
        let schema = parts.pop().filter(|s| !s.is_empty());
        Some(RelName { schema, name })
    }
}

/// The key of a table's version counter: the unquoted relation name without its schema,
/// lower-cased. See the module doc for why this is safe.
/// Borrowed for the common bare lower-case name: looked up on every write and fill.
pub fn version_key(table: &str) -> Cow<'_, str> {
    if is_plain(table) {
        return Cow::Borrowed(table);
    }
    match RelName::parse(table) {
        Some(rel) => Cow::Owned(rel.name.to_lowercase()),
        None => Cow::Borrowed(""),
    }
}

/// A bare lower-case name: what folding, unquoting and splitting leave as it is.
pub(crate) fn is_plain(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Split a possibly quoted, dotted identifier into its parts, unquoting each.
fn split_ident(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '.') => parts.push(std::mem::take(&mut cur)),
            (false, c) => cur.extend(c.to_lowercase()),
            (true, c) => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_and_bare_names_share_a_version_key() {
        for spelled in ["t", "T", "public.t", "\"public\".\"t\"", "other.T", "db.public.t"] {
            assert_eq!(version_key(spelled), "t", "{spelled}");
        }
    }

    #[test]
    fn quoted_names_may_contain_dots_and_quotes() {
        let rel = RelName::parse("\"My.Schema\".\"a\"\"b\"").unwrap();
        assert_eq!(rel.schema.as_deref(), Some("My.Schema"));
        assert_eq!(rel.name, "a\"b");
        assert_eq!(version_key("\"My.Schema\".\"T.x\""), "t.x");
    }

    #[test]
    fn unquoted_parts_are_folded_to_lower_case() {
        let rel = RelName::parse("Public.Orders").unwrap();
        assert_eq!(rel.schema.as_deref(), Some("public"));
        assert_eq!(rel.name, "orders");
        assert_eq!(RelName::parse("\"Orders\"").unwrap().name, "Orders");
    }

    #[test]
    fn empty_names_parse_to_nothing() {
        assert_eq!(RelName::parse(""), None);
        assert_eq!(RelName::parse("s."), None);
    }
}
