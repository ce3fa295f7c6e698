//! The session loop's reads and writes: each future is cancel-safe (bytes leave a buffer only
//! when written), so the loop can select over all of them and drop the ones that lost.

use bytes::{Buf, BytesMut};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) async fn read_opt(
    reader: Option<&mut crate::server::ServerReader>,
    buf: Option<&mut BytesMut>,
) -> std::io::Result<usize> {
    match (reader, buf) {
        (Some(r), Some(b)) => r.read_buf(b).await,
        _ => std::future::pending().await,
    }
}

pub(super) async fn write_opt(
    writer: Option<&mut Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    match writer {
        Some(w) => write_all_buf(w, buf).await,
        None => std::future::pending().await,
    }
}

/// Write as much of `buf` as the peer takes now, then flush once it is all written.
/// Cancel-safe: bytes leave `buf` only when written.
pub(super) async fn write_all_buf<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    while buf.has_remaining() {
        let n = w.write_buf(buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
    }
    w.flush().await
}

/// Write as much of `buf` as `w` takes without waiting, then flush if all was written. Returns
/// whether everything was written and flushed. Polls with a no-op waker: the caller must poll
/// the write again (with a real waker) before it sleeps if this returns `false`.
pub(super) fn write_without_waiting<W: tokio::io::AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    buf: &mut BytesMut,
) -> std::io::Result<bool> {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    while buf.has_remaining() {
        match Pin::new(&mut *w).poll_write(&mut cx, buf.chunk()) {
            Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => buf.advance(n),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        }
    }
    match Pin::new(w).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(false),
    }
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
