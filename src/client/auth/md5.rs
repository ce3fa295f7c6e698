//! The md5 exchange: `AuthenticationMD5Password` with a random 4-byte salt, then one
//! `PasswordMessage` holding `"md5" + hex(md5(hex(md5(password + user)) + salt))`.

use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{AuthConn, AuthError, FailReason, StoredPassword};
use crate::client::passwords::md5_response;
use crate::wire::frame::split_cstr;
use pgwire::messages::startup::Authentication;

/// Run the md5 exchange against `stored` (`None`: unknown user, which still gets a challenge so
/// the client cannot tell it from a wrong password).
pub(super) async fn exchange<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut AuthConn<'_, S>,
    user: &str,
    stored: Option<StoredPassword>,
) -> Result<(), AuthError> {
    let salt = rand::random::<[u8; 4]>();
    conn.send(Authentication::MD5Password(salt.to_vec())).await?;
    let frame = conn.read_password_message().await?;
    let answer = match split_cstr(frame.body()) {
        Some((answer, [])) => answer,
        _ => {
            return Err(AuthError::Protocol("invalid password packet size".to_owned()));
        }
    };
    let Some(stored_hash) = stored.as_ref().and_then(|s| s.md5_hash(user)) else {
        return Err(AuthError::failed(user, FailReason::UnknownUser));
    };
    // Constant time over the bytes, so the answer's timing does not reveal how much of it matched.
    if bool::from(md5_response(&stored_hash, salt).as_bytes().ct_eq(answer)) {
        Ok(())
    } else {
        Err(AuthError::failed(user, FailReason::WrongPassword))
    }
}
