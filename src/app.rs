//! Wiring: build the shared parts from the configuration and serve clients until shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::cache::catalogs::Catalogs;
use crate::cache::{ResultCache, Rules};
use crate::client::auth::{ConfigUsers, PasswordLookup};
use crate::client::cancel::CancelRegistry;
use crate::client::listener::Listener;
use crate::client::tls::ClientTls;
use crate::config::{Config, InvalidationMode, redact_url};
use crate::invalidate::Listeners;
use crate::pool::Pools;
use crate::session::Shared;
use crate::sql::Policies;

/// Bind `listen`, serve, and shut down gracefully on SIGTERM / SIGINT.
pub async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("signal received: shutting down");
        let _ = stop.send(true);
    });
    serve(config, listener, stopped).await
}

/// Serve clients on an already bound listener until `shutdown` becomes true.
pub async fn serve(config: Arc<Config>, listener: TcpListener, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pools = Arc::new(Pools::new(config.clone()).context("upstream configuration")?);
    let tls = ClientTls::from_config(&config.tls).context("tls")?;
    let lookup: Arc<dyn PasswordLookup> = Arc::new(ConfigUsers::new(&config.auth.users));
    let policies = Policies::from_config(&config.safety, &config.limit, &config.policies).context("policies")?;
    let rules = Rules::new(&config.cache).context("cache.rules")?;
    let cache = Arc::new(ResultCache::new(&config.cache));
    let catalogs = Arc::new(Catalogs::new(pools.target_arc(), config.pool.acquire_timeout));
    let listeners = Arc::new(if config.cache.enabled && config.cache.invalidation == InvalidationMode::Notify {
        Listeners::new(pools.target_arc(), cache.clone())
    } else {
        Listeners::disabled()
    });
    let shared = Arc::new(Shared {
        config: config.clone(),
        pools,
        cancels: Arc::new(CancelRegistry::default()),
        shutdown: shutdown.clone(),
        welcomes: crate::session::login::welcome_cache(),
        policies: Arc::new(policies),
        cache,
        rules: Arc::new(rules),
        catalogs,
        listeners: listeners.clone(),
    });
    info!(listen = %listener.local_addr()?, upstream = %redact_url(&config.upstream.url), mode = ?config.pool.mode, "pgcached serving");
    Arc::new(Listener { shared, tls, lookup }).serve(listener, shutdown).await;
    listeners.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
