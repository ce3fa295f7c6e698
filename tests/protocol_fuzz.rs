//! The differential protocol fuzzer's seeded run (tests/common/fuzz): random multi-client
//! pipelines, directly against Postgres and through pgcached, must get the same answers.
//!
//! CI runs a short fixed set of seeds. Longer runs (fuzz/README.md):
//!
//! ```sh
//! FUZZ_SECONDS=1800 FUZZ_KEEP_GOING=1 cargo nextest run --profile fuzz --test protocol_fuzz --no-capture
//! ```
//!
//! | variable           | default | meaning                                                   |
//! |--------------------|---------|-----------------------------------------------------------|
//! | `FUZZ_SEED`        | 1       | first seed                                                |
//! | `FUZZ_SEEDS`       | 12 / 4  | seeds to run (transaction / session pooling)              |
//! | `FUZZ_STEPS`       | 40      | steps per seed                                            |
//! | `FUZZ_SECONDS`     | unset   | instead of a seed count: new seeds until the time is up   |
//! | `FUZZ_KEEP_GOING`  | unset   | report every divergence (shrunk) instead of the first     |
//! | `FUZZ_SHRINK`      | 80      | runs the shrinker may spend on one divergence             |
//! | `FUZZ_IMPLICIT_WRITES` | `1`   | `0`: leave out what sees trigger/cascade writes          |

mod common;

use std::time::{Duration, Instant};

use common::fuzz::shrink::shrink;
use common::fuzz::{Setup, Totals, World};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn fuzz(setup: Setup, default_seeds: u64) {
    let first = env_num("FUZZ_SEED", 1);
    let seeds = env_num("FUZZ_SEEDS", default_seeds);
    let steps = env_num("FUZZ_STEPS", 40) as usize;
    let budget = std::env::var("FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs);
    let keep_going = std::env::var_os("FUZZ_KEEP_GOING").is_some();
    let shrink_budget = env_num("FUZZ_SHRINK", 80) as usize;

    let started = Instant::now();
    let mut world = World::start().await;
    let mut totals = Totals::default();
    let mut found = Vec::new();
    let mut seed = first;
    loop {
        let more = match budget {
            Some(b) => started.elapsed() < b,
            None => seed < first + seeds,
        };
        if !more {
            break;
        }
        let (scenario, divergence) = world.run_seed(setup, seed, steps, &mut totals).await;
        if let Some(d) = divergence {
            let small = shrink(&mut world, setup, &scenario, &d, shrink_budget).await;
            let report = format!("seed {seed}: {d}\nshrunk:\n{}\n", small.to_rust());
            eprintln!("{report}");
            found.push(report);
            if !keep_going {
                break;
            }
        }
        seed += 1;
    }
    eprintln!(
        "fuzz {:?}: seeds {first}..{seed}, {} scenarios, {} steps, {} messages, {} divergences, {:.0?}",
        setup.mode,
        totals.scenarios,
        totals.steps,
        totals.messages,
        found.len(),
        started.elapsed()
    );
    assert!(found.is_empty(), "{} divergence(s):\n{}", found.len(), found.join("\n"));
    assert!(totals.messages > 0, "the run sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_answers_as_postgres() {
    fuzz(Setup::transaction(), 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pooling_answers_as_postgres() {
    fuzz(Setup::session(), 4).await;
}

/// The fuzzer accepts the one documented difference in where an error comes (a planner error
/// at the Bind on one side, right after its BindComplete on the other) and nothing more.
#[test]
fn the_comparison_accepts_only_the_planner_error_one_message_apart() {
    use common::fuzz::run::same_but_for_planning;
    let t = |msgs: &[&str]| msgs.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let error = "E:22P02:invalid input syntax for type integer: \"\"";
    let at_execute = t(&["ParseComplete", "BindComplete", error, "ReadyForQuery E"]);
    let at_bind = t(&["ParseComplete", error, "ReadyForQuery E"]);
    assert!(same_but_for_planning(&at_execute, &at_bind));
    assert!(same_but_for_planning(&at_bind, &at_execute));
    assert!(same_but_for_planning(&at_bind, &at_bind));
    let other = t(&["ParseComplete", "E:42P01:relation \"x\" does not exist", "ReadyForQuery E"]);
    let other_late = t(&["ParseComplete", "BindComplete", "E:42P01:relation \"x\" does not exist", "ReadyForQuery E"]);
    assert!(!same_but_for_planning(&other_late, &other), "another error is no planning difference");
    assert!(!same_but_for_planning(&at_execute, &t(&["ParseComplete", "BindComplete", "ReadyForQuery E"])));
    assert!(!same_but_for_planning(&at_execute, &t(&["ParseComplete", error, "ReadyForQuery I"])));
    let twice = t(&["ParseComplete", "BindComplete", error, error, "ReadyForQuery E"]);
    assert!(!same_but_for_planning(&twice, &at_bind), "one error is not two");
}
