//! pgcached started in-process for a test, in front of a test's private Postgres, on a free
//! port, over real TCP. Stopped (and drained) on `shutdown` or when dropped.

use std::sync::Arc;

use pgcached::config::{Config, UpstreamTls};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::PgCluster;

pub struct Proxy {
    pub port: u16,
    pub config: Arc<Config>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Proxy {
    /// Defaults (transaction pooling, trust auth), upstream = `pg`.
    pub async fn start(pg: &PgCluster) -> Proxy {
        Proxy::start_with(pg, |_| {}).await
    }

    /// Like [`Proxy::start`], with the configuration adjusted by `tweak` first.
    /// `TEST_LOG=pgcached=debug` shows the proxy's log lines (with `--no-capture`).
    pub async fn start_with(pg: &PgCluster, tweak: impl FnOnce(&mut Config)) -> Proxy {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let mut config = Config::default();
        config.upstream.url = format!("postgres://127.0.0.1:{}", pg.port());
        config.upstream.tls = UpstreamTls::Disable;
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy port");
        let port = listener.local_addr().unwrap().port();
        config.listen = format!("127.0.0.1:{port}");
        let config = Arc::new(config);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(pgcached::app::serve(config.clone(), listener, stopped));
        Proxy { port, config, stop, task: Some(task) }
    }

    /// A proxy whose configuration is `yaml(port)` — the YAML text for listen port `port`,
    /// written to `file` — read again from that file by `RELOAD` (as the binary does).
    pub async fn start_reloadable(file: &std::path::Path, yaml: impl FnOnce(u16) -> String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy port");
        let port = listener.local_addr().unwrap().port();
        std::fs::write(file, yaml(port)).expect("write the config file");
        let read = {
            let file = file.to_path_buf();
            move || -> Result<Config, String> {
                let config = Config::load(&file).map_err(|e| e.to_string())?;
                config.validate().map_err(|e| e.to_string())?;
                Ok(config)
            }
        };
        let config = Arc::new(read().expect("the first configuration is valid"));
        let (stop, stopped) = watch::channel(false);
        let source = pgcached::config::ConfigSource::new(read);
        let task = tokio::spawn(pgcached::app::serve_with(config.clone(), Some(source), listener, stopped, None));
        Proxy { port, config, stop, task: Some(task) }
    }

    /// URL of this proxy for `user` on `db`.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// Signal shutdown and wait for the proxy to drain.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("proxy task panicked").expect("proxy failed");
        }
    }

    /// Signal shutdown without waiting.
    pub fn begin_shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Wait for a shutdown begun with [`Proxy::begin_shutdown`].
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            task.await.expect("proxy task panicked").expect("proxy failed");
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
