//! Which password pgcached uses to log in to the upstream as a client's user.
//!
//! Server connections log in as the client's own user, to the client's database, so that the
//! upstream's privileges, `current_user` and row-level security apply unchanged. The password
//! for user `U` is, in order:
//! 1. the password written in `upstream.url`, when the URL names user `U` or names no user;
//! 2. otherwise (or when the URL has no password) the password of `U` in `auth.users`, when it
//!    is stored in plaintext — an md5 hash (`md5…`) or a SCRAM verifier (`SCRAM-SHA-256$…`)
//!    cannot be used to log in;
//! 3. otherwise none: the upstream must trust `U` (or the login fails with its own error).
//!
//! Passwords are never logged; the values returned here go straight to the login exchange.

use crate::config::AuthConfig;
use crate::server::UpstreamTarget;

/// The password to log in to the upstream as `user`, if one is known (see the module doc).
pub fn upstream_password(target: &UpstreamTarget, auth: &AuthConfig, user: &str) -> Option<String> {
    let url_matches = target.url_user.as_deref().is_none_or(|u| u == user);
    if url_matches && let Some(pw) = target.url_password() {
        return Some(pw.to_string());
    }
    auth.users
        .iter()
        .find(|u| u.name == user)
        .map(|u| u.password.as_str())
        .filter(|pw| !is_stored_hash(pw))
        .map(str::to_string)
}

/// True for the forms PostgreSQL stores in pg_authid (md5 hash, SCRAM verifier).
fn is_stored_hash(pw: &str) -> bool {
    (pw.len() == 35 && pw.starts_with("md5") && pw[3..].bytes().all(|b| b.is_ascii_hexdigit()))
        || pw.starts_with("SCRAM-SHA-256$")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{UpstreamConfig, UpstreamTls, UserEntry};

    fn target(url: &str) -> UpstreamTarget {
        UpstreamTarget::from_config(&UpstreamConfig {
            url: url.into(),
            tls: UpstreamTls::Disable,
            ca_file: None,
        })
        .unwrap()
    }

    fn auth(users: &[(&str, &str)]) -> AuthConfig {
        AuthConfig {
            users: users
                .iter()
                .map(|(n, p)| UserEntry {
                    name: n.to_string(),
                    password: p.to_string(),
                })
                .collect(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn url_password_is_used_for_the_url_user_only() {
        let t = target("postgres://alice:fromurl@localhost/app");
        let a = auth(&[("bob", "bobpw")]);
        assert_eq!(
            upstream_password(&t, &a, "alice").as_deref(),
            Some("fromurl")
        );
        assert_eq!(upstream_password(&t, &a, "bob").as_deref(), Some("bobpw"));
        assert_eq!(upstream_password(&t, &a, "carol"), None);
    }

    #[test]
    fn url_without_user_lends_its_password_to_everyone() {
        let t = target("postgres://:shared@localhost/app");
        assert_eq!(
            upstream_password(&t, &auth(&[]), "anyone").as_deref(),
            Some("shared")
        );
    }

    #[test]
    fn stored_hashes_cannot_log_in() {
        let t = target("postgres://localhost/app");
        let a = auth(&[
            ("md5user", "md5d8578edf8458ce06fbc5bb76a58c5ca4"),
            ("scramuser", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy"),
            ("plain", "md5 is not a hash"),
        ]);
        assert_eq!(upstream_password(&t, &a, "md5user"), None);
        assert_eq!(upstream_password(&t, &a, "scramuser"), None);
        assert_eq!(
            upstream_password(&t, &a, "plain").as_deref(),
            Some("md5 is not a hash")
        );
    }
}
