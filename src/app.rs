//! Wiring: build the shared parts from the configuration and serve clients until shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::AdminServer;
use crate::cache::catalogs::Catalogs;
use crate::cache::{ResultCache, Rules};
use crate::client::auth::{AuthQuery, ConfigUsers, LookupChain, PasswordLookup};
use crate::client::cancel::CancelRegistry;
use crate::client::listener::Listener;
use crate::client::tls::ClientTls;
use crate::config::{Config, InvalidationMode, redact_url};
use crate::invalidate::Listeners;
use crate::pool::Pools;
use crate::session::Shared;
use crate::session::cost::CostEstimates;
use crate::sql::Policies;

/// Bind `listen`, serve, and shut down gracefully on SIGTERM / SIGINT (a second one stops at
/// once). SIGHUP is logged and changes nothing.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
    let mut signals = Signals::install().context("install signal handlers")?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let first = signals.next_stop().await;
        info!(signal = first, "signal received: shutting down (send it again to stop at once)");
        let _ = stop.send(true);
        let second = signals.next_stop().await;
        warn!(signal = second, "second signal received: stopping at once");
        std::process::exit(1);
    });
    serve(config, listener, stopped).await
}

/// Everything startup builds from the configuration alone (no network): what `--check` runs, so
/// that a file it calls OK also starts.
pub fn check(config: &Config) -> anyhow::Result<()> {
    Pools::new(Arc::new(config.clone())).context("upstream configuration")?;
    ClientTls::from_config(&config.tls).context("tls")?;
    Policies::from_config(&config.safety, &config.limit, &config.policies).context("policies")?;
    Rules::new(&config.cache).context("cache.rules")?;
    Ok(())
}

/// Serve clients on an already bound listener until `shutdown` becomes true.
pub async fn serve(config: Arc<Config>, listener: TcpListener, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pools = Arc::new(Pools::new(config.clone()).context("upstream configuration")?);
    let tls = ClientTls::from_config(&config.tls).context("tls")?;
    let lookup = password_lookup(&config, &pools)?;
    let policies = Policies::from_config(&config.safety, &config.limit, &config.policies).context("policies")?;
    let rules = Rules::new(&config.cache).context("cache.rules")?;
    let cache = Arc::new(ResultCache::new(&config.cache));
    let catalogs = Arc::new(Catalogs::new(pools.target_arc(), config.pool.acquire_timeout));
    let costs = Arc::new(CostEstimates::new(pools.target_arc(), config.pool.acquire_timeout));
    let listeners = Arc::new(if config.cache.enabled && config.cache.invalidation == InvalidationMode::Notify {
        Listeners::new(pools.target_arc(), cache.clone(), catalogs.clone())
    } else {
        Listeners::disabled()
    });
    let shared = Arc::new(Shared {
        config: config.clone(),
        pools,
        cancels: Arc::new(CancelRegistry::default()),
        shutdown: shutdown.clone(),
        shutdown_wakers: Default::default(),
        welcomes: crate::session::login::welcome_cache(),
        policies: Arc::new(policies),
        cache,
        rules: Arc::new(rules),
        catalogs,
        costs,
        prepared_ok: moka::sync::Cache::new(100_000),
        shapes: Default::default(),
        listeners: listeners.clone(),
    });
    // Serves /metrics, /healthz, /readyz until dropped when `serve` returns (after the drain).
    let _admin = AdminServer::start_configured(&shared).await?;
    info!(listen = %listener.local_addr()?, upstream = %redact_url(&config.upstream.url), mode = ?config.pool.mode, "pgcached serving");
    Arc::new(Listener { shared, tls, lookup }).serve(listener, shutdown).await;
    listeners.shutdown().await;
    Ok(())
}

/// Where client passwords come from: `auth.users`, then `auth.auth_query` (run on a
/// control-plane connection to the upstream URL's database, `postgres` when it names none).
fn password_lookup(config: &Config, pools: &Pools) -> anyhow::Result<Arc<dyn PasswordLookup>> {
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

/// The signals pgcached acts on.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Wait for SIGTERM or SIGINT (its name); a SIGHUP meanwhile (`systemctl reload`, a
    /// logrotate hook) is logged: the configuration is read at start only.
    async fn next_stop(&mut self) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => {
                    warn!("SIGHUP received and ignored: the configuration is read at start only (restart to change it)");
                }
            }
        }
    }
}
