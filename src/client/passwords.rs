//! Stored-password formats: what `auth.users[].password` or an `auth_query` row may hold, parsed
//! the way PostgreSQL classifies `pg_authid.rolpassword` (`get_password_type`):
//!
//! - `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 fields) — a verifier;
//! - `md5` followed by 32 lowercase hex digits — `md5(password || user)`;
//! - anything else — the password in plain text.
//!
//! Also the md5 challenge computation both sides of the md5 exchange agree on. Nothing here is
//! ever formatted with the secret in it: the `Debug` impls redact.
//!
//! The primitives are the maintained crates (`md-5`, `base64`), not hand-written code: MD5 is
//! only here because Postgres' legacy md5 exchange needs it.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use md5::{Digest as _, Md5};

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
        let salt = decode_base64(salt).filter(|s| !s.is_empty())?;
        let stored_key = decode_base64(stored_key)?.try_into().ok()?;
        let server_key = decode_base64(server_key)?.try_into().ok()?;
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

/// Standard base64 with required padding, as in a Postgres SCRAM verifier. Non-zero bits after
/// the last byte are ignored rather than refused, because Postgres' own decoder
/// (`pg_b64_decode`) ignores them: a verifier Postgres accepts must not become a plain-text
/// password here.
const VERIFIER_BASE64: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));

/// Decode one base64 field of a verifier; `None` when it is not padded standard base64 (wrong
/// length, bad characters, misplaced padding), so the string is classified as plain text.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    VERIFIER_BASE64.decode(s).ok()
}

/// `md5` followed by exactly 32 lowercase hex digits (Postgres' `MD5_PASSWD_LEN` check).
fn is_md5_hash(s: &str) -> bool {
    s.len() == 35 && s.starts_with("md5") && s.as_bytes()[3..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the client must send in answer to an md5 challenge with `salt`, given the stored
/// `md5…` hash: `"md5" + hex(md5(hex_part + salt))`.
pub fn md5_response(stored_md5: &str, salt: [u8; 4]) -> String {
    let hex = stored_md5.strip_prefix("md5").unwrap_or(stored_md5);
    let digest = Md5::new().chain_update(hex.as_bytes()).chain_update(salt).finalize();
    let mut out = String::with_capacity(3 + 2 * digest.len());
    out.push_str("md5");
    for b in digest {
        let _ = write!(out, "{b:02x}"); // writing to a String cannot fail
    }
    out
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
    fn md5_values_are_pinned() {
        // printf 'secretalice' | md5sum; then printf '<that hex>\x01\x02\x03\x04' | md5sum
        let stored = StoredPassword::Plain("secret".into()).md5_hash("alice").unwrap();
        assert_eq!(stored, "md54a0a68b43b6cd5cf266fa02f196e2371");
        assert_eq!(md5_response(&stored, [1, 2, 3, 4]), "md598a0412b9c31436fc53776e863350083");
    }

    #[test]
    fn base64_rfc_4648_vectors_decode() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode_base64(enc).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
    }

    #[test]
    fn base64_round_trips_and_ignores_trailing_bits_like_postgres() {
        let bytes: Vec<u8> = (0..=255).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(decode_base64(&encoded), Some(bytes));
        assert_eq!(decode_base64("Zh==").as_deref(), Some(&b"f"[..]), "non-zero trailing bits");
    }

    #[test]
    fn base64_malformed_input_is_refused() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm9", "Zg", "Zm9v YmFy", "===="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
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
