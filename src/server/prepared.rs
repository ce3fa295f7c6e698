//! Which pgcached-named prepared statements exist on one server connection, and the result
//! shape each was described with when it was prepared here: a bounded LRU
//! (`pool.max_prepared_statements`). Evicted statements are not closed at once — the server
//! may be in the middle of a client's batch — but queued and closed when the connection is
//! next idle (see `take_to_close`). A statement found *stale* (its result type changed since
//! it was prepared here, so Postgres now refuses it with 0A000) is no longer used: it is closed
//! when the connection is idle, or just before the same statement is prepared again.

use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;

/// What a Describe of a statement said: the fingerprint of its RowDescription / NoData
/// ([`crate::wire::backend::result_shape`]) and the ParameterDescription frame, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub rows: u64,
    pub params: Bytes,
}

/// One statement prepared on this connection.
#[derive(Clone, Debug, Default)]
struct Kept {
    /// `None` until the Describe sent after its Parse is answered.
    shape: Option<Shape>,
    /// Generation of the shared shape registry at which `shape` was last found current (a
    /// copy checked at the registry's current generation needs no look-up).
    checked: u64,
}

/// The state of one statement on this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Not prepared here.
    Absent,
    /// Prepared here but unusable: must be closed before it is prepared again.
    Stale,
    /// Prepared here; its Describe is not answered yet.
    Pending,
    /// Prepared here with this result shape, found current at registry generation `checked`.
    Described { rows: u64, checked: u64 },
}

#[derive(Debug)]
pub struct PreparedSet {
    lru: LruCache<Bytes, Kept>,
    /// Evicted from the LRU, still prepared on the server until closed.
    to_close: Vec<(Bytes, Kept)>,
    /// Prepared on the server, never to be used again (see the module doc).
    stale: Vec<Bytes>,
}

impl PreparedSet {
    pub fn new(capacity: usize) -> PreparedSet {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        PreparedSet { lru: LruCache::new(cap), to_close: Vec::new(), stale: Vec::new() }
    }

    /// The state of `name` here. Marks it recently used (and rescues it from the close list).
    pub fn get(&mut self, name: &Bytes) -> Held {
        if let Some(copy) = self.lru.get(name) {
            return copy.held();
        }
        if let Some(pos) = self.to_close.iter().position(|(n, _)| n == name) {
            let (name, copy) = self.to_close.swap_remove(pos);
            let held = copy.held();
            self.push(name, copy);
            return held;
        }
        if self.stale.contains(name) { Held::Stale } else { Held::Absent }
    }

    /// Does the server have `name` in a usable state (prepared, not stale)?
    pub fn touch(&mut self, name: &Bytes) -> bool {
        matches!(self.get(name), Held::Pending | Held::Described { .. })
    }

    /// `name` is being prepared on the server now (its shape comes with the Describe after it).
    /// The caller has closed a stale copy first (see `take_stale`).
    pub fn insert(&mut self, name: Bytes) {
        self.push(name, Kept::default());
    }

    fn push(&mut self, name: Bytes, copy: Kept) {
        if let Some((old, copy)) = self.lru.push(name.clone(), copy) {
            if old != name {
                self.to_close.push((old, copy));
            }
        }
    }

    /// The Describe after `name`'s Parse was answered: record its shape, current at `checked`.
    pub fn described(&mut self, name: &[u8], shape: Shape, checked: u64) {
        if let Some(copy) = self.copy_mut(name) {
            copy.shape = Some(shape);
            copy.checked = checked;
        }
    }

    /// `name`'s shape was found current at registry generation `checked`.
    pub fn confirm(&mut self, name: &[u8], checked: u64) {
        if let Some(copy) = self.copy_mut(name) {
            copy.checked = checked;
        }
    }

    fn copy_mut(&mut self, name: &[u8]) -> Option<&mut Kept> {
        match self.lru.peek_mut(name) {
            Some(copy) => Some(copy),
            None => self.to_close.iter_mut().find(|(n, _)| n == name).map(|(_, c)| c),
        }
    }

    /// `name` must not be used any more here (its result type changed): returns the shape it
    /// had (`None` if it was not held, or not described).
    pub fn mark_stale(&mut self, name: &Bytes) -> Option<Shape> {
        let copy = match self.lru.pop(name) {
            Some(copy) => copy,
            None => {
                let pos = self.to_close.iter().position(|(n, _)| n == name)?;
                self.to_close.swap_remove(pos).1
            }
        };
        self.stale.push(name.clone());
        copy.shape
    }

    /// A Close of `name` is being sent: true if it was stale (the server still has it).
    pub fn take_stale(&mut self, name: &[u8]) -> bool {
        match self.stale.iter().position(|n| n == name) {
            Some(pos) => {
                self.stale.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    /// A Close of a stale statement was skipped: the server still has it.
    pub fn keep_stale(&mut self, name: Bytes) {
        if !self.stale.contains(&name) {
            self.stale.push(name);
        }
    }

    /// A Parse of `name` failed or never ran: the server does not have it.
    pub fn forget(&mut self, name: &[u8]) {
        self.lru.pop(name);
    }

    /// The server dropped every statement (DISCARD ALL, DEALLOCATE ALL).
    pub fn clear(&mut self) {
        self.lru.clear();
        self.to_close.clear();
        self.stale.clear();
    }

    /// Every statement is gone but those in `keep` (prepared after the `DISCARD ALL` /
    /// `DEALLOCATE ALL` that dropped the rest, in the same pipeline).
    pub fn clear_except(&mut self, keep: &[Bytes]) {
        let kept: Vec<(Bytes, Kept)> =
            keep.iter().filter_map(|n| Some((n.clone(), self.lru.peek(n)?.clone()))).collect();
        self.clear();
        for (name, copy) in kept {
            self.lru.put(name, copy);
        }
    }

    /// Statements to close now that the connection is idle (evicted and stale ones).
    pub fn take_to_close(&mut self) -> Vec<Bytes> {
        let mut names: Vec<Bytes> = self.to_close.drain(..).map(|(n, _)| n).collect();
        names.append(&mut self.stale);
        names
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
}

impl Kept {
    fn held(&self) -> Held {
        match &self.shape {
            Some(shape) => Held::Described { rows: shape.rows, checked: self.checked },
            None => Held::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn shape(rows: u64) -> Shape {
        Shape { rows, params: Bytes::new() }
    }

    #[test]
    fn eviction_queues_a_close_and_touch_rescues_it() {
        let mut set = PreparedSet::new(2);
        set.insert(b("a"));
        set.insert(b("b"));
        assert!(set.touch(&b("a")));
        set.insert(b("c")); // evicts b, the least recently used
        assert!(set.touch(&b("b")), "b is still on the server until closed");
        // Rescuing b evicted a in turn.
        assert_eq!(set.take_to_close(), vec![b("a")]);
        assert!(!set.touch(&b("a")));
        set.forget(b"c");
        assert!(!set.touch(&b("c")));
    }

    #[test]
    fn a_copy_is_pending_until_described_and_keeps_its_shape_when_evicted() {
        let mut set = PreparedSet::new(1);
        set.insert(b("a"));
        assert_eq!(set.get(&b("a")), Held::Pending);
        set.described(b"a", shape(7), 3);
        assert_eq!(set.get(&b("a")), Held::Described { rows: 7, checked: 3 });
        set.insert(b("b")); // evicts a
        set.confirm(b"a", 4);
        assert_eq!(set.get(&b("a")), Held::Described { rows: 7, checked: 4 }, "rescued with its shape");
    }

    #[test]
    fn a_stale_statement_is_unusable_and_closed_when_idle_or_before_a_new_parse() {
        let mut set = PreparedSet::new(4);
        set.insert(b("a"));
        set.described(b"a", shape(7), 0);
        assert_eq!(set.mark_stale(&b("a")), Some(shape(7)));
        assert_eq!(set.get(&b("a")), Held::Stale);
        assert!(!set.touch(&b("a")));
        assert_eq!(set.mark_stale(&b("zz")), None, "not held: nothing to close");
        assert!(set.take_stale(b"a"), "closed before it is prepared again");
        assert!(!set.take_stale(b"a"));
        set.keep_stale(b("a")); // that Close was skipped after all
        set.insert(b("b"));
        assert_eq!(set.take_to_close(), vec![b("a")]);
        assert_eq!(set.get(&b("a")), Held::Absent);
    }
}
