//! [`Listeners`]: one invalidation listener per database the proxy serves, started when the
//! first client of that database has logged in (`cache.invalidation: notify`; a no-op under
//! `proxy`). The listeners live as long as the proxy: [`Listeners::shutdown`] stops them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::info;

use super::listener::{ListenerHandle, ListenerState};
use super::{control, spawn_listener};
use crate::cache::ResultCache;
use crate::cache::catalogs::Catalogs;
use crate::server::UpstreamTarget;

/// The running listeners, by database.
pub struct Listeners {
    /// `None`: `cache.invalidation` is not `notify` (or the cache is off): nothing to run.
    inner: Option<Inner>,
    by_database: Mutex<HashMap<String, ListenerHandle>>,
    /// Set by [`Listeners::shutdown`]: start nothing more.
    closed: AtomicBool,
}

struct Inner {
    target: Arc<UpstreamTarget>,
    cache: Arc<ResultCache>,
    catalogs: Arc<Catalogs>,
}

impl Listeners {
    /// Listeners that will LISTEN through `target` and invalidate `cache` (and, after DDL,
    /// refresh `catalogs`).
    pub fn new(target: Arc<UpstreamTarget>, cache: Arc<ResultCache>, catalogs: Arc<Catalogs>) -> Listeners {
        Listeners {
            inner: Some(Inner { target, cache, catalogs }),
            by_database: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// No listeners, ever (`cache.invalidation: proxy`).
    pub fn disabled() -> Listeners {
        Listeners { inner: None, by_database: Mutex::default(), closed: AtomicBool::new(false) }
    }

    /// Whether [`Listeners::ensure`] starts anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Make sure a listener runs for `database` (the name clients log in with, which is what
    /// the cache keys entries by). Must be called inside the tokio runtime. Cheap when it
    /// already runs.
    pub fn ensure(&self, database: &str) {
        let Some(inner) = &self.inner else { return };
        let mut map = self.by_database.lock().expect("listeners poisoned");
        if map.contains_key(database) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let pg = control::pg_config(&inner.target, database, super::listener::APPLICATION_NAME);
        let (cache, catalogs) = (inner.cache.clone(), Some(inner.catalogs.clone()));
        let handle = match control::tls(&inner.target) {
            Some(tls) => spawn_listener(pg, tls, database.to_string(), cache, catalogs),
            None => spawn_listener(pg, tokio_postgres::NoTls, database.to_string(), cache, catalogs),
        };
        info!(%database, "invalidation listener started");
        map.insert(database.to_string(), handle);
    }

    /// The state of `database`'s listener, if one was started.
    pub fn state(&self, database: &str) -> Option<Arc<ListenerState>> {
        self.by_database.lock().expect("listeners poisoned").get(database).map(|h| h.state().clone())
    }

    /// The databases with a listener, sorted.
    pub fn databases(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_database.lock().expect("listeners poisoned").keys().cloned().collect();
        v.sort();
        v
    }

    /// Stop every listener and wait for them.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let handles: Vec<ListenerHandle> =
            self.by_database.lock().expect("listeners poisoned").drain().map(|(_, h)| h).collect();
        for h in handles {
            h.shutdown().await;
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("enabled", &self.is_enabled()).field("databases", &self.databases()).finish()
    }
}
