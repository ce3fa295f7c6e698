//! One replication connection's setup, a step per function: log in with
//! `replication=database` (the data path's TCP, TLS and authentication: `server::connect`),
//! create the slot, start streaming `pgoutput` from the publication. What follows the
//! CopyBothResponse is `follow.rs`'s. Also the publication's creation, over the control plane.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_postgres::Client;

use super::ReplicationError;
use super::decode::status_update;
use crate::config::ReplicationConfig;
use crate::server::{ServerConn, ServerError, ServerIo, UpstreamTarget};
use crate::wire::Frame;
use crate::wire::backend::tag;

/// `application_name` of the replication connections (what `pg_stat_replication` shows).
pub const APPLICATION_NAME: &str = "pgcached-replication";

/// Largest frame accepted from the walsender (a row change carries whole rows).
const MAX_FRAME: usize = crate::server::MAX_SERVER_FRAME;

/// A replication connection in CopyBoth mode, and the slot it streams from.
pub struct Streaming {
    pub io: ServerIo,
    pub slot: String,
}

/// `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The slot this connection uses: a permanent `<slot>_<database>` when configured (database
/// name reduced to what slot names allow), else a temporary one unique to this process and
/// connection — so that any number of pgcached instances each have their own.
pub fn slot_name(cfg: &ReplicationConfig, database: &str) -> String {
    match &cfg.slot {
        Some(prefix) => {
            let db: String = database
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
                .collect();
            let mut name = format!("{prefix}_{db}");
            name.truncate(63);
            name
        }
        None => format!("pgcached_{}_{:08x}", std::process::id(), rand::random::<u32>()),
    }
}

/// Make sure the publication exists in the database `control` is connected to: reuse it, or
/// create it `FOR ALL TABLES` (a concurrent creation by another instance is fine).
pub async fn ensure_publication(control: &Client, publication: &str) -> Result<(), ReplicationError> {
    let exists = control.query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication]).await?;
    if exists.is_some() {
        return Ok(());
    }
    match control.batch_execute(&format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_ident(publication))).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => Ok(()),
        Err(e) => Err(ReplicationError::Publication { publication: publication.to_owned(), source: e }),
    }
}

/// Log in, create the slot, start streaming.
pub async fn open(
    target: &UpstreamTarget,
    user: &str,
    database: &str,
    cfg: &ReplicationConfig,
) -> Result<Streaming, ReplicationError> {
    let mut io =
        ServerConn::connect_replication(target, user, database, target.url_password(), APPLICATION_NAME).await?;
    let slot = slot_name(cfg, database);
    create_slot(&mut io, &slot, cfg.slot.is_none()).await?;
    start(&mut io, &slot, &cfg.publication).await?;
    Ok(Streaming { io, slot })
}

async fn create_slot(io: &mut ServerIo, slot: &str, temporary: bool) -> Result<(), ReplicationError> {
    let sql = format!(
        "CREATE_REPLICATION_SLOT {} {}LOGICAL pgoutput NOEXPORT_SNAPSHOT",
        quote_ident(slot),
        if temporary { "TEMPORARY " } else { "" }
    );
    match command(io, &sql).await {
        Ok(()) => Ok(()),
        // A permanent slot left by an earlier run: stream from where it was confirmed.
        Err(ServerError::Postgres { code, .. }) if !temporary && code == "42710" => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn start(io: &mut ServerIo, slot: &str, publication: &str) -> Result<(), ReplicationError> {
    let names = quote_ident(publication).replace('\'', "''");
    let sql = format!(
        "START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '1', publication_names '{names}')",
        quote_ident(slot)
    );
    send_query(io, &sql).await?;
    loop {
        let frame = io.read_frame(MAX_FRAME).await?;
        match frame.tag() {
            tag::COPY_BOTH => return Ok(()),
            tag::ERROR_RESPONSE => return Err(ServerError::from_error_frame(frame).into()),
            tag::NOTICE_RESPONSE | tag::PARAMETER_STATUS => {}
            other => return Err(unexpected(other, "START_REPLICATION").into()),
        }
    }
}

/// Run one replication command whose rows do not matter, up to ReadyForQuery.
async fn command(io: &mut ServerIo, sql: &str) -> Result<(), ServerError> {
    send_query(io, sql).await?;
    let mut failed = None;
    loop {
        let frame: Frame = io.read_frame(MAX_FRAME).await?;
        match frame.tag() {
            tag::ERROR_RESPONSE => failed = Some(ServerError::from_error_frame(frame)),
            tag::READY_FOR_QUERY => return failed.map_or(Ok(()), Err),
            tag::ROW_DESCRIPTION | tag::DATA_ROW | tag::COMMAND_COMPLETE | tag::NOTICE_RESPONSE => {}
            tag::PARAMETER_STATUS => {}
            other => return Err(unexpected(other, sql)),
        }
    }
}

async fn send_query(io: &mut ServerIo, sql: &str) -> Result<(), ServerError> {
    let mut buf = BytesMut::new();
    buf.put_u8(b'Q');
    buf.put_u32(u32::try_from(4 + sql.len() + 1).map_err(|_| ServerError::Protocol("query too long".into()))?);
    buf.put_slice(sql.as_bytes());
    buf.put_u8(0);
    io.write_all(&buf).await
}

fn unexpected(tag: u8, during: &str) -> ServerError {
    ServerError::Protocol(format!("unexpected message '{}' during {during}", char::from(tag)))
}

/// What leaves streaming politely: CopyDone, then Terminate. The walsender exits at once and
/// its temporary slot goes with it.
pub const GOODBYE: &[u8] = &[b'c', 0, 0, 0, 4, b'X', 0, 0, 0, 4];

/// Write what the follower queues, in order, until the queue closes or a write fails (the
/// follower then finds the queue closed). Writes never block the follower: a walsender that
/// stops reading fills the queue instead, which the follower treats as a lost stream.
pub async fn writer(
    mut w: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    mut queue: tokio::sync::mpsc::Receiver<Bytes>,
) {
    use tokio::io::AsyncWriteExt;
    while let Some(bytes) = queue.recv().await {
        if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

/// A standby status update confirming everything up to `flushed`; `reply`: ask for a
/// keepalive back.
pub fn status(flushed: u64, reply: bool) -> Bytes {
    let mut buf = BytesMut::new();
    status_update(&mut buf, flushed, reply);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_slots_are_unique_and_permanent_ones_per_database() {
        let cfg = ReplicationConfig::default();
        let (a, b) = (slot_name(&cfg, "app"), slot_name(&cfg, "app"));
        assert_ne!(a, b, "two connections, two slots");
        assert!(a.starts_with(&format!("pgcached_{}_", std::process::id())));
        let named = ReplicationConfig { slot: Some("cache".into()), ..ReplicationConfig::default() };
        assert_eq!(slot_name(&named, "My-DB"), "cache_my_db");
        assert_eq!(slot_name(&named, "My-DB"), slot_name(&named, "My-DB"));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
