//! CancelRequest: a fresh connection to the server that runs the query, one packet, close.
//!
//! It goes to `addr` (the address the target connection actually uses, not a new DNS answer,
//! or the Unix socket) and through TLS whenever the target would use TLS.

use std::time::Duration;

use bytes::BytesMut;

use super::connect::open_to;
use super::{ServerAddr, UpstreamTarget};
use crate::wire::build;

/// How long to wait for the server to close the cancel connection (it does once it has
/// signalled the backend, so waiting makes the cancel effective before we return).
const CANCEL_LINGER: Duration = Duration::from_secs(5);

/// Ask the server at `addr` to cancel what backend `pid` is running.
pub async fn send_cancel(target: &UpstreamTarget, addr: ServerAddr, pid: i32, secret: i32) -> std::io::Result<()> {
    send_cancel_if(target, addr, pid, secret, || true).await.map(drop)
}

/// [`send_cancel`], unless `still_wanted` says no once the connection to the server is made
/// (what was to be cancelled may be over by then). `Ok(false)`: not sent for that reason.
pub async fn send_cancel_if(
    target: &UpstreamTarget,
    addr: ServerAddr,
    pid: i32,
    secret: i32,
    still_wanted: impl FnOnce() -> bool,
) -> std::io::Result<bool> {
    let mut stream = open_to(target, addr).await.map_err(std::io::Error::other)?;
    if !still_wanted() {
        return Ok(false);
    }
    let mut packet = BytesMut::new();
    build::cancel_request(&mut packet, pid, secret);
    stream.write_all_flush(&packet).await?;
    let mut sink = [0u8; 64];
    let wait_for_close = async {
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    // The server closes without a word; a reset or a timeout changes nothing for the caller.
    let _ = tokio::time::timeout(CANCEL_LINGER, wait_for_close).await;
    Ok(true)
}
