//! TLS towards clients: the rustls server configuration and the `tls.mode` rules.
//!
//! | `tls.mode` | SSLRequest    | plaintext StartupMessage     | direct TLS (PG 17 `sslnegotiation=direct`) |
//! |------------|---------------|------------------------------|--------------------------------------------|
//! | `disable`  | answered `N`  | accepted                     | refused                                    |
//! | `allow`    | answered `S`  | accepted                     | accepted, ALPN `postgresql` required        |
//! | `require`  | answered `S`  | FATAL 28000 `SSL required`   | accepted, ALPN `postgresql` required        |
//!
//! The caller reads the first packet; [`ClientTls`] says what to answer and runs the handshake.
//! Bytes the client pipelined after an SSLRequest (before the handshake) are refused, as
//! Postgres does since CVE-2021-23214: they would be read as if they had come over TLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{ClientTlsMode, TlsConfig};

#[cfg(test)]
mod tests;

/// ALPN protocol name PostgreSQL 17+ clients send (and require for direct TLS).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// First byte of a TLS handshake record: a client starting TLS without an SSLRequest.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("could not read TLS certificate chain {path}: {source}")]
    Cert { path: String, source: rustls_pki_types::pem::Error },
    #[error("could not read TLS private key {path}: {source}")]
    Key { path: String, source: rustls_pki_types::pem::Error },
    #[error("TLS certificate or key rejected: {0}")]
    Config(#[from] rustls::Error),
    #[error("tls.mode is {0:?} but tls.cert and tls.key are not both set")]
    MissingCertOrKey(ClientTlsMode),
    /// `tls.mode: require` and the client sent a plaintext StartupMessage.
    #[error("SSL required")]
    Required,
    /// Direct TLS while `tls.mode: disable`.
    #[error("TLS is not enabled on this server")]
    NotEnabled,
    #[error("received unencrypted data after SSL request")]
    PipelinedData,
    #[error("received direct SSL connection request without ALPN protocol negotiation extension")]
    NoAlpn,
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}

impl TlsError {
    /// SQLSTATE for a FATAL ErrorResponse, where one can still be sent in plaintext.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            TlsError::Required => "28000",
            TlsError::PipelinedData | TlsError::NoAlpn | TlsError::NotEnabled => "08P01",
            _ => "08006",
        }
    }
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1), with the ring provider and ALPN `postgresql` advertised.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_err = |source| TlsError::Cert { path: cert.display().to_string(), source };
    let chain =
        CertificateDer::pem_file_iter(cert).map_err(cert_err)?.collect::<Result<Vec<_>, _>>().map_err(cert_err)?;
    if chain.is_empty() {
        return Err(cert_err(rustls_pki_types::pem::Error::NoItemsFound));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|source| TlsError::Key { path: key.display().to_string(), source })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// How TLS began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// The client sent an SSLRequest and we answered `S`.
    SslRequest,
    /// The client's first bytes were a TLS ClientHello (see [`is_direct_tls`]).
    Direct,
}

/// Does the connection start with a TLS handshake record instead of a startup packet?
/// (A startup packet's first byte is the high byte of its length, always 0.)
pub fn is_direct_tls(first_bytes: &[u8]) -> bool {
    first_bytes.first() == Some(&TLS_HANDSHAKE_RECORD)
}

/// The `tls` section, ready to use: the mode and, unless disabled, the acceptor.
#[derive(Clone)]
pub struct ClientTls {
    mode: ClientTlsMode,
    acceptor: Option<TlsAcceptor>,
}

impl ClientTls {
    /// Load `tls.cert` / `tls.key` when the mode needs them.
    pub fn from_config(cfg: &TlsConfig) -> Result<ClientTls, TlsError> {
        let config = match (cfg.mode, &cfg.cert, &cfg.key) {
            (ClientTlsMode::Disable, _, _) => None,
            (_, Some(cert), Some(key)) => Some(server_config(cert, key)?),
            (mode, _, _) => return Err(TlsError::MissingCertOrKey(mode)),
        };
        ClientTls::new(cfg.mode, config)
    }

    /// From an already-built configuration (`None` only with `ClientTlsMode::Disable`).
    pub fn new(mode: ClientTlsMode, config: Option<Arc<ServerConfig>>) -> Result<ClientTls, TlsError> {
        match (mode, config) {
            (ClientTlsMode::Disable, _) => Ok(ClientTls { mode, acceptor: None }),
            (_, Some(config)) => Ok(ClientTls { mode, acceptor: Some(TlsAcceptor::from(config)) }),
            (mode, None) => Err(TlsError::MissingCertOrKey(mode)),
        }
    }

    pub fn mode(&self) -> ClientTlsMode {
        self.mode
    }

    /// The one-byte answer to an SSLRequest: `S` when TLS is on, else `N`.
    pub fn ssl_response(&self) -> u8 {
        if self.acceptor.is_some() { b'S' } else { b'N' }
    }

    /// Called when a StartupMessage arrives over plaintext: `Err(Required)` under
    /// `tls.mode: require` (send FATAL 28000 "SSL required" and close).
    pub fn check_plaintext_startup(&self) -> Result<(), TlsError> {
        match self.mode {
            ClientTlsMode::Require => Err(TlsError::Required),
            ClientTlsMode::Allow | ClientTlsMode::Disable => Ok(()),
        }
    }

    /// Run the server handshake. `already_read` is what the caller has read from `stream` and
    /// not consumed: after an SSLRequest it must be empty (else [`TlsError::PipelinedData`]);
    /// for direct TLS it is the start of the ClientHello and is replayed into the handshake.
    /// Direct TLS requires the client to have negotiated ALPN `postgresql`, as Postgres does.
    pub async fn accept<S>(
        &self,
        stream: S,
        already_read: BytesMut,
        how: Negotiation,
    ) -> Result<TlsStream<Prefixed<S>>, TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self.acceptor.as_ref().ok_or(TlsError::NotEnabled)?;
        if how == Negotiation::SslRequest && !already_read.is_empty() {
            return Err(TlsError::PipelinedData);
        }
        let tls = acceptor.accept(Prefixed::new(stream, already_read.freeze())).await.map_err(TlsError::Handshake)?;
        if how == Negotiation::Direct && tls.get_ref().1.alpn_protocol() != Some(ALPN_POSTGRESQL) {
            return Err(TlsError::NoAlpn);
        }
        Ok(tls)
    }
}

/// A stream that first yields bytes already read from it, then reads on: lets the TLS
/// handshake see a ClientHello whose first bytes the caller consumed while sniffing.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(inner: S, prefix: Bytes) -> Prefixed<S> {
        Prefixed { prefix, inner }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
