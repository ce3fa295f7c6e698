//! Waking sessions when shutdown begins. A session's loop waits on one `select!` per turn; its
//! shutdown branch is [`seen`], an atomic load of the channel's version on every poll (no waiter
//! list, no lock: polling `watch::changed()` every turn cost ~0.9k instructions per forwarded
//! transaction, DECISIONS 35). What makes a session waiting idle — in a transaction, say — poll
//! it again is its task's waker, registered here once when the session starts and woken by the
//! listener when shutdown begins — or by [`ShutdownWakers::kill`] (`KILL CLIENT` in the admin
//! console), which ends one session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures::task::AtomicWaker;
use tokio::sync::watch;

/// Ready once the shutdown channel `probe` moved (or its sender is gone).
pub fn seen(probe: &watch::Receiver<bool>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |_| if probe.has_changed().unwrap_or(true) { Poll::Ready(()) } else { Poll::Pending })
}

/// The wakers of running sessions, by session id.
#[derive(Default)]
pub struct ShutdownWakers {
    by_session: Mutex<HashMap<u64, Arc<Wake>>>,
}

/// How one session is woken, and whether it was told to end.
#[derive(Default)]
struct Wake {
    waker: AtomicWaker,
    killed: AtomicBool,
}

/// A session's registration; removed when dropped.
pub struct Registered {
    wakers: Arc<ShutdownWakers>,
    id: u64,
    wake: Arc<Wake>,
}

impl Registered {
    /// Ready once the session was killed (see [`ShutdownWakers::kill`]): one atomic load per poll.
    pub fn killed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(
            move |_| if self.wake.killed.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending },
        )
    }
}

impl ShutdownWakers {
    /// Register the task that awaits this (session `id`'s) to be woken by [`Self::wake_all`].
    pub async fn register(self: &Arc<Self>, id: u64) -> Registered {
        let wake = Arc::new(Wake::default());
        std::future::poll_fn(|cx| {
            wake.waker.register(cx.waker());
            Poll::Ready(())
        })
        .await;
        self.lock().insert(id, wake.clone());
        Registered { wakers: self.clone(), id, wake }
    }

    /// Wake every registered session (after the shutdown channel was set).
    pub fn wake_all(&self) {
        for wake in self.lock().values() {
            wake.waker.wake();
        }
    }

    /// End session `id` (its [`Registered::killed`] becomes ready). False: no such session.
    pub fn kill(&self, id: u64) -> bool {
        let Some(wake) = self.lock().get(&id).cloned() else { return false };
        wake.killed.store(true, Ordering::Release);
        wake.waker.wake();
        true
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Wake>>> {
        // A map of wakers cannot be left half-updated: a poisoned lock is still right.
        self.by_session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.wakers.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_task_is_woken_and_a_dropped_one_forgotten() {
        let wakers = Arc::new(ShutdownWakers::default());
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w, f) = (wakers.clone(), flag.clone());
        let task = tokio::spawn(async move {
            let _registered = w.register(7).await;
            // Waits for a wake-up alone: nothing else will poll this task again.
            std::future::poll_fn(|_| {
                if f.load(std::sync::atomic::Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
            })
            .await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(wakers.lock().len(), 1);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        wakers.wake_all();
        tokio::time::timeout(std::time::Duration::from_secs(2), task).await.expect("woken").unwrap();
        assert!(wakers.lock().is_empty(), "the ended session's registration is gone");
    }
}
