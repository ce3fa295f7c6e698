//! SQL understanding: statement analysis (kind, tables, functions, fingerprint), safety
//! policies, and LIMIT injection. Pure logic over statement text; the proxy calls it.
//!
//! Layout: [`lex`] finds where things are in the original bytes; [`analyze()`] turns a query
//! string into an [`Analysis`] (memoized in [`memo`]); [`policy`] checks an analysis against a
//! configured policy; [`limit`] rewrites reads with a LIMIT; [`lexing_guard`] refuses settings
//! that would make Postgres lex text differently from this module.
//!
//! # How the proxy uses it
//! ```ignore
//! let policies = Policies::from_config(&cfg.safety, &cfg.limit, &cfg.policies)?;   // at startup
//! let policy = policies.for_session(user, database);                               // per session
//! if let Some(p) = &policy { p.check_startup_params(&startup_params)?; }           // at login
//! let verdict = sql::guard(policy.as_deref(), text)?;  // per Query / Parse: Refusal → ErrorResponse
//! if let Some(p) = &policy { sql::check_cost(p, &estimator, text, &verdict.analysis).await?; }
//! // send verdict.rewrite.text (if any) instead of text; cap CapParam parameters at Bind;
//! // send verdict.notices; cache/invalidate from verdict.analysis
//! // (is_read_only, tables_written(), functions' volatility, settings()).
//! ```

pub mod analyze;
pub mod body_writes;
pub mod columns;
pub mod cost;
pub mod database_ddl;
pub mod fingerprint;
pub mod functions;
pub mod guard;
pub mod kind;
pub mod lex;
pub mod lexing_guard;
pub mod limit;
pub mod login_defaults;
pub mod memo;
pub mod param_cap;
pub mod policy;
pub mod preprocess;
pub mod query_id;
pub mod refusal;
pub mod rows;
pub mod settings;
pub mod tables;
pub mod template;
pub mod utility;
pub mod walk;
pub mod weight;

pub use analyze::{Analysis, StatementAnalysis, Wrapper, analyze_uncached};
pub use cost::{CostError, CostEstimator, check_cost};
pub use functions::Volatility;
pub use guard::{LimitNotice, Verdict, guard, guard_with};
pub use kind::{StatementKind, TxKind};
pub use limit::{LimitChange, LimitRewrite, LimitRule, LimitSite};
pub use memo::{Analyzer, analyze, first_word, surely_uncached};
pub use param_cap::{ParamCap, cap_bind_params, param_caps};
pub use policy::{Policies, Policy, PolicyError};
pub use refusal::Refusal;
pub use rows::{ColumnPin, Operand, RowPins};
pub use settings::{SetVia, SettingChange, is_true};
pub use tables::TableRef;
pub use walk::FunctionCall;
