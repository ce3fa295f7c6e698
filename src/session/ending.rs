//! How a session ends besides an error: draining at shutdown, and the client's Terminate or
//! EOF — after the replies the server still owes it, as Postgres ends its own session.

use std::time::Instant;

use super::state::Lifecycle;
use super::{Flow, Session};
use crate::wire::build;

impl Session {
    /// Stop taking new work; end the session once its server is given back.
    pub(super) fn begin_draining(&mut self) {
        if self.lifecycle == Lifecycle::Running {
            self.lifecycle = Lifecycle::Draining;
            self.drain_deadline = Some(Instant::now() + self.shared.config.timeouts.shutdown);
        }
    }

    /// The client sent Terminate (`said`; else it closed its socket). Postgres runs what was
    /// sent before it: so does the proxy, then ends the session.
    pub(super) fn terminate(&mut self, said: bool) -> Flow {
        self.said_terminate = said;
        // A COPY FROM STDIN waiting for nothing: see the session loop's `Terminating` arm.
        if self.queue.is_empty() && self.to_server.is_empty() || !said && self.copy_waits_for_nothing() {
            return Flow::Close;
        }
        self.lifecycle = Lifecycle::Terminating;
        self.batch.clear();
        Flow::Continue
    }

    /// The server is in COPY FROM STDIN and the client has left: it waits for data that will
    /// never come. Postgres ends the COPY (and the session) at the client's EOF, and answers a
    /// Terminate or any other message the client sent meanwhile with 08P01 and a FATAL: those
    /// answers are the client's, so the session waits for them (see `terminate_copy`).
    pub(super) fn copy_waits_for_nothing(&self) -> bool {
        self.copy_in && !self.queue.server_messages_behind_head()
    }

    /// The server is in COPY FROM STDIN with nothing behind it and the client said Terminate:
    /// Postgres would read that Terminate as a stray copy message, answer 08P01 and a FATAL,
    /// and close. The Terminate goes to the server, whose answers are the client's (the
    /// connection is lost either way).
    pub(super) fn terminate_copy(&mut self) {
        build::terminate(&mut self.to_server);
        self.copy_in = false;
        self.fatal_due = true;
    }

    /// The client closed its socket: as a Terminate, minus a partial message it was sending
    /// (Postgres drops that one too).
    pub(super) fn client_gone(&mut self) -> Flow {
        self.client_rbuf.clear();
        self.terminate(false)
    }
}
