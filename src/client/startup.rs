//! The startup handshake, one loop over one `match`: SSLRequest / GSSENCRequest negotiation,
//! CancelRequest, and the StartupMessage. Generic over the stream so tests can drive it without
//! a socket.

use super::tls::{ClientTls, Negotiation, TlsError, is_direct_tls};
use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::wire::build::{self, Severity};
use crate::wire::frame::{self, CANCEL_REQUEST_CODE, FrameError, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};

/// A client byte stream, plain or TLS, behind one type.
pub trait ClientStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ClientStream for T {}

pub type BoxStream = Box<dyn ClientStream>;

/// What the handshake ended with.
pub enum Handshake {
    /// A client that wants a session.
    Startup(Startup),
    /// A CancelRequest for the client holding this key (the connection is then closed).
    Cancel { pid: i32, secret: i32 },
}

/// A client past the StartupMessage, not yet authenticated.
pub struct Startup {
    pub stream: BoxStream,
    /// Bytes already read after the StartupMessage.
    pub rbuf: BytesMut,
    /// Startup parameters in the order sent (`user`, `database`, `application_name`, …).
    pub params: Vec<(String, String)>,
    pub tls: bool,
}

impl Startup {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Error)]
pub enum StartupError {
    #[error("client I/O during startup: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("client closed the connection during startup")]
    Closed,
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0")]
    UnsupportedProtocol { major: u16, minor: u16 },
    #[error("received unencrypted data after SSL request")]
    DataAfterSslRequest,
    #[error("invalid startup packet layout")]
    Malformed,
    #[error("{0}")]
    Tls(#[from] TlsError),
}

impl StartupError {
    /// SQLSTATE for the FATAL sent to the client (if the connection is still usable for one).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StartupError::UnsupportedProtocol { .. } => "0A000",
            StartupError::Tls(e) => e.sqlstate(),
            _ => "08P01",
        }
    }
}

/// Run the handshake on a new connection: TLS (after an SSLRequest, or direct TLS as PG17
/// clients may do), then a StartupMessage or a CancelRequest.
pub async fn handshake<S>(stream: S, tls: &ClientTls) -> Result<Handshake, StartupError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut stream: BoxStream = Box::new(stream);
    let mut rbuf = BytesMut::with_capacity(1024);
    if stream.read_buf(&mut rbuf).await? == 0 {
        return Err(StartupError::Closed);
    }
    let mut is_tls = false;
    if is_direct_tls(&rbuf) && tls.ssl_response() == b'S' {
        let already = rbuf.split();
        stream = Box::new(tls.accept(stream, already, Negotiation::Direct).await?);
        is_tls = true;
    }
    loop {
        let packet = read_startup_packet(&mut stream, &mut rbuf).await?;
        match packet.code {
            SSL_REQUEST_CODE if !is_tls => {
                // Bytes pipelined after the SSLRequest would be read as plaintext later
                // (CVE-2021-23214): refuse them.
                if !rbuf.is_empty() {
                    return Err(StartupError::DataAfterSslRequest);
                }
                let answer = tls.ssl_response();
                stream.write_all(&[answer]).await?;
                if answer == b'S' {
                    stream = Box::new(tls.accept(stream, rbuf.split(), Negotiation::SslRequest).await?);
                    is_tls = true;
                }
            }
            GSSENC_REQUEST_CODE if !is_tls => {
                if !rbuf.is_empty() {
                    return Err(StartupError::DataAfterSslRequest);
                }
                stream.write_all(b"N").await?;
            }
            CANCEL_REQUEST_CODE => {
                let mut body = packet.body;
                if body.len() != 8 {
                    return Err(StartupError::Malformed);
                }
                return Ok(Handshake::Cancel { pid: body.get_i32(), secret: body.get_i32() });
            }
            code if code >> 16 == 3 => {
                // 3.x minor versions are served as 3.0 (no NegotiateProtocolVersion needed for
                // clients that send no _pq_ options).
                if !is_tls && let Err(e) = tls.check_plaintext_startup() {
                    return Err(say_fatal(&mut stream, e.into()).await);
                }
                let params = frame::startup_params(&packet.body).ok_or(StartupError::Malformed)?;
                return Ok(Handshake::Startup(Startup { stream, rbuf, params, tls: is_tls }));
            }
            code => {
                let e = StartupError::UnsupportedProtocol { major: (code >> 16) as u16, minor: code as u16 };
                return Err(say_fatal(&mut stream, e).await);
            }
        }
    }
}

/// Tell the client why its startup is refused, as Postgres does (a FATAL ErrorResponse, then
/// the close), and hand the error back. A client that cannot be written to learns it from the
/// close.
async fn say_fatal(stream: &mut BoxStream, e: StartupError) -> StartupError {
    let mut out = BytesMut::new();
    build::error_response(&mut out, Severity::Fatal, e.sqlstate(), &e.to_string());
    if stream.write_all(&out).await.is_ok() {
        let _ = stream.flush().await;
    }
    e
}

async fn read_startup_packet(
    stream: &mut BoxStream,
    rbuf: &mut BytesMut,
) -> Result<frame::StartupPacket, StartupError> {
    loop {
        if let Some(packet) = frame::take_startup(rbuf)? {
            return Ok(packet);
        }
        if stream.read_buf(rbuf).await? == 0 {
            return Err(StartupError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::PROTOCOL_V3;

    fn packet(code: u32, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn no_tls() -> ClientTls {
        ClientTls::new(crate::config::ClientTlsMode::Disable, None).unwrap()
    }

    #[tokio::test]
    async fn ssl_request_without_tls_is_answered_n_then_startup_proceeds() {
        let (mut client, server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move { handshake(server, &no_tls()).await });
        client.write_all(&packet(SSL_REQUEST_CODE, b"")).await.unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        client.write_all(&packet(PROTOCOL_V3, b"user\0bob\0\0")).await.unwrap();
        let Handshake::Startup(s) = task.await.unwrap().unwrap() else { panic!("expected startup") };
        assert_eq!(s.param("user"), Some("bob"));
        assert!(!s.tls);
    }

    #[tokio::test]
    async fn bytes_pipelined_after_ssl_request_are_refused() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut both = packet(SSL_REQUEST_CODE, b"");
        both.extend(packet(PROTOCOL_V3, b"user\0bob\0\0"));
        client.write_all(&both).await.unwrap();
        let r = handshake(server, &no_tls()).await;
        assert!(matches!(r, Err(StartupError::DataAfterSslRequest)));
    }

    #[tokio::test]
    async fn cancel_request_carries_the_key() {
        let (mut client, server) = tokio::io::duplex(4096);
        client.write_all(&packet(CANCEL_REQUEST_CODE, &[0, 0, 0, 42, 0, 0, 0, 7])).await.unwrap();
        let Handshake::Cancel { pid, secret } = handshake(server, &no_tls()).await.unwrap() else { panic!() };
        assert_eq!((pid, secret), (42, 7));
    }

    #[tokio::test]
    async fn gssenc_is_declined_and_oversized_startup_refused() {
        let (mut client, server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move { handshake(server, &no_tls()).await });
        client.write_all(&packet(GSSENC_REQUEST_CODE, b"")).await.unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        client.write_all(&20_000u32.to_be_bytes()).await.unwrap();
        assert!(matches!(task.await.unwrap(), Err(StartupError::Frame(FrameError::BadStartupLength(20_000)))));
    }

    #[tokio::test]
    async fn protocol_2_is_refused() {
        let (mut client, server) = tokio::io::duplex(4096);
        client.write_all(&packet(2 << 16, b"user\0x\0\0")).await.unwrap();
        let err = handshake(server, &no_tls()).await.err().unwrap();
        assert_eq!(err.sqlstate(), "0A000");
        // The client is told, as Postgres tells it: a FATAL ErrorResponse with the SQLSTATE.
        let mut said = Vec::new();
        client.read_to_end(&mut said).await.unwrap();
        assert_eq!(said.first(), Some(&b'E'), "{said:?}");
        let text = String::from_utf8_lossy(&said);
        assert!(
            text.contains("SFATAL") && text.contains("C0A000") && text.contains("unsupported frontend protocol 2.0"),
            "{text}"
        );
    }
}
