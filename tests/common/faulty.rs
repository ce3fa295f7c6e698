//! A TCP relay between pgcached and Postgres that a test can break: [`FaultyLink::cut`] closes
//! every connection through it at once (mid-row if rows are flowing), [`FaultyLink::stall`]
//! holds every byte in both directions until released (a frozen network or host). New
//! connections are accepted all along.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay to `127.0.0.1:<upstream port>`, listening on [`FaultyLink::port`].
pub struct FaultyLink {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl FaultyLink {
    /// Starts relaying to `upstream` on a free port (tasks on the current runtime).
    pub async fn start(upstream: u16) -> FaultyLink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (stall, cut) = (stalled.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (stall, mut cut) = (stall.clone(), cut.subscribe());
                tokio::spawn(async move {
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, stall.clone()) => {}
                        _ = pump(sr, cw, stall) => {}
                        _ = cut.changed() => {}
                    }
                    // Both halves of both sockets drop here: the connection is cut.
                });
            }
        });
        FaultyLink { port, stalled, cuts }
    }

    /// Closes every connection through the relay now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Holds (`true`) or releases (`false`) every byte through the relay.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either end closes, holding bytes while `stalled`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                while stalled.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
