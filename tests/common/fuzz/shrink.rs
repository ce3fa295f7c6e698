//! Making a diverging scenario small enough to read: drop whole steps, then single messages, as
//! long as the run still diverges (greedy, within a budget of runs). The result is what goes into
//! tests/session_regressions.rs or tests/statement_regressions.rs.

use super::run::{Divergence, Setup, World};
use super::scenario::{Action, Fm, Scenario};

/// The smallest scenario found that still diverges as `found` did, within `budget` runs.
pub async fn shrink(
    world: &mut World,
    setup: Setup,
    scenario: &Scenario,
    found: &Divergence,
    budget: usize,
) -> Scenario {
    let signature = found.signature();
    let mut best = scenario.clone();
    let mut runs = 0;
    // Whole steps, last first (later steps rarely explain earlier ones).
    let mut progress = true;
    while progress && runs < budget {
        progress = false;
        let mut i = best.steps.len();
        while i > 0 && runs < budget {
            i -= 1;
            let mut candidate = best.clone();
            candidate.steps.remove(i);
            if still_diverges(world, setup, &candidate, &signature, &mut runs).await {
                best = candidate;
                progress = true;
            }
        }
    }
    // Single messages inside pipelines.
    for s in 0..best.steps.len() {
        let mut m = 0;
        while runs < budget {
            let Some(len) = messages(&best.steps[s].action).map(Vec::len) else { break };
            if m >= len {
                break;
            }
            let mut candidate = best.clone();
            let fms = messages_mut(&mut candidate.steps[s].action).unwrap();
            fms.remove(m);
            if still_diverges(world, setup, &candidate, &signature, &mut runs).await {
                best = candidate;
            } else {
                m += 1;
            }
        }
    }
    best
}

fn messages(action: &Action) -> Option<&Vec<Fm>> {
    match action {
        Action::Send(fms) | Action::Cancel(fms) | Action::Terminate(fms) => Some(fms),
        Action::Vanish => None,
    }
}

fn messages_mut(action: &mut Action) -> Option<&mut Vec<Fm>> {
    match action {
        Action::Send(fms) | Action::Cancel(fms) | Action::Terminate(fms) => Some(fms),
        Action::Vanish => None,
    }
}

/// Whether `candidate` still shows the divergence with this signature (another one would lead
/// the shrinker to a different bug).
async fn still_diverges(
    world: &mut World,
    setup: Setup,
    candidate: &Scenario,
    signature: &(String, String),
    runs: &mut usize,
) -> bool {
    *runs += 1;
    world.run_scenario(setup, candidate).await.is_some_and(|d| d.signature() == *signature)
}
