//! The client side: accepting connections, the startup handshake (TLS negotiation, cancel
//! requests), client authentication, and cancel keys.
//!
//! - [`listener`]: accept loop, client limit, one task per connection.
//! - [`unix_socket`]: the optional Unix-domain socket beside TCP (`unix_socket_dir`).
//! - [`peer`]: where a client connected from.
//! - [`startup`]: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage.
//! - [`auth`]: trust, md5 and SCRAM-SHA-256 verification of the client.
//! - [`tls`]: rustls configuration for client connections, `tls.mode` rules, direct TLS.
//! - [`passwords`]: stored-password formats (SCRAM verifier, md5 hash, plain text).
//! - [`cancel`]: per-client BackendKeyData and where a CancelRequest goes.

pub mod auth;
pub mod cancel;
pub mod listener;
pub mod passwords;
pub mod peer;
pub mod startup;
pub mod tls;
pub mod unix_socket;
