//! [`ServerPool`]: the server connections of one (database, user) — at most `pool.max_size`
//! open, handed out most recently used first, checked before each reuse.
//!
//! The model is deadpool's managed pool, which pgcached used before (DECISIONS 24): a semaphore
//! holds one permit per connection that may still be opened or handed out. A checkout takes a
//! permit, then the most recently returned idle connection (or opens one); a connection that
//! comes back, or is dropped, gives its permit back. Waiting for a permit is the only wait, so
//! a connection that breaks frees a slot for the next waiter, who opens a new one.
//!
//! A checkout happens for every transaction in transaction pooling, so it is kept to what the
//! model needs: a semaphore permit, a short mutex section to pop an idle connection, the
//! synchronous checks of [`Manager::check`], and on return a mutex section and the permit back.
//! Awaits (waiting, logging in, a health check) are taken only off that path.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, SemaphorePermit, TryAcquireError};
use tracing::debug;

use super::PoolError;
use super::breaker::Admission;
use super::manager::{Manager, Verdict};
use crate::server::{ServerConn, ServerError};

/// One pool. Cloning shares it.
#[derive(Clone)]
pub struct ServerPool {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) manager: Manager,
    /// One permit per connection that may still be opened or handed out.
    slots: Semaphore,
    /// Connections nobody holds, the most recently returned last. Boxed: a connection moves in
    /// and out of here every transaction, and a pointer is cheaper to move than its state.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<ServerConn>>>,
    /// Slots in all: changed by [`ServerPool::resize`] (a configuration reload).
    max_size: AtomicUsize,
    /// Longest wait for a login (`pool.acquire_timeout` or `timeouts.login`, the larger).
    create_timeout: Duration,
    /// Open connections, idle or handed out (for status and metrics).
    open: AtomicUsize,
    /// Checkouts waiting for a permit right now (or for the pool to be resumed).
    waiting: AtomicUsize,
    /// `PAUSE`d: checkouts wait for [`ServerPool::resume`]; no connection is opened.
    paused: AtomicBool,
    /// Woken by `resume` (and `close`).
    resumed: Notify,
    /// Connection attempts repeated after a transient failure (`pgcached_pool_connect_retries_total`).
    retries: AtomicU64,
}

/// A pool's size and use, as metrics show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Open connections, idle or handed out.
    pub size: usize,
    /// Idle connections.
    pub available: usize,
    /// Checkouts waiting for a connection.
    pub waiting: usize,
    /// Connection attempts repeated after a transient failure, since the pool was created.
    pub connect_retries: u64,
}

/// A connection handed out; derefs to [`ServerConn`]. Dropping it gives it back to its pool
/// (or closes it, when it is not usable any more) and frees its slot.
pub struct ServerObject {
    conn: Option<Box<ServerConn>>,
    pool: Arc<Inner>,
}

impl ServerPool {
    pub(super) fn new(manager: Manager, max_size: usize, create_timeout: Duration) -> ServerPool {
        ServerPool {
            inner: Arc::new(Inner {
                manager,
                slots: Semaphore::new(max_size),
                idle: Mutex::new(Vec::with_capacity(max_size)),
                max_size: AtomicUsize::new(max_size),
                create_timeout,
                open: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                paused: AtomicBool::new(false),
                resumed: Notify::new(),
                retries: AtomicU64::new(0),
            }),
        }
    }

    /// A connection, waiting up to `wait` for a free slot.
    pub async fn get(&self, wait: Duration) -> Result<ServerObject, PoolError> {
        self.get_preferring(wait, |_| true).await
    }

    /// [`ServerPool::get`], taking the most recently used idle connection that `fits`, or if
    /// none does the most recently used one (the caller decides what to do with it).
    pub async fn get_preferring(
        &self,
        wait: Duration,
        fits: impl Fn(&ServerConn) -> bool,
    ) -> Result<ServerObject, PoolError> {
        let inner = &*self.inner;
        // Given back if this checkout fails or is dropped; the object's own once handed out.
        let permit = loop {
            if inner.paused.load(Ordering::Acquire) {
                Box::pin(self.wait_resumed()).await?;
            }
            let permit = match inner.slots.try_acquire() {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => return Err(PoolError::Closed),
                // Boxed: rare, and this future is part of every transaction's.
                Err(TryAcquireError::NoPermits) => Box::pin(self.wait_for_slot(wait)).await?,
            };
            // Paused while this checkout waited for its slot: it waits for RESUME too (a
            // connection taken now could outlive PAUSE's wait for the pool to drain).
            if !inner.paused.load(Ordering::Acquire) {
                break permit;
            }
        };
        loop {
            let Some(mut conn) = inner.pop_idle(&fits) else {
                let conn = Box::pin(inner.open()).await?;
                return Ok(self.hand_out(permit, conn));
            };
            let ready = match inner.manager.check(&mut conn) {
                Verdict::Ready => true,
                Verdict::Discard => false,
                Verdict::HealthCheck => Box::pin(inner.manager.health_check(&mut conn)).await,
            };
            if ready {
                return Ok(self.hand_out(permit, conn));
            }
            // The slot stays taken: the next idle connection, or a new one, gets it.
            inner.close_conn(conn);
        }
    }

    /// The pool's size and use.
    pub fn status(&self) -> PoolStatus {
        let inner = &*self.inner;
        PoolStatus {
            max_size: inner.max_size.load(Ordering::Relaxed),
            size: inner.open.load(Ordering::Relaxed),
            available: inner.lock_idle().len(),
            waiting: inner.waiting.load(Ordering::Relaxed),
            connect_retries: inner.retries.load(Ordering::Relaxed),
        }
    }

    /// `PAUSE`: checkouts from now on wait until [`ServerPool::resume`]; connections handed out
    /// stay with their sessions. See [`ServerPool::drained`].
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::Release);
    }

    /// `RESUME`: waiting checkouts go on.
    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::Release);
        self.inner.resumed.notify_waiters();
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::Acquire)
    }

    /// Paused, and no connection is handed out: close the idle ones and say true (the upstream
    /// may now restart).
    pub fn drained(&self) -> bool {
        // Every slot free: no connection handed out, no checkout between its slot and its
        // connection.
        let all_free = self.inner.slots.available_permits() >= self.inner.max_size.load(Ordering::SeqCst);
        if !self.is_paused() || !all_free {
            return false;
        }
        self.retain_idle(|_| false);
        true
    }

    /// Wait while the pool is paused (counted as waiting).
    async fn wait_resumed(&self) -> Result<(), PoolError> {
        let inner = &*self.inner;
        inner.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&inner.waiting);
        loop {
            let resumed = inner.resumed.notified();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            if inner.slots.is_closed() {
                return Err(PoolError::Closed);
            }
            if !inner.paused.load(Ordering::Acquire) {
                return Ok(());
            }
            resumed.await;
        }
    }

    /// Refuse every waiting and future checkout and close the idle connections; connections
    /// handed out are closed when they come back.
    pub fn close(&self) {
        self.inner.slots.close();
        self.inner.resumed.notify_waiters();
        let idle = std::mem::take(&mut *self.inner.lock_idle());
        for conn in idle {
            self.inner.close_conn(conn);
        }
    }

    /// Change the number of slots (a configuration reload). Growing frees slots at once.
    /// Shrinking takes slots away as they come free — connections handed out finish their
    /// transactions first, and checkouts wait meanwhile as they would in a full pool of the new
    /// size — then closes the idle connections over the new size.
    pub fn resize(&self, max_size: usize) {
        let old = self.inner.max_size.swap(max_size, Ordering::SeqCst);
        if max_size > old {
            self.inner.slots.add_permits(max_size - old);
            return;
        }
        let Ok(surplus) = u32::try_from(old - max_size) else { return };
        if surplus == 0 {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            match pool.inner.slots.acquire_many(surplus).await {
                Ok(permits) => permits.forget(),
                Err(_closed) => return,
            }
            let size = pool.inner.max_size.load(Ordering::SeqCst);
            let mut kept = 0;
            let closed = pool.retain_idle(|_| {
                kept += 1;
                kept <= size
            });
            debug!(pool = %pool.inner.manager.key, max_size = size, closed, "pool resized");
        });
    }

    /// The idle connections: backend pid, age and time idle (for the console's `SHOW SERVERS`).
    pub fn idle_servers(&self) -> Vec<(i32, Duration, Duration)> {
        let now = Instant::now();
        self.inner
            .lock_idle()
            .iter()
            .map(|c| {
                (c.backend_key.0, now.saturating_duration_since(c.created), now.saturating_duration_since(c.last_used))
            })
            .collect()
    }

    pub fn is_closed(&self) -> bool {
        self.inner.slots.is_closed()
    }

    pub(super) fn manager(&self) -> &Manager {
        &self.inner.manager
    }

    /// For the maintenance task: a reference that does not keep the pool alive.
    pub(super) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(super) fn upgrade(weak: &Weak<Inner>) -> Option<ServerPool> {
        weak.upgrade().map(|inner| ServerPool { inner })
    }

    /// Close the idle connections `keep` refuses; `keep` sees them most recently returned
    /// first. Returns how many were closed.
    pub(super) fn retain_idle(&self, mut keep: impl FnMut(&ServerConn) -> bool) -> usize {
        let removed: Vec<Box<ServerConn>> = {
            let mut idle = self.inner.lock_idle();
            let all = std::mem::take(&mut *idle);
            let (mut kept, removed): (Vec<_>, Vec<_>) = all.into_iter().rev().partition(|c| keep(c));
            kept.reverse();
            *idle = kept;
            removed
        };
        let n = removed.len();
        for conn in removed {
            self.inner.close_conn(conn);
        }
        n
    }

    /// Open one connection into the idle list if a slot is free right now (no waiting client is
    /// ever delayed by it). `Ok(false)`: no free slot.
    pub(super) async fn open_idle(&self) -> Result<bool, PoolError> {
        if self.is_paused() {
            return Ok(false);
        }
        let Ok(permit) = self.inner.slots.try_acquire() else { return Ok(false) };
        let mut conn = self.inner.open().await?;
        if self.is_closed() {
            // Closed while this one logged in: nobody will take it from the idle list.
            self.inner.close_conn(conn);
            return Ok(false);
        }
        conn.last_used = Instant::now();
        self.inner.lock_idle().push(conn);
        drop(permit);
        Ok(true)
    }

    async fn wait_for_slot(&self, wait: Duration) -> Result<SemaphorePermit<'_>, PoolError> {
        let inner = &*self.inner;
        inner.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&inner.waiting);
        match tokio::time::timeout(wait, inner.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(PoolError::Closed),
            Err(_elapsed) => Err(PoolError::Timeout {
                pool: inner.manager.key.to_string(),
                waited: wait,
                max_size: inner.max_size.load(Ordering::Relaxed),
            }),
        }
    }

    fn hand_out(&self, permit: SemaphorePermit<'_>, conn: Box<ServerConn>) -> ServerObject {
        // The permit now belongs to the object: its drop gives it back (`give_back`).
        permit.forget();
        ServerObject { conn: Some(conn), pool: self.inner.clone() }
    }
}

impl Inner {
    #[allow(clippy::vec_box)]
    fn lock_idle(&self) -> MutexGuard<'_, Vec<Box<ServerConn>>> {
        // A push or pop cannot be left half done: a poisoned list is still a list.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used idle connection that `fits`, else the most recently used one.
    fn pop_idle(&self, fits: impl Fn(&ServerConn) -> bool) -> Option<Box<ServerConn>> {
        let mut idle = self.lock_idle();
        if idle.last().is_some_and(|c| fits(c)) {
            // The usual case: the most recent one fits.
            return idle.pop();
        }
        match idle.iter().rposition(|c| fits(c)) {
            Some(i) if i + 1 == idle.len() => idle.pop(),
            Some(i) => Some(idle.remove(i)),
            None => idle.pop(),
        }
    }

    /// Log in a new connection: asked of the breaker first (fail fast while the upstream is
    /// down), then tried up to `pool.retries` more times on transient failures with backoff
    /// (see `retry`). The outcome tells the breaker whether the upstream is reachable.
    async fn open(&self) -> Result<Box<ServerConn>, PoolError> {
        let breaker = &*self.manager.breaker;
        let config = &self.manager.config;
        let mut retry = 0;
        loop {
            let probe = match breaker.admit(Instant::now()) {
                Admission::Refuse(open) => return Err(PoolError::Down(open)),
                Admission::Probe(guard) => Some(guard),
                Admission::Connect => None,
            };
            let failure = match self.open_once().await {
                Ok(conn) => {
                    breaker.reachable();
                    if let Some(probe) = probe {
                        probe.finish();
                    }
                    return Ok(conn);
                }
                Err(e) => e,
            };
            if !failure.is_network() {
                // Postgres answered (an auth error, a missing database, starting up): reachable.
                breaker.reachable();
            }
            let last = probe.is_some() || retry >= config.retries || !failure.is_transient();
            if last {
                if failure.is_network() {
                    breaker.unreachable(&failure.to_string(), Instant::now(), config.breaker_probe_interval);
                }
                if let Some(probe) = probe {
                    probe.finish();
                }
                return Err(PoolError::Connect(failure));
            }
            let wait = super::retry::backoff(config.retry_backoff, retry);
            debug!(pool = %self.manager.key, error = %failure, ?wait, "opening a server connection failed: retrying");
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One attempt at logging in a new connection, bounded by `create_timeout`.
    async fn open_once(&self) -> Result<Box<ServerConn>, ServerError> {
        let conn = match tokio::time::timeout(self.create_timeout, self.manager.create()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(e),
            Err(_elapsed) => {
                return Err(ServerError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out connecting to the upstream",
                )));
            }
        };
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn close_conn(&self, conn: Box<ServerConn>) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        debug!(server = conn.id, pool = %self.manager.key, "closing server connection");
        drop(conn);
    }

    /// A connection handed out comes back (`ServerObject`'s drop).
    fn give_back(&self, mut conn: Box<ServerConn>) {
        if conn.is_usable() && !self.slots.is_closed() {
            conn.last_used = Instant::now();
            self.lock_idle().push(conn);
        } else {
            self.close_conn(conn);
        }
        // After the push: the waiter this wakes finds the connection.
        self.slots.add_permits(1);
    }
}

impl Drop for ServerObject {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

impl Deref for ServerObject {
    type Target = ServerConn;
    fn deref(&self) -> &ServerConn {
        self.conn.as_ref().expect("a handed-out connection until dropped")
    }
}

impl DerefMut for ServerObject {
    fn deref_mut(&mut self) -> &mut ServerConn {
        self.conn.as_mut().expect("a handed-out connection until dropped")
    }
}

/// A checkout waiting for a slot; counted in [`PoolStatus::waiting`] until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
