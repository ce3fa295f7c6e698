//! Statements the proxy runs for itself (parameter sync, `DISCARD ALL`, health checks), and the
//! check that an idle connection has not been talked to behind our back.
//!
//! Both keep the connection in sync or mark it [`ServerConn::broken`]: a server `ERROR` is
//! returned after reading on to ReadyForQuery; a `FATAL`, an I/O error or a protocol surprise
//! breaks the connection.

use std::time::Instant;

use bytes::BytesMut;
use tracing::debug;

use super::io::MAX_SERVER_FRAME;
use super::{ServerConn, ServerError};
use crate::wire::backend::{self, tag};
use crate::wire::{build, frame::take_frame};

impl ServerConn {
    /// Run SQL for the proxy itself: one simple Query, everything read up to ReadyForQuery and
    /// swallowed, ParameterStatus recorded into `params`. An ErrorResponse is returned as
    /// [`ServerError::Postgres`] once ReadyForQuery has been read, so the connection stays usable.
    /// Requires `io` to be present.
    pub async fn run_hidden(&mut self, sql: &str) -> Result<(), ServerError> {
        self.run_hidden_noting(sql, None).await
    }

    /// [`ServerConn::run_hidden`], keeping the NoticeResponses it sends (whole frames) in
    /// `notices` (e.g. the truncation notice of a long `application_name` that Postgres sends a
    /// client at login: the proxy applies startup parameters with a hidden statement).
    pub async fn run_hidden_noting(
        &mut self,
        sql: &str,
        notices: Option<&mut Vec<bytes::Bytes>>,
    ) -> Result<(), ServerError> {
        let result = self.run_hidden_inner(sql, notices).await;
        if let Err(e) = &result
            && !e.is_recoverable()
            && !matches!(e, ServerError::Leased)
        {
            self.broken = true;
        }
        result
    }

    async fn run_hidden_inner(
        &mut self,
        sql: &str,
        mut notices: Option<&mut Vec<bytes::Bytes>>,
    ) -> Result<(), ServerError> {
        let io = self.io.as_mut().ok_or(ServerError::Leased)?;
        let mut out = BytesMut::new();
        build::query(&mut out, sql);
        io.write_all(&out).await?;
        let mut first_error = None;
        let mut params = Vec::new();
        let mut dropped_statements = false;
        loop {
            let frame = io.read_frame(MAX_SERVER_FRAME).await?;
            match frame.tag() {
                tag::READY_FOR_QUERY => break,
                tag::PARAMETER_STATUS => {
                    if let Some((name, value)) = backend::parameter_status(frame.body()) {
                        params.push((name.to_string(), value.to_string()));
                    }
                }
                tag::ERROR_RESPONSE => {
                    let err = ServerError::from_error_frame(frame);
                    if !err.is_recoverable() {
                        return Err(err);
                    }
                    first_error.get_or_insert(err);
                }
                tag::COMMAND_COMPLETE => {
                    let t = backend::command_tag(frame.body()).unwrap_or_default();
                    dropped_statements |= t == b"DISCARD ALL" || t == b"DEALLOCATE ALL";
                }
                tag::COPY_IN => {
                    // A hidden statement never feeds COPY: refuse it, the server answers E + Z.
                    out.clear();
                    postgres_protocol::message::frontend::copy_fail("pgcached: no COPY data", &mut out)?;
                    io.write_all(&out).await?;
                }
                tag::COPY_BOTH => {
                    return Err(ServerError::Protocol("COPY BOTH from a hidden statement".into()));
                }
                tag::NOTICE_RESPONSE => {
                    if let Some(notices) = notices.as_deref_mut() {
                        notices.push(frame.as_bytes().clone());
                    }
                }
                _ => {}
            }
        }
        for (name, value) in params {
            self.record_param(&name, &value);
        }
        if dropped_statements {
            self.prepared.clear();
        }
        self.last_used = Instant::now();
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Without waiting: read whatever the server sent while the connection sat idle. A
    /// ParameterStatus is recorded, a notice or notification is dropped, an ErrorResponse (the
    /// server's FATAL before it closes, e.g. 57P01 on shutdown) or EOF means the connection is
    /// dead: it is marked broken and the error returned.
    pub fn check_idle(&mut self) -> Result<(), ServerError> {
        let result = self.check_idle_inner();
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn check_idle_inner(&mut self) -> Result<(), ServerError> {
        let io = self.io.as_mut().ok_or(ServerError::Leased)?;
        if io.drain_available()? == 0 && io.rbuf.is_empty() {
            return Ok(());
        }
        let mut params = Vec::new();
        while let Some(frame) = take_frame(&mut io.rbuf, MAX_SERVER_FRAME)? {
            match frame.tag() {
                tag::PARAMETER_STATUS => {
                    if let Some((name, value)) = backend::parameter_status(frame.body()) {
                        params.push((name.to_string(), value.to_string()));
                    }
                }
                tag::NOTICE_RESPONSE | tag::NOTIFICATION => {
                    debug!(server = self.id, tag = %char::from(frame.tag()), "dropping message received while idle");
                }
                tag::ERROR_RESPONSE => return Err(ServerError::from_error_frame(frame)),
                other => {
                    return Err(ServerError::Protocol(format!(
                        "unsolicited message '{}' on an idle connection",
                        char::from(other)
                    )));
                }
            }
        }
        if !io.rbuf.is_empty() {
            return Err(ServerError::Protocol("partial message on an idle connection".into()));
        }
        for (name, value) in params {
            self.record_param(&name, &value);
        }
        Ok(())
    }
}
