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
//! tests/session_regressions.rs and tests/statement_regressions.rs hold every divergence it
//! found, as a fixed scenario (`regression!`).

pub mod generate;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod vocab;

pub use run::{Divergence, Setup, Totals, World};
pub use scenario::{Scenario, build};

/// A test that runs a fixed scenario directly and through pgcached (see
/// [`assert_same_as_direct`]): `regression!(/// why, name, setup, scenario)`.
#[allow(unused_macros)]
macro_rules! regression {
    ($(#[$meta:meta])* $name:ident, $setup:expr, $scenario:expr) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::common::fuzz::assert_same_as_direct($setup, $scenario).await;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use regression;

/// Run `scenario` directly and through pgcached; panic with both transcripts where they differ.
pub async fn assert_same_as_direct(setup: Setup, scenario: Scenario) {
    let mut world = World::start().await;
    if let Some(d) = world.run_scenario(setup, &scenario).await {
        panic!("{d}\nscenario:\n{}", scenario.to_rust());
    }
}
