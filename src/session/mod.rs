//! One client session: the loop that moves frames between a client and (at times) a server.
//!
//! The loop selects over five things: shutdown, bytes from the client, bytes from the server,
//! and the two write buffers (client-bound and server-bound). Reads stop while the opposite
//! write buffer is full, so memory stays bounded and neither side can deadlock the other.
//!
//! - [`state`]: every state the session can be in (transaction and savepoints, protocol
//!   segment, pins, privacy, lifecycle) and their transitions — start here.
//! - `effects`: what each statement sent will do to that state once it completes; `writes`:
//!   what a commit owes the cache.
//! - [`login`]: what happens between authentication and the first ReadyForQuery.
//! - `lease`: taking a server connection for the client, and giving it back clean.
//! - [`frontend`]: handling of client frames (forward, or answer locally).
//! - [`backend`]: handling of server frames (track state, forward).
//! - `extended`: Parse/Bind/Describe/Close, named statements under transaction pooling.
//! - `io`: the cancel-safe reads and writes the loop selects over.
//! - `ending`: draining at shutdown, and the client's Terminate or EOF.
//! - `batch`: extended batches gathered until Sync, answered whole from the cache if they can.
//! - `isolation` and `held`: reads inside transaction blocks, and blocks answered without a
//!   server until they need one.
//! - `guard`: the policy check of every query string and Parse, and refusals; `limited`: the
//!   statements whose results it limited, for the notice when they are cut.
//! - `keywords`: the scan that tells a statement that may change session state from one that cannot.
//! - `caching`: what is cacheable, keys, hits, fills, invalidation at commit; `calls`: what the
//!   functions a statement calls may do, from `pg_proc`.
//! - [`params`]: the parameters that must follow a client across server connections.
//! - [`queue`]: the replies expected from the server, in order (forward / drop / synthesize).
//! - [`statements`]: a client's named prepared statements and their shared server names.
//! - [`shapes`]: result shapes of shared statements; 0A000 when one changed under a client.
//! - `vacate`: closing idle connections to a database a statement needs free (DROP DATABASE).
//!
//! In transaction mode the session holds a server connection from the client's first message
//! until the server reports ReadyForQuery `I` with nothing else outstanding (or, once pinned,
//! until the client leaves); in session mode until the client leaves.

mod backend;
mod batch;
mod caching;
mod calls;
mod catalog_memo;
pub mod cost;
mod effects;
mod ending;
mod extended;
mod frontend;
mod guard;
mod held;
mod io;
pub mod isolation;
mod keywords;
mod lease;
mod limited;
pub mod live;
pub mod login;
pub mod params;
mod passing;
mod queue;
mod retry;
pub mod shapes;
pub mod shutdown;
mod stale;
pub mod state;
pub mod statements;
mod stats;
mod timers;
mod vacate;
pub mod writes;

pub use caching::cacheability;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::client::cancel::{CancelHandle, CancelRegistry};
use crate::client::startup::BoxStream;
use crate::config::{Config, PoolMode};
use crate::pool::{PoolHandle, PoolKey, Pools, ServerObject};
use crate::server::ServerIo;
use crate::wire::FrameError;
use crate::wire::build::{self, Severity};
use crate::wire::frame::keep_read_room;
use io::{read_opt, sleep_until, write_all_buf, write_opt, write_without_waiting};
use params::ParamSet;
use queue::Entry;
use state::{Lifecycle, Pins, Private, Segment, Transaction};

/// What every session shares: configuration, pools, cancel keys, the shutdown signal. One
/// generation of it (see [`live`]): a reload clones it with a new configuration and what is
/// built from it; everything else is behind an `Arc` (or a cache handle) and so shared.
#[derive(Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub pools: Arc<Pools>,
    pub cancels: Arc<CancelRegistry>,
    pub shutdown: watch::Receiver<bool>,
    /// Woken when shutdown begins (see `shutdown`).
    pub shutdown_wakers: Arc<shutdown::ShutdownWakers>,
    /// Greetings already checked against a server (see [`login::WelcomeCache`]).
    pub welcomes: login::WelcomeCache,
    pub policies: Arc<crate::sql::Policies>,
    pub cache: Arc<crate::cache::ResultCache>,
    pub rules: Arc<crate::cache::Rules>,
    pub catalogs: Arc<crate::cache::catalogs::Catalogs>,
    /// EXPLAIN cost estimates for `max_cost` policies.
    pub costs: Arc<cost::CostEstimates>,
    /// Statements known to prepare fine (see `batch::known_parses_only`); cleared by DDL.
    pub prepared_ok: moka::sync::Cache<u64, ()>,
    /// Latest known result shapes of shared server statements (see [`shapes`]).
    pub shapes: Arc<shapes::ShapeRegistry>,
    /// Per-query statistics (`stats.enabled`), and the metrics the data path updates.
    pub queries: Option<Arc<crate::admin::query_stats::QueryStats>>,
    pub traffic: Arc<crate::admin::traffic::Traffic>,
    /// Where client passwords come from (`auth.users`, `auth.auth_query`).
    pub lookup: Arc<dyn crate::client::auth::PasswordLookup>,
    /// NOTIFY listeners, one per database (`cache.invalidation: notify`; else disabled).
    pub listeners: Arc<crate::invalidate::Listeners>,
    /// Logical replication streams, one per database (`cache.invalidation: replication`).
    pub replication: Arc<crate::replication::Streams>,
}

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("client I/O: {0}")]
    Client(std::io::Error),
    #[error("server I/O: {0}")]
    Server(std::io::Error),
    #[error("client protocol violation: {0}")]
    ClientFrame(#[from] FrameError),
    #[error("server protocol violation: {0}")]
    ServerFrame(FrameError),
}

/// A server connection while a session holds it: the pool object and its byte streams.
struct Lease {
    obj: ServerObject,
    io: ServerIo,
}

/// What woke the loop up.
enum Event {
    ClientRead(std::io::Result<usize>),
    ClientWrote(std::io::Result<()>),
    ServerRead(std::io::Result<usize>),
    ServerWrote(std::io::Result<()>),
    Shutdown,
    /// `KILL CLIENT` in the admin console.
    Killed,
    Timer,
}

/// Whether the loop goes on after handling something.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Flush what is buffered for the client, then end the session.
    Close,
}

/// The client's unnamed statement: the Parse that made it, as sent to a server (a copy: a frame
/// shares the client read buffer's memory, which could then not be reused), and whether its
/// text is known to change no session state (pure pass-through forwards it without analysis).
struct UnnamedParse {
    frame: crate::wire::Frame,
    plain: bool,
}

pub struct Session {
    shared: Arc<Shared>,
    /// Where a reload publishes the next generation of `shared`, and the number of the one
    /// this session runs under (see [`Session::adopt_generation`]).
    live: Arc<live::Live>,
    generation: u64,
    key: PoolKey,
    /// `key`'s pool, looked up at the first checkout and kept.
    pool: Option<PoolHandle>,
    mode: PoolMode,
    cancel: CancelHandle,
    client_rx: ReadHalf<BoxStream>,
    client_tx: WriteHalf<BoxStream>,
    client_rbuf: BytesMut,
    to_client: BytesMut,
    server: Option<Lease>,
    to_server: BytesMut,
    /// The transaction as the server reports it, its savepoints, and what it settles at its
    /// end (see [`state`]).
    tx: Transaction,
    /// The client's extended-protocol segment: synced, open (with the fill it arms), or
    /// skipping to Sync after an error.
    segment: Segment,
    /// The server is in COPY FROM STDIN mode and the client has not ended it yet.
    copy_in: bool,
    /// The server failed in COPY FROM STDIN on a message that was no copy data (08P01):
    /// Postgres was reading that message, so a FATAL follows and the connection ends. A
    /// client that has left still waits for it, as it would directly.
    fatal_due: bool,
    /// The client ended with a Terminate message (not by closing its socket): one the server
    /// reads in COPY FROM STDIN is answered (see `terminate_copy`).
    said_terminate: bool,
    /// Why this client keeps its server connection under transaction pooling.
    pins: Pins,
    /// Why this session's answers may not be cached (none: they may).
    private: Private,
    /// Custom (dotted) settings this client defined: a server connection where another
    /// client defined others is not for it (see `ServerConn::placeholders`).
    placeholders: Vec<String>,
    lifecycle: Lifecycle,
    /// Replies expected from the server (and the proxy's own), in order.
    queue: queue::ReplyQueue,
    /// The client's named prepared statements (transaction mode).
    statements: statements::ClientStatements,
    /// The session's policy (`None`: no rules, nothing checked).
    policy: Option<Arc<crate::sql::Policy>>,
    /// Where its unqualified table names resolve, for the policy's table rules.
    table_schemas: guard::TableSchemas,
    /// The catalog's answers for the table this session wrote last (see `catalog_memo`).
    write_facts: Option<catalog_memo::WriteFacts>,
    /// Extended messages gathered until Sync (see `batch`).
    batch: Vec<crate::wire::Frame>,
    /// When a batch the client stopped sending before its Sync goes to the server as it is
    /// (see `batch::BATCH_PAUSE`); `None` while no batch waits for more.
    batch_deadline: Option<Instant>,
    /// The text of the last unnamed statement (for invalidation at Bind).
    unnamed_query: Option<bytes::Bytes>,
    /// The parameter types of the last unnamed statement (for the rows its Bind pins).
    unnamed_types: Vec<u32>,
    /// The unnamed statement is `DEALLOCATE <this client statement>`, answered by the proxy.
    local_unnamed: Option<bytes::Bytes>,
    /// The client's unnamed statement (sent again where a server connection holds another's:
    /// see `extended::own_unnamed`); `None`: it has none.
    unnamed_parse: Option<UnnamedParse>,
    /// Process-unique: tells a server connection's unnamed statement as this session's.
    id: u64,
    /// The effects of the statement bound to each portal, handed to its Executes.
    portals: Vec<(bytes::Bytes, Arc<state::Effects>)>,
    /// Server statement name → the client name it was last used for (error messages).
    renamed: std::collections::HashMap<bytes::Bytes, bytes::Bytes>,
    /// Syncs and Queries forwarded, and answered: a statement parsed before `syncs_done`
    /// surely exists (see `Statement::seq`).
    syncs_sent: u64,
    syncs_done: u64,
    /// Client messages held until the proxy's Describe of a statement, or an earlier segment, is
    /// answered (see `shapes`); `None` when not parked.
    parked: Option<shapes::Parked>,
    /// An Execute of a `RESET ALL` / `DISCARD ALL` was sent and the Sync after it not yet:
    /// that Sync holds the client's next messages (see `Session::forward`).
    reset_unsynced: bool,
    /// Parameters this client has set (startup, SET, reported changes).
    wanted: ParamSet,
    /// The parameters the client started with: what `RESET` / `RESET ALL` / `DISCARD ALL`
    /// return it to.
    startup: ParamSet,
    /// The cache-key digest of `wanted` and of the custom settings defined without a value,
    /// with the generation it was computed at.
    digest_memo: std::cell::Cell<Option<(crate::cache::SettingsGeneration, crate::cache::SettingsDigest)>>,
    /// The catalog of this session's database, once asked for (`Session::catalog`): it is
    /// wanted several times per statement, and the map look-up under a lock showed. The
    /// catalogs live as long as the process (a reload keeps them).
    catalog: std::cell::OnceCell<Option<Arc<crate::cache::Catalog>>>,
    /// A batch's leading `BEGIN READ ONLY` is planned with the read behind it (see
    /// `dispatch_batch`): that read is the block's, and keyed as a READ ONLY block's.
    read_only_ahead: bool,
    /// The default isolation of this session's blocks (see `isolation`), memoized until its
    /// settings (generation) or the catalog's answers (epoch) change.
    isolation_memo: std::cell::RefCell<Option<isolation::IsolationMemo>>,
    /// [`Session::lexing_unreliable`] of `wanted`, with the generation it was computed at.
    lexing_memo: std::cell::Cell<Option<(u64, bool)>>,
    /// The last statement's cache-key state (see `caching::Session::statement_key`).
    key_memo: std::cell::RefCell<crate::cache::StatementKeyMemo>,
    /// The client's last message, or the server's last ReadyForQuery that left nothing pending,
    /// whichever came later: statements time out from it, and idle timers start at it (as
    /// Postgres's own do, when it reports the statement or transaction done).
    last_activity: Instant,
    /// Set when shutdown begins: `timeouts.shutdown` from then, the session ends whatever it
    /// is doing.
    drain_deadline: Option<Instant>,
    /// Written without waiting but not yet flushed (see [`Session::write_now`]).
    client_unflushed: bool,
    server_unflushed: bool,
    /// Whole client messages wait in `client_rbuf` while the client reads too slowly (see
    /// [`Session::client_backlogged`]).
    client_held: bool,
    /// Something runs on a server (a request not answered yet, or gathered and not sent), as
    /// last told to the cancel slot (see `CancelSlot::running`).
    running: bool,
    /// When the proxy cancelled the running statement for `timeouts.query` (cleared by the
    /// client's next message): its error then names the timeout, and a server that has not
    /// answered `timers::CANCEL_GRACE` later is dropped.
    timeout_cancel: Option<Instant>,
    /// The `BEGIN` the proxy answered itself, to be sent before the first statement that needs
    /// a server (see `held`); `None`: no block is held.
    held_begin: Option<String>,
    /// Extended-protocol statements whose results a policy limited (for the notice).
    limited: limited::Limited,
    /// What is reported about its statements (see [`stats`]).
    tally: stats::Tally,
    /// A server frame too large to hold whole, being passed on (see `passing`).
    passing: Option<passing::Passing>,
    /// Since when answers have waited for the client without it taking a byte of them (kept
    /// only with `timeouts.client_write`; see `timers`).
    client_stalled: Option<Instant>,
    /// The client took bytes since the loop last looked (see `client_stalled`).
    client_took: bool,
}

impl Session {
    /// The main loop. Returns when the client leaves or the session must end.
    pub async fn run(mut self) -> Result<(), SessionError> {
        let result = self.run_loop().await;
        if let Err(e) = &result {
            debug!(error = %e, "session ended with an error");
        }
        // Best effort: deliver what is buffered (e.g. a FATAL) before closing.
        if !self.to_client.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.flush_client()).await;
        }
        // Bounded: over TLS a shutdown writes (close_notify) to a client that may not read.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client_tx.shutdown()).await;
        self.release_server(true).await;
        if let Some((info, ..)) = self.cancel.slot.describe() {
            let connected_for = info.connected_at.elapsed().unwrap_or_default();
            info!(peer = %info.addr, user = %info.user, database = %info.database, ?connected_for, "client disconnected");
        }
        result
    }

    /// Tell the cancel slot when the session starts or stops running something on a server: a
    /// client's cancel is for what runs when it arrives.
    #[inline]
    fn publish_running(&mut self) {
        let running = !self.queue.is_empty() || !self.batch.is_empty();
        if running != self.running {
            self.running = running;
            self.cancel.slot.set_running(running);
        }
    }

    async fn run_loop(&mut self) -> Result<(), SessionError> {
        let probe = self.shared.shutdown.clone();
        let registered = self.shared.shutdown_wakers.register(self.id).await;
        if *probe.borrow() {
            // Shutdown began before the registration (or before this session): no wake-up or
            // channel change will come for it.
            self.begin_draining();
        }
        loop {
            match self.lifecycle {
                Lifecycle::Running => {}
                Lifecycle::Draining => {
                    self.maybe_release().await;
                    // A held block is a transaction in progress: it may end (or the deadline
                    // come) first.
                    if self.server.is_none() && self.held_begin.is_none() {
                        build::error_response(
                            &mut self.to_client,
                            Severity::Fatal,
                            "57P01",
                            "terminating connection because pgcached is shutting down",
                        );
                        return Ok(());
                    }
                }
                Lifecycle::Terminating => {
                    let done = self.queue.is_empty() && self.to_server.is_empty() && !self.server_unflushed;
                    if done && !self.fatal_due {
                        // Every reply the server owed is in: the session ends as Postgres's would.
                        return Ok(());
                    }
                    if self.copy_waits_for_nothing() {
                        // A COPY FROM STDIN with nothing behind it (started before or after
                        // the client left): at EOF the session ends, a Terminate is answered.
                        if !self.said_terminate {
                            return Ok(());
                        }
                        self.terminate_copy();
                    }
                }
            }
            if self.client_held && !self.client_backlogged() && self.on_client_data().await? == Flow::Close {
                return Ok(());
            }
            // Before the select's write branches send anything either way.
            self.publish_running();
            let deadline = self.next_deadline();
            // Stop reading from one side while this much waits to be written to the other.
            let high_water = self.high_water();
            let frame_incomplete = self.client_rbuf.len() >= high_water && self.client_frame_incomplete();
            // Written whole by the client write branch, if it is the one that completes.
            let pending_out = self.to_client.len();
            let event = {
                let (server_rx, server_tx, mut server_rbuf) = match &mut self.server {
                    Some(Lease { io: ServerIo { reader, writer, rbuf }, .. }) => {
                        (Some(reader), Some(writer), Some(rbuf))
                    }
                    None => (None, None, None),
                };
                let read_client = self.lifecycle != Lifecycle::Terminating
                    && self.to_server.len() < high_water
                    && !self.client_held
                    && (self.client_rbuf.len() < high_water || frame_incomplete);
                let read_server = server_rx.is_some() && self.to_client.len() < high_water;
                if read_client {
                    keep_read_room(&mut self.client_rbuf);
                }
                if let Some(rbuf) = server_rbuf.as_deref_mut().filter(|_| read_server) {
                    Session::server_read_room(self.passing.is_some(), rbuf);
                }
                let write_server = server_tx.is_some() && (!self.to_server.is_empty() || self.server_unflushed);
                let write_client = !self.to_client.is_empty() || self.client_unflushed;
                let to_server = &mut self.to_server;
                let running = self.lifecycle == Lifecycle::Running;
                // Biased: no random start per turn; every branch does bounded work, so none starves.
                tokio::select! {
                    biased;
                    () = shutdown::seen(&probe), if running => Event::Shutdown,
                    () = registered.killed() => Event::Killed,
                    _ = sleep_until(deadline), if deadline.is_some() => Event::Timer,
                    r = write_opt(server_tx, to_server), if write_server => Event::ServerWrote(r),
                    r = write_all_buf(&mut self.client_tx, &mut self.to_client), if write_client => Event::ClientWrote(r),
                    r = read_opt(server_rx, server_rbuf), if read_server => Event::ServerRead(r),
                    r = self.client_rx.read_buf(&mut self.client_rbuf), if read_client => Event::ClientRead(r),
                }
            };
            // The client write branch takes bytes out of `to_client` as the client takes them.
            let took = self.to_client.len() < pending_out;
            let flow = match event {
                Event::ClientRead(Ok(0)) => {
                    debug!("client closed the connection");
                    self.client_gone()
                }
                Event::ClientRead(Ok(n)) => {
                    self.shared.traffic.received_from_client(n);
                    self.tally.client_sent(n);
                    if self.live.generation() != self.generation && self.is_idle() && self.held_begin.is_none() {
                        self.adopt_generation();
                    }
                    if self.shared.config.timeouts.any_session_timeout() {
                        // Only the timeouts read it, and a clock read costs per message.
                        self.last_activity = Instant::now();
                    }
                    self.timeout_cancel = None;
                    self.on_client_data().await?
                }
                Event::ClientRead(Err(e)) | Event::ClientWrote(Err(e)) => {
                    if self.lifecycle == Lifecycle::Terminating {
                        // The client left first: what the server still owes goes nowhere.
                        self.to_client.clear();
                        self.client_unflushed = false;
                        Flow::Continue
                    } else {
                        return Err(SessionError::Client(e));
                    }
                }
                Event::ClientWrote(Ok(())) => {
                    self.shared.traffic.sent_to_client(pending_out);
                    self.client_unflushed = false;
                    Flow::Continue
                }
                Event::ServerRead(Ok(0)) => self.server_lost(None).await?,
                Event::ServerRead(Ok(_)) => self.on_server_data().await?,
                Event::ServerRead(Err(e)) | Event::ServerWrote(Err(e)) => self.server_lost(Some(e)).await?,
                Event::ServerWrote(Ok(())) => {
                    self.server_unflushed = false;
                    Flow::Continue
                }
                Event::Shutdown => {
                    self.begin_draining();
                    Flow::Continue
                }
                Event::Killed => {
                    // As `pg_terminate_backend` ends a backend: the transaction in progress is
                    // lost (`run` gives the server back as a session that ends mid-way does).
                    build::error_response(
                        &mut self.to_client,
                        Severity::Fatal,
                        "57P01",
                        "terminating connection due to administrator command (pgcached KILL CLIENT)",
                    );
                    return Ok(());
                }
                Event::Timer if self.batch_deadline.is_some_and(|d| d <= Instant::now()) => self.batch_paused().await?,
                Event::Timer => self.on_timer().await,
            };
            if flow == Flow::Close {
                return Ok(());
            }
            if self.write_now()? == Flow::Close {
                return Ok(());
            }
            if self.shared.config.timeouts.client_write.is_some() {
                self.watch_client_writes(took);
            }
        }
    }

    /// Send what is buffered for either side now, as far as the sockets take it without
    /// waiting: one turn of the loop per exchange instead of one more per direction. What is
    /// left (a full socket buffer, a TLS flush) goes out through the loop's write branches.
    fn write_now(&mut self) -> Result<Flow, SessionError> {
        // Before the server can start a statement: a cancel from now on is for it.
        self.publish_running();
        if let Some(lease) = &mut self.server
            && (!self.to_server.is_empty() || self.server_unflushed)
        {
            match write_without_waiting(&mut lease.io.writer, &mut self.to_server) {
                Ok(done) => self.server_unflushed = !done,
                Err(e) => return Ok(self.server_write_failed(e)),
            }
        }
        self.write_client_now()?;
        Ok(Flow::Continue)
    }

    /// The client half of [`Session::write_now`].
    fn write_client_now(&mut self) -> Result<(), SessionError> {
        // Before the client can see the end of what ran (its ReadyForQuery): a cancel it
        // sends after that must find nothing running, not race this write (seen in CI).
        self.publish_running();
        if !self.to_client.is_empty() || self.client_unflushed {
            let before = self.to_client.len();
            match write_without_waiting(&mut self.client_tx, &mut self.to_client) {
                Ok(done) => {
                    let took = before - self.to_client.len();
                    self.shared.traffic.sent_to_client(took);
                    self.client_took |= took > 0;
                    self.client_unflushed = !done;
                }
                Err(_) if self.lifecycle == Lifecycle::Terminating => {
                    self.to_client.clear();
                    self.client_unflushed = false;
                }
                Err(e) => return Err(SessionError::Client(e)),
            }
        }
        Ok(())
    }

    /// Too much is waiting for the client already: take no more of its messages until it
    /// reads (every answer the proxy writes itself — cache hits, refusals — counts).
    fn client_backlogged(&self) -> bool {
        self.to_client.len() + self.queue.synth_bytes() >= self.high_water()
    }

    /// `limits.session_buffer`: what may wait for one side before reads from the other stop.
    #[inline]
    fn high_water(&self) -> usize {
        self.shared.config.limits.session_buffer.as_u64() as usize
    }

    /// `client_rbuf` holds the start of a message that is not all there yet: keep reading
    /// until it is (up to `limits.max_message_size`, checked when it is taken), however
    /// large it is.
    fn client_frame_incomplete(&self) -> bool {
        let max = self.shared.config.limits.max_message_size.as_u64() as usize;
        matches!(crate::wire::frame::peek_header(&self.client_rbuf, max), Ok(Some((_, len))) if len > self.client_rbuf.len())
    }

    /// The server this session holds (callers check that it holds one).
    fn server_mut(&mut self) -> &mut Lease {
        self.server.as_mut().expect("the session holds a server here")
    }

    /// The proxy's own answer to the client's latest message, written by `write` (about `len`
    /// bytes): straight into the client's buffer when nothing is ahead of it in the queue,
    /// else queued until its turn comes.
    pub(super) fn answer_with(&mut self, len: usize, write: impl FnOnce(&mut BytesMut)) {
        if self.queue.is_empty() {
            write(&mut self.to_client);
            return;
        }
        let mut out = BytesMut::with_capacity(len);
        write(&mut out);
        self.queue.push(Entry::Synth(out.freeze()));
    }

    /// The proxy's own answer `reply`, already built: like [`Session::answer_with`].
    pub(super) fn answer(&mut self, reply: Bytes) {
        if self.queue.is_empty() {
            self.to_client.extend_from_slice(&reply);
        } else {
            self.queue.push(Entry::Synth(reply));
        }
    }

    /// Send the proxy's own answers that have reached the head of the queue.
    fn emit_ready_synth(&mut self) {
        if !self.queue.synth_at_head() {
            return;
        }
        for bytes in self.queue.take_ready_synth() {
            self.to_client.extend_from_slice(&bytes);
        }
    }

    async fn flush_client(&mut self) -> std::io::Result<()> {
        write_all_buf(&mut self.client_tx, &mut self.to_client).await
    }
}
