//! Opening a server connection, one step per function, in the order they happen:
//! TCP (or the Unix socket) → TLS negotiation → StartupMessage → authentication → parameters
//! and key → ready.

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tracing::debug;

use super::io::MAX_LOGIN_FRAME;
use super::{PreparedSet, ServerAddr, ServerConn, ServerError, ServerIo, ServerReader, UpstreamTarget, auth};
use crate::config::UpstreamTls;
use crate::wire::backend::{self, tag};

/// A connected upstream stream, before it is split into [`ServerIo`].
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    fn into_io(self) -> ServerIo {
        match self {
            // Owned halves: no lock between reader and writer on the hot path.
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                ServerIo::new(ServerReader::Tcp(r), Box::new(w))
            }
            Stream::Tls(tls) => {
                let (r, w) = tokio::io::split(*tls);
                ServerIo::boxed(Box::new(r), Box::new(w))
            }
            Stream::Unix(unix) => {
                let (r, w) = unix.into_split();
                ServerIo::new(ServerReader::Unix(r), Box::new(w))
            }
        }
    }

    pub(crate) async fn write_all_flush(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Unix(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Unix(s) => s.read(buf).await,
        }
    }
}

impl ServerConn {
    /// Connect and log in as `user` to `database`. Only `user` and `database` are sent in the
    /// StartupMessage; the session applies its client's parameters afterwards.
    pub async fn connect(
        target: &UpstreamTarget,
        user: &str,
        database: &str,
        password: Option<&str>,
    ) -> Result<ServerConn, ServerError> {
        let (stream, addr) = open(target).await?;
        let encrypted = matches!(stream, Stream::Tls(_));
        let mut io = stream.into_io();
        send_startup(&mut io, &[("user", user), ("database", database)]).await?;
        auth::authenticate(&mut io, user, password).await?;
        let (params, backend_key) = read_until_ready(&mut io).await?;
        let conn = ServerConn::new(io, params, backend_key, addr, user, database);
        debug!(server = conn.id, %addr, user, database, encrypted, pid = backend_key.0, "server connection ready");
        Ok(conn)
    }

    /// Open a logical replication connection (`replication=database`) as `user` to
    /// `database`: the same TCP, TLS and authentication steps as [`ServerConn::connect`], then
    /// the raw stream, ready for replication commands (see `crate::replication`).
    pub async fn connect_replication(
        target: &UpstreamTarget,
        user: &str,
        database: &str,
        password: Option<&str>,
        application_name: &str,
    ) -> Result<ServerIo, ServerError> {
        let mut io = open(target).await?.0.into_io();
        let params = [
            ("user", user),
            ("database", database),
            ("replication", "database"),
            ("application_name", application_name),
        ];
        send_startup(&mut io, &params).await?;
        auth::authenticate(&mut io, user, password).await?;
        read_until_ready(&mut io).await?;
        Ok(io)
    }

    fn new(
        io: ServerIo,
        params: HashMap<String, String>,
        backend_key: (i32, i32),
        addr: ServerAddr,
        user: &str,
        database: &str,
    ) -> ServerConn {
        let now = Instant::now();
        ServerConn {
            io: Some(io),
            params,
            backend_key,
            addr,
            created: now,
            defaults_epoch: 0,
            broken: false,
            said_fatal: false,
            id: super::next_id(),
            last_used: now,
            user: user.to_string(),
            database: database.to_string(),
            dirty: Default::default(),
            // Resized by the pool to `pool.max_prepared_statements`.
            prepared: PreparedSet::new(1),
            placeholders: Vec::new(),
            placeholders_defined: Vec::new(),
            settings_unknown: false,
            placeholders_unknown: false,
            unnamed_owner: 0,
        }
    }
}

/// A stream to the target, TLS negotiated per `upstream.tls`, and where it went: its Unix
/// socket, or the first TCP address that answers (Nagle off).
async fn open(target: &UpstreamTarget) -> Result<(Stream, ServerAddr), ServerError> {
    if let Some(path) = &target.socket {
        // Never TLS: Postgres takes none on its socket (the target is `disable` for one).
        return Ok((Stream::Unix(UnixStream::connect(path).await?), ServerAddr::Socket));
    }
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    tcp.set_nodelay(true)?;
    let addr = tcp.peer_addr()?;
    Ok((negotiate_tls(tcp, target).await?, ServerAddr::Tcp(addr)))
}

/// A stream to the server at `addr` (where a connection of the target went), TLS negotiated
/// as for that connection.
pub(crate) async fn open_to(target: &UpstreamTarget, addr: ServerAddr) -> Result<Stream, ServerError> {
    match (addr, &target.socket) {
        (ServerAddr::Tcp(addr), _) => {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            negotiate_tls(tcp, target).await
        }
        (ServerAddr::Socket, Some(path)) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        (ServerAddr::Socket, None) => Err(ServerError::Config("no Unix socket in upstream.url".into())),
    }
}

/// SSLRequest per `upstream.tls`: `disable` sends none; `prefer` falls back to plain on `N`;
/// `require` and `verify-full` fail on `N`.
async fn negotiate_tls(mut tcp: TcpStream, target: &UpstreamTarget) -> Result<Stream, ServerError> {
    let Some(config) = target.tls_config.clone() else {
        return Ok(Stream::Plain(tcp));
    };
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await?;
    // Exactly one byte: anything the server sent after it must come through TLS.
    match tcp.read_u8().await? {
        b'S' => {
            let connector = tokio_rustls::TlsConnector::from(config);
            let tls = connector.connect(target.server_name.clone(), tcp).await.map_err(ServerError::Tls)?;
            Ok(Stream::Tls(Box::new(tls)))
        }
        b'N' if target.tls_mode == UpstreamTls::Prefer => Ok(Stream::Plain(tcp)),
        b'N' => Err(ServerError::TlsRefused),
        other => Err(ServerError::Protocol(format!("unexpected answer {other:#04x} to SSLRequest"))),
    }
}

async fn send_startup(io: &mut ServerIo, params: &[(&str, &str)]) -> Result<(), ServerError> {
    let mut buf = BytesMut::new();
    frontend::startup_message(params.iter().copied(), &mut buf)?;
    io.write_all(&buf).await
}

/// After AuthenticationOk: collect ParameterStatus and BackendKeyData until ReadyForQuery.
async fn read_until_ready(io: &mut ServerIo) -> Result<(HashMap<String, String>, (i32, i32)), ServerError> {
    let mut params = HashMap::new();
    let mut key = None;
    loop {
        let frame = io.read_frame(MAX_LOGIN_FRAME).await?;
        match frame.tag() {
            tag::PARAMETER_STATUS => {
                let (name, value) = backend::parameter_status(frame.body())
                    .ok_or_else(|| ServerError::Protocol("malformed ParameterStatus".into()))?;
                params.insert(name.to_string(), value.to_string());
            }
            tag::BACKEND_KEY_DATA => {
                key = Some(
                    backend::backend_key(frame.body())
                        .ok_or_else(|| ServerError::Protocol("malformed BackendKeyData".into()))?,
                );
            }
            tag::NOTICE_RESPONSE => {}
            tag::ERROR_RESPONSE => return Err(ServerError::from_error_frame(frame)),
            tag::READY_FOR_QUERY => {
                return Ok((params, key.unwrap_or((0, 0))));
            }
            other => {
                return Err(ServerError::Protocol(format!(
                    "unexpected message '{}' before ReadyForQuery",
                    char::from(other)
                )));
            }
        }
    }
}
