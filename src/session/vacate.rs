//! Making room for a statement that needs a database free of other sessions (`DROP DATABASE`,
//! `ALTER DATABASE … RENAME`, `CREATE DATABASE` from a template: see `sql::database_ddl`).
//!
//! Directly, such a statement succeeds once every client of the database has disconnected.
//! Through pgcached the pools keep idle server connections to it after their clients left, and
//! the control plane keeps its own (catalog look-ups, EXPLAIN costs): Postgres counts those as
//! other sessions and refuses (55006). So before such a statement is sent, the session waits —
//! as Postgres does, up to 5 s — for pgcached's other clients of that database to leave (one
//! that disconnected just before may not have been noticed yet), and then closes the idle
//! connections to it. While a client of the database stays connected nothing is closed and
//! Postgres answers as it would directly: its connection is still another session. What holds a
//! server connection (a transaction, a pinned session, session pooling) is never closed here,
//! and the invalidation listener of `cache.invalidation: notify` keeps its connection (a
//! deployment's, as a replication slot is).

use std::time::{Duration, Instant};

use tracing::info;

use super::{Session, Shared};
use crate::sql::database_ddl;

/// How long Postgres itself waits for other sessions to leave a database (`CountOtherDBBackends`).
const WAIT_FOR_CLIENTS: Duration = Duration::from_secs(5);
/// How often to look again meanwhile.
const POLL: Duration = Duration::from_millis(20);

impl Session {
    /// Before `text` (a Query's or a Parse's) is sent: for each database it needs free of
    /// other sessions, wait for pgcached's other clients of it to leave and close the idle
    /// connections to it.
    pub(super) async fn vacate_databases(&mut self, text: &[u8]) {
        let Ok(text) = std::str::from_utf8(text) else { return };
        let (shared, id) = (self.shared.clone(), self.id);
        for database in database_ddl::databases_needed_free(text) {
            if !others_leave(&shared, id, &database).await {
                continue;
            }
            let closed = shared.pools.close_idle(&database)
                + shared.catalogs.close_idle(&database)
                + shared.costs.close_idle(&database);
            if closed > 0 {
                info!(session = id, %database, closed, "closed idle connections to a database a statement needs free of other sessions");
            }
        }
    }
}

/// Whether every client of `database` but session `id` has left, waiting up to
/// [`WAIT_FOR_CLIENTS`].
async fn others_leave(shared: &Shared, id: u64, database: &str) -> bool {
    let deadline = Instant::now() + WAIT_FOR_CLIENTS;
    loop {
        let others = shared.cancels.clients().iter().any(|(c, ..)| c.database == database && c.id != id);
        if !others {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
