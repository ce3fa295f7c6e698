//! Configuration reload — `RELOAD` in the admin console, or SIGHUP: read the file again (with
//! the same environment and flags), build everything startup builds from it, and publish it as
//! the next generation (see [`crate::session::live`]). Sessions take it between transactions;
//! no client is dropped. An invalid file changes nothing: the error is logged and returned.
//!
//! Live: policies (`safety`, `limit`, `policies`), `cache.rules`, `cache.default_ttl`,
//! `cache.catalogs` (the cached answers are dropped, as they were chosen under the old rules),
//! `pool.max_size` (pools resize), `pool.acquire_timeout`, the other `pool` keys (pools are
//! replaced as sessions let go of them), `timeouts`, `auth` (users, passwords, auth_query, method),
//! `admin.users` and `admin.database`, `limits.max_message_size`, `limits.session_buffer`,
//! `log.level`. New clients only:
//! `pool.mode`. Restart only, kept as they were and said in the log and the answer: `listen`,
//! `unix_socket_dir`,
//! `upstream`, `tls`, `admin.http_listen`, `cache.enabled`, `cache.max_memory`,
//! `cache.max_entry_size`, `cache.max_filling`, `cache.invalidation`, `cache.replication`, `limits.max_clients`,
//! `limits.worker_threads`, `limits.analysis_memo`,
//! `log.format`, `stats.enabled`, `stats.max_queries`, `stats.metrics_top` (`stats.slow_query`
//! and the N+1 settings are live).

use std::sync::Arc;

use anyhow::Context;
use thiserror::Error;
use tracing::{info, warn};

use crate::cache::{InvalidationCause, Rules};
use crate::client::auth::{AuthQuery, ConfigUsers, LookupChain, PasswordLookup};
use crate::client::tls::ClientTls;
use crate::config::Config;
use crate::pool::Pools;
use crate::session::Shared;
use crate::session::live::Live;
use crate::sql::Policies;

/// What startup and a reload build from a configuration alone (no network but auth_query's
/// pool, which connects lazily).
pub struct Parts {
    pub policies: Policies,
    pub rules: Rules,
}

impl Parts {
    /// Build (and so validate) the policies and cache rules of `config`.
    pub fn build(config: &Config) -> anyhow::Result<Parts> {
        let policies = Policies::from_config(&config.safety, &config.limit, &config.policies).context("policies")?;
        let rules = Rules::new(&config.cache).context("cache.rules")?;
        Ok(Parts { policies, rules })
    }
}

/// Everything startup builds from the configuration alone (no network): what `--check` runs, so
/// that a file it calls OK also starts.
pub fn check(config: &Config) -> anyhow::Result<()> {
    Pools::new(Arc::new(config.clone())).context("upstream configuration")?;
    ClientTls::from_config(&config.tls).context("tls")?;
    Parts::build(config)?;
    Ok(())
}

/// Where client passwords come from: `auth.users`, then `auth.auth_query` (run on a
/// control-plane connection to the upstream URL's database, `postgres` when it names none).
pub fn password_lookup(config: &Config, pools: &Pools) -> anyhow::Result<Arc<dyn PasswordLookup>> {
    let users: Arc<dyn PasswordLookup> = Arc::new(ConfigUsers::new(&config.auth.users));
    let Some(query) = &config.auth.auth_query else {
        return Ok(users);
    };
    let target = pools.target();
    let database = target.url_database.clone().unwrap_or_else(|| "postgres".into());
    let pool = crate::pool::control::control_pool(target, &database, 2, config.pool.acquire_timeout)
        .context("auth.auth_query needs a control-plane connection")?;
    let by_query: Arc<dyn PasswordLookup> = Arc::new(AuthQuery::new(pool, query.clone()));
    Ok(Arc::new(LookupChain::new(vec![users, by_query])))
}

#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("pgcached was started without a configuration file: nothing to reload")]
    NoSource,
    #[error("configuration not reloaded, the running one is kept: {0}")]
    Invalid(String),
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Settings now in effect, one line each.
    pub applied: Vec<String>,
    /// Settings that changed in the file but need a restart (the running value is kept).
    pub restart_needed: Vec<String>,
}

/// Read the configuration again and publish it; see the module doc.
pub async fn reload(live: &Live) -> Result<ReloadReport, ReloadError> {
    let source = live.source.as_ref().ok_or(ReloadError::NoSource)?;
    let _one_at_a_time = live.reloading.lock().await;
    let current = live.shared();
    let outcome = source.read().and_then(|read| {
        let (config, restart_needed) = keep_restart_only(&current.config, read);
        let parts = Parts::build(&config).map_err(|e| format!("{e:#}"))?;
        Ok((config, restart_needed, parts))
    });
    let (config, restart_needed, parts) = match outcome {
        Ok(built) => built,
        Err(e) => {
            warn!(error = %e, "configuration reload refused: the running configuration is kept");
            return Err(ReloadError::Invalid(e));
        }
    };
    let old = &current.config;
    let lookup = if config.auth != old.auth {
        password_lookup(&config, &current.pools).map_err(|e| ReloadError::Invalid(format!("{e:#}")))?
    } else {
        current.lookup.clone()
    };
    let mut applied = changed_sections(old, &config);
    if config.log.level != old.log.level {
        match source.set_log_level(&config.log.level) {
            Ok(true) => {}
            Ok(false) => applied.push("log.level not applied: RUST_LOG chooses the filter".into()),
            Err(e) => return Err(ReloadError::Invalid(e)),
        }
    }
    if let Some(stats) = &current.queries {
        let s = &config.stats;
        stats.retune(s.slow_query, (s.n_plus_one > 0).then_some(s.n_plus_one), s.n_plus_one_window);
    }
    let config = Arc::new(config);
    applied.extend(current.pools.reconfigure(config.clone()));
    if config.cache.rules != old.cache.rules
        || config.cache.default_ttl != old.cache.default_ttl
        || config.cache.catalogs != old.cache.catalogs
    {
        current.cache.flush_all(InvalidationCause::Admin);
        applied.push("cached answers dropped (cache rules changed)".into());
    }
    let next = Shared {
        config,
        policies: Arc::new(parts.policies),
        rules: Arc::new(parts.rules),
        lookup,
        ..Shared::clone(&current)
    };
    live.publish(Arc::new(next));
    for line in &restart_needed {
        warn!(setting = %line, "configuration reload: this setting changes only at a restart; the running value is kept");
    }
    info!(changed = ?applied, "configuration reloaded");
    Ok(ReloadReport { applied, restart_needed })
}

/// `read` with every restart-only setting put back to its running value, and the names of
/// those that differed.
fn keep_restart_only(running: &Config, mut read: Config) -> (Config, Vec<String>) {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($path:ident).+) => {
            if read.$($path).+ != running.$($path).+ {
                kept.push(stringify!($($path).+).replace(' ', ""));
                read.$($path).+ = running.$($path).+.clone();
            }
        };
    }
    keep!(listen);
    keep!(unix_socket_dir);
    keep!(upstream);
    keep!(tls);
    keep!(admin.http_listen);
    keep!(cache.enabled);
    keep!(cache.max_memory);
    keep!(cache.max_entry_size);
    keep!(cache.max_filling);
    keep!(cache.invalidation);
    keep!(cache.replication);
    keep!(limits.max_clients);
    keep!(limits.worker_threads);
    keep!(limits.analysis_memo);
    keep!(log.format);
    keep!(stats.enabled);
    keep!(stats.max_queries);
    keep!(stats.metrics_top);
    (read, kept)
}

/// The top-level sections (and policies by name) that differ, for the log.
fn changed_sections(old: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    macro_rules! section {
        ($($name:ident),+) => {
            $(if old.$name != new.$name {
                changed.push(concat!(stringify!($name), " changed").to_string());
            })+
        };
    }
    section!(pool, auth, limits, timeouts, log, admin, cache, safety, limit);
    if old.policies != new.policies {
        changed.push(format!("policies changed ({} now)", new.policies.len()));
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = Config::default();
        let mut read = Config { listen: "0.0.0.0:7000".into(), ..Config::default() };
        read.cache.max_memory = bytesize::ByteSize::mib(1);
        read.pool.max_size = running.pool.max_size + 3;
        let (kept, names) = keep_restart_only(&running, read);
        assert_eq!(names, vec!["listen".to_string(), "cache.max_memory".to_string()]);
        assert_eq!(kept.listen, running.listen);
        assert_eq!(kept.cache.max_memory, running.cache.max_memory);
        assert_eq!(kept.pool.max_size, running.pool.max_size + 3, "a live setting is taken");
    }

    #[test]
    fn changed_sections_name_what_differs() {
        let old = Config::default();
        let mut new = Config::default();
        assert!(changed_sections(&old, &new).is_empty());
        new.timeouts.query = Some(std::time::Duration::from_secs(3));
        new.policies.push(Default::default());
        assert_eq!(
            changed_sections(&old, &new),
            vec!["timeouts changed".to_string(), "policies changed (1 now)".into()]
        );
    }
}
