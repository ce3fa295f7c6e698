//! The user functions of a database that may leave session state when called (settings,
//! temporary objects, `LISTEN`, advisory locks: see `STATE_SETTERS_SQL`), as one matcher over
//! statement texts.
//!
//! In pure pass-through the proxy looks at a statement only when a byte scan finds a word that
//! may change the session (`session::keywords`). `SELECT set_tenant(5)` has none: its function's
//! `set_config` was left on the server connection for the next client. A statement that names
//! one of these functions is now looked at like the others (its call is then judged by the
//! catalog, and the client pinned). The list is read once and again when older than
//! [`MAX_AGE`] (functions are mostly created by migrations run around the proxy), and at once
//! after DDL through pgcached; until it is known, every statement is looked at.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;

/// How long a list read from the catalog is used before it is read again (meanwhile the old
/// one is used).
pub const MAX_AGE: Duration = Duration::from_secs(2);

/// The names, as a case-insensitive matcher (`None`: there are none).
#[derive(Debug)]
pub struct StateSetters {
    names: Option<AhoCorasick>,
}

impl StateSetters {
    pub fn new(names: &[String]) -> StateSetters {
        let names = (!names.is_empty())
            .then(|| AhoCorasick::builder().ascii_case_insensitive(true).build(names).ok())
            .flatten();
        StateSetters { names }
    }

    /// Whether `text` may call one of the functions: it contains a name (anywhere, also inside
    /// a longer word or a string: that only costs a look).
    pub fn may_be_called(&self, text: &[u8]) -> bool {
        self.names.as_ref().is_some_and(|m| m.is_match(text))
    }
}

/// The list last read, when, and whether a read is under way.
#[derive(Debug, Default)]
pub struct StateSettersMemo {
    known: Mutex<Option<(Instant, std::sync::Arc<StateSetters>)>>,
    reading: AtomicBool,
}

impl StateSettersMemo {
    /// The list if known, and whether it is due to be read again.
    pub fn get(&self) -> Option<(std::sync::Arc<StateSetters>, bool)> {
        let known = self.known.lock().expect("state setters lock");
        known.as_ref().map(|(at, setters)| (setters.clone(), at.elapsed() > MAX_AGE))
    }

    pub fn set(&self, setters: StateSetters) {
        *self.known.lock().expect("state setters lock") = Some((Instant::now(), std::sync::Arc::new(setters)));
    }

    pub fn clear(&self) {
        *self.known.lock().expect("state setters lock") = None;
    }

    /// Claim the one read under way; false when another caller has it.
    pub fn start_reading(&self) -> bool {
        !self.reading.swap(true, Ordering::AcqRel)
    }

    pub fn done_reading(&self) {
        self.reading.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_any_case_and_none_match_nothing() {
        let setters = StateSetters::new(&["set_tenant".into(), "make_scratch".into()]);
        assert!(setters.may_be_called(b"SELECT app.Set_Tenant(5)"));
        assert!(setters.may_be_called(b"select make_scratch()"));
        assert!(!setters.may_be_called(b"SELECT * FROM tenants WHERE id = 5"));
        assert!(!StateSetters::new(&[]).may_be_called(b"SELECT set_tenant(5)"));
    }

    #[test]
    fn a_list_is_due_again_when_old_and_forgotten_on_clear() {
        let memo = StateSettersMemo::default();
        assert!(memo.get().is_none());
        memo.set(StateSetters::new(&[]));
        assert_eq!(memo.get().map(|(_, due)| due), Some(false));
        memo.clear();
        assert!(memo.get().is_none());
        assert!(memo.start_reading());
        assert!(!memo.start_reading(), "one read at a time");
        memo.done_reading();
        assert!(memo.start_reading());
    }
}
