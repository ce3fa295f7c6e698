//! Building the effective configuration: YAML file → environment → command line.
//! Precedence: CLI flag > environment > file > default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// Environment variable: the config file to load when `--config` is not given.
pub const ENV_CONFIG: &str = "PGCACHED_CONFIG";
/// Environment variable overriding `listen`.
pub const ENV_LISTEN: &str = "PGCACHED_LISTEN";
/// Environment variable overriding `upstream.url`.
pub const ENV_UPSTREAM: &str = "PGCACHED_UPSTREAM";

/// Values given on the command line; they win over the environment and the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`
    pub config: Option<PathBuf>,
    /// `--listen HOST:PORT`
    pub listen: Option<String>,
    /// `--upstream URL`
    pub upstream: Option<String>,
}

fn env_get<'a>(env: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Parse a YAML document. Unknown keys and wrongly typed values are errors naming the key
    /// path. An empty document yields the defaults. Does not validate (see [`Config::validate`]).
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            return Ok(Config::default());
        }
        serde_yaml::from_str::<Config>(text).map_err(ConfigError::from_yaml)
    }

    /// Read and parse a YAML file. Relative `tls.cert`, `tls.key` and `upstream.ca_file` paths
    /// are resolved against the directory of the file. Does not validate.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::from_yaml_str(&text)?;
        if let Some(dir) = path.parent() {
            config.resolve_relative_paths(dir);
        }
        Ok(config)
    }

    /// Make relative file paths in the config relative to `dir`.
    pub fn resolve_relative_paths(&mut self, dir: &Path) {
        for p in [&mut self.tls.cert, &mut self.tls.key, &mut self.upstream.ca_file].into_iter().flatten() {
            if p.is_relative() && !dir.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        }
    }

    /// Which file to load: `--config`, else `PGCACHED_CONFIG`, else none (defaults only).
    pub fn config_path(cli: &Overrides, env: &HashMap<String, String>) -> Option<PathBuf> {
        cli.config.clone().or_else(|| env_get(env, ENV_CONFIG).map(PathBuf::from))
    }

    /// Apply `PGCACHED_LISTEN` / `PGCACHED_UPSTREAM` (empty values are ignored).
    pub fn apply_env(&mut self, env: &HashMap<String, String>) {
        if let Some(v) = env_get(env, ENV_LISTEN) {
            self.listen = v.trim().to_string();
        }
        if let Some(v) = env_get(env, ENV_UPSTREAM) {
            self.upstream.url = v.trim().to_string();
        }
    }

    /// Apply `--listen` / `--upstream`.
    pub fn apply_overrides(&mut self, cli: &Overrides) {
        if let Some(v) = &cli.listen {
            self.listen = v.clone();
        }
        if let Some(v) = &cli.upstream {
            self.upstream.url = v.clone();
        }
    }

    /// The effective configuration: the file (from `--config` or `PGCACHED_CONFIG`, or defaults
    /// when neither is set), then the environment, then the command line. `env` is passed in
    /// (e.g. `std::env::vars().collect()`) so this is testable. Does not validate.
    pub fn resolve(cli: &Overrides, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = match Config::config_path(cli, env) {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        config.apply_env(env);
        config.apply_overrides(cli);
        Ok(config)
    }
}
