//! pgcached — a PostgreSQL wire-protocol caching proxy.
//!
//! # Layout (the data flow, top to bottom)
//! - [`config`]: typed configuration (YAML), defaults, environment overrides, validation.
//! - [`wire`]: frame codec on raw bytes, message peeking, synthetic messages.
//! - [`client`]: listener, TLS, startup, client authentication, cancel keys.
//! - [`session`]: per-client state machine (simple + extended flow, transaction state, parameters).
//! - [`sql`]: statement analysis, policies, LIMIT injection.
//! - [`cache`]: the result cache (store, keys, table versions, invalidation).
//! - [`pool`]: pools of upstream connections per (database, user).
//! - [`server`]: one upstream connection: connect, TLS, login, reset.
//! - [`invalidate`]: control-plane NOTIFY listener for invalidation from outside the proxy.
//! - [`admin`]: metrics and health over HTTP, admin console.
//! - [`reload`]: reading the configuration again (admin `RELOAD`, SIGHUP).

pub mod admin;
pub mod app;
pub mod cache;
pub mod client;
pub mod config;
pub mod invalidate;
pub mod pool;
pub mod reload;
pub mod replication;
pub mod server;
pub mod session;
pub mod sql;
pub mod wire;
