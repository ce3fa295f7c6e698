//! Per-statement caching decisions: `cache.rules` and comment hints.
//!
//! This decides only *whether the operator or the author wants* a statement cached and for how
//! long. Whether it *may* be cached (read-only, deterministic, no FOR UPDATE, …) is the SQL
//! analysis's call and is checked before; a `cache: true` here never overrides it.
//!
//! Precedence, strongest first:
//! 1. the first matching rule with `cache: false` → not cached (an operator's "no" beats a
//!    client's hint);
//! 2. a `/* pgcached:nocache */` hint → not cached;
//! 3. a `/* pgcached:ttl=30s */` hint → that TTL, capped by the matching rule's `ttl` if it has
//!    one (rules bound staleness; hints can extend only `cache.default_ttl`);
//! 4. the matching rule's `ttl`;
//! 5. `cache.default_ttl`.
//!
//! A TTL of zero means "not cached". A rule matches when **all** the conditions it gives match:
//! `table` (any table of the statement; names compared as in `names.rs`, the schema only when
//! both sides have one), `fingerprint` (exact), `regex` (searched in the statement text).
//! Hints are found in any `/* … */` comment of the text; a hint-like string inside a literal
//! is also honoured (a client can only affect its own statements' caching that way).

use std::time::Duration;

use regex::Regex;

use super::names::RelName;
use crate::config::{CacheConfig, CacheRule, parse_duration};

/// A `cache.rules` entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cache.rules[{index}]: invalid regex: {source}")]
    Regex { index: usize, source: regex::Error },
    #[error("cache.rules[{index}]: give at least one of table, fingerprint, regex")]
    NoCondition { index: usize },
    #[error("cache.rules[{index}]: invalid table name")]
    Table { index: usize },
}

/// The decision for one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub cache: bool,
    pub ttl: Duration,
    /// What decided, for logs and tests.
    pub source: DecisionSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionSource {
    Default,
    /// `cache.rules[i]`.
    Rule(usize),
    Hint,
}

/// The compiled `cache.rules`.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    default_ttl: Duration,
}

#[derive(Debug)]
struct Rule {
    table: Option<RelName>,
    fingerprint: Option<String>,
    regex: Option<Regex>,
    ttl: Option<Duration>,
    cache: bool,
}

/// Hints found in a statement's comments.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub nocache: bool,
    pub ttl: Option<Duration>,
}

impl Rules {
    pub fn new(cfg: &CacheConfig) -> Result<Rules, RulesError> {
        let rules = cfg.rules.iter().enumerate().map(|(i, r)| Rule::compile(i, r));
        Ok(Rules { rules: rules.collect::<Result<_, _>>()?, default_ttl: cfg.default_ttl })
    }

    /// Decide for a statement, given its text, the tables it reads (any spelling) and its
    /// fingerprint (from the SQL analysis).
    pub fn decide(&self, text: &str, tables: &[&str], fingerprint: Option<&str>) -> Decision {
        let hints = Hints::parse(text);
        let matched = self.rules.iter().enumerate().find(|(_, r)| r.matches(text, tables, fingerprint));
        let (ttl, source) = match (matched, hints) {
            (Some((i, r)), _) if !r.cache => (Duration::ZERO, DecisionSource::Rule(i)),
            (_, Hints { nocache: true, .. }) => (Duration::ZERO, DecisionSource::Hint),
            (Some((_, Rule { ttl: Some(cap), .. })), Hints { ttl: Some(t), .. }) => {
                ((*cap).min(t), DecisionSource::Hint)
            }
            (_, Hints { ttl: Some(t), .. }) => (t, DecisionSource::Hint),
            (Some((i, r)), _) => (r.ttl.unwrap_or(self.default_ttl), DecisionSource::Rule(i)),
            (None, _) => (self.default_ttl, DecisionSource::Default),
        };
        Decision { cache: !ttl.is_zero(), ttl, source }
    }
}

impl Rule {
    fn compile(index: usize, r: &CacheRule) -> Result<Rule, RulesError> {
        if r.table.is_none() && r.fingerprint.is_none() && r.regex.is_none() {
            return Err(RulesError::NoCondition { index });
        }
        let table = match &r.table {
            Some(t) => Some(RelName::parse(t).ok_or(RulesError::Table { index })?),
            None => None,
        };
        let regex = match &r.regex {
            Some(re) => Some(Regex::new(re).map_err(|source| RulesError::Regex { index, source })?),
            None => None,
        };
        Ok(Rule { table, fingerprint: r.fingerprint.clone(), regex, ttl: r.ttl, cache: r.cache.unwrap_or(true) })
    }

    fn matches(&self, text: &str, tables: &[&str], fingerprint: Option<&str>) -> bool {
        let table_ok = self.table.as_ref().is_none_or(|want| {
            tables.iter().filter_map(|t| RelName::parse(t)).any(|got| {
                got.name == want.name
                    && match (&got.schema, &want.schema) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            })
        });
        let fp_ok = self.fingerprint.as_deref().is_none_or(|want| fingerprint == Some(want));
        let re_ok = self.regex.as_ref().is_none_or(|re| re.is_match(text));
        table_ok && fp_ok && re_ok
    }
}

impl Hints {
    /// Find `pgcached:` hints in the `/* … */` comments of `text`. Options are separated by
    /// commas or spaces: `nocache`, `ttl=<duration>`. Unknown options are ignored.
    pub fn parse(text: &str) -> Hints {
        let mut hints = Hints::default();
        let mut rest = text;
        while let Some(start) = rest.find("/*") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("*/") else { break };
            let body = after[..end].trim();
            if let Some(opts) = body.strip_prefix("pgcached:") {
                for opt in opts.split([',', ' ', '\t', '\n']).filter(|o| !o.is_empty()) {
                    if opt.eq_ignore_ascii_case("nocache") {
                        hints.nocache = true;
                    } else if let Some(v) = opt.strip_prefix("ttl=") {
                        if let Ok(ttl) = parse_duration(v) {
                            hints.ttl = Some(ttl);
                        }
                    }
                }
            }
            rest = &after[end + 2..];
        }
        hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        table: Option<&str>,
        fp: Option<&str>,
        re: Option<&str>,
        ttl: Option<u64>,
        cache: Option<bool>,
    ) -> CacheRule {
        CacheRule {
            table: table.map(Into::into),
            fingerprint: fp.map(Into::into),
            regex: re.map(Into::into),
            ttl: ttl.map(Duration::from_secs),
            cache,
        }
    }

    fn rules(list: Vec<CacheRule>) -> Rules {
        Rules::new(&CacheConfig { rules: list, default_ttl: Duration::from_secs(60), ..CacheConfig::default() })
            .unwrap()
    }

    #[test]
    fn without_rules_or_hints_the_default_ttl_applies() {
        let d = rules(vec![]).decide("SELECT 1", &[], None);
        assert_eq!(d, Decision { cache: true, ttl: Duration::from_secs(60), source: DecisionSource::Default });
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let r = rules(vec![
            rule(Some("public.orders"), None, None, Some(5), None),
            rule(Some("orders"), None, None, None, Some(false)),
        ]);
        let d = r.decide("SELECT * FROM orders", &["orders"], None);
        assert_eq!((d.cache, d.ttl, d.source), (true, Duration::from_secs(5), DecisionSource::Rule(0)));
        let d = r.decide("SELECT * FROM other.orders", &["other.orders"], None);
        assert_eq!((d.cache, d.source), (false, DecisionSource::Rule(1)));
    }

    #[test]
    fn rules_match_by_fingerprint_and_regex() {
        let r = rules(vec![
            rule(None, Some("abc"), None, Some(1), None),
            rule(None, None, Some("(?i)from\\s+audit"), None, Some(false)),
        ]);
        assert_eq!(r.decide("SELECT 1", &[], Some("abc")).ttl, Duration::from_secs(1));
        assert!(!r.decide("select * FROM  audit", &[], Some("x")).cache);
        assert_eq!(r.decide("SELECT 2", &[], Some("x")).source, DecisionSource::Default);
    }

    #[test]
    fn hints_set_ttl_or_refuse_caching() {
        let r = rules(vec![]);
        let d = r.decide("/* pgcached:ttl=30s */ SELECT 1", &[], None);
        assert_eq!((d.cache, d.ttl, d.source), (true, Duration::from_secs(30), DecisionSource::Hint));
        assert!(!r.decide("SELECT 1 /*pgcached:nocache*/", &[], None).cache);
        assert!(!r.decide("SELECT 1 /* pgcached:ttl=0 */", &[], None).cache);
        assert_eq!(r.decide("SELECT 1 /* just a comment */", &[], None).source, DecisionSource::Default);
    }

    #[test]
    fn an_operator_no_beats_a_hint_and_a_rule_ttl_caps_it() {
        let r = rules(vec![
            rule(Some("secret"), None, None, None, Some(false)),
            rule(Some("t"), None, None, Some(10), None),
        ]);
        assert!(!r.decide("/* pgcached:ttl=1h */ SELECT * FROM secret", &["secret"], None).cache);
        let d = r.decide("/* pgcached:ttl=1h */ SELECT * FROM t", &["t"], None);
        assert_eq!(d.ttl, Duration::from_secs(10));
        let d = r.decide("/* pgcached:ttl=2s */ SELECT * FROM t", &["t"], None);
        assert_eq!(d.ttl, Duration::from_secs(2));
    }

    #[test]
    fn invalid_rules_are_reported_with_their_index() {
        let cfg = CacheConfig { rules: vec![rule(None, None, Some("("), None, None)], ..CacheConfig::default() };
        assert!(Rules::new(&cfg).unwrap_err().to_string().starts_with("cache.rules[0]"));
        let cfg = CacheConfig { rules: vec![rule(None, None, None, Some(1), None)], ..CacheConfig::default() };
        assert!(matches!(Rules::new(&cfg), Err(RulesError::NoCondition { index: 0 })));
    }
}
