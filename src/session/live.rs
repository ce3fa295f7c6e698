//! The generation of shared parts sessions run under, replaced whole by a configuration reload
//! (`RELOAD` in the admin console, SIGHUP; see `crate::reload`).
//!
//! A [`Shared`] is immutable: a reload builds the next one — new configuration, policies,
//! cache rules and password look-up, the same pools, cache, cancel keys and memos — and
//! publishes it here. New connections take the current one; a session takes it between
//! transactions (see `Session::adopt_generation`), so a transaction runs under one
//! configuration from its first statement to its last.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Session, Shared};
use crate::config::ConfigSource;

/// The current generation, and where the configuration is read again from.
pub struct Live {
    current: RwLock<Arc<Shared>>,
    /// Bumped by every [`Live::publish`]: a session compares it (one atomic load) to know
    /// whether it runs under the current generation.
    generation: AtomicU64,
    /// How to read the configuration again; `None`: it came from no file (reload refused).
    pub source: Option<ConfigSource>,
    /// Held while a reload runs: two at once would race to publish.
    pub reloading: tokio::sync::Mutex<()>,
    /// Begins the graceful shutdown, as SIGTERM does (the console's `SHUTDOWN`).
    pub stop: tokio::sync::watch::Sender<bool>,
}

impl Live {
    pub fn new(shared: Arc<Shared>, source: Option<ConfigSource>, stop: tokio::sync::watch::Sender<bool>) -> Arc<Live> {
        Arc::new(Live {
            current: RwLock::new(shared),
            generation: AtomicU64::new(0),
            source,
            reloading: tokio::sync::Mutex::new(()),
            stop,
        })
    }

    /// The current generation's number.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current generation's number and parts.
    pub fn current(&self) -> (u64, Arc<Shared>) {
        let shared = self.current.read().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: `publish` bumps the number while it holds it.
        (self.generation(), shared.clone())
    }

    /// The current parts.
    pub fn shared(&self) -> Arc<Shared> {
        self.current().1
    }

    /// Make `next` the current generation.
    pub fn publish(&self, next: Arc<Shared>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = next;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Session {
    /// A reload published a new configuration: take it, between two transactions. The policy
    /// is chosen again (a read-only one sets `default_transaction_read_only` as at login), the
    /// pool handle is taken anew (its timeout, or a pool replaced by the reload), and what was
    /// decided under the old cache rules is forgotten.
    pub(super) fn adopt_generation(&mut self) {
        let (generation, shared) = self.live.current();
        let policy = shared.policies.for_session(&self.key.user, &self.key.database);
        let was_read_only = self.policy.as_ref().is_some_and(|p| p.read_only());
        let read_only = policy.as_ref().is_some_and(|p| p.read_only());
        if read_only != was_read_only {
            let value = if read_only { "on" } else { "off" };
            self.wanted.set("default_transaction_read_only", value);
            self.startup.set("default_transaction_read_only", value);
        }
        tracing::debug!(generation, "session takes the reloaded configuration");
        self.generation = generation;
        self.policy = policy;
        self.pool = None;
        self.tally.retune(shared.queries.as_ref().and_then(|q| q.repeat_detector()));
        *self.key_memo.borrow_mut() = Default::default();
        self.shared = shared;
    }
}
