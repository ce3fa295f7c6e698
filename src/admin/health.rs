//! Readiness: can the upstream be reached right now?
//!
//! The check logs in through a one-connection control-plane pool (the user of `upstream.url`,
//! see [`crate::pool::control`]) and runs `SELECT 1`, so a Postgres that accepts TCP but refuses
//! logins (starting up, shutting down, out of connections) is not ready either. When the
//! control plane can't be used (`upstream.tls = require | verify-full`), it only opens a TCP
//! connection to the upstream address. A login refused with SQLSTATE class 28 still counts as
//! ready: the server is up, and sessions log in as their own users, not the control plane's.
//!
//! Answers are cached for [`CACHE_FOR`], and concurrent probes wait for the one in flight, so a
//! burst of probes costs the upstream at most one round trip a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{Mutex, watch};

use crate::pool::control::control_pool;
use crate::server::UpstreamTarget;

/// How long an answer is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// How long one check may take before the upstream counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Database the check logs in to when `upstream.url` names none.
const DEFAULT_DATABASE: &str = "postgres";

/// The readiness check with its cached answer.
pub struct Readiness {
    target: Arc<UpstreamTarget>,
    /// `None` when the control plane can't reach this upstream (TLS required): TCP only.
    pool: Option<deadpool_postgres::Pool>,
    shutdown: watch::Receiver<bool>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub fn new(target: Arc<UpstreamTarget>, shutdown: watch::Receiver<bool>) -> Readiness {
        let database = target.url_database.clone().unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        let pool = control_pool(&target, &database, 1, CHECK_TIMEOUT).ok();
        Readiness { target, pool, shutdown, last: Mutex::new(None) }
    }

    /// `Ok` when ready, else why not.
    pub async fn check(&self) -> Result<(), String> {
        if *self.shutdown.borrow() {
            return Err("shutting down".into());
        }
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < CACHE_FOR
        {
            return answer.clone();
        }
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, self.probe()).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("upstream {}: no answer within {CHECK_TIMEOUT:?}", self.address())),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn probe(&self) -> Result<(), String> {
        let addr = self.address();
        match &self.pool {
            Some(pool) => {
                let client = match pool.get().await {
                    Ok(client) => client,
                    Err(deadpool_postgres::PoolError::Backend(e)) if refused_login(&e) => return Ok(()),
                    Err(e) => return Err(format!("upstream {addr}: {e}")),
                };
                client.simple_query("SELECT 1").await.map_err(|e| format!("upstream {addr}: {e}"))?;
                Ok(())
            }
            None => {
                let reached = match &self.target.socket {
                    Some(path) => UnixStream::connect(path).await.map(drop),
                    None => TcpStream::connect((self.target.host.as_str(), self.target.port)).await.map(drop),
                };
                reached.map_err(|e| format!("upstream {addr}: {e}"))
            }
        }
    }

    fn address(&self) -> String {
        self.target.address()
    }
}

/// The server answered, but refused the control-plane login (SQLSTATE class 28): it is up and
/// accepting connections; sessions log in as their own users, so this is not a reason to take
/// the proxy out of rotation.
fn refused_login(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| db.code().code().starts_with("28"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{UpstreamConfig, UpstreamTls};

    fn target(port: u16, tls: UpstreamTls) -> Arc<UpstreamTarget> {
        let cfg = UpstreamConfig { url: format!("postgres://127.0.0.1:{port}/app"), tls, ca_file: None };
        Arc::new(UpstreamTarget::from_config(&cfg).unwrap())
    }

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn nothing_listening_is_not_ready_with_the_reason() {
        let (_stop, stopped) = watch::channel(false);
        for tls in [UpstreamTls::Disable, UpstreamTls::Require] {
            let port = closed_port();
            let r = Readiness::new(target(port, tls), stopped.clone());
            let why = r.check().await.unwrap_err();
            assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
        }
    }

    #[tokio::test]
    async fn tcp_only_check_sees_a_listener_and_caches_its_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = watch::channel(false);
        let r = Readiness::new(target(port, UpstreamTls::Require), stopped);
        assert_eq!(r.check().await, Ok(()));
        drop(listener);
        assert_eq!(r.check().await, Ok(()), "cached for a second");
        stop.send(true).unwrap();
        assert_eq!(r.check().await, Err("shutting down".into()));
    }
}
