//! [`UpstreamTarget`]: where the upstream is and how to reach it, resolved once from
//! `upstream.url`, `upstream.tls` and `upstream.ca_file`.
//!
//! The URL is parsed by `tokio_postgres::Config` (libpq URL or key=value syntax, percent
//! decoding), so pgcached and the control plane read it the same way. Only the first host is
//! used. A host that is a directory (`host=/var/run/postgresql`, `postgres://%2Fvar%2Frun%2Fpostgresql/db`)
//! is a Unix-domain socket, `<dir>/.s.PGSQL.<port>`, as libpq reads it: no TLS on it (Postgres
//! takes none there), so `upstream.tls: prefer` connects plainly and `require`/`verify-full`
//! are refused — they promise an encrypted, authenticated server a socket cannot give.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio_postgres::config::Host;

use super::ServerError;
use super::tls;
use crate::config::{UpstreamConfig, UpstreamTls};

/// How to reach the upstream PostgreSQL. Cheap to share behind an `Arc`.
pub struct UpstreamTarget {
    /// The host name or address, or the socket's directory.
    pub host: String,
    pub port: u16,
    /// The Unix-domain socket to connect to instead of TCP (`<dir>/.s.PGSQL.<port>`).
    pub socket: Option<PathBuf>,
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
        let pg_config: tokio_postgres::Config =
            cfg.url.parse().map_err(|e| ServerError::Config(format!("upstream.url: {e}")))?;
        let port = pg_config.get_ports().first().copied().unwrap_or(5432);
        let (host, socket) = match pg_config.get_hosts().first() {
            Some(Host::Tcp(h)) => (h.clone(), None),
            #[cfg(unix)]
            Some(Host::Unix(dir)) => (dir.display().to_string(), Some(dir.join(format!(".s.PGSQL.{port}")))),
            None => ("localhost".to_string(), None),
        };
        let tls_mode = match socket {
            Some(_) => cfg.tls.on_a_socket().map_err(|m| ServerError::Config(format!("upstream.tls: {m}")))?,
            None => cfg.tls,
        };
        // Not checked for a socket: no certificate is ever asked for there.
        let server_name = match socket {
            Some(_) => ServerName::try_from("localhost").expect("a valid name"),
            None => ServerName::try_from(host.clone()).map_err(|e| {
                ServerError::Config(format!("upstream.url: host {host:?} is not a valid TLS name: {e}"))
            })?,
        };
        let tls_config = match tls_mode {
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
            socket,
            tls_mode,
            tls_config,
            server_name,
            // `postgres://:pw@host` names no user (libpq reads it the same way).
            url_user: pg_config.get_user().filter(|u| !u.is_empty()).map(str::to_string),
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

    /// Where it listens, for messages: `host:port`, or the socket's path.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(path) => path.display().to_string(),
            None if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// Whether every connection (cancel requests included) must be encrypted.
    pub fn tls_required(&self) -> bool {
        matches!(self.tls_mode, UpstreamTls::Require | UpstreamTls::VerifyFull)
    }
}

impl fmt::Debug for UpstreamTarget {
    // Hand-written so the password can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("tls_mode", &self.tls_mode)
            .field("url_user", &self.url_user)
            .field("url_database", &self.url_database)
            .field("url_password", &self.url_password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, tls: UpstreamTls) -> Result<UpstreamTarget, ServerError> {
        UpstreamTarget::from_config(&UpstreamConfig { url: url.into(), tls, ca_file: None })
    }

    #[test]
    fn url_parts_are_read() {
        let t = target("postgres://bob:s%40cret@db.example:6543/app", UpstreamTls::Disable).unwrap();
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
    fn a_directory_host_is_the_socket_in_it_and_never_tls() {
        let t = target("postgres://bob@%2Ftmp%2Fpg:5433/app", UpstreamTls::Prefer).unwrap();
        assert_eq!(t.socket.as_deref(), Some(std::path::Path::new("/tmp/pg/.s.PGSQL.5433")));
        assert_eq!((t.host.as_str(), t.port), ("/tmp/pg", 5433));
        assert_eq!(t.tls_mode, UpstreamTls::Disable, "prefer: plainly, as libpq on a socket");
        assert!(t.tls_config.is_none());
        for mode in [UpstreamTls::Require, UpstreamTls::VerifyFull] {
            let Err(ServerError::Config(e)) = target("host=/tmp/pg", mode) else { panic!("{mode:?} taken") };
            assert!(e.contains("upstream.tls") && e.contains("TCP host"), "{e}");
        }
        assert!(target("postgres://127.0.0.1/app", UpstreamTls::Prefer).unwrap().socket.is_none());
    }

    #[test]
    fn garbage_url_is_a_config_error() {
        assert!(matches!(target("postgres://[::1", UpstreamTls::Disable), Err(ServerError::Config(_))));
    }
}
