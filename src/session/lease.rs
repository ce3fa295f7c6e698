//! Taking a server connection for the client and giving it back clean.
//!
//! A checkout finds a connection fit for this client (no custom setting another client defined
//! on it, see `ServerConn::placeholders`), brings the server's settings in line with the
//! client's, and publishes it for cancels. A release decides, from what the session left on
//! the connection ([`ReleaseAction`]), whether it goes back as it is, reset, discarded or
//! closed. A connection lost or closed mid-exchange leaves the outcome of what was sent
//! unknown: everything it may have written is invalidated as if it committed.

use tracing::{debug, warn};

use super::params;
use super::queue::{Entry, Kind, Request};
use super::state::{Effects, Pins, Private, ReleaseAction, Untracked};
use super::{Flow, Lease, Session};
use crate::config::PoolMode;
use crate::pool::PoolError;
use crate::server::ServerError;
use crate::wire::build::{self, Severity};

impl Session {
    /// Get a server connection for this client if it has none: wait for the pool, bring the
    /// server's parameters in line with the client's, publish it for cancels. A connection
    /// found dead while it is being prepared (the network failed under the hidden statements
    /// that sync settings or begin the held block: Postgres restarted) is dropped and another
    /// taken, up to `pool.retries` times: nothing of the client's was sent on it.
    pub(super) async fn ensure_server(&mut self) -> Result<(), PoolError> {
        if self.server.is_some() {
            return Ok(());
        }
        let mut left = self.shared.config.pool.retries;
        loop {
            match self.checkout().await {
                Err(PoolError::Dead(e)) if left > 0 => {
                    debug!(pool = %self.key, error = %e, "server connection dead at checkout: taking another");
                    left -= 1;
                }
                done => return done,
            }
        }
    }

    /// One attempt of [`Self::ensure_server`].
    async fn checkout(&mut self) -> Result<(), PoolError> {
        let pool = match &self.pool {
            Some(pool) => pool,
            None => self.pool.insert(self.shared.pools.handle(&self.key)?),
        };
        // A connection with custom settings this client never defined is not for it (after
        // `max_size` of them the next one is new).
        let attempts = self.shared.config.pool.max_size + 1;
        // A cancel during the wait ends it: the statement is answered 57014, as by Postgres,
        // and never sent.
        let slot = &self.cancel.slot;
        slot.begin_wait();
        let asked = std::time::Instant::now();
        let got = tokio::select! {
            // The pool first: a connection at hand is taken without registering for cancels.
            biased;
            got = pool.get_without_foreign_placeholders(&self.placeholders, attempts) => got,
            () = slot.wait_cancelled() => Err(PoolError::Cancelled),
        };
        slot.end_wait();
        self.shared.traffic.pool_wait(asked.elapsed());
        let mut obj = got?;
        if let Some(sql) = params::sync_statement(&self.wanted, &mut obj.dirty) {
            // Boxed: rare, and it would size the future of every statement that takes a server.
            if let Err(e) = Box::pin(obj.run_hidden(&sql)).await {
                // What the server holds is not known now: nobody gets this connection again.
                obj.broken = true;
                return Err(if e.is_network() { PoolError::Dead(e) } else { self.settings_not_restored(e) });
            }
            // The custom settings just applied are defined there now.
            for name in self.placeholders.iter().filter(|p| self.wanted.get(p).is_some()) {
                obj.define_placeholder(name);
            }
        }
        // Custom settings the client defined and holds no value for (a RESET defines one, empty):
        // defined here the same way, so `current_setting(name, true)` is '' as directly, not NULL.
        // Not surely defined there: another client's statement that would have defined it may
        // have been skipped (`ServerConn::placeholders_defined`).
        let undefined: Vec<&String> = self
            .placeholders
            .iter()
            .filter(|p| self.wanted.get(p).is_none() && !obj.placeholders_defined.contains(p))
            .collect();
        if !undefined.is_empty() {
            let sql = undefined.iter().map(|p| format!("RESET {}", params::ident(p))).collect::<Vec<_>>().join("; ");
            if let Err(e) = Box::pin(obj.run_hidden(&sql)).await {
                obj.broken = true;
                return Err(if e.is_network() { PoolError::Dead(e) } else { self.settings_not_restored(e) });
            }
            for name in undefined {
                obj.define_placeholder(name);
            }
        }
        if self.held_begin.is_some() {
            // Boxed: once per held transaction that needs a server.
            Box::pin(self.begin_held_on(&mut obj))
                .await
                .map_err(|e| if e.is_network() { PoolError::Dead(e) } else { PoolError::Begin(e) })?;
        }
        let Some(io) = obj.io.take() else {
            obj.broken = true;
            return Err(PoolError::Closed);
        };
        let key =
            crate::client::cancel::ServerKey { addr: obj.addr, pid: obj.backend_key.0, secret: obj.backend_key.1 };
        if !self.cancel.slot.try_set(Some(key)) {
            self.cancel.slot.set(Some(key)).await;
        }
        self.server = Some(Lease { obj, io });
        Ok(())
    }

    /// The client's settings could not be applied on a server connection (Postgres refused
    /// one there, e.g. a role dropped since): this client — and only it — gets the server's
    /// error, and its settings go back to what it started with, so its next statement runs.
    fn settings_not_restored(&mut self, e: ServerError) -> PoolError {
        warn!(error = %e, pool = %self.key, "could not restore this client's session settings on a server connection: reset to its startup values");
        self.wanted = self.startup.clone();
        PoolError::Settings(e)
    }

    /// Give the server back to its pool (or drop it when it is not reusable).
    pub(super) async fn release_server(&mut self, ending: bool) {
        let Some(Lease { mut obj, io }) = self.server.take() else { return };
        if !self.cancel.slot.try_set(None) {
            self.cancel.slot.set(None).await;
        }
        // A frame half passed on (see `passing`) leaves the connection mid-message.
        let mid_frame = self.passing.take().is_some();
        let in_flight = mid_frame || !io.rbuf.is_empty() || !self.to_server.is_empty() || !self.queue.is_empty();
        if in_flight {
            // Requests were sent whose outcome nobody will see: they may have committed.
            self.abandon();
        }
        let idle = !in_flight && self.segment.is_synced() && self.tx.is_idle();
        let untracked = match (obj.placeholders_unknown, obj.settings_unknown) {
            (true, _) => Untracked::CustomNames,
            (false, true) => Untracked::Values,
            (false, false) => Untracked::Nothing,
        };
        let action = ReleaseAction::decide(idle, ending, self.mode == PoolMode::Session, self.pins, untracked);
        obj.io = Some(io);
        let evicted = obj.prepared.take_to_close();
        if !evicted.is_empty() && action != ReleaseAction::Close {
            let sql: Vec<String> =
                evicted.iter().map(|n| format!("DEALLOCATE {}", params::ident(&String::from_utf8_lossy(n)))).collect();
            if obj.run_hidden(&sql.join("; ")).await.is_err() {
                obj.broken = true;
            }
        }
        let reset = match action {
            ReleaseAction::Close => {
                obj.broken = true;
                None
            }
            ReleaseAction::Reuse => None,
            ReleaseAction::ResetSettings => Some("SET SESSION AUTHORIZATION DEFAULT; RESET ALL"),
            // Temporary objects, prepared statements, LISTEN, advisory locks, cursors, settings.
            ReleaseAction::Discard => Some("DISCARD ALL"),
        };
        if let Some(sql) = reset.filter(|_| !obj.broken) {
            if !self.pins.is_empty() {
                debug!(pool = %self.key, pins = ?self.pins.names(), "resetting a pinned client's server connection");
            }
            if obj.run_hidden(sql).await.is_err() {
                obj.broken = true;
            }
            obj.dirty.clear();
            obj.settings_unknown = false;
            if action == ReleaseAction::Discard {
                obj.prepared.clear();
            }
        }
        self.to_server.clear();
        self.server_unflushed = false;
    }

    /// Nothing is outstanding on the server and no transaction or segment is open.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.segment.is_synced() && self.tx.is_idle()
    }

    /// Release the server if the transaction (or, in session mode, the session) is over and
    /// nothing pins the client to it.
    pub(super) async fn maybe_release(&mut self) {
        let Some(lease) = &self.server else { return };
        let draining = self.lifecycle == super::Lifecycle::Draining;
        let done = self.is_idle() && lease.io.rbuf.is_empty() && self.to_server.is_empty() && self.pins.is_empty();
        if done && (self.mode == PoolMode::Transaction || draining) {
            self.release_server(draining).await;
        }
    }

    /// The server went away under this session.
    pub(super) fn on_server_lost(&mut self, err: Option<std::io::Error>) -> Flow {
        let mut told = false;
        if let Some(lease) = &mut self.server {
            lease.obj.broken = true;
            told = lease.obj.said_fatal;
        }
        warn!(pool = %self.key, error = ?err, "server connection lost");
        self.abandon();
        if told {
            // The server's own FATAL reached the client: it closes as Postgres closes.
            return Flow::Close;
        }
        build::error_response(
            &mut self.to_client,
            Severity::Fatal,
            "08006",
            "pgcached: the server connection was lost",
        );
        Flow::Close
    }

    /// What was sent will never be answered here: everything the transaction logged and
    /// every request in flight may have committed (a COMMIT the server ran just before the
    /// connection broke). Invalidate it all; the session's transaction is over.
    fn abandon(&mut self) {
        let in_flight: Vec<&Effects> = self
            .queue
            .iter()
            .filter_map(|e| match e {
                Entry::Server(r) => Some(r.pending_effects()),
                _ => None,
            })
            .flatten()
            .map(|e| &**e)
            .collect();
        let writes = self.tx.abandon(in_flight);
        if !writes.is_empty() {
            debug!(pool = %self.key, "outcome of writes unknown: invalidated as if committed");
            self.invalidate(&writes);
        }
    }

    /// Statements the proxy could not follow changed settings on the server connection held:
    /// whoever gives it back resets it, this session's answers are no longer cached, and under
    /// transaction pooling the client keeps the connection (its settings stay where it set them).
    pub(super) fn settings_untracked(&mut self) {
        self.private.add(Private::UNTRACKED_SETTINGS);
        if self.mode == PoolMode::Transaction && !self.pins.contains(Pins::UNTRACKED_SETTINGS) {
            debug!(pool = %self.key, "pinned to its server connection: settings it cannot follow");
        }
        self.pins.add(Pins::UNTRACKED_SETTINGS);
        if let Some(lease) = &mut self.server {
            lease.obj.settings_unknown = true;
        }
    }

    /// The client may have defined custom settings the proxy cannot name on the server
    /// connection held: it is closed when given back (see `ServerConn::placeholders_unknown`).
    pub(super) fn placeholders_unknown(&mut self) {
        if let Some(lease) = &mut self.server {
            lease.obj.placeholders_unknown = true;
        }
    }

    /// Custom settings a statement about to run may define on the server connection held.
    pub(super) fn define_on_server(&mut self, names: &[String]) {
        let Some(lease) = &mut self.server else { return };
        for name in names {
            if !lease.obj.placeholders.contains(name) {
                lease.obj.placeholders.push(name.clone());
            }
        }
    }

    /// Custom settings the client has defined: a statement that defines them ran.
    pub(super) fn defined_by_client(&mut self, names: &[String]) {
        for name in names {
            if !self.placeholders.contains(name) {
                self.placeholders.push(name.clone());
            }
        }
    }

    /// A statement that defines `names` completed on the server connection held.
    pub(super) fn defined_on_server(&mut self, names: &[String]) {
        let Some(lease) = &mut self.server else { return };
        for name in names {
            lease.obj.define_placeholder(name);
        }
    }

    /// After a RESET, the server holds its defaults where the client wants its startup values:
    /// put them back on the connection it holds before its next statement (a hidden Query).
    pub(super) fn resync_settings(&mut self) {
        let Some(lease) = &mut self.server else { return };
        if let Some(sql) = params::sync_statement(&self.wanted, &mut lease.obj.dirty) {
            build::query(&mut self.to_server, &sql);
            self.queue.push(Entry::Server(Request::hidden(Kind::Query)));
            self.syncs_sent += 1;
        }
    }
}
