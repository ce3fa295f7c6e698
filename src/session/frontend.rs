//! Client frames: forward them to the server (getting one first if needed), note in the reply
//! queue what each will be answered with, and answer locally what the proxy answers itself
//! (named statements the server already has, Close of a client statement, requests that
//! cannot get a server).

use bytes::{BufMut, Bytes, BytesMut};
use tracing::{debug, warn};

use super::params::{self, SetEffect};
use super::queue::{Entry, Kind, OnFail};
use super::statements::Statement;
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
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "client sent a malformed or oversized message");
                    return Ok(self.protocol_violation(&e.to_string()));
                }
            };
            if self.on_client_frame(frame).await? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        self.emit_ready_synth();
        Ok(Flow::Continue)
    }

    async fn on_client_frame(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let t = frame.tag();
        if t == tag::TERMINATE {
            return Ok(Flow::Close);
        }
        if self.skip_until_sync {
            if t == tag::SYNC {
                self.skip_until_sync = false;
                if self.server.is_some() {
                    self.forward(&frame, Entry::forward(Kind::Sync));
                    self.unsynced = false;
                } else {
                    self.synth_ready();
                }
            }
            return Ok(Flow::Continue);
        }
        if self.server.is_none() {
            if matches!(t, tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL | tag::FLUSH) {
                // Leftovers of a COPY whose server is gone (Postgres ignores them too), or a
                // Flush with nothing to flush.
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
                self.refuse(t, &e);
                return Ok(Flow::Continue);
            }
        }
        let body = frame.body();
        match t {
            tag::QUERY => {
                let Some(text) = frontend::query_text(body) else {
                    return Ok(self.protocol_violation("invalid Query message"));
                };
                let text = text.to_vec();
                self.on_query(&frame, &text);
            }
            tag::PARSE => return Ok(self.on_parse(&frame)),
            tag::BIND => return Ok(self.on_bind(&frame)),
            tag::DESCRIBE => return Ok(self.on_describe(&frame)),
            tag::CLOSE => return Ok(self.on_close(&frame)),
            tag::EXECUTE => {
                self.unsynced = true;
                self.forward(&frame, Entry::forward(Kind::Execute));
            }
            tag::SYNC if self.copy_in_open => {
                // Ignored by Postgres in copy-in mode: no reply to expect.
                self.to_server.extend_from_slice(frame.as_bytes());
            }
            tag::SYNC => {
                self.unsynced = false;
                self.forward(&frame, Entry::forward(Kind::Sync));
            }
            tag::COPY_DONE | tag::COPY_FAIL => {
                self.copy_in_open = false;
                self.forward(&frame, Entry::CopyEnd);
            }
            tag::FUNCTION_CALL => self.forward(&frame, Entry::forward(Kind::FunctionCall)),
            // Flush, COPY data, and anything unknown (the server answers it as Postgres does).
            _ => self.to_server.extend_from_slice(frame.as_bytes()),
        }
        Ok(Flow::Continue)
    }

    /// Send `frame` to the server and expect `entry`'s answer.
    fn forward(&mut self, frame: &Frame, entry: Entry) {
        self.to_server.extend_from_slice(frame.as_bytes());
        self.queue.push(entry);
    }

    /// Are named statements renamed to shared server statements? (Transaction mode: the next
    /// transaction may run on a connection that never saw the client's Parse.)
    fn renaming(&self) -> bool {
        self.mode == PoolMode::Transaction && !self.pinned
    }

    fn on_query(&mut self, frame: &Frame, text: &[u8]) {
        if let Ok(text) = std::str::from_utf8(text) {
            if self.answer_deallocate(text) {
                return;
            }
            self.track_query_text(text);
        }
        self.forward(frame, Entry::forward(Kind::Query));
    }

    fn on_parse(&mut self, frame: &Frame) -> Flow {
        let Some(p) = frontend::parse(frame.body()) else {
            return self.protocol_violation("invalid Parse message");
        };
        self.unsynced = true;
        if p.name.is_empty() || !self.renaming() {
            self.forward(frame, Entry::forward(Kind::Parse));
            return Flow::Continue;
        }
        if self.statements.contains(p.name) {
            let msg = format!("prepared statement \"{}\" already exists", String::from_utf8_lossy(p.name));
            self.fail_batch("42P05", &msg);
            return Flow::Continue;
        }
        let stmt = Statement::new(p.query, &p.param_types);
        let client_name = Bytes::copy_from_slice(p.name);
        self.statements.insert(client_name.clone(), stmt.clone());
        let prepared = &mut self.server_mut().obj.prepared;
        if prepared.touch(&stmt.server_name) {
            let mut out = BytesMut::new();
            build::parse_complete(&mut out);
            self.queue.push(Entry::Synth(out.freeze()));
        } else {
            prepared.insert(stmt.server_name.clone());
            self.to_server.extend_from_slice(&stmt.parse);
            self.queue.push(Entry::Server {
                kind: Kind::Parse,
                forward: true,
                on_fail: OnFail::ForgetStatement { client: client_name, server: stmt.server_name },
            });
        }
        Flow::Continue
    }

    fn on_bind(&mut self, frame: &Frame) -> Flow {
        let Some(b) = frontend::bind(frame.body()) else {
            return self.protocol_violation("invalid Bind message");
        };
        self.unsynced = true;
        let stmt =
            if b.statement.is_empty() || !self.renaming() { None } else { self.statements.get(b.statement).cloned() };
        let Some(stmt) = stmt else {
            // Unnamed, session mode, or unknown to this client: the server answers as Postgres
            // would (an unknown name is unknown there too: server names are all pgcached_*).
            self.forward(frame, Entry::forward(Kind::Bind));
            return Flow::Continue;
        };
        self.ensure_prepared(&stmt);
        let mut out = BytesMut::with_capacity(frame.len() + stmt.server_name.len());
        out.put_u8(tag::BIND);
        out.put_u32(0);
        out.put_slice(b.portal);
        out.put_u8(0);
        out.put_slice(&stmt.server_name);
        out.put_u8(0);
        out.put_slice(b.params_and_formats);
        patch_len(&mut out);
        self.to_server.extend_from_slice(&out);
        self.queue.push(Entry::forward(Kind::Bind));
        Flow::Continue
    }

    fn on_describe(&mut self, frame: &Frame) -> Flow {
        let Some(d) = frontend::target(frame.body()) else {
            return self.protocol_violation("invalid Describe message");
        };
        self.unsynced = true;
        let stmt = if d.kind == b'S' && !d.name.is_empty() && self.renaming() {
            self.statements.get(d.name).cloned()
        } else {
            None
        };
        let Some(stmt) = stmt else {
            self.forward(frame, Entry::forward(Kind::Describe));
            return Flow::Continue;
        };
        self.ensure_prepared(&stmt);
        let mut out = BytesMut::new();
        out.put_u8(tag::DESCRIBE);
        out.put_u32(0);
        out.put_u8(b'S');
        out.put_slice(&stmt.server_name);
        out.put_u8(0);
        patch_len(&mut out);
        self.to_server.extend_from_slice(&out);
        self.queue.push(Entry::forward(Kind::Describe));
        Flow::Continue
    }

    fn on_close(&mut self, frame: &Frame) -> Flow {
        let Some(c) = frontend::target(frame.body()) else {
            return self.protocol_violation("invalid Close message");
        };
        self.unsynced = true;
        if c.kind == b'S' && !c.name.is_empty() && self.renaming() {
            // The server statement is shared: only the client's name goes away.
            self.statements.remove(c.name);
            let mut out = BytesMut::new();
            build::close_complete(&mut out);
            self.queue.push(Entry::Synth(out.freeze()));
        } else {
            self.forward(frame, Entry::forward(Kind::Close));
        }
        Flow::Continue
    }

    /// Make sure the current server has `stmt`, injecting its Parse (answer dropped) if not.
    fn ensure_prepared(&mut self, stmt: &Statement) {
        let prepared = &mut self.server_mut().obj.prepared;
        if prepared.touch(&stmt.server_name) {
            return;
        }
        prepared.insert(stmt.server_name.clone());
        self.to_server.extend_from_slice(&stmt.parse);
        self.queue.push(Entry::Server {
            kind: Kind::Parse,
            forward: false,
            on_fail: OnFail::ForgetServerStatement(stmt.server_name.clone()),
        });
    }

    /// Answer `DEALLOCATE [PREPARE] name` for a renamed client statement locally.
    fn answer_deallocate(&mut self, text: &str) -> bool {
        if !self.renaming() {
            return false;
        }
        let words: Vec<&str> = text.trim().trim_end_matches(';').split_whitespace().collect();
        let name = match words.as_slice() {
            [d, n] if d.eq_ignore_ascii_case("deallocate") => n,
            [d, p, n] if d.eq_ignore_ascii_case("deallocate") && p.eq_ignore_ascii_case("prepare") => n,
            _ => return false,
        };
        if name.eq_ignore_ascii_case("all") || self.statements.remove(name.as_bytes()).is_none() {
            return false;
        }
        let mut out = BytesMut::new();
        out.put_u8(b'C');
        out.put_u32(0);
        out.put_slice(b"DEALLOCATE\0");
        patch_len(&mut out);
        build::ready_for_query(&mut out, self.tx_status);
        self.queue.push(Entry::Synth(out.freeze()));
        true
    }

    /// SET/RESET of parameters the server does not report, and statements that tie the client
    /// to its server connection.
    fn track_query_text(&mut self, text: &str) {
        if let Some(effect) = params::parse_set(text) {
            self.pending_sets.push(effect);
            return;
        }
        if contains_ignore_case(text, "set") {
            // A SET the proxy cannot follow (multi-statement string, set_config(), …): make
            // sure it cannot leak to the next client of this server connection.
            self.reset_on_release = true;
        }
        let head: String = text.trim_start().chars().take(8).collect::<String>().to_ascii_uppercase();
        let pins = head.starts_with("LISTEN")
            || (head.starts_with("PREPARE ") && !text.to_ascii_uppercase().contains("TRANSACTION"));
        if self.mode == PoolMode::Transaction && pins && !self.pinned {
            debug!(pool = %self.key, "LISTEN / SQL PREPARE pins the client to its server connection");
            self.pinned = true;
        }
    }

    /// Apply SETs whose transaction ended (called when the last ReadyForQuery arrived).
    pub(super) fn settle_sets(&mut self) {
        if self.tx_status == b'I' {
            if self.rolled_back {
                self.pending_sets.clear();
            }
            for effect in std::mem::take(&mut self.pending_sets) {
                let dirty = &mut self.server_mut().obj.dirty;
                match &effect {
                    SetEffect::Set { name, value } => dirty.set(name, value),
                    SetEffect::Reset { name } => dirty.remove(name),
                    SetEffect::ResetAll => dirty.clear(),
                }
                match effect {
                    SetEffect::Set { name, value } => self.wanted.set(&name, &value),
                    SetEffect::Reset { name } => self.wanted.remove(&name),
                    SetEffect::ResetAll => self.wanted.clear(),
                }
            }
        }
        self.rolled_back = false;
    }

    /// Report an error for the current extended batch the way Postgres would (in order, then
    /// nothing until Sync).
    fn fail_batch(&mut self, code: &str, message: &str) {
        let mut out = BytesMut::new();
        build::error_response(&mut out, Severity::Error, code, message);
        self.queue.push(Entry::Synth(out.freeze()));
        self.skip_until_sync = true;
    }

    /// ReadyForQuery from the proxy itself, in queue order.
    fn synth_ready(&mut self) {
        let mut out = BytesMut::new();
        build::ready_for_query(&mut out, self.tx_status);
        self.queue.push(Entry::Synth(out.freeze()));
    }

    /// The proxy could not get a server for this message: answer it the way Postgres would
    /// answer a failing statement, keeping the session usable.
    fn refuse(&mut self, t: u8, err: &PoolError) {
        warn!(pool = %self.key, error = %err, "no server connection for a client request");
        let mut out = BytesMut::new();
        build::error_response(&mut out, Severity::Error, err.sqlstate(), &err.to_string());
        self.queue.push(Entry::Synth(out.freeze()));
        match t {
            tag::QUERY | tag::FUNCTION_CALL | tag::SYNC => self.synth_ready(),
            _ => self.skip_until_sync = true,
        }
    }

    fn protocol_violation(&mut self, message: &str) -> Flow {
        build::error_response(&mut self.to_client, Severity::Fatal, "08P01", &format!("pgcached: {message}"));
        Flow::Close
    }
}

/// Patch the length field of the frame that starts at the beginning of `out`.
fn patch_len(out: &mut BytesMut) {
    let len = (out.len() - 1) as u32;
    out[1..5].copy_from_slice(&len.to_be_bytes());
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}
