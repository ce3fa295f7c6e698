//! Which pgcached-named prepared statements exist on one server connection: a bounded LRU
//! (`pool.max_prepared_statements`). Evicted statements are not closed at once — the server
//! may be in the middle of a client's batch — but queued and closed when the connection is
//! next idle (see `take_to_close`).

use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;

#[derive(Debug)]
pub struct PreparedSet {
    lru: LruCache<Bytes, ()>,
    /// Evicted from the LRU, still prepared on the server until closed.
    to_close: Vec<Bytes>,
}

impl PreparedSet {
    pub fn new(capacity: usize) -> PreparedSet {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        PreparedSet { lru: LruCache::new(cap), to_close: Vec::new() }
    }

    /// Does the server have `name`? Marks it recently used (and rescues it from the close list).
    pub fn touch(&mut self, name: &Bytes) -> bool {
        if self.lru.get(name).is_some() {
            return true;
        }
        if let Some(pos) = self.to_close.iter().position(|n| n == name) {
            self.to_close.swap_remove(pos);
            self.insert(name.clone());
            return true;
        }
        false
    }

    /// `name` is being prepared on the server now.
    pub fn insert(&mut self, name: Bytes) {
        if let Some((old, ())) = self.lru.push(name.clone(), ()) {
            if old != name {
                self.to_close.push(old);
            }
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
    }

    /// Statements to close now that the connection is idle.
    pub fn take_to_close(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.to_close)
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
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
}
