//! A TCP relay between pgcached and Postgres that a test can break: [`FaultyLink::cut`] closes
//! every connection through it at once (mid-row if rows are flowing), [`FaultyLink::stall`]
//! holds every byte in both directions until released (a frozen network or host),
//! [`FaultyLink::fail_next`] kills the next connection that sends anything (a backend that died
//! while idle in the pool: the proxy learns it only when it sends its next statement),
//! [`FaultyLink::delay_new`] holds a new connection's bytes for a while (a slow way to the
//! server). New connections are accepted all along.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay to `127.0.0.1:<upstream port>`, listening on [`FaultyLink::port`].
pub struct FaultyLink {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    /// The [`Death`] armed by [`FaultyLink::fail_next`] (0: none).
    trip: Arc<AtomicU8>,
    /// Milliseconds a new connection's bytes wait (see [`FaultyLink::delay_new`]).
    delay_ms: Arc<AtomicU64>,
}

/// How the connection [`FaultyLink::fail_next`] picks dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// Closed without a word.
    Close = 1,
    /// `FATAL 57P01` (as a backend terminated by a shutdown says), then closed.
    Fatal = 2,
}

impl FaultyLink {
    /// Starts relaying to `upstream` on a free port (tasks on the current runtime).
    pub async fn start(upstream: u16) -> FaultyLink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let trip = Arc::new(AtomicU8::new(0));
        let (cuts, _) = watch::channel(0u64);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (stall, cut, tripping, delaying) = (stalled.clone(), cuts.clone(), trip.clone(), delay_ms.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (stall, mut cut, trip) = (stall.clone(), cut.subscribe(), tripping.clone());
                let delay = Duration::from_millis(delaying.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let (cr, mut cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let died = tokio::select! {
                        d = pump(cr, sw, stall.clone(), Some(&trip)) => d,
                        _ = pump(sr, &mut cw, stall, None) => 0,
                        _ = cut.changed() => 0,
                    };
                    if died == Death::Fatal as u8 {
                        let _ = cw.write_all(&fatal_57p01()).await;
                    }
                    // Both halves of both sockets drop here: the connection is cut.
                });
            }
        });
        FaultyLink { port, stalled, cuts, trip, delay_ms }
    }

    /// Closes every connection through the relay now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// The next connection that sends anything towards Postgres dies as `death` says; what it
    /// sent is not passed on. The proxy's control-plane connections (`application_name`
    /// "pgcached control": catalog look-ups that may run in the background at any time) are
    /// not picked: the tests break the data path.
    pub fn fail_next(&self, death: Death) {
        self.trip.store(death as u8, Ordering::SeqCst);
    }

    /// Connections made from now on pass nothing for `delay` (those open go on as they are).
    pub fn delay_new(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Holds (`true`) or releases (`false`) every byte through the relay.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

/// The ErrorResponse of a backend terminated by a shutdown.
fn fatal_57p01() -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "57P01"),
        (b'M', "terminating connection due to administrator command"),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Copies `from` to `to` until either end closes, holding bytes while `stalled`. With `trip`
/// armed (see [`FaultyLink::fail_next`]), the first bytes read are dropped and the [`Death`]
/// is returned (0: the connection ended by itself).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    stalled: Arc<AtomicBool>,
    trip: Option<&AtomicU8>,
) -> u8 {
    let mut buf = vec![0u8; 64 * 1024];
    // Known from the startup message, the connection's first bytes.
    let mut control = None;
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return 0,
            Ok(n) => {
                let control = *control.get_or_insert_with(|| buf[..n].windows(16).any(|w| w == b"pgcached control"));
                let trip = trip.filter(|_| !control);
                if let Some(death) = trip.map(|t| t.swap(0, Ordering::SeqCst)).filter(|d| *d != 0) {
                    return death;
                }
                while stalled.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return 0;
                }
            }
        }
    }
}
