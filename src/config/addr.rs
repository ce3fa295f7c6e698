//! Addresses in the config: `HOST:PORT` listen addresses and the upstream libpq URL.

use std::fmt;

/// Split `HOST:PORT` (`127.0.0.1:6432`, `localhost:6432`, `[::1]:6432`, `0.0.0.0:6432`).
/// Returns the host without brackets and the port.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: port {port:?} is not a number in 0..=65535"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| format!("{s:?}: unbalanced '[' in host"))?;
        inner.parse::<std::net::Ipv6Addr>().map_err(|_| format!("{s:?}: {inner:?} is not an IPv6 address"))?;
        inner
    } else {
        if host.contains(':') {
            return Err(format!("{s:?}: write an IPv6 host in brackets, e.g. [::1]:6432"));
        }
        host
    };
    if host.is_empty() {
        return Err(format!("{s:?}: host is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("{s:?}: {host:?} is not a host name or IP address"));
    }
    Ok((host.to_string(), port))
}

/// The upstream PostgreSQL server, from `upstream.url`. The password is never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamAddr {
    /// The host name or address, or the directory of a Unix-domain socket.
    pub host: String,
    pub port: u16,
    /// `host` is a Unix-domain socket's directory (`<host>/.s.PGSQL.<port>`).
    pub socket: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
}

impl UpstreamAddr {
    /// Parse a libpq URL (`postgres://[user[:password]@]host[:port][/db]`) or key=value string
    /// with tokio-postgres' parser. Exactly one host: a TCP one, or a directory holding the
    /// server's Unix-domain socket (a host starting with `/`, as libpq reads it); the port
    /// defaults to 5432.
    pub fn parse(url: &str) -> Result<UpstreamAddr, String> {
        let cfg: tokio_postgres::Config =
            url.parse().map_err(|e| format!("{} is not a valid postgres URL: {e}", redact_url(url)))?;
        let (host, socket) = match cfg.get_hosts() {
            [] => return Err(format!("{} names no host", redact_url(url))),
            [tokio_postgres::config::Host::Tcp(h)] => (h.clone(), false),
            #[cfg(unix)]
            [tokio_postgres::config::Host::Unix(dir)] => (dir.display().to_string(), true),
            _ => return Err(format!("{}: exactly one upstream host is supported", redact_url(url))),
        };
        let port = match cfg.get_ports() {
            [] => 5432,
            [p] => *p,
            _ => return Err(format!("{}: exactly one upstream port is supported", redact_url(url))),
        };
        let password = match cfg.get_password() {
            None => None,
            Some(p) => Some(String::from_utf8(p.to_vec()).map_err(|_| "upstream password is not UTF-8".to_string())?),
        };
        Ok(UpstreamAddr {
            host,
            port,
            socket,
            user: cfg.get_user().map(str::to_string),
            password,
            database: cfg.get_dbname().map(str::to_string),
        })
    }

    /// `postgres://user@host:port/db` — never the password.
    pub fn redacted_url(&self) -> String {
        let mut s = String::from("postgres://");
        if let Some(u) = &self.user {
            s.push_str(u);
            if self.password.is_some() {
                s.push_str(":***");
            }
            s.push('@');
        }
        if self.socket {
            // Percent-encoded, as a libpq URL carries a socket directory.
            s.push_str(&format!("{}:{}", self.host.replace('%', "%25").replace('/', "%2F"), self.port));
        } else if self.host.contains(':') {
            s.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            s.push_str(&format!("{}:{}", self.host, self.port));
        }
        if let Some(db) = &self.database {
            s.push('/');
            s.push_str(db);
        }
        s
    }
}

impl fmt::Debug for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .finish()
    }
}

/// Mask the password of a URL-form connection string for messages, textually (works on
/// unparseable input too): `postgres://u:secret@h` → `postgres://u:***@h`. A key=value string
/// has its `password=` value masked.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[scheme_end + 3 + at..]);
            }
        }
        // a `password=` query parameter
        if let Some(q) = url.find('?') {
            let masked: Vec<String> = url[q + 1..]
                .split('&')
                .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
                .collect();
            return format!("{}?{}", &url[..q], masked.join("&"));
        }
        url.to_string()
    } else {
        url.split_whitespace()
            .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(parse_host_port("127.0.0.1:6432").unwrap(), ("127.0.0.1".into(), 6432));
        assert_eq!(parse_host_port("localhost:1").unwrap(), ("localhost".into(), 1));
        assert_eq!(parse_host_port("[::1]:6432").unwrap(), ("::1".into(), 6432));
        assert!(parse_host_port("6432").is_err());
        assert!(parse_host_port(":6432").is_err());
        assert!(parse_host_port("host:99999").is_err());
        assert!(parse_host_port("::1:6432").is_err());
        assert!(parse_host_port("host:port").is_err());
    }

    #[test]
    fn upstream_url() {
        let a = UpstreamAddr::parse("postgres://alice:s3cret@db.example:5433/app").unwrap();
        assert_eq!(a.host, "db.example");
        assert_eq!(a.port, 5433);
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert_eq!(a.database.as_deref(), Some("app"));
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(!a.redacted_url().contains("s3cret"));
        assert_eq!(a.redacted_url(), "postgres://alice:***@db.example:5433/app");

        let b = UpstreamAddr::parse("postgres://127.0.0.1").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.user, b.database), ("127.0.0.1", 5432, None, None));
        assert!(UpstreamAddr::parse("postgres://a,b/db").is_err());
        assert!(UpstreamAddr::parse("mysql://x").is_err());
        let e = UpstreamAddr::parse("postgres://u:pw@h:notaport/db").unwrap_err();
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn a_directory_host_is_a_unix_socket() {
        for url in [
            "postgres://bob@%2Fvar%2Frun%2Fpostgresql:5433/app",
            "postgresql:///app?host=/var/run/postgresql&port=5433&user=bob",
            "host=/var/run/postgresql port=5433 user=bob dbname=app",
        ] {
            let a = UpstreamAddr::parse(url).unwrap();
            assert_eq!((a.host.as_str(), a.port, a.socket), ("/var/run/postgresql", 5433, true), "{url}");
            assert_eq!(a.redacted_url(), "postgres://bob@%2Fvar%2Frun%2Fpostgresql:5433/app", "{url}");
            // What the log line shows reads back as the same place.
            assert_eq!(UpstreamAddr::parse(&a.redacted_url()).unwrap(), a);
        }
        assert!(!UpstreamAddr::parse("postgres://db.example/app").unwrap().socket);
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("postgres://u:p@h:1/d"), "postgres://u:***@h:1/d");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact_url("postgres://h/d?password=x&sslmode=disable"),
            "postgres://h/d?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("host=h password=x"), "host=h password=***");
    }
}
