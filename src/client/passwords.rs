//! Stored-password formats: what `auth.users[].password` or an `auth_query` row may hold, parsed
//! the way PostgreSQL classifies `pg_authid.rolpassword` (`get_password_type`):
//!
//! - `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 fields) — a verifier;
//! - `md5` followed by 32 lowercase hex digits — `md5(password || user)`;
//! - anything else — the password in plain text.
//!
//! Also the md5 challenge computation both sides of the md5 exchange agree on. Nothing here is
//! ever formatted with the secret in it: the `Debug` impls redact.

mod base64;
pub mod md5;

use std::fmt;

/// Iteration count used when pgcached derives a SCRAM verifier itself (Postgres' default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A user's password as stored in the configuration or returned by `auth_query`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredPassword {
    /// Plain text: usable for both md5 and SCRAM (a verifier is derived with a fresh salt).
    Plain(String),
    /// `"md5" + hex(md5(password + user))`: usable for md5 only.
    Md5(String),
    /// A SCRAM-SHA-256 verifier: usable for SCRAM only.
    Scram(ScramVerifier),
}

/// A parsed `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`: checks the client's proof.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server-final message.
    pub server_key: [u8; 32],
}

impl StoredPassword {
    /// Classify a stored password string. Never fails: a string that is not a well-formed
    /// verifier or md5 hash is a plain-text password, exactly as in Postgres.
    pub fn parse(s: &str) -> StoredPassword {
        if let Some(verifier) = ScramVerifier::parse(s) {
            return StoredPassword::Scram(verifier);
        }
        if is_md5_hash(s) {
            return StoredPassword::Md5(s.to_owned());
        }
        StoredPassword::Plain(s.to_owned())
    }

    /// The stored md5 hash (`md5…`) for `user`, if this password can answer an md5 challenge.
    pub fn md5_hash(&self, user: &str) -> Option<String> {
        match self {
            StoredPassword::Plain(p) => Some(postgres_protocol::password::md5(p.as_bytes(), user)),
            StoredPassword::Md5(h) => Some(h.clone()),
            StoredPassword::Scram(_) => None,
        }
    }
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredPassword::Plain(_) => f.write_str("Plain(<redacted>)"),
            StoredPassword::Md5(_) => f.write_str("Md5(<redacted>)"),
            StoredPassword::Scram(v) => f.debug_tuple("Scram").field(v).finish(),
        }
    }
}

impl ScramVerifier {
    /// Parse a Postgres SCRAM-SHA-256 verifier; `None` if `s` is not one.
    pub fn parse(s: &str) -> Option<ScramVerifier> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iter_salt.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|&i| i > 0)?;
        let salt = base64::decode(salt).filter(|s| !s.is_empty())?;
        let stored_key = base64::decode(stored_key)?.try_into().ok()?;
        let server_key = base64::decode(server_key)?.try_into().ok()?;
        Some(ScramVerifier { iterations, salt, stored_key, server_key })
    }

    /// Derive a verifier from a plain-text password (SASLprep-normalised) and a salt, as
    /// Postgres does when it stores a password. Uses pgwire's PBKDF2 + HMAC helpers.
    pub fn derive(password: &str, salt: Vec<u8>, iterations: u32) -> ScramVerifier {
        use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};
        let salted = gen_salted_password(password, &salt, iterations as usize);
        match ScramSecret::verifier_from_salted_password(salt, salted, iterations as usize) {
            ScramSecret::Verifier { salt, iterations, stored_key, server_key } => ScramVerifier {
                iterations: iterations as u32,
                salt,
                stored_key: stored_key.try_into().expect("SHA-256 output is 32 bytes"),
                server_key: server_key.try_into().expect("HMAC-SHA-256 output is 32 bytes"),
            },
            ScramSecret::SaltedPassword { .. } => {
                unreachable!("verifier_from_salted_password returns a verifier")
            }
        }
    }

    /// The same verifier in pgwire's representation, for its SCRAM state machine.
    pub(crate) fn to_pgwire(&self) -> pgwire::api::auth::sasl::scram::ScramSecret {
        pgwire::api::auth::sasl::scram::ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations as usize,
            stored_key: self.stored_key.to_vec(),
            server_key: self.server_key.to_vec(),
        }
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// `md5` followed by exactly 32 lowercase hex digits (Postgres' `MD5_PASSWD_LEN` check).
fn is_md5_hash(s: &str) -> bool {
    s.len() == 35 && s.starts_with("md5") && s.as_bytes()[3..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the client must send in answer to an md5 challenge with `salt`, given the stored
/// `md5…` hash: `"md5" + hex(md5(hex_part + salt))`.
pub fn md5_response(stored_md5: &str, salt: [u8; 4]) -> String {
    let hex = stored_md5.strip_prefix("md5").unwrap_or(stored_md5);
    let mut input = Vec::with_capacity(hex.len() + 4);
    input.extend_from_slice(hex.as_bytes());
    input.extend_from_slice(&salt);
    format!("md5{}", md5::hex_digest(&input))
}

/// Compare two secrets-derived byte strings without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_scram_verifier_is_parsed() {
        let stored = postgres_protocol::password::scram_sha_256(b"s3cret");
        let StoredPassword::Scram(v) = StoredPassword::parse(&stored) else { panic!("not scram") };
        assert_eq!(v.iterations, 4096);
        assert_eq!(v.salt.len(), 16);
    }

    #[test]
    fn derived_verifier_matches_postgres_protocol_for_the_same_salt() {
        let stored = postgres_protocol::password::scram_sha_256(b"s3cret");
        let StoredPassword::Scram(v) = StoredPassword::parse(&stored) else { panic!("not scram") };
        assert_eq!(ScramVerifier::derive("s3cret", v.salt.clone(), v.iterations), v);
    }

    #[test]
    fn md5_hash_and_plain_text_are_classified() {
        let md5 = postgres_protocol::password::md5(b"pw", "alice");
        assert_eq!(StoredPassword::parse(&md5), StoredPassword::Md5(md5.clone()));
        assert_eq!(StoredPassword::parse("md5notahash"), StoredPassword::Plain("md5notahash".into()));
        assert_eq!(StoredPassword::parse("hunter2"), StoredPassword::Plain("hunter2".into()));
        let upper = md5.to_uppercase().replacen("MD5", "md5", 1);
        assert_eq!(StoredPassword::parse(&upper), StoredPassword::Plain(upper.clone()), "hex must be lowercase");
    }

    #[test]
    fn malformed_verifier_is_plain_text() {
        for s in ["SCRAM-SHA-256$4096:c2FsdA==$abc:def", "SCRAM-SHA-256$x:c2FsdA==$a:b", "SCRAM-SHA-256$"] {
            assert!(matches!(StoredPassword::parse(s), StoredPassword::Plain(_)), "{s}");
        }
    }

    #[test]
    fn md5_response_matches_postgres_protocol_client() {
        let salt = [1, 2, 3, 4];
        let stored = StoredPassword::Plain("pw".into()).md5_hash("alice").unwrap();
        assert_eq!(md5_response(&stored, salt), postgres_protocol::authentication::md5_hash(b"alice", b"pw", salt));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let dbg = format!(
            "{:?} {:?}",
            StoredPassword::parse("hunter2"),
            StoredPassword::parse(&postgres_protocol::password::md5(b"hunter2", "u"))
        );
        assert!(!dbg.contains("hunter2") && !dbg.contains("md5"), "{dbg}");
    }
}
