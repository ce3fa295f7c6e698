//! Named prepared statements under transaction pooling.
//!
//! A client's named statement (`Parse` with a name) is remembered per client: name → query text
//! and parameter types. On the server side the statement gets a pgcached-wide name derived from
//! (query text, parameter types), so every server connection can hold one copy that any client
//! may use; each server connection tracks what it has in a bounded LRU
//! ([`crate::server::prepared::PreparedSet`]). When a client's Bind/Describe lands on a server
//! that lacks the statement, the session injects the Parse first and drops its ParseComplete.
//! Each client statement also keeps the result shape it was prepared with (see `shapes`), since
//! the shared server statements it runs on may have been prepared before or after a change.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::{Bytes, BytesMut};

use crate::server::prepared::Shape;
use crate::wire::build;

/// A client's prepared statement, as the server knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The query text as the server runs it (after any LIMIT rewrite).
    pub query: Bytes,
    /// The shared server-side name (`pgcached_<hash>`).
    pub server_name: Bytes,
    /// A ready-to-send Parse under the server name.
    pub parse: Bytes,
    /// The parameter types it was prepared with (part of its cache keys).
    pub param_types: Vec<u32>,
    /// Syncs the client had sent when it parsed this: until that many + 1 have completed, an
    /// earlier error in the pipeline may still make Postgres skip the Parse.
    pub seq: u64,
    /// The result shape this statement has for the client: what the server described after the
    /// client's Parse, or after the Parse sent at its first use when the client's Parse was
    /// answered without a server. `None`: not known yet.
    pub shape: Option<Shape>,
    /// When the client's name got it (see [`ClientStatements::insert`]): a `DISCARD ALL` or
    /// `DEALLOCATE ALL` sent later does not drop it.
    pub born: u64,
}

impl Statement {
    pub fn new(query: &[u8], param_types: &[u32]) -> Statement {
        let server_name = server_name(query, param_types);
        let mut parse = BytesMut::with_capacity(query.len() + 32);
        build::parse(&mut parse, &server_name, query, param_types);
        Statement {
            query: Bytes::copy_from_slice(query),
            server_name,
            parse: parse.freeze(),
            param_types: param_types.to_vec(),
            seq: 0,
            shape: None,
            born: 0,
        }
    }

    /// A statement the server holds under the client's own name (session pooling, or a client
    /// pinned to its server connection).
    pub fn under_own_name(name: &[u8], query: &[u8], param_types: &[u32]) -> Statement {
        Statement { server_name: Bytes::copy_from_slice(name), ..Statement::new(query, param_types) }
    }

    /// Whether Postgres holds this statement to the result type it was prepared with. Not a
    /// `FETCH` or SQL `EXECUTE`: utility statements that depend on no relation, whose plans are
    /// never invalidated and so never checked again — prepared before its cursor or statement
    /// existed, one returns rows at Bind all the same (fuzzer seed 120554).
    pub fn result_type_fixed(&self) -> bool {
        let text = self.query.trim_ascii_start();
        let word = &text[..text.iter().position(|b| !b.is_ascii_alphabetic()).unwrap_or(text.len())];
        !(word.eq_ignore_ascii_case(b"fetch") || word.eq_ignore_ascii_case(b"execute"))
    }

    /// Whether the server holds it under another name than the client's `name` (transaction
    /// pooling): then the proxy translates every use of it, pinned or not since.
    pub fn is_renamed(&self, name: &[u8]) -> bool {
        self.server_name != name
    }
}

/// The server-side name of a statement: a hash of its text and parameter types. Two clients
/// preparing the same text share one server statement. (64-bit SipHash with fixed keys plus the
/// text length: a collision needs two texts of the same length among ~4 billion statements.)
pub fn server_name(query: &[u8], param_types: &[u32]) -> Bytes {
    let mut h = DefaultHasher::new();
    query.hash(&mut h);
    param_types.hash(&mut h);
    Bytes::from(format!("pgcached_{:016x}_{:x}", h.finish(), query.len()))
}

/// The statements one client has prepared, by the client's names.
#[derive(Default, Debug)]
pub struct ClientStatements {
    by_name: HashMap<Bytes, Statement>,
    /// Name → the segment (count of Syncs sent before it) of the last Parse or Close of it
    /// whose answer may not have come: until then, whether the name is taken is the server's
    /// to say (an earlier error skips the Parse or Close).
    changed: HashMap<Bytes, u64>,
    /// Statements inserted so far: the last one's `born`.
    births: u64,
    /// `DISCARD ALL` / `DEALLOCATE ALL` sent and not answered yet, in order: (segment, births
    /// when sent). What the client parsed before one is gone once it completes; what it parses
    /// after one in the same segment is new (an error before it skips the rest anyway).
    drops: VecDeque<PendingDrop>,
    /// `births` when the last drop completed.
    dropped_at: u64,
}

/// A `DISCARD ALL` / `DEALLOCATE ALL` in flight.
#[derive(Debug, Clone, Copy)]
struct PendingDrop {
    seq: u64,
    births: u64,
}

impl ClientStatements {
    pub fn get(&self, name: &[u8]) -> Option<&Statement> {
        self.by_name.get(name)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name)
    }

    /// `name` now stands for `stmt`, born now.
    pub fn insert(&mut self, name: Bytes, mut stmt: Statement) {
        self.births += 1;
        stmt.born = self.births;
        self.by_name.insert(name, stmt);
    }

    /// `name` stands for `stmt` again (a change of it did not happen), born when it was.
    pub fn restore(&mut self, name: Bytes, stmt: Statement) {
        self.by_name.insert(name, stmt);
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Statement> {
        self.by_name.remove(name)
    }

    pub fn clear(&mut self) {
        self.by_name.clear();
        self.changed.clear();
        self.drops.clear();
        self.dropped_at = self.births;
    }

    /// A `DISCARD ALL` or `DEALLOCATE ALL` was sent in segment `seq`.
    pub fn note_drop_all(&mut self, seq: u64) {
        if self.drops.len() >= 64 {
            // Its completion then drops everything (see `dropped`): safe, if coarse.
            self.drops.pop_front();
        }
        self.drops.push_back(PendingDrop { seq, births: self.births });
    }

    /// A `DISCARD ALL` or `DEALLOCATE ALL` completed in segment `answered`: what the client
    /// parsed before it is gone. One the proxy did not see sent (in a function, say) drops all.
    pub fn dropped(&mut self, answered: u64) {
        while self.drops.front().is_some_and(|d| d.seq < answered) {
            // Failed: an error skipped it.
            self.drops.pop_front();
        }
        match self.drops.front() {
            Some(d) if d.seq == answered => {
                let births = d.births;
                self.drops.pop_front();
                self.by_name.retain(|_, s| s.born > births);
                self.dropped_at = births;
            }
            _ => {
                self.by_name.clear();
                self.dropped_at = self.births;
            }
        }
    }

    /// Whether a drop sent earlier in segment `current` drops `name`'s statement: then the
    /// rest of the segment sees the name free (or, if the drop fails, is skipped).
    pub fn dropped_in_segment(&self, name: &[u8], current: u64) -> bool {
        let Some(stmt) = self.by_name.get(name) else { return false };
        self.drops.iter().any(|d| d.seq == current && stmt.born <= d.births)
    }

    /// Whether a drop has completed since `stmt` was born.
    pub fn dropped_since(&self, stmt: &Statement) -> bool {
        self.dropped_at >= stmt.born
    }

    /// Whether a statement is held under the client's own name (see `Statement::is_renamed`).
    pub fn any_under_own_name(&self) -> bool {
        self.by_name.iter().any(|(name, s)| !s.is_renamed(name))
    }

    /// A Parse or Close of `name` was sent in segment `seq`.
    pub fn note_change(&mut self, name: &[u8], seq: u64, answered: u64) {
        if self.changed.len() >= 64 {
            self.changed.retain(|_, at| *at >= answered);
        }
        self.changed.insert(Bytes::copy_from_slice(name), seq);
    }

    /// The segment of a change of `name` still unanswered in an earlier segment than `current`
    /// (`answered`: segments answered so far), if there is one.
    /// A drop of every statement counts for the names it drops.
    pub fn change_in_flight(&self, name: &[u8], answered: u64, current: u64) -> Option<u64> {
        let in_flight = |at: &u64| *at >= answered && *at < current;
        let own = self.changed.get(name).copied().filter(in_flight);
        let born = self.by_name.get(name).map(|s| s.born);
        let dropped = self.drops.iter().rev().find(|d| in_flight(&d.seq) && born.is_some_and(|b| b <= d.births));
        own.max(dropped.map(|d| d.seq))
    }

    /// A server statement was described: statements of this client that run on it and have
    /// no shape yet take this one.
    pub fn adopt_all(&mut self, server_name: &[u8], shape: &Shape) {
        for stmt in self.by_name.values_mut() {
            if stmt.shape.is_none() && stmt.server_name == server_name {
                stmt.shape = Some(shape.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_depend_on_text_and_types_only() {
        assert_eq!(server_name(b"select $1", &[23]), server_name(b"select $1", &[23]));
        assert_ne!(server_name(b"select $1", &[23]), server_name(b"select $1", &[25]));
        assert_ne!(server_name(b"select $1", &[23]), server_name(b"select $2", &[23]));
        assert!(server_name(b"x", &[]).starts_with(b"pgcached_"));
    }

    #[test]
    fn a_drop_takes_only_what_was_parsed_before_it() {
        let mut st = ClientStatements::default();
        st.insert(Bytes::from_static(b"old"), Statement::new(b"select 1", &[]));
        st.note_drop_all(3);
        assert!(st.dropped_in_segment(b"old", 3));
        assert!(!st.dropped_in_segment(b"old", 4));
        // A later segment waits for the drop's answer.
        assert_eq!(st.change_in_flight(b"old", 3, 4), Some(3));
        st.insert(Bytes::from_static(b"new"), Statement::new(b"select 2", &[]));
        assert!(!st.dropped_in_segment(b"new", 3));
        let old = st.get(b"old").cloned().unwrap();
        assert!(!st.dropped_since(&old));
        st.dropped(3);
        assert!(st.dropped_since(&old));
        assert!(!st.contains(b"old") && st.contains(b"new"));
        // A drop the proxy never saw sent drops everything.
        st.dropped(5);
        assert!(!st.contains(b"new"));
    }

    #[test]
    fn a_failed_drop_is_forgotten_at_the_next_one() {
        let mut st = ClientStatements::default();
        st.note_drop_all(1);
        st.insert(Bytes::from_static(b"a"), Statement::new(b"select 1", &[]));
        st.note_drop_all(2);
        // Segment 1's drop failed; segment 2's completes and drops `a`.
        st.dropped(2);
        assert!(!st.contains(b"a"));
    }

    #[test]
    fn the_prepared_parse_carries_the_server_name() {
        let s = Statement::new(b"select 1", &[]);
        let mut buf = BytesMut::from(&s.parse[..]);
        let f = crate::wire::frame::take_frame(&mut buf, 1 << 20).unwrap().unwrap();
        let p = crate::wire::frontend::parse(f.body()).unwrap();
        assert_eq!(p.name, &s.server_name[..]);
        assert_eq!(p.query, b"select 1");
    }
}
