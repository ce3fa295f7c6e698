//! `pgcached` binary: CLI → config → logging → run.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use pgcached::app::run;
use pgcached::config::cli::{Cli, init_tracing, process_env};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.build_config(&process_env()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pgcached: invalid configuration: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        match &cli.config {
            Some(p) => println!("pgcached: configuration OK: {}", p.display()),
            None => println!("pgcached: configuration OK"),
        }
        for w in config.warnings() {
            println!("warning: {w}");
        }
        return ExitCode::SUCCESS;
    }

    if let Err(e) = init_tracing(&config.log) {
        eprintln!("pgcached: {e:#}");
        return ExitCode::from(1);
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %config.redacted_summary(), "starting pgcached");

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcached: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(Arc::new(config))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "pgcached stopped with an error");
            ExitCode::from(1)
        }
    }
}
