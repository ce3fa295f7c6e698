//! The memo of analyses, keyed by the exact query text: a repeated statement is parsed once.
//!
//! Bounded by weight (roughly the bytes of text held), so a client sending many distinct large
//! strings cannot grow it without limit. `get_with` computes a missing entry once even when
//! several sessions ask for it at the same moment.

use super::analyze::{Analysis, analyze_uncached};
use moka::sync::Cache;
use std::sync::{Arc, OnceLock};

/// Default memo budget: about 64 MiB of query text (plus a fixed charge per entry).
pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;

/// A bounded memo of analyses.
#[derive(Clone)]
pub struct Analyzer {
    cache: Cache<String, Arc<Analysis>>,
}

impl Analyzer {
    /// A memo holding at most about `capacity` bytes of query text.
    pub fn new(capacity: u64) -> Analyzer {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|k: &String, _v: &Arc<Analysis>| u32::try_from(k.len() * 2 + 512).unwrap_or(u32::MAX))
            .build();
        Analyzer { cache }
    }

    /// The analysis of `text`, from the memo or computed once.
    pub fn analyze(&self, text: &str) -> Arc<Analysis> {
        if let Some(a) = self.cache.get(text) {
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
