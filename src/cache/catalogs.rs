//! One [`Catalog`] per database, created on first use with its own small control-plane pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::catalog::Catalog;
use crate::pool::control::control_pool;
use crate::server::UpstreamTarget;

/// Control-plane connections per database for catalog look-ups.
const CATALOG_POOL_SIZE: usize = 2;

pub struct Catalogs {
    target: Arc<UpstreamTarget>,
    acquire_timeout: Duration,
    by_database: Mutex<HashMap<String, Arc<Catalog>, foldhash::fast::RandomState>>,
}

impl Catalogs {
    pub fn new(target: Arc<UpstreamTarget>, acquire_timeout: Duration) -> Catalogs {
        Catalogs { target, acquire_timeout, by_database: Mutex::default() }
    }

    /// The catalog of `database`, or `None` if no control-plane pool can be made for it (then
    /// nothing that needs the catalog is cached).
    pub fn for_database(&self, database: &str) -> Option<Arc<Catalog>> {
        let mut map = self.by_database.lock().expect("catalogs poisoned");
        if let Some(c) = map.get(database) {
            return Some(c.clone());
        }
        let pool = control_pool(&self.target, database, CATALOG_POOL_SIZE, self.acquire_timeout).ok()?;
        let catalog = Arc::new(Catalog::new(pool));
        map.insert(database.to_string(), catalog.clone());
        Some(catalog)
    }

    /// Close the idle control-plane connections of `database`'s catalog (see
    /// `Pools::close_idle`). Returns how many.
    pub fn close_idle(&self, database: &str) -> usize {
        let catalog = self.by_database.lock().expect("catalogs poisoned").get(database).cloned();
        catalog.map_or(0, |c| c.close_idle())
    }

    /// The [`Catalog::epoch`] of `database` (0 before its catalog exists).
    pub fn epoch(&self, database: &str) -> u64 {
        self.by_database.lock().expect("catalogs poisoned").get(database).map_or(0, |c| c.epoch())
    }

    /// Forget what is known of every database (after DDL).
    pub fn refresh_all(&self) {
        for c in self.by_database.lock().expect("catalogs poisoned").values() {
            c.refresh();
        }
    }
}
