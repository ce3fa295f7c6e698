//! The wire layer: PostgreSQL v3 frames on raw bytes.
//!
//! - [`frame`]: splitting a byte stream into frames, with size caps checked before anything is
//!   allocated; the startup packet (untagged) and tagged messages.
//! - [`frontend`]: borrowed views of the client messages the proxy must inspect.
//! - [`backend`]: borrowed views of the server messages the proxy must inspect.
//! - [`build`]: synthetic messages the proxy sends itself (errors, ParseComplete, ReadyForQuery, …).
//!
//! This layer knows nothing about sessions, pools or configuration.

pub mod backend;
pub mod build;
pub mod frame;
pub mod frontend;

pub use frame::{Frame, FrameError};
