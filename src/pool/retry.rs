//! Retrying a connection that failed to open: which failures are worth another attempt (see
//! `ServerError::is_transient`) and how long to wait before each (`pool.retries`,
//! `pool.retry_backoff`): the backoff doubles from `retry_backoff` per attempt, capped, so a
//! checkout's extra wait is bounded by `retries` × [`MAX_BACKOFF`] at worst.

use std::time::Duration;

/// No single wait between two attempts is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The wait before retry number `retry` (0 for the first retry): `base` × 2^`retry`, at most
/// [`MAX_BACKOFF`] (and never less than `base` when `base` is above it: the configuration says).
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF.max(base))
}

/// The longest a checkout waits in backoffs for `retries` retries from `base`.
pub fn total_backoff(base: Duration, retries: u32) -> Duration {
    (0..retries).map(|r| backoff(base, r)).fold(Duration::ZERO, Duration::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_from_the_base() {
        assert_eq!(backoff(MS(100), 0), MS(100));
        assert_eq!(backoff(MS(100), 1), MS(200));
        assert_eq!(backoff(MS(100), 2), MS(400));
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(MS(100), 10), MAX_BACKOFF);
        assert_eq!(backoff(MS(100), u32::MAX), MAX_BACKOFF);
        // A base above the cap is what the operator asked for.
        assert_eq!(backoff(Duration::from_secs(5), 3), Duration::from_secs(5));
    }

    #[test]
    fn the_total_wait_is_bounded_by_the_retries() {
        assert_eq!(total_backoff(MS(100), 0), Duration::ZERO);
        assert_eq!(total_backoff(MS(100), 2), MS(300));
        assert_eq!(total_backoff(MS(100), 10), MS(100 + 200 + 400 + 800 + 1600) + MAX_BACKOFF * 5);
    }
}
