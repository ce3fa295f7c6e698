//! The admin HTTP endpoint (`admin.http_listen`): `GET /metrics`, `/healthz`, `/readyz`; and the
//! admin console in psql ([`console`], [`commands`]).
//!
//! - [`metrics`]: the Prometheus registry, read from the shared structures at scrape time.
//! - [`health`]: the readiness check of the upstream, cached for a second.
//! - [`traffic`]: metrics the data path updates itself (latency histograms, bytes, errors, refusals).
//! - [`query_stats`]: per-query statistics (calls, cache outcomes, time, p50/p99), the slow-query
//!   log and N+1 reports (found per session by [`repeats`]), and their `/metrics` series.
//!
//! `/healthz` answers 200 `ok` as long as the process serves HTTP. `/readyz` answers 200 `ready`
//! when the upstream accepts a login, else 503 with the reason — also while the proxy drains
//! on shutdown, so a load balancer stops sending new clients. The server runs until its
//! [`AdminServer`] is dropped, then finishes the requests in flight and stops.

pub mod commands;
pub mod console;
pub mod health;
pub mod latency;
pub mod metrics;
pub mod outcome;
pub mod query_stats;
pub mod repeats;
pub mod result_set;
pub mod show_stats;
pub mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::session::Shared;
use health::Readiness;

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("admin.http_listen: bind {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    registry: Arc<prometheus::Registry>,
    readiness: Arc<Readiness>,
}

impl AdminState {
    /// The state for the proxy sharing `shared`.
    pub fn new(shared: &Shared) -> Result<AdminState, AdminError> {
        let sources = metrics::Sources {
            cache: shared.cache.clone(),
            pools: shared.pools.clone(),
            cancels: shared.cancels.clone(),
            traffic: shared.traffic.clone(),
            queries: shared.queries.clone().map(|q| (q, shared.config.stats.metrics_top)),
            replication: shared.replication.is_enabled().then(|| shared.replication.clone()),
        };
        Ok(AdminState {
            registry: Arc::new(metrics::registry(sources)?),
            readiness: Arc::new(Readiness::new(shared.pools.target_arc(), shared.shutdown.clone())),
        })
    }

    pub fn from_parts(registry: prometheus::Registry, readiness: Readiness) -> AdminState {
        AdminState { registry: Arc::new(registry), readiness: Arc::new(readiness) }
    }
}

/// The routes of the admin endpoint.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(state)
}

/// A running admin server; dropping it stops the server (gracefully).
pub struct AdminServer {
    pub local_addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl AdminServer {
    /// Bind `addr` and serve `state` on it in a background task.
    pub async fn start(addr: &str, state: AdminState) -> Result<AdminServer, AdminError> {
        let bind_error = |source| AdminError::Bind { addr: addr.to_string(), source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
                // Resolves when the `AdminServer` (the sender) is dropped.
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                warn!(error = %e, "admin HTTP server failed");
            }
        });
        info!(listen = %local_addr, "admin HTTP serving /metrics, /healthz, /readyz");
        Ok(AdminServer { local_addr, _stop: stop })
    }

    /// Start the server of `admin.http_listen`, if configured.
    pub async fn start_configured(shared: &Shared) -> Result<Option<AdminServer>, AdminError> {
        match &shared.config.admin.http_listen {
            Some(addr) => Ok(Some(AdminServer::start(addr, AdminState::new(shared)?).await?)),
            None => Ok(None),
        }
    }
}

async fn metrics_handler(State(state): State<AdminState>) -> Response {
    match metrics::render(&state.registry) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response(),
    }
}

async fn ready_handler(State(state): State<AdminState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}
