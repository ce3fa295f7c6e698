//! The `max_cost` rule: the proxy implements [`CostEstimator`] (EXPLAIN on a control-plane
//! connection with the client's database, role and search_path, cached per fingerprint) and
//! [`check_cost`] refuses reads above the policy's limit.

use super::analyze::Analysis;
use super::policy::Policy;
use super::refusal::{PROGRAM_LIMIT_EXCEEDED, Refusal};
use std::future::Future;

/// Why an estimate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("could not estimate the cost: {0}")]
pub struct CostError(pub String);

/// Estimates the total cost of a statement (the top node's `Total Cost` of `EXPLAIN (FORMAT
/// JSON)`), as the client would run it.
pub trait CostEstimator: Send + Sync {
    /// `sql` is one statement's text; `fingerprint_hash` lets the implementation cache by shape.
    fn estimate(&self, sql: &str, fingerprint_hash: u64) -> impl Future<Output = Result<f64, CostError>> + Send;
}

/// Refuses (54000) any read of `text` whose estimated cost exceeds the policy's `max_cost`. A
/// failed estimate refuses too (fail closed). Nothing is estimated without `max_cost`.
pub async fn check_cost<E: CostEstimator>(
    policy: &Policy,
    estimator: &E,
    text: &str,
    analysis: &Analysis,
) -> Result<(), Refusal> {
    let Some(max) = policy.max_cost() else {
        return Ok(());
    };
    for s in analysis.statements.iter().filter(|s| s.kind == super::StatementKind::Read && s.wrapper.is_none()) {
        let sql = &text[s.span.clone()];
        match estimator.estimate(sql, s.fingerprint_hash).await {
            Ok(cost) if cost > max => {
                return Err(Refusal::new(
                    PROGRAM_LIMIT_EXCEEDED,
                    format!("estimated cost {cost:.0} exceeds max_cost {max:.0} of policy \"{}\"", policy.name()),
                )
                .by(policy.name(), "max_cost"));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Refusal::new(
                    PROGRAM_LIMIT_EXCEEDED,
                    format!("{e} (max_cost of policy \"{}\")", policy.name()),
                )
                .by(policy.name(), "max_cost"));
            }
        }
    }
    Ok(())
}
