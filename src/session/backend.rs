//! Server frames: forward every frame as received, and read the few that change the session's
//! state — ReadyForQuery (transaction status, end of an exchange), ParameterStatus (values that
//! must follow the client), ErrorResponse (FATAL ends the connection), CommandComplete
//! (COMMIT/ROLLBACK settle tracked SETs).

use super::params;
use super::{Flow, Session, SessionError};
use crate::wire::backend::{self, tag};
use crate::wire::frame::take_frame;

/// Postgres's own limit for a message (1 GiB); a server frame beyond it is corrupt.
const MAX_SERVER_FRAME: usize = 1 << 30;

impl Session {
    /// Handle every whole frame the server has sent, then release the server if its work for
    /// this client is done.
    pub(super) async fn on_server_data(&mut self) -> Result<Flow, SessionError> {
        loop {
            let lease = self.server.as_mut().expect("server data without a server");
            let frame = match take_frame(&mut lease.io.rbuf, MAX_SERVER_FRAME) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    lease.obj.broken = true;
                    return Err(SessionError::ServerFrame(e));
                }
            };
            let body = frame.body();
            match frame.tag() {
                tag::READY_FOR_QUERY => {
                    self.pending = self.pending.saturating_sub(1);
                    self.tx_status = backend::ready_status(body).unwrap_or(b'I');
                    if self.pending == 0 {
                        self.settle_sets();
                    }
                }
                tag::PARAMETER_STATUS => {
                    if let Some((name, value)) = backend::parameter_status(body) {
                        lease.obj.params.insert(name.to_string(), value.to_string());
                        if params::is_tracked(name) {
                            self.wanted.set(name, value);
                            lease.obj.dirty.set(name, value);
                        }
                    }
                }
                tag::ERROR_RESPONSE => {
                    let fields = backend::error_fields(body);
                    if matches!(fields.severity.as_str(), "FATAL" | "PANIC") {
                        lease.obj.broken = true;
                    }
                    // A failed statement did not apply its SETs.
                    self.rolled_back = true;
                }
                tag::COMMAND_COMPLETE => {
                    if backend::command_tag(body) == Some(b"ROLLBACK") {
                        self.rolled_back = true;
                    }
                }
                _ => {}
            }
            self.to_client.extend_from_slice(frame.as_bytes());
        }
        self.maybe_release().await;
        Ok(Flow::Continue)
    }
}
