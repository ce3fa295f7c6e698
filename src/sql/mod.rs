//! SQL understanding: statement analysis (kind, tables, functions, fingerprint), safety
//! policies, and LIMIT injection. Pure logic over statement text; the proxy calls it.
//!
//! Layout: [`lex`] finds where things are in the original bytes; [`analyze`] turns a query
//! string into an [`Analysis`] (memoized in [`memo`]); [`policy`] checks an analysis against a
//! configured policy; [`limit`] rewrites reads with a LIMIT.

pub mod functions;
pub mod lex;
pub mod tables;
pub mod walk;
