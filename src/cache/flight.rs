//! Stampede protection ("single flight"): of N concurrent identical misses, one leader goes
//! upstream and fills the cache; the followers wait for it, then look the key up again.
//!
//! The leader holds a [`Flight`] guard. Dropping it — after the fill was stored, or because
//! the leader failed, was cancelled or gave up recording — releases every follower. A follower
//! that then still misses (the fill was rejected) goes upstream itself without a new flight,
//! and a follower never waits longer than its bound: a slow leader delays others by at most
//! that much. Nothing is shared but a wake-up: the answer travels through the cache itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::key::CacheKey;

/// The flights in progress, by key.
#[derive(Debug, Default)]
pub struct Flights {
    map: Mutex<HashMap<CacheKey, watch::Receiver<()>>>,
}

/// The outcome of [`Flights::join`].
#[derive(Debug)]
pub enum Join {
    /// Nobody is filling this key: go upstream and fill; drop the guard when done.
    Leader(Flight),
    /// Someone is: wait for them, then look the key up again.
    Follower(Waiter),
}

/// The leader's guard. Releases the followers on drop.
#[derive(Debug)]
pub struct Flight {
    flights: Arc<Flights>,
    key: CacheKey,
    // Never sent on: dropping it is the signal (`changed()` errors on close).
    _done: watch::Sender<()>,
}

/// A follower's handle.
#[derive(Debug)]
pub struct Waiter {
    done: watch::Receiver<()>,
}

impl Flights {
    pub fn new() -> Arc<Flights> {
        Arc::new(Flights::default())
    }

    /// Become the leader for `key`, or a follower of the current one.
    pub fn join(self: &Arc<Self>, key: CacheKey) -> Join {
        let mut map = self.map.lock().expect("flights lock");
        if let Some(rx) = map.get(&key) {
            return Join::Follower(Waiter { done: rx.clone() });
        }
        let (tx, rx) = watch::channel(());
        map.insert(key, rx);
        Join::Leader(Flight { flights: self.clone(), key, _done: tx })
    }

    /// Flights in progress (for tests and metrics).
    pub fn len(&self) -> usize {
        self.map.lock().expect("flights lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Flight {
    pub fn key(&self) -> CacheKey {
        self.key
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Unregister first, so a newcomer after this point leads its own flight; the sender
        // is dropped right after this body, which wakes every follower.
        if let Ok(mut map) = self.flights.map.lock() {
            map.remove(&self.key);
        }
    }
}

impl Waiter {
    /// Wait until the leader is done, at most `max`. `true`: the leader finished (look the key
    /// up again); `false`: timed out (go upstream yourself).
    pub async fn wait(mut self, max: Duration) -> bool {
        tokio::time::timeout(max, async {
            // Nothing is ever sent, so this only returns when the sender is dropped.
            while self.done.changed().await.is_ok() {}
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_and_followers_released_on_drop() {
        let f = Flights::new();
        let Join::Leader(lead) = f.join(CacheKey(1)) else { panic!("first must lead") };
        let Join::Follower(w1) = f.join(CacheKey(1)) else { panic!("second must follow") };
        let Join::Follower(w2) = f.join(CacheKey(1)) else { panic!("third must follow") };
        assert!(matches!(f.join(CacheKey(2)), Join::Leader(_)), "other keys are independent");
        let t1 = tokio::spawn(w1.wait(Duration::from_secs(10)));
        let t2 = tokio::spawn(w2.wait(Duration::from_secs(10)));
        tokio::task::yield_now().await;
        drop(lead);
        assert!(t1.await.unwrap());
        assert!(t2.await.unwrap());
        assert!(f.is_empty());
        assert!(matches!(f.join(CacheKey(1)), Join::Leader(_)), "a new flight can start");
    }

    #[tokio::test]
    async fn a_follower_gives_up_after_its_bound() {
        let f = Flights::new();
        let _lead = f.join(CacheKey(7));
        let Join::Follower(w) = f.join(CacheKey(7)) else { panic!() };
        assert!(!w.wait(Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn a_follower_joining_after_the_leader_is_gone_is_not_stuck() {
        let f = Flights::new();
        let Join::Leader(lead) = f.join(CacheKey(3)) else { panic!() };
        let Join::Follower(w) = f.join(CacheKey(3)) else { panic!() };
        drop(lead);
        assert!(w.wait(Duration::from_secs(10)).await);
    }
}
