//! The memo of analyses, keyed by the exact query text: a repeated statement is parsed once.
//! A write whose text is new but whose shape is not (other literal values) is analysed from a
//! [`Template`] instead of parsed (see `template`).
//!
//! Bounded by weight (roughly the bytes of text held), so a client sending many distinct large
//! strings cannot grow it without limit. `get_with` computes a missing entry once even when
//! several sessions ask for it at the same moment.

use super::analyze::{Analysis, analyze_uncached};
use super::lex::split_statements;
use super::template::{Template, may_have_template, shape};
use moka::sync::Cache;
use std::sync::{Arc, OnceLock};

/// Default memo budget: about 64 MiB of query text (plus a fixed charge per entry).
pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;
/// Templates kept (one per statement shape: few in any application).
const TEMPLATES: u64 = 10_000;

/// A bounded memo of analyses.
#[derive(Clone)]
pub struct Analyzer {
    cache: Cache<String, Arc<Analysis>>,
    templates: Cache<u128, Arc<Template>>,
}

impl Analyzer {
    /// A memo holding at most about `capacity` bytes of query text.
    pub fn new(capacity: u64) -> Analyzer {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|k: &String, _v: &Arc<Analysis>| u32::try_from(k.len() * 2 + 512).unwrap_or(u32::MAX))
            .build();
        Analyzer { cache, templates: Cache::new(TEMPLATES) }
    }

    /// The analysis of `text`, from the memo, from a template of its shape, or computed once.
    pub fn analyze(&self, text: &str) -> Arc<Analysis> {
        if let Some(a) = self.cache.get(text) {
            return a;
        }
        let spans = split_statements(text);
        if let [st] = spans.as_slice()
            && may_have_template(text, st)
        {
            let key = shape(text, st);
            if let Some(a) = self.templates.get(&key).and_then(|t| t.instantiate(text, st)) {
                return Arc::new(a);
            }
            let a = self.cache.get_with(text.to_string(), || Arc::new(analyze_uncached(text)));
            if let Some(t) = Template::of(text, st, &a) {
                self.templates.insert(key, Arc::new(t));
            }
            return a;
        }
        self.cache.get_with(text.to_string(), || Arc::new(analyze_uncached(text)))
    }

    /// Number of entries held (approximate, for metrics).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

static GLOBAL: OnceLock<Analyzer> = OnceLock::new();

/// The analysis of `text`, memoized process-wide (see [`Analyzer`]).
pub fn analyze(text: &str) -> Arc<Analysis> {
    GLOBAL.get_or_init(|| Analyzer::new(DEFAULT_CAPACITY)).analyze(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_returns_the_same_analysis() {
        let m = Analyzer::new(1 << 20);
        let a = m.analyze("SELECT * FROM t");
        let b = m.analyze("SELECT * FROM t");
        assert!(Arc::ptr_eq(&a, &b), "a repeated statement must not be parsed twice");
    }
}
