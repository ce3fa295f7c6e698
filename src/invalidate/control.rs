//! Control-plane connections of the invalidation machinery: the listener's and the one
//! `pgcached install-triggers` uses. Both log in as the user of `upstream.url` (`postgres` when
//! it names none) with the URL's password, and honour `upstream.tls` like the data path:
//! `disable` → plain, `prefer` → TLS if the server offers it, `require` → TLS (certificate not
//! checked), `verify-full` → TLS checked against `upstream.ca_file` / the system roots and the
//! URL's host name.

use tokio_postgres::Client;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::InvalidateError;
use crate::config::UpstreamTls;
use crate::server::UpstreamTarget;

/// User the control plane logs in as when `upstream.url` names none.
pub const DEFAULT_USER: &str = "postgres";

/// The tokio-postgres configuration for `database` on the upstream, with the TLS mode of
/// `upstream.tls` (the URL's own `sslmode` is overridden) and `application_name`.
pub fn pg_config(target: &UpstreamTarget, database: &str, application_name: &str) -> tokio_postgres::Config {
    let mut pg = target.pg_config().clone();
    pg.dbname(database);
    pg.application_name(application_name);
    if pg.get_user().is_none_or(str::is_empty) {
        pg.user(DEFAULT_USER);
    }
    pg.ssl_mode(match target.tls_mode {
        UpstreamTls::Disable => SslMode::Disable,
        UpstreamTls::Prefer => SslMode::Prefer,
        UpstreamTls::Require | UpstreamTls::VerifyFull => SslMode::Require,
    });
    pg
}

/// The TLS connector for [`pg_config`] (`None`: `upstream.tls = disable`).
pub fn tls(target: &UpstreamTarget) -> Option<MakeRustlsConnect> {
    target.tls_config.as_ref().map(|c| MakeRustlsConnect::new((**c).clone()))
}

/// The database the control plane uses when none is named: the URL's, else the URL's user's
/// (libpq's default), else `postgres`.
pub fn default_database(target: &UpstreamTarget) -> String {
    target.url_database.clone().or_else(|| target.url_user.clone()).unwrap_or_else(|| DEFAULT_USER.to_string())
}

/// Connect to `database` (the connection is driven by a spawned task).
pub async fn connect(target: &UpstreamTarget, database: &str) -> Result<Client, InvalidateError> {
    Ok(connect_as(target, database, "pgcached install-triggers").await?)
}

/// Connect to `database` as `application_name`, as the control plane logs in (the connection
/// is driven by a spawned task).
pub async fn connect_as(
    target: &UpstreamTarget,
    database: &str,
    application_name: &str,
) -> Result<Client, tokio_postgres::Error> {
    let pg = pg_config(target, database, application_name);
    let client = match tls(target) {
        Some(tls) => {
            let (client, conn) = pg.connect(tls).await?;
            tokio::spawn(conn);
            client
        }
        None => {
            let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client
        }
    };
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn target(url: &str, tls: UpstreamTls) -> UpstreamTarget {
        UpstreamTarget::from_config(&UpstreamConfig { url: url.into(), tls, ca_file: None }).unwrap()
    }

    #[test]
    fn user_database_and_tls_follow_the_upstream() {
        let t = target("postgres://127.0.0.1:5433/app?sslmode=disable", UpstreamTls::Require);
        let pg = pg_config(&t, "other", "x");
        assert_eq!(pg.get_user(), Some(DEFAULT_USER));
        assert_eq!(pg.get_dbname(), Some("other"));
        assert_eq!(pg.get_ssl_mode(), SslMode::Require);
        assert!(tls(&t).is_some());
        assert_eq!(default_database(&t), "app");

        let t = target("postgres://bob@127.0.0.1", UpstreamTls::Disable);
        assert_eq!(pg_config(&t, "db", "x").get_user(), Some("bob"));
        assert_eq!(pg_config(&t, "db", "x").get_ssl_mode(), SslMode::Disable);
        assert!(tls(&t).is_none());
        assert_eq!(default_database(&t), "bob");
        assert_eq!(default_database(&target("postgres://127.0.0.1", UpstreamTls::Disable)), "postgres");
    }
}
