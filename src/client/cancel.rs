//! Cancel keys: each client gets its own BackendKeyData, and a CancelRequest carrying it is
//! forwarded to the server connection running that client's query at that moment — and to
//! nothing else.
//!
//! A session publishes its current server (address + the server's own key) in its slot while it
//! holds one, and clears the slot before giving the server back to the pool. The slot's lock is
//! held while a cancel is being sent, so a server can't change hands in the middle of a cancel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::Rng;

/// The server a client's query is running on right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKey {
    pub addr: SocketAddr,
    pub pid: i32,
    pub secret: i32,
}

/// One client's slot.
#[derive(Default)]
pub struct CancelSlot {
    current: tokio::sync::Mutex<Option<ServerKey>>,
}

impl CancelSlot {
    pub async fn set(&self, key: Option<ServerKey>) {
        // Twice per transaction, and a cancel in progress is rare: try the lock before queueing.
        match self.current.try_lock() {
            Ok(mut current) => *current = key,
            // Boxed: keeps the lock's future out of the sessions' state machines.
            Err(_) => *Box::pin(self.current.lock()).await = key,
        }
    }

    /// Run `send` with the current server key, holding the slot so it can't change meanwhile.
    pub async fn with_current<F, Fut>(&self, send: F)
    where
        F: FnOnce(ServerKey) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let guard = self.current.lock().await;
        if let Some(key) = *guard {
            send(key).await;
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

    /// The slot of the client with this key, if it is still connected.
    pub fn find(&self, pid: i32, secret: i32) -> Option<Arc<CancelSlot>> {
        self.slots.lock().expect("cancel registry poisoned").get(&(pid, secret)).cloned()
    }

    pub fn len(&self) -> usize {
        self.slots.lock().expect("cancel registry poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let slot = CancelSlot::default();
        let seen = std::sync::Mutex::new(Vec::new());
        slot.with_current(|k| {
            seen.lock().unwrap().push(k);
            async {}
        })
        .await;
        assert!(seen.lock().unwrap().is_empty(), "no server, nothing sent");
        let key = ServerKey { addr: "127.0.0.1:5432".parse().unwrap(), pid: 7, secret: 9 };
        slot.set(Some(key)).await;
        slot.with_current(|k| {
            seen.lock().unwrap().push(k);
            async {}
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![key]);
    }
}
