//! [`UpstreamTarget`]: where the upstream is and how to reach it, resolved once from
//! `upstream.url`, `upstream.tls` and `upstream.ca_file`.
//!
//! The URL is parsed by `tokio_postgres::Config` (libpq URL or key=value syntax, percent
//! decoding), so pgcached and the control plane read it the same way. Only the first host is
//! used; Unix-socket hosts are refused for now.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio_postgres::config::Host;

use super::ServerError;
use super::tls;
use crate::config::{UpstreamConfig, UpstreamTls};

/// How to reach the upstream PostgreSQL. Cheap to share behind an `Arc`.
pub struct UpstreamTarget {
    pub host: String,
    pub port: u16,
    pub tls_mode: UpstreamTls,
    /// Set unless `tls_mode` is `disable`.
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    /// Name checked against the certificate (verify-full) and sent as SNI.
    pub(crate) server_name: ServerName<'static>,
    /// User named in `upstream.url`, if any.
    pub url_user: Option<String>,
    /// Database named in `upstream.url`, if any.
    pub url_database: Option<String>,
    /// Password in `upstream.url`: see `pool::credentials` for when it is used. Never printed.
    url_password: Option<String>,
    /// The parsed URL, for the control-plane client (tokio-postgres).
    pg_config: tokio_postgres::Config,
}

impl UpstreamTarget {
    pub fn from_config(cfg: &UpstreamConfig) -> Result<UpstreamTarget, ServerError> {
        let pg_config: tokio_postgres::Config = cfg
            .url
            .parse()
            .map_err(|e| ServerError::Config(format!("upstream.url: {e}")))?;
        let host = match pg_config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(_)) => {
                return Err(ServerError::Config(
                    "upstream.url: Unix-socket hosts are not supported".into(),
                ));
            }
            None => "localhost".to_string(),
        };
        let port = pg_config.get_ports().first().copied().unwrap_or(5432);
        let server_name = ServerName::try_from(host.clone()).map_err(|e| {
            ServerError::Config(format!(
                "upstream.url: host {host:?} is not a valid TLS name: {e}"
            ))
        })?;
        let tls_config = match cfg.tls {
            UpstreamTls::Disable => None,
            UpstreamTls::Prefer | UpstreamTls::Require => Some(tls::unverified_config()?),
            UpstreamTls::VerifyFull => Some(tls::verifying_config(cfg.ca_file.as_deref())?),
        };
        let url_password = pg_config
            .get_password()
            .map(|p| String::from_utf8(p.to_vec()))
            .transpose()
            .map_err(|_| ServerError::Config("upstream.url: password is not UTF-8".into()))?;
        Ok(UpstreamTarget {
            host,
            port,
            tls_mode: cfg.tls,
            tls_config,
            server_name,
            // `postgres://:pw@host` names no user (libpq reads it the same way).
            url_user: pg_config
                .get_user()
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            url_database: pg_config.get_dbname().map(str::to_string),
            url_password,
            pg_config,
        })
    }

    /// The password written in `upstream.url`.
    pub fn url_password(&self) -> Option<&str> {
        self.url_password.as_deref()
    }

    /// The parsed `upstream.url` (for tokio-postgres; it contains the password).
    pub fn pg_config(&self) -> &tokio_postgres::Config {
        &self.pg_config
    }

    /// Whether every connection (cancel requests included) must be encrypted.
    pub fn tls_required(&self) -> bool {
        matches!(
            self.tls_mode,
            UpstreamTls::Require | UpstreamTls::VerifyFull
        )
    }
}

impl fmt::Debug for UpstreamTarget {
    // Hand-written so the password can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls_mode", &self.tls_mode)
            .field("url_user", &self.url_user)
            .field("url_database", &self.url_database)
            .field(
                "url_password",
                &self.url_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, tls: UpstreamTls) -> Result<UpstreamTarget, ServerError> {
        UpstreamTarget::from_config(&UpstreamConfig {
            url: url.into(),
            tls,
            ca_file: None,
        })
    }

    #[test]
    fn url_parts_are_read() {
        let t = target(
            "postgres://bob:s%40cret@db.example:6543/app",
            UpstreamTls::Disable,
        )
        .unwrap();
        assert_eq!(t.host, "db.example");
        assert_eq!(t.port, 6543);
        assert_eq!(t.url_user.as_deref(), Some("bob"));
        assert_eq!(t.url_password(), Some("s@cret"));
        assert_eq!(t.url_database.as_deref(), Some("app"));
        assert!(t.tls_config.is_none());
    }

    #[test]
    fn defaults_apply_to_a_bare_url() {
        let t = target("postgres://127.0.0.1", UpstreamTls::Prefer).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 5432));
        assert_eq!(t.url_user, None);
        assert!(t.tls_config.is_some());
        assert!(!t.tls_required());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let t = target("postgres://bob:hunter2@localhost/app", UpstreamTls::Require).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn garbage_url_is_a_config_error() {
        assert!(matches!(
            target("postgres://[::1", UpstreamTls::Disable),
            Err(ServerError::Config(_))
        ));
    }
}
