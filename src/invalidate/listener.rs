//! The NOTIFY listener: one control-plane connection per database, LISTENing on [`CHANNEL`].
//!
//! Each notification's payload (a table name) bumps that table's version in the cache; the DDL
//! event trigger's (`ddl`) flushes the database and the catalog's answers for it. The
//! connection is the only way the proxy learns of writes made around it, so losing it means
//! writes may have gone unseen: the listener then **flushes its database's entries** (every
//! entry the proxy holds for that database), reconnects with exponential backoff (100 ms to
//! 5 s), and flushes once more each time LISTEN is in place — the first time included, since
//! entries filled before LISTEN (or while it was down) may predate a write it never heard of;
//! a fill still in flight at that moment is discarded by the cache's stale-set check. A
//! periodic `SELECT 1` finds a connection that died silently (no RST) and treats it the same
//! way. Entries of other databases are not touched: their own listeners vouch for them.
//!
//! The task stops when its [`ListenerHandle`] is dropped or shut down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Socket};
use tracing::{debug, info, warn};

use super::CHANNEL;
use super::triggers::DDL_PAYLOAD;
use crate::cache::catalogs::Catalogs;
use crate::cache::{InvalidationCause, ResultCache};

/// `application_name` of the listener's connection, unless the config sets one.
pub const APPLICATION_NAME: &str = "pgcached-invalidate";

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const HEALTH_EVERY: Duration = Duration::from_secs(10);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the listener reports about itself (for health checks, metrics and tests).
#[derive(Debug, Default)]
pub struct ListenerState {
    connected: AtomicBool,
    /// Successful LISTENs, the first included.
    sessions: AtomicU64,
    notifications: AtomicU64,
    /// Times the connection was lost (or could not be made) and the cache flushed.
    losses: AtomicU64,
}

impl ListenerState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::SeqCst)
    }
    pub fn notifications(&self) -> u64 {
        self.notifications.load(Ordering::SeqCst)
    }
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }
}

/// Owns the listener task: dropping it stops the task.
#[derive(Debug)]
pub struct ListenerHandle {
    state: Arc<ListenerState>,
    // Dropping the sender is the stop signal.
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ListenerHandle {
    pub fn state(&self) -> &Arc<ListenerState> {
        &self.state
    }

    /// Stop the task and wait for it.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// Start listening for database `database` (the name the cache keys entries by; `pg` must
/// connect to that same database). `tls` as for `tokio_postgres::Config::connect`.
pub fn spawn_listener<T>(
    mut pg: tokio_postgres::Config,
    tls: T,
    database: String,
    cache: Arc<ResultCache>,
    catalogs: Option<Arc<Catalogs>>,
) -> ListenerHandle
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    if pg.get_application_name().is_none() {
        pg.application_name(APPLICATION_NAME);
    }
    pg.keepalives(true);
    let state = Arc::new(ListenerState::default());
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(run(pg, tls, database, cache, catalogs, state.clone(), stop_rx));
    ListenerHandle { state, stop: Some(stop_tx), task: Some(task) }
}

async fn run<T>(
    pg: tokio_postgres::Config,
    tls: T,
    db: String,
    cache: Arc<ResultCache>,
    catalogs: Option<Arc<Catalogs>>,
    state: Arc<ListenerState>,
    mut stop: oneshot::Receiver<()>,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&pg, tls.clone()).await {
            Ok((client, mut notes)) => {
                backoff = MIN_BACKOFF;
                state.connected.store(true, Ordering::SeqCst);
                state.sessions.fetch_add(1, Ordering::SeqCst);
                // Writes may have been missed before LISTEN (or while down, after the flush at
                // the loss): nothing filled until now is vouched for.
                cache.flush_database(&db, InvalidationCause::ListenerLost);
                info!(database = %db, "invalidation listener: LISTEN {CHANNEL}");
                let stopped = serve(&client, &mut notes, &db, (&cache, catalogs.as_deref()), &state, &mut stop).await;
                state.connected.store(false, Ordering::SeqCst);
                if stopped {
                    return;
                }
                warn!(database = %db, "invalidation listener: connection lost; flushing the cache");
            }
            Err(e) => warn!(database = %db, error = %e, "invalidation listener: cannot LISTEN"),
        }
        state.losses.fetch_add(1, Ordering::SeqCst);
        cache.flush_database(&db, InvalidationCause::ListenerLost);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connect, drive the connection in a task that forwards our channel's payloads, LISTEN.
async fn listen<T>(
    pg: &tokio_postgres::Config,
    tls: T,
) -> Result<(Client, mpsc::UnboundedReceiver<String>), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut conn) = pg.connect(tls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = messages.next().await {
            match msg {
                Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(other) => debug!(?other, "invalidation listener: message ignored"),
                Err(e) => {
                    debug!(error = %e, "invalidation listener: connection ended");
                    return;
                }
            }
        }
        // `tx` drops here: the listener sees the loss.
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, rx))
}

/// Apply notifications until the connection is lost (`false`) or we are told to stop (`true`).
async fn serve(
    client: &Client,
    notes: &mut mpsc::UnboundedReceiver<String>,
    db: &str,
    (cache, catalogs): (&ResultCache, Option<&Catalogs>),
    state: &ListenerState,
    stop: &mut oneshot::Receiver<()>,
) -> bool {
    let mut health = tokio::time::interval(HEALTH_EVERY);
    health.tick().await;
    loop {
        tokio::select! {
            _ = &mut *stop => return true,
            note = notes.recv() => match note {
                Some(payload) if payload == DDL_PAYLOAD => {
                    // DDL around the proxy: what was learned from the catalog (views' tables,
                    // write closures, row keys) and every answer that relied on it.
                    state.notifications.fetch_add(1, Ordering::SeqCst);
                    if let Some(catalog) = catalogs.and_then(|c| c.for_database(db)) {
                        catalog.refresh();
                    }
                    cache.flush_database(db, InvalidationCause::Ddl);
                }
                Some(table) => {
                    state.notifications.fetch_add(1, Ordering::SeqCst);
                    cache.invalidate_tables(db, [table.as_str()], InvalidationCause::Notify);
                }
                None => return false,
            },
            _ = health.tick() => {
                let ping = tokio::time::timeout(HEALTH_TIMEOUT, client.batch_execute("SELECT 1")).await;
                if !matches!(ping, Ok(Ok(()))) {
                    return false;
                }
            }
        }
    }
}
