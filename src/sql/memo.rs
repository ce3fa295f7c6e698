//! The memo of analyses, keyed by the exact query text: a repeated statement is parsed once.
//! A write whose text is new but whose shape is not (other literal values) is analysed from a
//! [`Template`] instead of parsed (see `template`).
//!
//! Bounded by weight — the bytes each entry really holds: its text, its analysis (see `weight`)
//! and the map's own bookkeeping — to `limits.analysis_memo`, of which a quarter goes to the
//! templates, so neither many distinct statements nor many distinct shapes grow it past the
//! setting (`pgcached_analysis_memo_bytes` reports it). `get_with` computes a missing entry
//! once even when several sessions ask for it at the same moment.

use super::analyze::{Analysis, analyze_uncached};
use super::lex::split_statements;
use super::template::{Template, may_have_template, shape};
use foldhash::fast::RandomState;
use moka::sync::Cache;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

/// Default memo budget (`limits.analysis_memo`).
pub const DEFAULT_CAPACITY: u64 = 32 * 1024 * 1024;
/// Longest text a thread keeps as its last (see `LAST`).
const LAST_MAX: usize = 4096;
/// What one entry costs the map beyond its key and value (moka's node, its place in the
/// hash table and the access-order list; measured order of magnitude, rounded up).
const ENTRY_OVERHEAD: usize = 256;

/// A bounded memo of analyses.
#[derive(Clone)]
pub struct Analyzer {
    cache: Cache<String, Arc<Analysis>, RandomState>,
    /// By the hash of their shape (see `template`).
    templates: Cache<u64, Arc<Template>, RandomState>,
    shape_hasher: RandomState,
}

impl Analyzer {
    /// A memo holding at most about `capacity` bytes: three quarters for analyses by text, one
    /// for templates by shape.
    pub fn new(capacity: u64) -> Analyzer {
        let cache = Cache::builder()
            .max_capacity(capacity - capacity / 4)
            .weigher(|k: &String, v: &Arc<Analysis>| {
                weight_u32(k.capacity() + super::weight::analysis(v) + ENTRY_OVERHEAD)
            })
            .build_with_hasher(RandomState::default());
        let templates = Cache::builder()
            .max_capacity(capacity / 4)
            .weigher(|_k: &u64, t: &Arc<Template>| weight_u32(t.weight() + ENTRY_OVERHEAD))
            .build_with_hasher(RandomState::default());
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
            if let Some(a) = self.template(key).and_then(|t| t.instantiate(text, st, &shape)) {
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

    /// The template kept under shape hash `key`: the thread's last, or the memo's (a session
    /// sends the same statement with other values again and again; the memo's look-up costs
    /// more than the rest of finding it).
    fn template(&self, key: u64) -> Option<Arc<Template>> {
        if let Some(t) = LAST_TEMPLATE.with_borrow(|(k, t)| t.as_ref().filter(|_| *k == key).cloned()) {
            return Some(t);
        }
        let t = self.templates.get(&key)?;
        LAST_TEMPLATE.with_borrow_mut(|last| *last = (key, Some(t.clone())));
        Some(t)
    }

    /// Number of entries held (approximate, for metrics).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The bytes held (analyses and templates, as weighed), after the map's pending evictions
    /// are done: for metrics, not the data path.
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.templates.run_pending_tasks();
        self.cache.weighted_size() + self.templates.weighted_size()
    }
}

fn weight_u32(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Whether `text` starts with INSERT, UPDATE or DELETE (leading whitespace skipped).
fn starts_with_write(text: &[u8]) -> bool {
    let word = first_word(text);
    [&b"insert"[..], b"update", b"delete"].iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// Whether `text` surely has no cached answer: its first word (after whitespace) is one no
/// cacheable statement starts with — a write, transaction control, a setting. A shortcut only
/// (the cache is not even looked at for such a text; the analysis decides everything else):
/// an ORM's `BEGIN` and `COMMIT` around each read cost a key and a lookup each without it.
pub fn surely_uncached(text: &[u8]) -> bool {
    const WORDS: [&[u8]; 15] = [
        b"insert",
        b"update",
        b"delete",
        b"begin",
        b"start",
        b"commit",
        b"end",
        b"rollback",
        b"abort",
        b"savepoint",
        b"release",
        b"set",
        b"reset",
        b"discard",
        b"deallocate",
    ];
    let word = first_word(text);
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// The letters `text` starts with after whitespace (empty when it starts otherwise, e.g. with
/// a comment): for shortcuts that need only a statement's first keyword.
pub fn first_word(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let rest = &text[start..];
    &rest[..rest.iter().position(|b| !b.is_ascii_alphabetic()).unwrap_or(rest.len())]
}

static GLOBAL: OnceLock<Analyzer> = OnceLock::new();

thread_local! {
    /// The last text this thread had analysed, and its analysis.
    static LAST: RefCell<(String, Option<Arc<Analysis>>)> = const { RefCell::new((String::new(), None)) };
    /// The template this thread found last, by its shape hash (see `Analyzer::template`). A
    /// hash from another analyzer's hasher can only miss: a template compares shapes in full.
    static LAST_TEMPLATE: RefCell<(u64, Option<Arc<Template>>)> = const { RefCell::new((0, None)) };
}

/// Size the process-wide memo (`limits.analysis_memo`), before its first use. Returns false if
/// it was in use already (another proxy in the same process, as in tests): it keeps its size.
pub fn configure(capacity: u64) -> bool {
    GLOBAL.set(Analyzer::new(capacity)).is_ok()
}

fn global() -> &'static Analyzer {
    GLOBAL.get_or_init(|| Analyzer::new(DEFAULT_CAPACITY))
}

/// The analysis of `text`, memoized process-wide (see [`Analyzer`]).
pub fn analyze(text: &str) -> Arc<Analysis> {
    global().analyze(text)
}

/// The bytes the process-wide memo holds (see [`Analyzer::weighted_size`]).
pub fn weighted_size() -> u64 {
    global().weighted_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_texts_led_by_a_write_transaction_control_or_setting_word_are_surely_uncached() {
        for text in [
            "BEGIN",
            " begin;",
            "COMMIT",
            "end",
            "ROLLBACK TO SAVEPOINT a",
            "START TRANSACTION READ ONLY",
            "SET search_path = app",
            "reset all",
            "UPDATE t SET a = 1",
            "\ninsert into t values (1)",
            "DISCARD ALL",
            "SAVEPOINT s",
            "RELEASE s",
            "ABORT",
            "DEALLOCATE p",
            "delete from t",
        ] {
            assert!(surely_uncached(text.as_bytes()), "{text}");
        }
        // Reads, and anything the words do not settle (a leading comment, a word that only
        // starts like one), take the usual way.
        for text in [
            "SELECT 1",
            "with x as (select 1) select * from x",
            "VALUES (1)",
            "TABLE t",
            "(SELECT 1)",
            "/* begin */ SELECT 1",
            "SHOW search_path",
            "beginning",
            "settle",
            "endless",
            "",
            "  ",
        ] {
            assert!(!surely_uncached(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn repeated_text_returns_the_same_analysis() {
        let m = Analyzer::new(1 << 20);
        let a = m.analyze("SELECT * FROM t");
        let b = m.analyze("SELECT * FROM t");
        assert!(Arc::ptr_eq(&a, &b), "a repeated statement must not be parsed twice");
    }

    #[test]
    fn many_distinct_statements_and_shapes_stay_within_the_budget() {
        let budget = 256 * 1024;
        let m = Analyzer::new(budget);
        let mut weighed = 0;
        for i in 0..3000 {
            // Half new literals of one shape, half new shapes.
            let text = if i % 2 == 0 {
                format!("SELECT a, b FROM t WHERE id = {i}")
            } else {
                format!("SELECT a AS a{i}, upper(b) FROM t JOIN u ON u.id = t.id WHERE t.id IN ({i}, 2)")
            };
            weighed += text.len() + super::super::weight::analysis(&m.analyze(&text));
        }
        let held = m.weighted_size();
        assert!(weighed as u64 > 4 * budget, "the statements outweigh the budget: {weighed}");
        assert!(held <= budget, "{held} bytes held over a budget of {budget}");
        assert!(held > budget / 2, "the memo is used, not emptied: {held}");
    }
}
