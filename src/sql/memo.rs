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
use foldhash::fast::RandomState;
use moka::sync::Cache;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

/// Default memo budget: about 64 MiB of query text (plus a fixed charge per entry).
pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;
/// Longest text a thread keeps as its last (see `LAST`).
const LAST_MAX: usize = 4096;
/// Templates kept (one per statement shape: few in any application).
const TEMPLATES: u64 = 10_000;

/// A bounded memo of analyses.
#[derive(Clone)]
pub struct Analyzer {
    cache: Cache<String, Arc<Analysis>, RandomState>,
    /// By the hash of their shape (see `template`).
    templates: Cache<u64, Arc<Template>, RandomState>,
    shape_hasher: RandomState,
}

impl Analyzer {
    /// A memo holding at most about `capacity` bytes of query text.
    pub fn new(capacity: u64) -> Analyzer {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|k: &String, _v: &Arc<Analysis>| u32::try_from(k.len() * 2 + 512).unwrap_or(u32::MAX))
            .build_with_hasher(RandomState::default());
        let templates = Cache::builder().max_capacity(TEMPLATES).build_with_hasher(RandomState::default());
        Analyzer { cache, templates, shape_hasher: RandomState::default() }
    }

    /// The analysis of `text`, from the memo, from a template of its shape, or computed once.
    pub fn analyze(&self, text: &str) -> Arc<Analysis> {
        // A session asks again for the text it just had analysed (its guard, then its
        // invalidation): the thread's last answer, without hashing the text.
        if let Some(a) = LAST.with_borrow(|(t, a)| (t == text).then(|| a.clone()).flatten()) {
            return a;
        }
        let a = self.analyze_new(text);
        if text.len() > LAST_MAX {
            return a;
        }
        LAST.with_borrow_mut(|last| {
            last.0.clear();
            last.0.push_str(text);
            last.1 = Some(a.clone());
        });
        a
    }

    fn analyze_new(&self, text: &str) -> Arc<Analysis> {
        // A write's text is rarely seen twice (its values change): its shape first. Other texts
        // repeat (prepared and ORM statements, cache misses of the same read): the memo first.
        let write = starts_with_write(text.as_bytes());
        if !write && let Some(a) = self.cache.get(text) {
            return a;
        }
        let spans = split_statements(text);
        if let [st] = spans.as_slice()
            && may_have_template(text, st)
        {
            let shape = shape(text, st);
            let key = self.shape_hasher.hash_one(&shape);
            if let Some(a) = self.templates.get(&key).and_then(|t| t.instantiate(text, st, &shape)) {
                return Arc::new(a);
            }
            if write && let Some(a) = self.cache.get(text) {
                return a;
            }
            let a = self.cache.get_with(text.to_string(), || Arc::new(analyze_uncached(text)));
            if let Some(t) = Template::of(text, st, shape, &a) {
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

/// Whether `text` starts with INSERT, UPDATE or DELETE (leading whitespace skipped).
pub fn starts_with_write(text: &[u8]) -> bool {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let word = &text[start..text.len().min(start + 7)];
    [&b"insert "[..], b"update ", b"delete "].iter().any(|w| word.len() == 7 && word.eq_ignore_ascii_case(w))
}

static GLOBAL: OnceLock<Analyzer> = OnceLock::new();

thread_local! {
    /// The last text this thread had analysed, and its analysis.
    static LAST: RefCell<(String, Option<Arc<Analysis>>)> = const { RefCell::new((String::new(), None)) };
}

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
