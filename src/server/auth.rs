//! Upstream authentication: trust, cleartext, md5 and SCRAM-SHA-256 (postgres-protocol).
//!
//! SCRAM runs without channel binding (`n,,`), also over TLS: computing `tls-server-end-point`
//! needs the hash of the server certificate's signature algorithm, which is not wired up yet.
//! The password is only ever passed to postgres-protocol; it is never logged.

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;

use super::io::MAX_LOGIN_FRAME;
use super::{ServerError, ServerIo};
use crate::wire::backend::tag;
use crate::wire::frame::split_cstr;

// Authentication request codes (the first Int32 of an 'R' message).
const AUTH_OK: i32 = 0;
const AUTH_CLEARTEXT: i32 = 3;
const AUTH_MD5: i32 = 5;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;

/// Answer the server's authentication requests until AuthenticationOk.
pub(super) async fn authenticate(io: &mut ServerIo, user: &str, password: Option<&str>) -> Result<(), ServerError> {
    let mut scram: Option<ScramSha256> = None;
    loop {
        let frame = io.read_frame(MAX_LOGIN_FRAME).await?;
        match frame.tag() {
            tag::AUTHENTICATION => {}
            tag::ERROR_RESPONSE => return Err(ServerError::from_error_frame(frame)),
            tag::NOTICE_RESPONSE | tag::NEGOTIATE_PROTOCOL_VERSION => continue,
            other => {
                return Err(ServerError::Protocol(format!(
                    "unexpected message '{}' during authentication",
                    char::from(other)
                )));
            }
        }
        let body = frame.body();
        let code = body
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| ServerError::Protocol("short authentication request".into()))?;
        let data = &body[4..];
        let need_password = || password.ok_or_else(|| ServerError::NoPassword { user: user.to_string() });
        let mut out = BytesMut::new();
        match code {
            AUTH_OK => return Ok(()),
            AUTH_CLEARTEXT => frontend::password_message(need_password()?.as_bytes(), &mut out)?,
            AUTH_MD5 => {
                let salt: [u8; 4] = data
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| ServerError::Protocol("md5 request without salt".into()))?;
                let hash = md5_hash(user.as_bytes(), need_password()?.as_bytes(), salt);
                frontend::password_message(hash.as_bytes(), &mut out)?;
            }
            AUTH_SASL => {
                if !sasl_mechanisms(data).any(|m| m == SCRAM_SHA_256.as_bytes()) {
                    return Err(ServerError::UnsupportedAuth("SASL without SCRAM-SHA-256".into()));
                }
                let s = ScramSha256::new(need_password()?.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)?;
                scram = Some(s);
            }
            AUTH_SASL_CONTINUE => {
                let s = scram.as_mut().ok_or_else(|| ServerError::Protocol("SASLContinue before SASL".into()))?;
                s.update(data).map_err(ServerError::Scram)?;
                frontend::sasl_response(s.message(), &mut out)?;
            }
            AUTH_SASL_FINAL => {
                let s = scram.as_mut().ok_or_else(|| ServerError::Protocol("SASLFinal before SASL".into()))?;
                s.finish(data).map_err(ServerError::Scram)?;
                continue;
            }
            other => return Err(ServerError::UnsupportedAuth(auth_name(other).into())),
        }
        io.write_all(&out).await?;
    }
}

/// The NUL-terminated mechanism names of an AuthenticationSASL request.
fn sasl_mechanisms(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (name, rest) = split_cstr(data)?;
        data = rest;
        (!name.is_empty()).then_some(name)
    })
}

fn auth_name(code: i32) -> &'static str {
    match code {
        2 => "Kerberos V5",
        6 => "SCM credentials",
        7 | 8 => "GSSAPI",
        9 => "SSPI",
        _ => "unknown request code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn sasl_mechanism_list_is_split() {
        let names: Vec<_> = sasl_mechanisms(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0").collect();
        assert_eq!(names, vec![&b"SCRAM-SHA-256-PLUS"[..], &b"SCRAM-SHA-256"[..]]);
    }

    #[tokio::test]
    async fn password_request_without_a_password_is_refused_by_name() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (r, w) = tokio::io::split(ours);
        let mut io = ServerIo::boxed(Box::new(r), Box::new(w));
        theirs.write_all(b"R\0\0\0\x08\0\0\0\x03").await.unwrap();
        let err = authenticate(&mut io, "alice", None).await.unwrap_err();
        assert!(matches!(&err, ServerError::NoPassword { user } if user == "alice"), "{err}");
    }
}
