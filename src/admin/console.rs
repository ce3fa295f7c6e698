//! The admin console: `psql -h HOST -p PORT -U <admin user> pgcached`. A client that logs in to
//! the virtual database `admin.database` (default `pgcached`) — authenticated like any client,
//! and one of `admin.users` — talks to this loop instead of a session: each simple-protocol
//! query is one or more commands (`SHOW CLIENTS; SHOW POOLS`), each answered with a result set
//! or a command tag ([`super::commands`]). The extended protocol is refused (0A000) until the
//! next Sync, as PgBouncer's console does; a malformed frame ends the connection with 08P01.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info};

use super::commands;
use crate::client::cancel::CancelHandle;
use crate::client::startup::BoxStream;
use crate::session::live::Live;
use crate::wire::build::{self, Severity};
use crate::wire::frame::take_frame;
use crate::wire::frontend::{self, tag};

/// SQLSTATE of a frame that breaks the protocol.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE of the extended protocol, which the console does not speak.
const FEATURE_NOT_SUPPORTED: &str = "0A000";

/// One admin client, after its login.
pub struct Console {
    /// The shared parts' current generation (the console reloads it).
    pub live: Arc<Live>,
    pub stream: BoxStream,
    pub rbuf: BytesMut,
    pub user: String,
    /// Its cancel key (registered so that `SHOW CLIENTS` lists it; nothing to cancel).
    pub cancel: CancelHandle,
}

impl Console {
    /// Serve the client until it leaves, the proxy shuts down, or it breaks the protocol.
    pub async fn run(mut self) -> std::io::Result<()> {
        let shared = self.live.shared();
        let max = shared.config.limits.max_message_size.as_u64() as usize;
        let mut shutdown = shared.shutdown.clone();
        drop(shared);
        // The extended protocol was refused; the rest of its batch is skipped until Sync.
        let mut skipping = false;
        loop {
            let mut out = BytesMut::new();
            loop {
                let frame = match take_frame(&mut self.rbuf, max) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        build::error_response(&mut out, Severity::Fatal, PROTOCOL_VIOLATION, &e.to_string());
                        self.stream.write_all(&out).await?;
                        return Ok(());
                    }
                };
                match frame.tag() {
                    tag::TERMINATE => {
                        self.stream.write_all(&out).await?;
                        return Ok(());
                    }
                    tag::QUERY => {
                        let text = frontend::query_text(frame.body()).map(String::from_utf8_lossy).unwrap_or_default();
                        info!(user = %self.user, command = %text.trim(), "admin console");
                        commands::run(&self.live, &text, &mut out).await;
                        build::ready_for_query(&mut out, b'I');
                    }
                    tag::SYNC => {
                        skipping = false;
                        build::ready_for_query(&mut out, b'I');
                    }
                    tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE | tag::FLUSH => {
                        if !skipping {
                            skipping = true;
                            build::error_response(
                                &mut out,
                                Severity::Error,
                                FEATURE_NOT_SUPPORTED,
                                "the pgcached admin console speaks the simple query protocol only",
                            );
                        }
                    }
                    other => {
                        let message = format!("unexpected message type {:?} on the admin console", other as char);
                        build::error_response(&mut out, Severity::Fatal, PROTOCOL_VIOLATION, &message);
                        self.stream.write_all(&out).await?;
                        return Ok(());
                    }
                }
            }
            if !out.is_empty() {
                self.stream.write_all(&out).await?;
                self.stream.flush().await?;
            }
            crate::wire::frame::reserve_for_next(&mut self.rbuf);
            tokio::select! {
                read = self.stream.read_buf(&mut self.rbuf) => {
                    if read? == 0 {
                        debug!(user = %self.user, "admin client left");
                        return Ok(());
                    }
                }
                _ = async {
                    if shutdown.wait_for(|down| *down).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => {
                    let mut out = BytesMut::new();
                    build::error_response(&mut out, Severity::Fatal, "57P01", "pgcached is shutting down");
                    let _ = self.stream.write_all(&out).await;
                    return Ok(());
                }
            }
        }
    }
}
