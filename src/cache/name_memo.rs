//! A memo of catalog answers by relation (or function) name, looked up by the name as a
//! statement spells it. Keyed by the name's canonical text — `name`, or `schema` NUL `name`
//! (no identifier holds a NUL) — so that a bare lower-case name, nearly every one a statement
//! writes, is looked up as it is, without parsing or allocating: every write asks twice.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use super::names::{RelName, is_plain};

/// Answers of type `V` by name; cleared whole when it reaches its size (a catalog with more
/// names than that asks again, it never grows without bound).
pub struct NameMemo<V> {
    map: Mutex<HashMap<String, V, foldhash::fast::RandomState>>,
    max: usize,
}

impl<V: Clone> NameMemo<V> {
    pub fn new(max: usize) -> NameMemo<V> {
        NameMemo { map: Mutex::default(), max }
    }

    /// The answer for `rel`, if memoized.
    pub fn get(&self, rel: &RelName) -> Option<V> {
        self.lock().get(&*key(rel)).cloned()
    }

    /// The answer for the name spelled `text` (`orders`, `app.orders`, `"Orders"`), if
    /// memoized; `None` also for an empty name.
    pub fn get_spelled(&self, text: &str) -> Option<V> {
        if is_plain(text) {
            return self.lock().get(text).cloned();
        }
        self.get(&RelName::parse(text)?)
    }

    pub fn insert(&self, rel: &RelName, v: V) {
        let mut map = self.lock();
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(key(rel).into_owned(), v);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, V, foldhash::fast::RandomState>> {
        self.map.lock().expect("catalog lock")
    }
}

/// The canonical text of `rel` (what [`NameMemo::get_spelled`] finds a bare name under).
fn key(rel: &RelName) -> Cow<'_, str> {
    match &rel.schema {
        None => Cow::Borrowed(&rel.name),
        Some(schema) => Cow::Owned(format!("{schema}\0{}", rel.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_name_finds_its_answer_and_only_its_own() {
        let memo = NameMemo::new(10);
        memo.insert(&RelName::parse("orders").unwrap(), 1);
        memo.insert(&RelName::parse("app.orders").unwrap(), 2);
        memo.insert(&RelName::parse("\"Orders\"").unwrap(), 3);
        for (spelled, answer) in [
            ("orders", 1),
            ("ORDERS", 1),
            ("\"orders\"", 1),
            ("app.orders", 2),
            ("App.\"orders\"", 2),
            ("\"Orders\"", 3),
        ] {
            assert_eq!(memo.get_spelled(spelled), Some(answer), "{spelled}");
            assert_eq!(memo.get(&RelName::parse(spelled).unwrap()), Some(answer), "{spelled}");
        }
        assert_eq!(memo.get_spelled("other.orders"), None);
        assert_eq!(memo.get_spelled("appo.rders"), None);
        assert_eq!(memo.get_spelled(""), None);
    }

    #[test]
    fn a_full_memo_starts_over_rather_than_growing() {
        let memo = NameMemo::new(2);
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            memo.insert(&RelName::parse(name).unwrap(), i);
        }
        assert_eq!(memo.get_spelled("c"), Some(2));
        assert_eq!(memo.get_spelled("a"), None);
        memo.clear();
        assert_eq!(memo.get_spelled("c"), None);
    }
}
