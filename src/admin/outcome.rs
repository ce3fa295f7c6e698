//! How a statement was answered ([`Outcome`]): the path label of the latency histograms
//! (`traffic`) and a column of the per-query statistics (`query_stats`).

use crate::cache::Bypass;

/// How a statement was answered. A label in logs and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered from the result cache.
    Hit,
    /// A cacheable read that went to Postgres and was recorded for the cache.
    Miss,
    /// Not a cache candidate (a write, DDL, a transaction command…): sent to Postgres as is.
    Forwarded,
    /// A read sent to Postgres without the cache, for this reason.
    Bypassed(Bypass),
    /// Refused by the proxy (a guard rail) without reaching Postgres.
    Refused,
}

impl Outcome {
    /// A short label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Forwarded => "forwarded",
            Outcome::Bypassed(_) => "bypassed",
            Outcome::Refused => "refused",
        }
    }

    /// Its place in [`PATHS`].
    #[inline]
    pub fn path(self) -> usize {
        match self {
            Outcome::Hit => 0,
            Outcome::Miss => 1,
            Outcome::Forwarded => 2,
            Outcome::Bypassed(_) => 3,
            Outcome::Refused => 4,
        }
    }
}

/// The paths a statement takes, as the `path` label says them, in [`Outcome::path`]'s order.
pub const PATHS: [&str; 5] = ["hit", "miss", "forwarded", "bypassed", "refused"];
