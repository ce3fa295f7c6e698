//! Cancel keys: each client gets its own BackendKeyData, and a CancelRequest carrying it is
//! forwarded to the server connection running that client's query at that moment — and to
//! nothing else.
//!
//! A session publishes its current server (address + the server's own key) in its slot while it
//! holds one, and clears the slot before giving the server back to the pool. While a cancel is
//! being sent the slot can't change, so a server can't change hands in the middle of a cancel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

/// The server a client's query is running on right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKey {
    pub addr: crate::server::ServerAddr,
    pub pid: i32,
    pub secret: i32,
}

/// Who a connected client is (for the admin console: `SHOW CLIENTS`, `SHOW POOLS`).
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The session's id (as in the logs).
    pub id: u64,
    pub user: String,
    pub database: String,
    pub addr: crate::client::peer::Peer,
    pub application_name: String,
    pub tls: bool,
    pub connected_at: std::time::SystemTime,
}

/// What a client is doing, as its slot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// It holds a server connection (a statement or transaction in progress, or a pinned
    /// session).
    Active,
    /// It waits for a server connection.
    Waiting,
    /// Neither.
    Idle,
}

impl ClientState {
    pub fn label(self) -> &'static str {
        match self {
            ClientState::Active => "active",
            ClientState::Waiting => "waiting",
            ClientState::Idle => "idle",
        }
    }
}

/// One client's slot.
#[derive(Default)]
pub struct CancelSlot {
    /// Who the client is, once its login is done.
    info: std::sync::OnceLock<Arc<ClientInfo>>,
    state: Mutex<SlotState>,
    /// Signalled when the last cancel in progress has been sent.
    cancels_done: tokio::sync::Notify,
    /// Signalled when a cancel arrives while the session waits for a server.
    wait_cancelled: tokio::sync::Notify,
    /// The session waits for a server for its statement (see [`CancelSlot::begin_wait`]).
    waiting: AtomicBool,
    /// A cancel arrived during that wait.
    cancelled: AtomicBool,
    /// Odd while the session has something running on a server (a request not answered
    /// yet), even while it has nothing; bumped at each change (see [`CancelSlot::running`]).
    activity: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    current: Option<ServerKey>,
    /// Cancels being sent to `current` right now; it can't change until they are done.
    sending: usize,
}

impl CancelSlot {
    /// Record who the client is (once; later calls change nothing).
    pub fn set_info(&self, info: ClientInfo) {
        let _ = self.info.set(Arc::new(info));
    }

    /// Who the client is, and what it is doing: the server it holds, if any.
    pub fn describe(&self) -> Option<(Arc<ClientInfo>, ClientState, Option<ServerKey>)> {
        let info = self.info.get()?.clone();
        let current = self.lock().current;
        let state = if current.is_some() {
            ClientState::Active
        } else if self.waiting.load(Ordering::SeqCst) {
            ClientState::Waiting
        } else {
            ClientState::Idle
        };
        Some((info, state, current))
    }

    /// Publish the server the client's queries now run on (`None`: none). Waits while a cancel
    /// to the previous one is being sent.
    pub async fn set(&self, key: Option<ServerKey>) {
        if !self.try_set(key) {
            // Boxed: keeps the wait out of the sessions' state machines.
            Box::pin(self.set_after_cancels(key)).await;
        }
    }

    /// [`CancelSlot::set`] without waiting: false (and nothing changed) while a cancel is
    /// being sent. Twice per transaction, and a cancel in progress is rare: the session's hot
    /// path calls this and awaits `set` only when it fails.
    pub fn try_set(&self, key: Option<ServerKey>) -> bool {
        let mut state = self.lock();
        if state.sending > 0 {
            return false;
        }
        state.current = key;
        true
    }

    async fn set_after_cancels(&self, key: Option<ServerKey>) {
        loop {
            let done = self.cancels_done.notified();
            tokio::pin!(done);
            // Registered before the check, so a cancel finishing in between is not missed.
            done.as_mut().enable();
            if self.try_set(key) {
                return;
            }
            done.await;
        }
    }

    /// The session has something running on a server (`true`: a request sent is not answered
    /// yet) or nothing (`false`). Call on each change only.
    pub fn set_running(&self, running: bool) {
        let was = self.activity.fetch_add(1, Ordering::SeqCst);
        debug_assert_eq!(was % 2 == 1, !running, "set_running is called on changes only");
    }

    /// What runs now, as a mark that changes once it is over (`None`: nothing runs). Postgres
    /// ignores a cancel that reaches a backend waiting for a command: a client's cancel is for
    /// what runs when it arrives, and must not reach the server once that is over (the proxy's
    /// way to the server is longer than the client's own would be, and the client may have sent
    /// its next statement meanwhile).
    pub fn running(&self) -> Option<u64> {
        let mark = self.activity.load(Ordering::SeqCst);
        (mark % 2 == 1).then_some(mark)
    }

    /// The session starts waiting for a server for its statement: a cancel from now until
    /// [`CancelSlot::end_wait`] cancels the wait (see [`CancelSlot::wait_cancelled`]).
    pub fn begin_wait(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
        self.waiting.store(true, Ordering::SeqCst);
    }

    /// The wait is over (a server was had, or not).
    pub fn end_wait(&self) {
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// Resolves once a cancel arrives during the wait.
    pub async fn wait_cancelled(&self) {
        loop {
            let cancelled = self.wait_cancelled.notified();
            tokio::pin!(cancelled);
            // Registered before the check, so a cancel arriving in between is not missed.
            cancelled.as_mut().enable();
            if self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            cancelled.await;
        }
    }

    /// Run `send` with the current server key, holding the slot so it can't change meanwhile.
    /// With no server, a session waiting for one has its wait cancelled instead.
    pub async fn with_current<F, Fut, R>(self: &Arc<Self>, send: F) -> Option<R>
    where
        F: FnOnce(ServerKey) -> Fut,
        Fut: std::future::Future<Output = R>,
    {
        let (key, _sending) = self.begin_sending()?;
        Some(send(key).await)
    }

    /// As [`CancelSlot::with_current`], but `send` runs as a task of its own, so the caller
    /// goes on at once (a session keeps its timers while a cancel waits on a frozen server).
    /// The key is taken now.
    pub fn spawn_with_current<F, Fut>(self: &Arc<Self>, send: F)
    where
        F: FnOnce(ServerKey) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Some((key, sending)) = self.begin_sending() else { return };
        let cancel = send(key);
        tokio::spawn(async move {
            let _sending = sending;
            cancel.await;
        });
    }

    /// The current server key, counted as a cancel in progress until the guard drops; `None`
    /// with no server (and a session waiting for one has its wait cancelled instead).
    fn begin_sending(self: &Arc<Self>) -> Option<(ServerKey, Sending)> {
        let mut state = self.lock();
        let Some(key) = state.current else {
            if self.waiting.load(Ordering::SeqCst) {
                self.cancelled.store(true, Ordering::SeqCst);
                self.wait_cancelled.notify_waiters();
            }
            return None;
        };
        state.sending += 1;
        // Released however the cancel ends, dropped futures included.
        Some((key, Sending(self.clone())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // Nothing can be left half-updated under this lock: a poisoned one is still right.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A cancel in progress on a slot; ends when dropped.
struct Sending(Arc<CancelSlot>);

impl Drop for Sending {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sending -= 1;
        if state.sending == 0 {
            self.0.cancels_done.notify_waiters();
        }
    }
}

/// All clients' cancel keys.
#[derive(Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<(i32, i32), Arc<CancelSlot>>>,
}

/// A registered client key; unregisters itself on drop.
pub struct CancelHandle {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
    pub slot: Arc<CancelSlot>,
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        self.registry.slots.lock().expect("cancel registry poisoned").remove(&(self.pid, self.secret));
    }
}

impl CancelRegistry {
    /// Give a new client a fresh, unique key.
    pub fn register(self: &Arc<Self>) -> CancelHandle {
        let mut rng = rand::rng();
        let mut slots = self.slots.lock().expect("cancel registry poisoned");
        loop {
            let key = (rng.random_range(1..i32::MAX), rng.random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(e) = slots.entry(key) {
                let slot = Arc::new(CancelSlot::default());
                e.insert(slot.clone());
                return CancelHandle { registry: self.clone(), pid: key.0, secret: key.1, slot };
            }
        }
    }

    /// Give a new client the key `(pid, fresh secret)`: session pooling tells a client its
    /// server's real PID.
    pub fn register_with_pid(self: &Arc<Self>, pid: i32) -> CancelHandle {
        let mut rng = rand::rng();
        let mut slots = self.slots.lock().expect("cancel registry poisoned");
        loop {
            let key = (pid, rng.random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(e) = slots.entry(key) {
                let slot = Arc::new(CancelSlot::default());
                e.insert(slot.clone());
                return CancelHandle { registry: self.clone(), pid: key.0, secret: key.1, slot };
            }
        }
    }

    /// The slot of the client with this key, if it is still connected.
    pub fn find(&self, pid: i32, secret: i32) -> Option<Arc<CancelSlot>> {
        self.slots.lock().expect("cancel registry poisoned").get(&(pid, secret)).cloned()
    }

    pub fn len(&self) -> usize {
        self.slots.lock().expect("cancel registry poisoned").len()
    }

    /// Every logged-in client (see [`CancelSlot::describe`]), by id.
    pub fn clients(&self) -> Vec<(Arc<ClientInfo>, ClientState, Option<ServerKey>)> {
        let slots: Vec<Arc<CancelSlot>> =
            self.slots.lock().expect("cancel registry poisoned").values().cloned().collect();
        let mut all: Vec<_> = slots.iter().filter_map(|s| s.describe()).collect();
        all.sort_by_key(|(info, _, _)| info.id);
        all
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_marks_change_when_what_runs_is_over() {
        let slot = CancelSlot::default();
        assert_eq!(slot.running(), None, "nothing runs at first");
        slot.set_running(true);
        let first = slot.running().expect("runs");
        slot.set_running(false);
        assert_eq!(slot.running(), None);
        slot.set_running(true);
        assert!(slot.running().is_some_and(|m| m != first), "the next statement is not the first");
    }

    #[tokio::test]
    async fn a_key_finds_only_its_own_slot_and_goes_away_on_drop() {
        let reg = Arc::new(CancelRegistry::default());
        let a = reg.register();
        let b = reg.register();
        assert_ne!((a.pid, a.secret), (b.pid, b.secret));
        assert!(Arc::ptr_eq(&reg.find(a.pid, a.secret).unwrap(), &a.slot));
        assert!(reg.find(a.pid, a.secret.wrapping_add(1)).is_none(), "wrong secret finds nothing");
        let (pid, secret) = (a.pid, a.secret);
        drop(a);
        assert!(reg.find(pid, secret).is_none());
        assert_eq!(reg.len(), 1);
    }

    #[tokio::test]
    async fn cancel_sees_the_server_of_the_moment() {
        let slot = Arc::new(CancelSlot::default());
        let seen = std::sync::Mutex::new(Vec::new());
        slot.with_current(|k| {
            seen.lock().unwrap().push(k);
            async {}
        })
        .await;
        assert!(seen.lock().unwrap().is_empty(), "no server, nothing sent");
        let key =
            ServerKey { addr: crate::server::ServerAddr::Tcp("127.0.0.1:5432".parse().unwrap()), pid: 7, secret: 9 };
        slot.set(Some(key)).await;
        slot.with_current(|k| {
            seen.lock().unwrap().push(k);
            async {}
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![key]);
    }

    #[tokio::test]
    async fn the_server_does_not_change_while_a_cancel_is_being_sent() {
        let slot = Arc::new(CancelSlot::default());
        let key =
            ServerKey { addr: crate::server::ServerAddr::Tcp("127.0.0.1:5432".parse().unwrap()), pid: 7, secret: 9 };
        slot.set(Some(key)).await;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = {
            let slot = slot.clone();
            tokio::spawn(async move {
                slot.with_current(|_| async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                })
                .await;
            })
        };
        started_rx.await.unwrap();
        let release = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.set(None).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!release.is_finished(), "the slot changed while a cancel was being sent");
        finish_tx.send(()).unwrap();
        sender.await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), release).await.unwrap().unwrap();
        let mut seen = Vec::new();
        slot.with_current(|k| {
            seen.push(k);
            async {}
        })
        .await;
        assert!(seen.is_empty(), "the slot is cleared once the cancel was sent");
    }

    #[tokio::test]
    async fn a_spawned_cancel_returns_at_once_and_holds_the_server_until_sent() {
        let slot = Arc::new(CancelSlot::default());
        let key =
            ServerKey { addr: crate::server::ServerAddr::Tcp("127.0.0.1:5432".parse().unwrap()), pid: 7, secret: 9 };
        slot.set(Some(key)).await;
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        slot.spawn_with_current(move |k| async move {
            seen_tx.send(k).unwrap();
            finish_rx.await.unwrap();
        });
        // The caller is back before the cancel finished; the key was the one of the moment.
        assert_eq!(seen_rx.await.unwrap(), key);
        let release = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.set(None).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!release.is_finished(), "the slot changed while the spawned cancel was being sent");
        finish_tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), release).await.unwrap().unwrap();
    }
}
