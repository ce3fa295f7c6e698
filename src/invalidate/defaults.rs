//! Login defaults changed around pgcached — `ALTER ROLE … SET` / `ALTER DATABASE … SET` run
//! directly or through another instance (event triggers do not fire for them, so NOTIFY
//! invalidation cannot carry them), or `ALTER SYSTEM` + `pg_reload_conf()` — are noticed by
//! reading a fingerprint of `pg_db_role_setting` and of the configuration-file settings every
//! [`POLL`], and handled as the same statements made through pgcached are (DECISIONS 54): the
//! pools' login-defaults epoch is bumped (pooled connections logged in before are retired,
//! fills recorded on them are not stored), greetings are no longer taken from the welcome
//! cache, and cached answers are flushed (one may show an old default).
//!
//! The fingerprint is read once a client has connected (before, nothing is read), through a
//! catalog connection to the `postgres` database — not one clients use: an idle connection to a
//! database makes `DROP DATABASE` of it, or `CREATE DATABASE … TEMPLATE` it, fail — or, where
//! `postgres` cannot be reached, to the database of the first client's pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info};

use crate::cache::catalogs::Catalogs;
use crate::pool::Pools;

/// How often the fingerprint is read.
pub const POLL: Duration = Duration::from_secs(2);
/// How soon after the first pool appears the first fingerprint is read: a change before it,
/// on connections logged in before it, goes unnoticed.
const FIRST_POLL: Duration = Duration::from_millis(100);

/// Login defaults per database and role, and the server's configuration-file settings, as one
/// string that changes when any of them does.
pub const FINGERPRINT_SQL: &str = "
SELECT coalesce((SELECT md5(string_agg(format('%s/%s/%s', setdatabase, setrole, setconfig), ';'
                                       ORDER BY setdatabase, setrole))
                   FROM pg_catalog.pg_db_role_setting), '')
    || '|'
    || coalesce((SELECT md5(string_agg(name || '=' || setting, ',' ORDER BY name))
                   FROM pg_catalog.pg_settings WHERE source = 'configuration file'), '')";

/// Read the fingerprint every [`POLL`] (the first one as soon as a pool exists) until
/// `shutdown`; call `changed` when it differs from the one read before. `checked` counts each
/// read by outcome (`first`, `same`, `changed`, `failed`).
pub async fn watch_login_defaults(
    pools: Arc<Pools>,
    catalogs: Arc<Catalogs>,
    mut shutdown: watch::Receiver<bool>,
    changed: impl Fn(),
    checked: impl Fn(&'static str),
) {
    let mut last: Option<String> = None;
    let mut through_postgres = true;
    loop {
        let wait = if last.is_some() { POLL } else { FIRST_POLL };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        let Some((key, _)) = pools.status().into_iter().next() else { continue };
        let database = if through_postgres { "postgres" } else { key.database.as_str() };
        let Some(catalog) = catalogs.for_database(database) else { continue };
        let read = catalog.fingerprint(FINGERPRINT_SQL).await;
        if read.is_err() && through_postgres {
            // No `postgres` database, or not for this user: the clients' own from now on.
            through_postgres = false;
        }
        match read {
            Ok(now) => {
                let outcome = match &last {
                    None => "first",
                    Some(before) if *before == now => "same",
                    Some(_) => {
                        info!("login defaults or server settings changed around pgcached");
                        changed();
                        "changed"
                    }
                };
                checked(outcome);
                last = Some(now);
            }
            Err(e) => {
                debug!(error = %e, "reading the login defaults' fingerprint failed");
                checked("failed");
            }
        }
    }
}
