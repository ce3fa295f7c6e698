//! The client side: accepting connections, the startup handshake (TLS negotiation, cancel
//! requests), client authentication, and cancel keys.
//!
//! - [`listener`]: accept loop, client limit, one task per connection.
//! - [`startup`]: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage.
//! - [`auth`]: trust, md5 and SCRAM-SHA-256 verification of the client.
//! - [`tls`]: rustls configuration for client connections.
//! - [`cancel`]: per-client BackendKeyData and where a CancelRequest goes.

pub mod auth;
pub mod cancel;
pub mod listener;
pub mod startup;
pub mod tls;
