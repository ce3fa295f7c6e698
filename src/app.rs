//! Wiring: build the shared parts from the configuration and serve clients until shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::AdminServer;
use crate::admin::query_stats::{QueryStats, QueryStatsSettings};
use crate::admin::traffic::Traffic;
use crate::cache::ResultCache;
use crate::cache::catalogs::Catalogs;
use crate::client::cancel::CancelRegistry;
use crate::client::listener::Listener;
use crate::client::tls::ClientTls;
use crate::client::unix_socket::UnixSocket;
use crate::config::{Config, ConfigSource, InvalidationMode, redact_url};
use crate::invalidate::Listeners;
use crate::pool::Pools;
use crate::reload::{self, Parts};
use crate::session::Shared;
use crate::session::cost::CostEstimates;
use crate::session::live::Live;

/// Bind `listen` (and the socket in `unix_socket_dir`, if set), serve, and shut down gracefully
/// on SIGTERM / SIGINT (a second one stops at once). SIGHUP reads the configuration again from
/// `source` (see [`crate::reload`]).
pub async fn run(config: Arc<Config>, source: Option<ConfigSource>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
    let mut signals = Signals::install().context("install signal handlers")?;
    let (stop, stopped) = watch::channel(false);
    let (live_tx, live_rx) = tokio::sync::oneshot::channel::<Arc<Live>>();
    tokio::spawn(async move {
        let live = live_rx.await.ok();
        let first = signals.next_stop(live.as_deref()).await;
        info!(signal = first, "signal received: shutting down (send it again to stop at once)");
        let _ = stop.send(true);
        let second = signals.next_stop(live.as_deref()).await;
        warn!(signal = second, "second signal received: stopping at once");
        std::process::exit(1);
    });
    serve_with(config, source, listener, stopped, Some(live_tx)).await
}

/// Everything startup builds from the configuration alone (no network): what `--check` runs, so
/// that a file it calls OK also starts.
pub fn check(config: &Config) -> anyhow::Result<()> {
    reload::check(config)
}

/// Serve clients on an already bound listener until `shutdown` becomes true (no reload).
pub async fn serve(config: Arc<Config>, listener: TcpListener, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    serve_with(config, None, listener, shutdown, None).await
}

/// [`serve`], reloading from `source` on request; `live` receives the generations' handle (for
/// whoever else reloads: the signal handler).
pub async fn serve_with(
    config: Arc<Config>,
    source: Option<ConfigSource>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    live: Option<tokio::sync::oneshot::Sender<Arc<Live>>>,
) -> anyhow::Result<()> {
    // The caller's shutdown, or the console's `SHUTDOWN`: one channel the sessions watch.
    let (stop, shutdown) = {
        let (stop, stopped) = watch::channel(false);
        let forward = stop.clone();
        let mut outside = shutdown;
        tokio::spawn(async move {
            // A caller that drops its sender stops the proxy too (as `shutdown::seen` reads it).
            let _ = outside.wait_for(|down| *down).await;
            let _ = forward.send(true);
        });
        (stop, stopped)
    };
    if !crate::sql::memo::configure(config.limits.analysis_memo.as_u64()) {
        tracing::debug!("the analysis memo was in use already: it keeps its size");
    }
    let unix = match &config.unix_socket_dir {
        Some(dir) => {
            let port = listener.local_addr()?.port();
            let socket = UnixSocket::bind(dir, port).with_context(|| {
                format!("listen on {}", crate::client::unix_socket::socket_path(dir, port).display())
            })?;
            Some(socket)
        }
        None => None,
    };
    let pools = Arc::new(Pools::new(config.clone()).context("upstream configuration")?);
    let tls = ClientTls::from_config(&config.tls).context("tls")?;
    let lookup = reload::password_lookup(&config, &pools)?;
    let Parts { policies, rules } = Parts::build(&config)?;
    let cache = Arc::new(ResultCache::new(&config.cache));
    let catalogs = Arc::new(Catalogs::new(pools.target_arc(), config.pool.acquire_timeout));
    let costs = Arc::new(CostEstimates::new(pools.target_arc(), config.pool.acquire_timeout));
    let listeners = Arc::new(if config.cache.enabled && config.cache.invalidation == InvalidationMode::Notify {
        Listeners::new(pools.target_arc(), cache.clone(), catalogs.clone())
    } else {
        Listeners::disabled()
    });
    let replicating = config.cache.enabled && config.cache.invalidation == InvalidationMode::Replication;
    if replicating {
        // Refuse to start rather than serve answers nothing keeps fresh.
        crate::replication::preflight(&pools.target_arc(), &config.cache.replication).await?;
    }
    let replication = Arc::new(if replicating {
        crate::replication::Streams::new(crate::replication::Context::new(
            pools.target_arc(),
            cache.clone(),
            catalogs.clone(),
            config.cache.replication.clone(),
        ))
    } else {
        crate::replication::Streams::disabled()
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
        replication: replication.clone(),
        queries: config.stats.enabled.then(|| Arc::new(QueryStats::new(query_stats_settings(&config.stats)))),
        traffic: Arc::new(Traffic::new().context("metrics")?),
        lookup,
    });
    // Login defaults changed around the proxy: handled as those made through it (see
    // `Session::invalidate`).
    let watched = shared.clone();
    let (pools, catalogs) = (shared.pools.clone(), shared.catalogs.clone());
    let changed = move || {
        watched.pools.new_login_defaults();
        watched.welcomes.invalidate_all();
        watched.cache.flush_all(crate::cache::InvalidationCause::Ddl);
    };
    let traffic = shared.traffic.clone();
    let checked = move |outcome| traffic.login_defaults_check(outcome);
    tokio::spawn(crate::invalidate::defaults::watch_login_defaults(
        pools,
        catalogs,
        shutdown.clone(),
        changed,
        checked,
    ));
    // Serves /metrics, /healthz, /readyz until dropped when `serve` returns (after the drain).
    let _admin = AdminServer::start_configured(&shared).await?;
    info!(listen = %listener.local_addr()?, unix_socket = ?unix.as_ref().map(|u| u.path().display()), upstream = %redact_url(&config.upstream.url), mode = ?config.pool.mode, "pgcached serving");
    let live_shared = Live::new(shared, source, stop);
    if let Some(tx) = live {
        let _ = tx.send(live_shared.clone());
    }
    Arc::new(Listener { live: live_shared, tls }).serve(listener, unix, shutdown).await;
    listeners.shutdown().await;
    replication.shutdown().await;
    Ok(())
}

/// What `stats` asks of the per-query statistics.
fn query_stats_settings(stats: &crate::config::StatsConfig) -> QueryStatsSettings {
    QueryStatsSettings {
        max_queries: stats.max_queries,
        slow_query: stats.slow_query,
        repeat_limit: (stats.n_plus_one > 0).then_some(stats.n_plus_one),
        repeat_window: stats.n_plus_one_window,
    }
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
    /// logrotate hook) reloads the configuration (see [`crate::reload`]).
    async fn next_stop(&mut self, live: Option<&Live>) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => match live {
                    Some(live) => {
                        info!("SIGHUP received: reloading the configuration");
                        // Its outcome is logged by `reload` itself.
                        let _ = reload::reload(live).await;
                    }
                    None => warn!("SIGHUP received before serving began: ignored"),
                },
            }
        }
    }
}
