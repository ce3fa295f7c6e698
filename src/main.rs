//! `pgcached` binary: CLI → config → logging → run (or a subcommand: install-triggers…).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use pgcached::app::run;
use pgcached::config::Config;
use pgcached::config::cli::{Cli, Command, init_tracing, process_env};
use pgcached::invalidate::command::run_trigger_command;
use pgcached::server::UpstreamTarget;

/// Small allocations dominate the data path (frames, analyses, keys): mimalloc serves them in a
/// fraction of glibc's instructions (callgrind, docs/DECISIONS.md 33).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same position in its v2 and v3 option lists).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Freed memory goes back to the system at once rather than after a delay that, with
    // pgcached's allocation pattern, never ran out: after a spike (a full cache expiring, a
    // burst of large answers) the resident set returns to its baseline (tests/memory.rs
    // `memory_returns_to_the_baseline_after_a_spike`; ~1 madvise per 100 transactions,
    // DECISIONS 47).
    // SAFETY: sets a plain integer option; mimalloc reads options at each use.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let cli = Cli::parse();
    if let Some(flag) = cli.serving_flags_with_command() {
        eprintln!("pgcached: {flag} cannot be used with a subcommand");
        return ExitCode::from(2);
    }
    let config = match cli.build_config(&process_env()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pgcached: invalid configuration: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(command) = &cli.command {
        return run_command(command, &config);
    }
    if cli.check {
        if let Err(e) = pgcached::app::check(&config) {
            eprintln!("pgcached: invalid configuration: {e:#}");
            return ExitCode::from(1);
        }
        match &cli.config {
            Some(p) => println!("pgcached: configuration OK: {}", p.display()),
            None => println!("pgcached: configuration OK"),
        }
        for w in config.warnings() {
            println!("warning: {w}");
        }
        return ExitCode::SUCCESS;
    }

    let log = match init_tracing(&config.log) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("pgcached: {e:#}");
            return ExitCode::from(1);
        }
    };
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %config.redacted_summary(), "starting pgcached");

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = config.limits.session_threads(cores);
    tracing::info!(threads, cores, "session threads");
    // One thread: tokio's current-thread scheduler, which does not time every batch of polls
    // (the multi-thread one reads the clock twice per batch to tune its queues).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcached: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // A reload reads the same file, environment and flags again.
    let source = cli.source(Some(log));
    match runtime.block_on(run(Arc::new(config), Some(source))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "pgcached stopped with an error");
            ExitCode::from(1)
        }
    }
}

/// A subcommand: one short-lived control-plane connection, the outcome on stdout, errors on
/// stderr and exit status 1.
fn run_command(command: &Command, config: &Config) -> ExitCode {
    let (action, request) = command.trigger_request();
    let name = action.command_name();
    let target = match UpstreamTarget::from_config(&config.upstream) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pgcached: {name}: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcached: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_trigger_command(&target, action, &request)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgcached: {name} failed on {}: {e}", pgcached::config::redact_url(&config.upstream.url));
            ExitCode::from(1)
        }
    }
}
