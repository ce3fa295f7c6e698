//! Invalidation from outside the proxy (`cache.invalidation: notify`, and login defaults in every
//! mode), over the control plane.
//!
//! - [`triggers`]: installs statement-level triggers that `pg_notify` the [`CHANNEL`] with the
//!   written table's `"schema"."name"` (used by `pgcached install-triggers`).
//! - [`listener`]: a task that keeps a tokio-postgres connection LISTENing on the channel and
//!   bumps the cache's table versions on every notification; when the connection drops it
//!   flushes its database's entries (writes may have gone unseen) and reconnects with backoff.
//! - [`registry`]: [`Listeners`], one listener per database the proxy serves, started at the
//!   first login to that database (`cache.invalidation: notify`).
//! - [`control`]: how those control-plane connections reach the upstream (user, TLS).
//! - [`command`]: `pgcached install-triggers` / `uninstall-triggers`.
//! - [`defaults`]: login defaults changed around the proxy (`ALTER ROLE … SET` directly),
//!   noticed by polling, in every invalidation mode.
//!
//! This is also what keeps several pgcached instances in front of one database consistent:
//! each one's writes fire the triggers, and every instance listens. Without it, only writes
//! through this instance invalidate and `cache.default_ttl` bounds staleness.

pub mod command;
pub mod control;
pub mod defaults;
pub mod listener;
pub mod registry;
pub mod triggers;

pub use listener::{ListenerHandle, ListenerState, spawn_listener};
pub use registry::Listeners;
pub use triggers::{InstalledTriggers, install_triggers, uninstall_triggers};

/// The NOTIFY channel of the invalidation triggers.
pub const CHANNEL: &str = "pgcached_invalidate";

/// Failures of the invalidation control plane.
#[derive(Debug, thiserror::Error)]
pub enum InvalidateError {
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no such table: {0}")]
    NoSuchTable(String),
    #[error("{0} is not a table (triggers go on tables and partitioned tables)")]
    NotATable(String),
    #[error("no tables in schema(s) {0}: no trigger installed")]
    NoTables(String),
    #[error("name the tables: --schema SCHEMA and/or --table TABLE")]
    NothingNamed,
}
