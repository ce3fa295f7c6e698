//! The differential protocol fuzzer: random pipelines (Query, Parse, Bind, Describe, Execute,
//! Sync, Close, Flush, COPY data) with errors, savepoints, SETs, pinning statements, cancels and
//! disconnects, from several clients at once, run in lock step directly against Postgres and
//! through pgcached (cache on, a pool smaller than the clients), compared message by message.
//!
//! * [`vocab`]: the schema and the statements;
//! * [`generate`]: seeded random steps;
//! * [`scenario`]: what a run is, printable as Rust;
//! * [`run`]: the lock-step differential run;
//! * [`shrink`]: a divergence made small, for a regression test.
//!
//! tests/protocol_fuzz.rs runs it (a short seeded run in CI, longer on demand: fuzz/README.md);
//! tests/session_regressions.rs holds every divergence it found, as a fixed scenario.

pub mod generate;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod vocab;

pub use run::{Divergence, Setup, Totals, World};
pub use scenario::{Scenario, build};

/// Run `scenario` directly and through pgcached; panic with both transcripts where they differ.
pub async fn assert_same_as_direct(setup: Setup, scenario: Scenario) {
    let mut world = World::start().await;
    if let Some(d) = world.run_scenario(setup, &scenario).await {
        panic!("{d}\nscenario:\n{}", scenario.to_rust());
    }
}
