//! Client frames: forward them to the server (getting one first if needed), keep the
//! bookkeeping that tells when the server can be released, and answer locally when the proxy
//! itself cannot serve the request (no server available).

use tracing::{debug, warn};

use super::params::{self, SetEffect};
use super::{Flow, Session, SessionError};
use crate::config::PoolMode;
use crate::pool::PoolError;
use crate::wire::Frame;
use crate::wire::build::{self, Severity};
use crate::wire::frame::take_frame;
use crate::wire::frontend::{self, tag};

impl Session {
    /// Handle every whole frame the client has sent.
    pub(super) async fn on_client_data(&mut self) -> Result<Flow, SessionError> {
        let max = self.shared.config.limits.max_message_size.as_u64() as usize;
        loop {
            let frame = match take_frame(&mut self.client_rbuf, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(Flow::Continue),
                Err(e) => {
                    warn!(error = %e, "client sent a malformed or oversized message");
                    build::error_response(&mut self.to_client, Severity::Fatal, "08P01", &format!("pgcached: {e}"));
                    return Ok(Flow::Close);
                }
            };
            if self.on_client_frame(frame).await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
    }

    async fn on_client_frame(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let t = frame.tag();
        if t == tag::TERMINATE {
            return Ok(Flow::Close);
        }
        if self.skip_until_sync {
            if t == tag::SYNC {
                self.skip_until_sync = false;
                build::ready_for_query(&mut self.to_client, self.tx_status);
            }
            return Ok(Flow::Continue);
        }
        if self.server.is_none() {
            if matches!(t, tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL) {
                // Leftovers of a COPY whose server is gone: Postgres ignores them too.
                return Ok(Flow::Continue);
            }
            if t == tag::FLUSH {
                return Ok(Flow::Continue);
            }
            if self.draining {
                build::error_response(
                    &mut self.to_client,
                    Severity::Fatal,
                    "57P01",
                    "terminating connection because pgcached is shutting down",
                );
                return Ok(Flow::Close);
            }
            if let Err(e) = self.ensure_server().await {
                return Ok(self.refuse(t, &e));
            }
        }
        self.track(&frame);
        self.to_server.extend_from_slice(frame.as_bytes());
        Ok(Flow::Continue)
    }

    /// Bookkeeping for a frame about to be forwarded.
    fn track(&mut self, frame: &Frame) {
        match frame.tag() {
            tag::QUERY => {
                self.pending += 1;
                if let Some(text) = frontend::query_text(frame.body()) {
                    self.track_query_text(text);
                }
            }
            tag::SYNC => {
                self.pending += 1;
                self.unsynced = false;
            }
            tag::FUNCTION_CALL => self.pending += 1,
            tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE => self.unsynced = true,
            _ => {}
        }
    }

    /// SET/RESET of parameters the server does not report, and statements that tie the client
    /// to its server connection.
    fn track_query_text(&mut self, text: &[u8]) {
        let Ok(text) = std::str::from_utf8(text) else { return };
        if let Some(effect) = params::parse_set(text) {
            self.pending_sets.push(effect);
            return;
        }
        if contains_ignore_case(text, "set") {
            // A SET the proxy cannot follow (multi-statement string, set_config(), …): make
            // sure it cannot leak to the next client of this server connection.
            self.reset_on_release = true;
        }
        let head = text.trim_start().get(..7).unwrap_or("").to_ascii_uppercase();
        if self.mode == PoolMode::Transaction && head.starts_with("LISTEN") && !self.pinned {
            debug!(pool = %self.key, "LISTEN pins the client to its server connection");
            self.pinned = true;
        }
    }

    /// Apply SETs whose transaction ended (called at ReadyForQuery).
    pub(super) fn settle_sets(&mut self) {
        match self.tx_status {
            b'I' if self.rolled_back => self.pending_sets.clear(),
            b'I' => {
                for effect in std::mem::take(&mut self.pending_sets) {
                    let dirty = &mut self.server.as_mut().expect("settled with a server").obj.dirty;
                    match effect {
                        SetEffect::Set { name, value } => {
                            self.wanted.set(&name, &value);
                            dirty.set(&name, &value);
                        }
                        SetEffect::Reset { name } => {
                            self.wanted.remove(&name);
                            dirty.remove(&name);
                        }
                        SetEffect::ResetAll => {
                            self.wanted.clear();
                            dirty.clear();
                        }
                    }
                }
            }
            _ => {}
        }
        self.rolled_back = false;
    }

    /// The proxy could not get a server for this message: answer it the way Postgres would
    /// answer a failing statement, keeping the session usable.
    fn refuse(&mut self, t: u8, err: &PoolError) -> Flow {
        warn!(pool = %self.key, error = %err, "no server connection for a client request");
        build::error_response(&mut self.to_client, Severity::Error, err.sqlstate(), &err.to_string());
        match t {
            tag::QUERY | tag::FUNCTION_CALL | tag::SYNC => build::ready_for_query(&mut self.to_client, self.tx_status),
            _ => self.skip_until_sync = true,
        }
        Flow::Continue
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}
