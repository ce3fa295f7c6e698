//! [`ServerIo`]: the two halves of an upstream stream plus the bytes read but not yet consumed.
//!
//! Frames are read with a size cap checked before allocating ([`MAX_SERVER_FRAME`], 1 GiB like
//! PostgreSQL's own limit on a field). [`ServerIo::drain_available`] reads whatever the server
//! sent without waiting, so the pool can tell an idle connection from one the server already
//! gave up on.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{tcp, unix};

use super::ServerError;
use crate::wire::{Frame, frame::take_frame};

/// Largest server frame accepted on the data path.
pub const MAX_SERVER_FRAME: usize = 1 << 30;
/// Largest frame accepted during login (authentication requests, ParameterStatus, errors).
pub const MAX_LOGIN_FRAME: usize = 1 << 20;

/// How much to read at once.
const READ_CHUNK: usize = 8 * 1024;

/// The byte streams of one server connection, taken out while a session leases it.
pub struct ServerIo {
    pub reader: ServerReader,
    pub writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// Bytes read from the server but not yet consumed as frames.
    pub rbuf: BytesMut,
}

/// The read half of a server connection. Plain sockets are kept as their own types so that the
/// check at every checkout ([`ServerIo::drain_available`]) is a readiness test, not a poll.
pub enum ServerReader {
    Tcp(tcp::OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
    /// TLS, or an in-memory stream in tests.
    Other(Box<dyn AsyncRead + Send + Unpin>),
}

impl AsyncRead for ServerReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerReader::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ServerReader::Unix(r) => Pin::new(r).poll_read(cx, buf),
            ServerReader::Other(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl ServerIo {
    pub fn new(reader: ServerReader, writer: Box<dyn AsyncWrite + Send + Unpin>) -> ServerIo {
        ServerIo { reader, writer, rbuf: BytesMut::with_capacity(READ_CHUNK) }
    }

    /// Over any pair of streams (TLS, tests).
    pub fn boxed(reader: Box<dyn AsyncRead + Send + Unpin>, writer: Box<dyn AsyncWrite + Send + Unpin>) -> ServerIo {
        ServerIo::new(ServerReader::Other(reader), writer)
    }

    /// Read the next whole frame (at most `max` bytes long). EOF is [`ServerError::Closed`].
    pub async fn read_frame(&mut self, max: usize) -> Result<Frame, ServerError> {
        loop {
            if let Some(frame) = take_frame(&mut self.rbuf, max)? {
                return Ok(frame);
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            if self.reader.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ServerError::Closed);
            }
        }
    }

    /// Write and flush.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ServerError> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Append to `rbuf` whatever the server has already sent, without waiting. Returns the number
    /// of bytes read; EOF is [`ServerError::Closed`].
    pub fn drain_available(&mut self) -> Result<usize, ServerError> {
        // A readiness test first: no syscall, no poll machinery when nothing came.
        match &self.reader {
            ServerReader::Tcp(tcp) => return drain_ready(&mut self.rbuf, |b| tcp.try_read_buf(b)),
            ServerReader::Unix(unix) => return drain_ready(&mut self.rbuf, |b| unix.try_read_buf(b)),
            ServerReader::Other(_) => {}
        }
        let mut cx = Context::from_waker(Waker::noop());
        // Uninitialized: this runs at every checkout, and usually reads nothing.
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut total = 0;
        loop {
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.reader).poll_read(&mut cx, &mut buf) {
                Poll::Pending => return Ok(total),
                Poll::Ready(Err(e)) => return Err(ServerError::Io(e)),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Err(ServerError::Closed),
                Poll::Ready(Ok(())) => {
                    total += buf.filled().len();
                    self.rbuf.extend_from_slice(buf.filled());
                    if self.rbuf.len() > MAX_LOGIN_FRAME {
                        return Err(ServerError::Protocol("server sent too much while idle".into()));
                    }
                }
            }
        }
    }

    /// Best-effort, non-blocking write of `bytes` (used from `Drop`, where nothing can be awaited).
    pub(crate) fn try_write_now(&mut self, bytes: &[u8]) {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(&mut self.writer).poll_write(&mut cx, bytes);
        let _ = Pin::new(&mut self.writer).poll_flush(&mut cx);
    }
}

/// [`ServerIo::drain_available`] over a socket's `try_read_buf`.
fn drain_ready(
    rbuf: &mut BytesMut,
    mut try_read_buf: impl FnMut(&mut BytesMut) -> std::io::Result<usize>,
) -> Result<usize, ServerError> {
    let mut total = 0;
    loop {
        match try_read_buf(rbuf) {
            Ok(0) => return Err(ServerError::Closed),
            Ok(n) => {
                total += n;
                if rbuf.len() > MAX_LOGIN_FRAME {
                    return Err(ServerError::Protocol("server sent too much while idle".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(ServerError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (ServerIo, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (r, w) = tokio::io::split(ours);
        (ServerIo::boxed(Box::new(r), Box::new(w)), theirs)
    }

    #[tokio::test]
    async fn frames_split_across_reads_are_reassembled() {
        let (mut io, mut server) = pair();
        let writer = tokio::spawn(async move {
            server.write_all(b"Z\0\0").await.unwrap();
            tokio::task::yield_now().await;
            server.write_all(b"\0\x05I").await.unwrap();
            server
        });
        let f = io.read_frame(MAX_SERVER_FRAME).await.unwrap();
        assert_eq!((f.tag(), f.body()), (b'Z', &b"I"[..]));
        drop(writer.await.unwrap());
        assert!(matches!(io.read_frame(MAX_SERVER_FRAME).await, Err(ServerError::Closed)));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused() {
        let (mut io, mut server) = pair();
        server.write_all(b"D\x7f\xff\xff\xff").await.unwrap();
        assert!(matches!(io.read_frame(MAX_LOGIN_FRAME).await, Err(ServerError::Frame(_))));
    }

    #[tokio::test]
    async fn drain_sees_nothing_then_data_then_eof() {
        let (mut io, mut server) = pair();
        assert_eq!(io.drain_available().unwrap(), 0);
        server.write_all(b"N\0\0\0\x04").await.unwrap();
        assert_eq!(io.drain_available().unwrap(), 5);
        assert_eq!(&io.rbuf[..], b"N\0\0\0\x04");
        drop(server);
        assert!(matches!(io.drain_available(), Err(ServerError::Closed)));
    }
}
