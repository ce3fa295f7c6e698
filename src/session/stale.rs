//! Serving an expired answer while Postgres cannot be reached (`cache.serve_stale_on_error`).
//!
//! The decision is taken where a cacheable simple Query, or an extended batch of one cacheable
//! read, armed a fill (its lookup missed) and then could not get a server connection (a batch
//! takes its server before its first message is processed when the feature is on, so that the
//! whole batch can be answered): if the failure says the upstream is unreachable (a
//! network-level connect error after the retries, or the circuit breaker open; see
//! `PoolError::is_unreachable`), the session is in autocommit, and the cache still holds the
//! key's answer past its TTL by at most `max_age` with every version it was read under still
//! current (never invalidated: see `ResultCache::stale`), the client gets that answer preceded
//! by a NOTICE naming what it is and how old — instead of the connection error. Anything else
//! gets the error as before.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::Session;
use super::batch::write_hit;
use crate::admin::query_stats::Outcome;
use crate::cache::{CacheKey, CachedResult};
use crate::pool::PoolError;
use crate::wire::build;

/// SQLSTATE of the NOTICE before a stale answer: 01000, warning.
const STALE_NOTICE_CODE: &str = "01000";

impl Session {
    /// Answer a simple Query whose server checkout failed with `err` from the expired entry of
    /// `key`, if the rules above allow; true when the client was answered.
    pub(super) fn serve_stale(&mut self, err: &PoolError, key: &CacheKey) -> bool {
        let Some(entry) = self.stale_answer(err, key, |_| true) else { return false };
        self.replay_simple(&entry.frames);
        self.exchange_answered(entry.query.as_ref(), None, Outcome::Hit, entry.rows, entry.frames.len());
        true
    }

    /// Answer a whole extended batch of one cacheable read (`parses` Parses, its portal
    /// described or not) whose server checkout failed with `err` from the expired entry of
    /// `key`, as a hit would be answered; true when the client was answered.
    pub(super) fn serve_stale_batch(&mut self, err: &PoolError, key: &CacheKey, parses: usize, describe: bool) -> bool {
        let usable = |e: &CachedResult| !describe || e.description().is_some();
        let Some(entry) = self.stale_answer(err, key, usable) else { return false };
        let status = self.tx.status();
        self.answer_with(entry.frames.len() + 32, |out| write_hit(out, &entry, parses, describe, status));
        self.exchange_answered(entry.query.as_ref(), None, Outcome::Hit, entry.rows, entry.frames.len());
        true
    }

    /// The expired entry of `key` that may stand in for the connection error `err`, with the
    /// NOTICE saying so already sent.
    fn stale_answer(
        &mut self,
        err: &PoolError,
        key: &CacheKey,
        usable: impl FnOnce(&CachedResult) -> bool,
    ) -> Option<Arc<CachedResult>> {
        if !err.is_unreachable() || !self.tx.is_idle() || self.held_begin.is_some() {
            return None;
        }
        let (entry, expired_for) = self.shared.cache.stale(key, usable)?;
        warn!(pool = %self.key, error = %err, expired_for = ?expired_for, "upstream unreachable: serving an expired cached answer");
        let message = stale_notice(err, expired_for, entry.ttl);
        let mut notice = bytes::BytesMut::new();
        build::notice_response(&mut notice, STALE_NOTICE_CODE, &message);
        self.answer(notice.freeze());
        Some(entry)
    }
}

/// What the client is told before a stale answer.
fn stale_notice(err: &PoolError, expired_for: Duration, ttl: Duration) -> String {
    let ms = |d: Duration| {
        humantime::format_duration(Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    };
    format!(
        "pgcached: the upstream cannot be reached ({err}); this answer is a cached one whose TTL ({}) expired {} ago, served because cache.serve_stale_on_error is on (no write seen since invalidated it)",
        ms(ttl),
        ms(expired_for),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_what_the_answer_is_and_how_old() {
        let err = PoolError::Connect(crate::server::ServerError::Closed);
        let text = stale_notice(&err, Duration::from_millis(3200), Duration::from_secs(60));
        assert!(text.contains("cached"), "{text}");
        assert!(text.contains("expired 3s 200ms ago"), "{text}");
        assert!(text.contains("TTL (1m)"), "{text}");
        assert!(text.contains("upstream closed the connection"), "{text}");
    }
}
