//! SQL understanding: statement analysis (kind, tables, functions, fingerprint), safety
//! policies, and LIMIT injection. Pure logic over statement text; the proxy calls it.
//!
//! Layout: [`lex`] finds where things are in the original bytes; [`analyze()`] turns a query
//! string into an [`Analysis`] (memoized in [`memo`]); [`policy`] checks an analysis against a
//! configured policy; [`limit`] rewrites reads with a LIMIT; [`lexing_guard`] refuses settings
//! that would make Postgres lex text differently from this module.

pub mod analyze;
pub mod columns;
pub mod cost;
pub mod fingerprint;
pub mod functions;
pub mod kind;
pub mod lex;
pub mod lexing_guard;
pub mod limit;
pub mod memo;
pub mod policy;
pub mod preprocess;
pub mod refusal;
pub mod settings;
pub mod tables;
pub mod walk;

pub use analyze::{Analysis, StatementAnalysis, Wrapper, analyze_uncached};
pub use cost::{CostError, CostEstimator, check_cost};
pub use functions::Volatility;
pub use kind::{StatementKind, TxKind};
pub use limit::{LimitChange, LimitRewrite, LimitRule, LimitSite};
pub use memo::{Analyzer, analyze};
pub use policy::{Policies, Policy, PolicyError};
pub use refusal::Refusal;
pub use settings::{SetVia, SettingChange};
pub use tables::TableRef;
pub use walk::FunctionCall;
