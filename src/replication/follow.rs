//! Following one database's stream: apply each committed transaction at its Commit, confirm
//! only what was applied, and prove freshness — or hold the database's answers.
//!
//! **Freshness.** A probe task asks the control connection for `pg_current_wal_insert_lsn()`
//! every `max_lag / 8` (noting the instant `t0` *before* asking), then asks the walsender for a
//! keepalive. A commit acknowledged to anyone before `t0` was inserted before that position
//! (`synchronous_commit` on or off: the walsender decodes it once flushed, which the bound then
//! includes); once the stream has
//! delivered — and we have applied — everything up to the position (a Commit's end, or a
//! keepalive's "sent up to" between transactions), every such commit is invalidated: the
//! database is fresh as of `t0`. Answers are served only while `now < fresh_as_of + max_lag`;
//! a timer holds the database the moment that stops being true, and the next probe reached
//! releases it. So a served answer is never staler than `max_lag`, whether the stream lags,
//! stalls or died silently.
//!
//! The loop ends with an error when the connection, the decoding or the probe fails: the
//! caller then holds and flushes the database and reconnects.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{debug, info};

use super::apply::{Footprint, Learned, RelationMap};
use super::decode::{self, CopyMessage, Lsn, Message};
use super::stream::{self, Streaming};
use super::{Context, ReplicationError, StreamState};
use crate::cache::InvalidationCause;
use crate::wire::backend::tag;

/// How often applied positions are confirmed when nothing asks sooner.
const CONFIRM_EVERY: Duration = Duration::from_millis(100);
/// Messages to the walsender not yet written (status updates: ~20 a second). Full means the
/// walsender has not read for seconds.
const OUT_QUEUE: usize = 64;

/// Why following ended without an error.
pub enum Ended {
    Stopped,
}

/// Follow `streaming` for `db` until stopped or failed.
pub async fn follow(
    ctx: &Context,
    db: &str,
    state: &Arc<StreamState>,
    mut streaming: Streaming,
    control: Client,
    relations: &mut RelationMap,
    stop: &mut oneshot::Receiver<()>,
) -> Result<Ended, ReplicationError> {
    let max_lag = ctx.config.max_lag;
    let block: i32 = control.query_one("SELECT current_setting('wal_block_size')::int", &[]).await?.get(0);
    let block_size = u64::try_from(block).unwrap_or(8192).max(1);
    let (probe_tx, mut probes) = mpsc::channel(16);
    let prober =
        tokio::spawn(probe(control, probe_tx, (max_lag / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))));
    let _prober = AbortOnDrop(prober.abort_handle());
    let mut f = Follower {
        ctx,
        db,
        state,
        pending: VecDeque::new(),
        fresh_as_of: None,
        held: true,
        applied: 0,
        confirmed: 0,
        tx: None,
        relations,
        block_size,
        delay: ctx.apply_delay.with_label_values(&[db]),
    };
    let io = &mut streaming.io;
    // Writes go through a queue and a task of their own, so that nothing here waits on the
    // socket: the hold timer below must fire on time even if the walsender stops reading.
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    let writer = std::mem::replace(&mut io.writer, Box::new(tokio::io::sink()));
    let writer = tokio::spawn(stream::writer(writer, queue));
    let _writer_guard = AbortOnDrop(writer.abort_handle());
    let mut confirm_tick = tokio::time::interval(CONFIRM_EVERY);
    loop {
        let deadline = f.fresh_as_of.map(|t| t + max_lag);
        tokio::select! {
            _ = &mut *stop => {
                let _ = out.try_send(Bytes::from_static(stream::GOODBYE));
                drop(out);
                let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
                return Ok(Ended::Stopped);
            }
            frame = io.read_frame(crate::server::MAX_SERVER_FRAME) => {
                let frame = frame?;
                match frame.tag() {
                    tag::COPY_DATA => {
                        if let Some(reply) = f.copy_data(frame.body())? {
                            send(&out, stream::status(reply, false))?;
                            f.confirmed = reply;
                        }
                    }
                    tag::ERROR_RESPONSE => return Err(crate::server::ServerError::from_error_frame(frame).into()),
                    tag::NOTICE_RESPONSE => {}
                    other => return Err(ReplicationError::Ended(char::from(other))),
                }
            }
            probe = probes.recv() => {
                let Some((t0, lsn)) = probe else { return Err(ReplicationError::ProbeLost) };
                f.pending.push_back((t0, lsn));
                // Ask where the walsender is: its keepalive may prove the probe reached.
                send(&out, stream::status(f.applied, true))?;
                f.confirmed = f.applied;
            }
            _ = sleep_until_opt(deadline), if !f.held => {
                f.held = true;
                ctx.cache.hold(db);
                state.fell_behind();
                info!(database = %db, max_lag = ?max_lag, "replication: stream behind the bound; the database's answers are not served");
            }
            _ = confirm_tick.tick() => {
                if f.applied > f.confirmed {
                    send(&out, stream::status(f.applied, false))?;
                    f.confirmed = f.applied;
                }
                state.set_lag(f.fresh_as_of.map(|t| t.elapsed()));
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Queue `bytes` for the walsender. A full queue means it stopped reading what we send: the
/// stream counts as lost (as a closed one does).
fn send(out: &mpsc::Sender<Bytes>, bytes: Bytes) -> Result<(), ReplicationError> {
    out.try_send(bytes).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => ReplicationError::NotReading,
        mpsc::error::TrySendError::Closed(_) => ReplicationError::Server(crate::server::ServerError::Closed),
    })
}

/// Aborts a helper task (probe, writer) with the stream.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Send `(t0, flush position)` every `every` until the control connection fails (the channel
/// then closes, and the stream counts as lost: without probes, freshness cannot be proved).
async fn probe(control: Client, out: mpsc::Sender<(Instant, Lsn)>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        let row = match control.query_one("SELECT pg_current_wal_insert_lsn()::text", &[]).await {
            Ok(row) => row,
            Err(e) => {
                debug!(error = %e, "replication probe failed");
                return;
            }
        };
        let Some(lsn) = decode::parse_lsn(row.get(0)) else { return };
        if out.send((t0, lsn)).await.is_err() {
            return;
        }
    }
}

struct Follower<'a> {
    ctx: &'a Context,
    db: &'a str,
    state: &'a Arc<StreamState>,
    /// Probes not reached yet, oldest first.
    pending: VecDeque<(Instant, Lsn)>,
    fresh_as_of: Option<Instant>,
    held: bool,
    /// Everything up to here is applied (what may be confirmed).
    applied: Lsn,
    confirmed: Lsn,
    /// The open transaction's changes.
    tx: Option<Footprint>,
    relations: &'a mut RelationMap,
    /// `wal_block_size`: WAL pages start with a header no record occupies.
    block_size: u64,
    /// Commit (server clock) to invalidated (ours), per transaction that changed rows.
    delay: prometheus::Histogram,
}

/// Seconds from a commit time (microseconds since 2000-01-01, the server's clock) to now; 0
/// when the clocks disagree the other way.
fn since_commit(commit_time: i64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let pg_epoch = i64::try_from(decode::PG_EPOCH_MICROS).unwrap_or(0);
    let micros = now.saturating_sub(pg_epoch).saturating_sub(commit_time).max(0);
    micros as f64 / 1e6
}

impl Follower<'_> {
    /// Handle one CopyData; `Some(lsn)`: the walsender asked for a reply now.
    fn copy_data(&mut self, body: &[u8]) -> Result<Option<Lsn>, ReplicationError> {
        match decode::copy_message(body)? {
            CopyMessage::XLogData { data, .. } => {
                self.message(decode::message(data)?);
                Ok(None)
            }
            CopyMessage::Keepalive { end, reply } => {
                if self.tx.is_none() {
                    // Between transactions everything the walsender sent is applied.
                    self.applied = self.applied.max(end);
                    self.state.set_applied(self.applied);
                    self.reached(end);
                }
                Ok(reply.then_some(self.applied))
            }
        }
    }

    fn message(&mut self, m: Message<'_>) {
        let map = &self.relations;
        match m {
            Message::Begin { .. } => self.tx = Some(Footprint::default()),
            Message::Relation(rel) => match self.relations.learn(&rel) {
                // New: first described since pgcached started following the database; what it
                // looked like before is not known (README: DDL with no row change is not seen).
                Learned::Same | Learned::New => {}
                Learned::Changed => {
                    // DDL around the proxy: the catalog's answers about it may be wrong now.
                    if let Some(catalog) = self.ctx.catalogs.for_database(self.db) {
                        catalog.refresh();
                    }
                    self.ctx.cache.flush_database(self.db, InvalidationCause::Ddl);
                }
            },
            Message::Insert { relation, new } => self.tx.get_or_insert_default().insert(map, relation, &new),
            Message::Update { relation, old, new } => {
                self.tx.get_or_insert_default().update(map, relation, old.as_ref(), &new)
            }
            Message::Delete { relation, old } => self.tx.get_or_insert_default().delete(map, relation, &old),
            Message::Truncate { relations } => self.tx.get_or_insert_default().truncate(map, &relations),
            Message::Commit { end_lsn, commit_time } => {
                if let Some(fp) = self.tx.take() {
                    self.state.committed(fp.changes());
                    if !fp.is_empty() {
                        fp.apply(&self.ctx.cache, self.db);
                        self.delay.observe(since_commit(commit_time));
                    }
                }
                self.applied = self.applied.max(end_lsn);
                self.state.set_applied(self.applied);
                self.reached(end_lsn);
            }
            Message::Other => {}
        }
    }

    /// Everything up to `position` is applied: probes at or before it are reached. A record
    /// that ends on a page boundary leaves the insert position past the next page's header
    /// (at most 40 bytes; no record is that short), which counts as reached too — or an idle
    /// server would never be proved fresh.
    fn reached(&mut self, position: Lsn) {
        let position = if position % self.block_size == 0 { position + 40 } else { position };
        let mut newest = None;
        while let Some(&(t0, lsn)) = self.pending.front() {
            if lsn > position {
                break;
            }
            newest = Some(t0);
            self.pending.pop_front();
        }
        let Some(t0) = newest else { return };
        self.fresh_as_of = Some(self.fresh_as_of.map_or(t0, |f| f.max(t0)));
        self.state.set_lag(Some(t0.elapsed()));
        if self.held && t0.elapsed() < self.ctx.config.max_lag {
            self.held = false;
            self.ctx.cache.release(self.db);
            self.state.set_held(false);
            debug!(database = %self.db, "replication: caught up; serving the database's answers");
        }
    }
}
