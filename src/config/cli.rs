//! The command line (contract): `pgcached [--config FILE] [--listen HOST:PORT] [--upstream URL]
//! [--check]`, `--version`, `--help`, and the subcommands `pgcached install-triggers` /
//! `uninstall-triggers [--database DB] (--schema S | --table T)...` (`--config` and
//! `--upstream` are accepted before or after the subcommand). Kept in the library so `main.rs`
//! stays thin and tests can drive the same code.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::{Config, ConfigError, LogConfig, LogFormat, Overrides};
use crate::invalidate::command::{TriggerAction, TriggerRequest};

/// pgcached — a PostgreSQL wire-protocol caching proxy.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pgcached",
    version,
    about = "A PostgreSQL wire-protocol caching proxy: TTL result cache, transaction pooling, guard rails",
    after_help = "Environment: PGCACHED_CONFIG (config file when --config is absent), PGCACHED_LISTEN, \
                  PGCACHED_UPSTREAM (override the file; command-line flags override them), \
                  RUST_LOG (overrides log.level).\n\
                  Without a config file pgcached runs with defaults: listen 127.0.0.1:6432, \
                  transaction pooling, trust authentication from loopback only."
)]
pub struct Cli {
    /// YAML configuration file (see config.example.yaml).
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on for PostgreSQL clients (overrides `listen`).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Upstream PostgreSQL, postgres://[user[:password]@]host[:port][/db] (overrides `upstream.url`).
    #[arg(long, value_name = "URL", global = true)]
    pub upstream: Option<String>,
    /// Log filter, e.g. `info` or `pgcached=debug` (overrides `log.level`; `RUST_LOG` overrides it).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format (overrides `log.format`).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Validate the configuration and exit: 0 when valid, 1 with the offending key otherwise.
    #[arg(long)]
    pub check: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands (without one, pgcached serves).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Install the triggers that NOTIFY pgcached of writes made around it (for
    /// `cache.invalidation: notify`). Connects as the user of upstream.url, who must own the
    /// tables (or be a superuser) and may create the schema `pgcached`. Idempotent.
    InstallTriggers(TriggerArgs),
    /// Remove the invalidation triggers from the named tables / schemas.
    UninstallTriggers(TriggerArgs),
}

/// Which tables of which database.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).multiple(true).args(["schemas", "tables"])))]
pub struct TriggerArgs {
    /// Database (default: the one of upstream.url, else its user's name, else postgres).
    #[arg(long, value_name = "DB")]
    pub database: Option<String>,
    /// Every table and partitioned table of this schema (repeatable).
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// This table, optionally schema-qualified, as the user's search_path resolves it (repeatable).
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
}

impl Command {
    /// What the subcommand asks of the trigger machinery.
    pub fn trigger_request(&self) -> (TriggerAction, TriggerRequest) {
        let (action, args) = match self {
            Command::InstallTriggers(a) => (TriggerAction::Install, a),
            Command::UninstallTriggers(a) => (TriggerAction::Uninstall, a),
        };
        let request = TriggerRequest {
            database: args.database.clone(),
            schemas: args.schemas.clone(),
            tables: args.tables.clone(),
        };
        (action, request)
    }
}

impl Cli {
    /// Flags that only make sense when serving, given with a subcommand (a usage error).
    pub fn serving_flags_with_command(&self) -> Option<&'static str> {
        self.command.as_ref()?;
        if self.check {
            Some("--check")
        } else if self.listen.is_some() {
            Some("--listen")
        } else {
            None
        }
    }

    /// The command-line values that override the file and the environment.
    pub fn overrides(&self) -> Overrides {
        Overrides { config: self.config.clone(), listen: self.listen.clone(), upstream: self.upstream.clone() }
    }

    /// Build the effective configuration (file → env → flags) and validate it.
    /// Errors are prefixed with the config file's path when there is one.
    pub fn build_config(&self, env: &HashMap<String, String>) -> Result<Config, CliConfigError> {
        let overrides = self.overrides();
        let file = Config::config_path(&overrides, env);
        let wrap = |error: ConfigError| CliConfigError { file: file.clone(), error };
        let mut config = Config::resolve(&overrides, env).map_err(wrap)?;
        if let Some(level) = &self.log_level {
            config.log.level = level.clone();
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        config.validate().map_err(wrap)?;
        Ok(config)
    }

    /// How a reload reads the configuration again: the same file, environment and flags.
    pub fn source(&self, log: Option<LogControl>) -> ConfigSource {
        let cli = self.clone();
        ConfigSource::new(move || cli.build_config(&process_env()).map_err(|e| e.to_string())).with_log(log)
    }
}

/// A configuration error together with the file it came from.
#[derive(Debug)]
pub struct CliConfigError {
    pub file: Option<PathBuf>,
    pub error: ConfigError,
}

impl std::fmt::Display for CliConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, &self.error) {
            // the read error already names the file
            (_, ConfigError::Read { .. }) | (None, _) => write!(f, "{}", self.error),
            (Some(p), e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for CliConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The process environment as a map (non-UTF-8 variables are skipped).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// Install the global tracing subscriber: `log.level` (or `RUST_LOG` when set), text or JSON,
/// to stderr.
/// Returns the handle a reload changes the filter through.
pub fn init_tracing(log: &LogConfig) -> anyhow::Result<LogControl> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt, reload};
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let filter = EnvFilter::try_new(from_env.as_deref().unwrap_or(&log.level))?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    let lines = match log.format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    let set = move |level: &str| -> Result<(), String> {
        let filter = EnvFilter::try_new(level).map_err(|e| format!("log.level: {e}"))?;
        handle.reload(filter).map_err(|e| e.to_string())
    };
    Ok(LogControl { set: Box::new(set), env_override: from_env.is_some() })
}

/// Sets the process's log filter from a `log.level` value.
type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Changes the log filter of the running process (see [`init_tracing`]).
pub struct LogControl {
    set: SetFilter,
    /// `RUST_LOG` chose the filter: `log.level` does not apply.
    env_override: bool,
}

impl LogControl {
    /// Apply `log.level`; `Ok(false)` when `RUST_LOG` overrides it (nothing changed).
    pub fn set_level(&self, level: &str) -> Result<bool, String> {
        if self.env_override {
            return Ok(false);
        }
        (self.set)(level).map(|()| true)
    }
}

/// Where the running configuration came from, to read it again on reload.
pub struct ConfigSource {
    read: Box<dyn Fn() -> Result<Config, String> + Send + Sync>,
    log: Option<LogControl>,
}

impl ConfigSource {
    /// A source read by `read` (validated: an invalid file is an `Err` with its message).
    pub fn new(read: impl Fn() -> Result<Config, String> + Send + Sync + 'static) -> ConfigSource {
        ConfigSource { read: Box::new(read), log: None }
    }

    /// The process's log filter, for `log.level` to take effect.
    pub fn with_log(mut self, log: Option<LogControl>) -> ConfigSource {
        self.log = log;
        self
    }

    pub fn read(&self) -> Result<Config, String> {
        (self.read)()
    }

    /// Apply `log.level`: `Ok(false)` when no filter is controlled here (tests) or `RUST_LOG`
    /// overrides it.
    pub fn set_log_level(&self, level: &str) -> Result<bool, String> {
        match &self.log {
            Some(log) => log.set_level(level),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_flags() {
        let cli = Cli::try_parse_from([
            "pgcached",
            "--config",
            "/etc/p.yaml",
            "--listen",
            "0.0.0.0:7000",
            "--upstream",
            "postgres://h/db",
            "--check",
        ])
        .unwrap();
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/etc/p.yaml")));
        assert_eq!(cli.listen.as_deref(), Some("0.0.0.0:7000"));
        assert_eq!(cli.upstream.as_deref(), Some("postgres://h/db"));
        assert!(cli.check);
    }

    #[test]
    fn trigger_subcommands_take_the_global_flags_anywhere() {
        let cli = Cli::try_parse_from([
            "pgcached",
            "install-triggers",
            "--config",
            "/etc/p.yaml",
            "--database",
            "app",
            "--schema",
            "public",
            "--schema",
            "s",
            "--table",
            "x.t",
        ])
        .unwrap();
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("/etc/p.yaml")));
        let (action, req) = cli.command.unwrap().trigger_request();
        assert_eq!(action, TriggerAction::Install);
        assert_eq!(req.database.as_deref(), Some("app"));
        assert_eq!(req.schemas, ["public", "s"]);
        assert_eq!(req.tables, ["x.t"]);

        let cli =
            Cli::try_parse_from(["pgcached", "--upstream", "postgres://h/db", "uninstall-triggers", "--table", "t"])
                .unwrap();
        assert_eq!(cli.upstream.as_deref(), Some("postgres://h/db"));
        assert_eq!(cli.command.unwrap().trigger_request().0, TriggerAction::Uninstall);
    }

    #[test]
    fn trigger_subcommands_need_a_target_and_refuse_serving_flags() {
        assert!(Cli::try_parse_from(["pgcached", "install-triggers"]).is_err());
        assert!(Cli::try_parse_from(["pgcached", "install-triggers", "--check", "--table", "t"]).is_err());
        let cli =
            Cli::try_parse_from(["pgcached", "--listen", "0.0.0.0:1", "install-triggers", "--table", "t"]).unwrap();
        assert_eq!(cli.serving_flags_with_command(), Some("--listen"));
        let cli = Cli::try_parse_from(["pgcached", "--check", "install-triggers", "--table", "t"]).unwrap();
        assert_eq!(cli.serving_flags_with_command(), Some("--check"));
        let cli = Cli::try_parse_from(["pgcached", "--check"]).unwrap();
        assert_eq!(cli.serving_flags_with_command(), None);
    }

    #[test]
    fn no_file_runs_with_defaults() {
        let cli = Cli::try_parse_from(["pgcached", "--upstream", "postgres://127.0.0.1:5432"]).unwrap();
        let c = cli.build_config(&HashMap::new()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:6432");
        assert_eq!(c.pool.mode, super::super::PoolMode::Transaction);
        assert_eq!(c.auth.method, super::super::AuthMethod::Trust);
        assert_eq!(c.upstream_target().unwrap().port, 5432);
    }
}
