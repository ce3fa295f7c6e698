//! Accept loop: one task per client connection, on TCP and the optional Unix-domain socket,
//! bounded by `limits.max_clients`; on shutdown, stop accepting and let sessions finish their
//! transactions until `timeouts.shutdown`.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::cancel::CancelSlot;
use super::peer::Peer;
use super::startup::{Handshake, handshake};
use super::tls::ClientTls;
use super::unix_socket::UnixSocket;
use crate::server::UpstreamTarget;
use crate::session::live::Live;
use crate::session::login;
use crate::wire::build::{self, Severity};

/// Everything a connection task needs besides the socket.
pub struct Listener {
    /// The current generation of the shared parts (replaced by a reload).
    pub live: Arc<Live>,
    pub tls: ClientTls,
}

/// The TLS answer on the Unix-domain socket: none, as Postgres answers there (`N` to an
/// SSLRequest), and plaintext is accepted whatever `tls.mode` says — nothing leaves the machine.
fn local_tls() -> ClientTls {
    ClientTls::new(crate::config::ClientTlsMode::Disable, None).expect("a disabled ClientTls needs no certificate")
}

impl Listener {
    /// Serve until `shutdown` turns true, then drain.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        unix: Option<UnixSocket>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let admission = Admission {
            limit: Arc::new(Semaphore::new(self.live.shared().config.limits.max_clients)),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
        };
        let local_tls = local_tls();
        let unix_peer = Peer::Unix { port: unix.as_ref().map_or(0, UnixSocket::port) };
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        self.admit(&admission, &mut tasks, socket, Peer::Tcp(peer), self.tls.clone());
                    }
                    Err(e) => accept_failed(e).await,
                },
                accepted = accept_unix(unix.as_ref()) => match accepted {
                    Ok(socket) => self.admit(&admission, &mut tasks, socket, unix_peer, local_tls.clone()),
                    Err(e) => accept_failed(e).await,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        drop(unix);
        // Sessions waiting idle (in a transaction, say) see the shutdown when woken.
        let shared = self.live.shared();
        shared.shutdown_wakers.wake_all();
        let grace = shared.config.timeouts.shutdown;
        info!(clients = tasks.len(), ?grace, "shutting down: no new connections, waiting for open transactions");
        // Each session ends itself at the deadline, telling its client why (57P01); the margin
        // lets those last words go out before what is left is cut.
        let margin = std::time::Duration::from_millis(500);
        let drained = tokio::time::timeout(grace + margin, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(clients = tasks.len(), "shutdown deadline reached: closing remaining clients");
            tasks.shutdown().await;
        }
    }

    /// Start a task for a new connection: a session within `limits.max_clients`, else a
    /// refusal.
    fn admit<S: ClientSocket>(
        self: &Arc<Self>,
        admission: &Admission,
        tasks: &mut JoinSet<()>,
        socket: S,
        peer: Peer,
        tls: ClientTls,
    ) {
        let this = self.clone();
        match admission.limit.clone().try_acquire_owned() {
            Ok(permit) => {
                tasks.spawn(async move {
                    this.connection(socket, peer, &tls).await;
                    drop(permit);
                });
            }
            Err(_) => match admission.refusals.clone().try_acquire_owned() {
                // Answered as Postgres answers: after the SSLRequest (so a client that
                // asked for TLS reads the SQLSTATE), and a cancel is still forwarded.
                Ok(permit) => {
                    tasks.spawn(async move {
                        this.refuse(socket, peer, &tls).await;
                        drop(permit);
                    });
                }
                // Past that many refusals in progress: said at once, unnegotiated.
                Err(_) => {
                    tasks.spawn(too_many_clients(socket, peer));
                }
            },
        }
    }

    async fn connection<S: ClientSocket>(&self, socket: S, peer: Peer, tls: &ClientTls) {
        let login_timeout = self.live.shared().config.timeouts.login;
        let started = tokio::time::timeout(login_timeout, async {
            match handshake(socket, tls).await {
                Ok(Handshake::Cancel { pid, secret }) => {
                    self.forward_cancel(pid, secret).await;
                    Ok(None)
                }
                Ok(Handshake::Startup(startup)) => {
                    login::login(&self.live, startup, peer).await.map(Some).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        let session = match started {
            Ok(Ok(Some(login::Login::Session(session)))) => session,
            Ok(Ok(Some(login::Login::Admin(console)))) => {
                if let Err(e) = console.run().await {
                    debug!(%peer, error = %e, "admin console connection ended");
                }
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "connection ended before a session started");
                return;
            }
            Err(_) => {
                warn!(%peer, ?login_timeout, "client did not finish startup in time (timeouts.login)");
                return;
            }
        };
        if let Err(e) = session.run().await {
            debug!(%peer, error = %e, "session ended");
        }
    }

    /// Forward a client's CancelRequest to what it runs now, and count what became of it
    /// (`pgcached_cancel_requests_total`).
    async fn forward_cancel(&self, pid: i32, secret: i32) {
        let shared = self.live.shared();
        let outcome = match shared.cancels.find(pid, secret) {
            Some(slot) => cancel_what_runs(&slot, shared.pools.target_arc()).await,
            None => {
                debug!("cancel request with an unknown key ignored");
                CancelOutcome::UnknownKey
            }
        };
        shared.traffic.cancel_request(outcome.label());
    }

    /// Over `limits.max_clients`: take the client through SSL negotiation and its startup
    /// message (within `timeouts.login`), then say so the way Postgres does and close; a
    /// CancelRequest is no client and is forwarded.
    async fn refuse<S: ClientSocket>(&self, socket: S, peer: Peer, tls: &ClientTls) {
        let login_timeout = self.live.shared().config.timeouts.login;
        match tokio::time::timeout(login_timeout, handshake(socket, tls)).await {
            Ok(Ok(Handshake::Cancel { pid, secret })) => self.forward_cancel(pid, secret).await,
            Ok(Ok(Handshake::Startup(mut startup))) => {
                warn!(%peer, "refusing a client: limits.max_clients reached");
                let _ = startup.stream.write_all(&too_many_clients_error()).await;
                let _ = startup.stream.flush().await;
            }
            Ok(Err(e)) => debug!(%peer, error = %e, "refused connection ended before its startup"),
            Err(_) => debug!(%peer, "refused connection did not send its startup in time"),
        }
    }
}

/// What became of a client's CancelRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelOutcome {
    /// Sent to the server running the client's statement.
    Sent,
    /// The client ran nothing when it arrived, or its statement was over before the server
    /// could be reached (Postgres ignores those), or it was waiting for a server connection
    /// (its wait is cancelled instead).
    NotRunning,
    /// No client holds that key.
    UnknownKey,
    /// The server could not be reached.
    Failed,
}

impl CancelOutcome {
    fn label(self) -> &'static str {
        match self {
            CancelOutcome::Sent => "sent",
            CancelOutcome::NotRunning => "not_running",
            CancelOutcome::UnknownKey => "unknown_key",
            CancelOutcome::Failed => "failed",
        }
    }
}

/// Cancel what `slot`'s client runs now (see `CancelSlot::running`): a client's cancel is for
/// what runs when it arrives. A session waiting for a server runs nothing yet, and its wait is
/// cancelled instead.
async fn cancel_what_runs(slot: &Arc<CancelSlot>, target: Arc<UpstreamTarget>) -> CancelOutcome {
    let running = slot.running();
    let still = slot.clone();
    let sent = slot.with_current(|k| async move {
        let Some(mark) = running else {
            debug!("cancel request while the client runs nothing: ignored, as Postgres ignores it");
            return CancelOutcome::NotRunning;
        };
        let still_running = || still.running() == Some(mark);
        match crate::server::send_cancel_if(&target, k.addr, k.pid, k.secret, still_running).await {
            Ok(true) => CancelOutcome::Sent,
            Ok(false) => CancelOutcome::NotRunning,
            Err(e) => {
                warn!(error = %e, "could not forward a cancel request");
                CancelOutcome::Failed
            }
        }
    });
    sent.await.unwrap_or(CancelOutcome::NotRunning)
}

/// A client's socket, TCP or Unix-domain.
trait ClientSocket: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ClientSocket for T {}

/// The permits new connections take: sessions up to `limits.max_clients`, then refusals.
struct Admission {
    limit: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
}

/// The next client on the Unix-domain socket; without one, never.
async fn accept_unix(unix: Option<&UnixSocket>) -> std::io::Result<tokio::net::UnixStream> {
    match unix {
        Some(socket) => socket.accept().await,
        None => std::future::pending().await,
    }
}

/// An accept error (out of file descriptors, say): logged, and a pause before the next try.
async fn accept_failed(e: std::io::Error) {
    warn!(error = %e, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// Refusals over `limits.max_clients` negotiated at once (each holds a socket for up to
/// `timeouts.login`); more are refused without waiting for their startup.
const MAX_REFUSALS: usize = 64;

/// Over `limits.max_clients` with [`MAX_REFUSALS`] refusals in progress: say so at once and close.
async fn too_many_clients<S: ClientSocket>(mut socket: S, peer: Peer) {
    warn!(%peer, "refusing a client: limits.max_clients reached");
    let _ = socket.write_all(&too_many_clients_error()).await;
}

/// Postgres's answer over its connection limit.
fn too_many_clients_error() -> BytesMut {
    let mut out = BytesMut::new();
    build::error_response(&mut out, Severity::Fatal, "53300", "sorry, too many clients already");
    out
}
