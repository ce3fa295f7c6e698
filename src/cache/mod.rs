//! The result cache: answers of cacheable reads, recorded as the server's frames and replayed
//! byte for byte, invalidated by table versions.
//!
//! # Layout
//! - [`key`]: [`CacheKey`], a keyed 128-bit hash of everything that changes an answer's bytes.
//! - [`versions`]: per-(database, table) version counters and flush epochs.
//! - [`row_versions`]: per-value versions of the columns reads pin by equality.
//! - [`rowkey`]: the values that pin rows, compared as Postgres compares them for the column.
//! - [`names`]: how table names are normalized so writes and reads meet.
//! - [`store`]: [`ResultCache`], moka weighed in bytes with per-entry TTL; the session's API.
//! - [`recorder`]: records one answer and decides whether it may be stored.
//! - [`fill_budget`]: what all recordings in progress may hold together (`cache.max_filling`).
//! - [`rules`]: `cache.rules` and `/* pgcached:… */` hints → [`Decision`].
//! - [`flight`]: stampede protection (one fill per key at a time).
//! - [`stats`]: counters for metrics.
//! - [`catalog`]: views → base tables and function volatility, from the database.
//!
//! # How a session uses it (for a statement the SQL analysis found cacheable)
//! 1. `let d = rules.decide(text, tables, fingerprint)`; if `!d.cache`, forward uncached.
//! 2. Expand the tables with [`Catalog::dependencies`] (views, partitions), build the key with
//!    [`KeyBuilder`] (seed from [`ResultCache::seed`]), and call
//!    [`ResultCache::lookup`] with a [`FillSpec`] `{ database, tables, ttl: d.ttl }`.
//! 3. `Lookup::Hit(e)`: replay `e.frames` (or `e.description()` / `e.rows()` for the parts
//!    the client asked for), synthesize `1`/`2`/`t`/`Z`. Nothing goes upstream.
//! 4. `Lookup::Fill(rec)`: forward; feed every answer frame to `rec.record(&frame)` while
//!    streaming it; at the statement's end call `cache.complete(rec)` (its error is only
//!    informational). Drop `rec` to abandon (the client went away, the connection broke).
//! 5. `Lookup::Wait(w)`: `cache.wait(w, key, &spec).await` gives `Hit` or `Fill`; go on as above.
//! 6. `Lookup::Bypass`: forward uncached.
//!
//! Writes: when a write's transaction commits (autocommit: when it completes), call
//! [`ResultCache::invalidate_tables`] **before** forwarding the CommandComplete /
//! ReadyForQuery to the client, so no client can read a stale answer after being told the
//! write is done. Inside a transaction: do not fill (step 4 → forward uncached).

pub mod catalog;
mod catalog_sql;
pub mod catalogs;
pub mod churn;
pub mod fill_budget;
pub mod flight;
pub mod key;
pub mod name_memo;
pub mod names;
pub mod recorder;
pub mod row_versions;
pub mod rowkey;
pub mod rules;
pub mod state_setters;
pub mod stats;
pub mod store;
pub mod versions;

pub use catalog::{Catalog, CatalogError, SettingsSetter, Volatility, WriteClosure, search_path_schemas};
pub use flight::{Flight, Flights, Join, Waiter};
pub use key::{CacheKey, KeyBuilder, KeySeed, Protocol, SettingsDigest, SettingsGeneration, StatementKeyMemo};
pub use names::{RelName, version_key};
pub use recorder::{CachedResult, Recorder, Rejected};
pub use rules::{Decision, DecisionSource, Hints, Rules, RulesError};
pub use stats::{Bypass, CacheStats, InvalidationCause, StatsSnapshot};
pub use store::{FillSpec, Lookup, ResultCache};
pub use versions::{RowDeps, RowWrite, TableVersions, Versions};
