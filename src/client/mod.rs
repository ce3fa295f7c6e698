//! (placeholder: filled in by the module's owner)

pub mod auth;
pub mod passwords;
pub mod tls;
