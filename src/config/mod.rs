//! Typed configuration: the YAML contract (see `config.example.yaml`), its defaults, environment
//! overrides and validation. Every section is a plain serde struct; unknown keys are errors.
//!
//! Owned by the config module. Other modules read these structs; they never parse YAML themselves.

mod addr;
pub mod cli;
mod error;
mod load;
pub mod policy;
mod serde_util;
#[cfg(test)]
mod tests;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

pub use addr::{UpstreamAddr, parse_host_port, redact_url};
pub use cli::{ConfigSource, LogControl};
pub use error::ConfigError;
pub use load::{ENV_CONFIG, ENV_LISTEN, ENV_UPSTREAM, Overrides};
pub use policy::{LimitConfig, PolicyConfig, SafetyConfig};
pub use serde_util::parse_duration;

use serde_util::{duration, opt_duration};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the proxy listens on for PostgreSQL clients, `HOST:PORT`.
    pub listen: String,
    /// Also listen on a Unix-domain socket in this directory, named as Postgres names its own:
    /// `<dir>/.s.PGSQL.<port of listen>` (what psql and libpq use when the host is a path or is
    /// left out). Unset: TCP only.
    pub unix_socket_dir: Option<std::path::PathBuf>,
    pub upstream: UpstreamConfig,
    pub pool: PoolConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub timeouts: TimeoutsConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub stats: StatsConfig,
    pub cache: CacheConfig,
    pub safety: SafetyConfig,
    pub limit: LimitConfig,
    pub policies: Vec<PolicyConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:6432".into(),
            unix_socket_dir: None,
            upstream: UpstreamConfig::default(),
            pool: PoolConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            timeouts: TimeoutsConfig::default(),
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            stats: StatsConfig::default(),
            cache: CacheConfig::default(),
            safety: SafetyConfig::default(),
            limit: LimitConfig::default(),
            policies: Vec::new(),
        }
    }
}

/// Where the real PostgreSQL is. `Debug` masks the password in `url`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// libpq-style URL `postgres://[user[:password]@]host[:port][/db]`.
    pub url: String,
    pub tls: UpstreamTls,
    /// CA bundle (PEM) used to verify the upstream's certificate (verify-full).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &redact_url(&self.url))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig { url: "postgres://127.0.0.1:5432".into(), tls: UpstreamTls::Prefer, ca_file: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl UpstreamTls {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamTls::Disable => "disable",
            UpstreamTls::Prefer => "prefer",
            UpstreamTls::Require => "require",
            UpstreamTls::VerifyFull => "verify-full",
        }
    }

    /// The mode for an upstream on its Unix-domain socket, where Postgres takes no TLS (nor
    /// does libpq ask for it): `disable`; `require` and `verify-full` cannot be kept there, and
    /// are an error (the message, for `upstream.tls`).
    pub fn on_a_socket(self) -> Result<UpstreamTls, String> {
        match self {
            UpstreamTls::Disable | UpstreamTls::Prefer => Ok(UpstreamTls::Disable),
            UpstreamTls::Require | UpstreamTls::VerifyFull => Err(format!(
                "{} needs a TCP host: upstream.url names a Unix socket, which Postgres serves without TLS \
                 (set upstream.tls to prefer or disable)",
                self.as_str()
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    Transaction,
    Session,
}

/// Upstream connection pools, one per (database, user).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    pub mode: PoolMode,
    pub max_size: usize,
    pub min_idle: usize,
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    #[serde(with = "duration")]
    pub max_lifetime: Duration,
    /// A connection idle longer than this is health-checked before it is handed out.
    #[serde(with = "duration")]
    pub health_check_after: Duration,
    /// Per server connection: how many server-side prepared statements to keep (LRU).
    pub max_prepared_statements: usize,
    /// How many more times opening a server connection is tried after a transient failure
    /// (network error, or Postgres starting up / shutting down) before the checkout fails.
    pub retries: u32,
    /// The wait before the first retry; it doubles for each next one (see `pool::retry`).
    #[serde(with = "duration")]
    pub retry_backoff: Duration,
    /// While the upstream is marked down (circuit breaker open), how often one checkout may
    /// probe it with a real connection attempt; every other one fails at once with 08006.
    #[serde(with = "duration")]
    pub breaker_probe_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            mode: PoolMode::Transaction,
            max_size: 20,
            min_idle: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            health_check_after: Duration::from_secs(30),
            max_prepared_statements: 200,
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            breaker_probe_interval: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    Trust,
    Md5,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
}

/// How clients authenticate to pgcached.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub method: AuthMethod,
    pub users: Vec<UserEntry>,
    /// Optional query run on a control-plane connection to find a user's stored password:
    /// `$1` is the user name, the single column returned is the password / verifier.
    pub auth_query: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { method: AuthMethod::Trust, users: Vec::new(), auth_query: None }
    }
}

/// One client user. `password` is plaintext, an md5 hash (`md5…`) or a SCRAM verifier
/// (`SCRAM-SHA-256$…`), as stored by PostgreSQL in pg_authid.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for UserEntry {
    // Passwords never appear in logs or debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry").field("name", &self.name).field("password", &"<redacted>").finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientTlsMode {
    Disable,
    Allow,
    Require,
}

/// TLS towards clients.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: ClientTlsMode,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { mode: ClientTlsMode::Disable, cert: None, key: None }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_clients: usize,
    /// Largest client message accepted (a size like `64MiB`).
    pub max_message_size: ByteSize,
    /// Threads that run client sessions; `0` = automatic (see [`LimitsConfig::session_threads`]).
    pub worker_threads: usize,
    /// What a session buffers towards either side before it stops reading from the other
    /// (backpressure): a client that reads slowly slows its server's reads.
    pub session_buffer: ByteSize,
    /// The memo of analysed statements, weighed by what it holds (see `sql::memo`).
    pub analysis_memo: ByteSize,
}

impl LimitsConfig {
    /// The threads to run sessions on, given `cores` CPUs: `worker_threads`, or when it is `0`
    /// one per two cores, at least one (docs/DECISIONS.md, 22: the kernel's share of forwarding
    /// — loopback TCP, wake-ups — runs on the same cores, and on 2 cores one thread forwards and
    /// answers hits faster than two).
    pub fn session_threads(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => (cores / 2).max(1),
            n => n,
        }
    }
}

/// Upper bound for `limits.worker_threads`.
pub const MAX_WORKER_THREADS: usize = 256;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_clients: 1000,
            max_message_size: ByteSize::mib(64),
            worker_threads: DEFAULT_WORKER_THREADS,
            session_buffer: ByteSize::mib(1),
            analysis_memo: ByteSize::b(crate::sql::memo::DEFAULT_CAPACITY),
        }
    }
}

/// Automatic: one per two cores (see [`LimitsConfig::session_threads`]).
pub const DEFAULT_WORKER_THREADS: usize = 0;

/// `None` means "no timeout" (config: `0` or omitted).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    #[serde(with = "duration")]
    pub login: Duration,
    #[serde(with = "opt_duration")]
    pub query: Option<Duration>,
    #[serde(with = "opt_duration")]
    pub idle_in_transaction: Option<Duration>,
    #[serde(with = "opt_duration")]
    pub client_idle: Option<Duration>,
    /// A client that has answers waiting and takes none of them for this long is disconnected
    /// (its server connection closed): it holds a server, not memory (see `session::timers`).
    #[serde(with = "opt_duration")]
    pub client_write: Option<Duration>,
    /// On SIGTERM/SIGINT: how long open transactions may take to finish.
    #[serde(with = "duration")]
    pub shutdown: Duration,
}

impl TimeoutsConfig {
    /// Whether any timeout a session keeps a clock for is set (`query`, `idle_in_transaction`,
    /// `client_idle`): without one, sessions read no clock per message.
    pub fn any_session_timeout(&self) -> bool {
        self.query.is_some() || self.idle_in_transaction.is_some() || self.client_idle.is_some()
    }
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            login: Duration::from_secs(15),
            query: None,
            idle_in_transaction: None,
            client_idle: None,
            client_write: None,
            shutdown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

/// Metrics / health HTTP endpoint and admin console.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `HOST:PORT` for `/metrics`, `/healthz`, `/readyz`; disabled when absent.
    pub http_listen: Option<String>,
    /// Users who may log in to the admin console (authenticated like any client); empty: the
    /// console refuses everyone.
    pub users: Vec<String>,
    /// The console's virtual database name (`psql -d pgcached`); no upstream database of this
    /// name is reachable through the proxy.
    pub database: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { http_listen: None, users: Vec::new(), database: "pgcached".into() }
    }
}

/// Per-query statistics (admin `SHOW QUERIES`, `/metrics`), the slow-query log and N+1
/// detection. Fingerprints mask literals: no value from a statement is kept or logged.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Keep per-query statistics at all.
    pub enabled: bool,
    /// Queries (database, fingerprint) kept; the least costly are folded into `<other>`.
    pub max_queries: usize,
    /// The queries with most total time exported to `/metrics` (bounded label cardinality).
    pub metrics_top: usize,
    /// Log statements that take at least this long (target `pgcached::slow_query`); 0: off.
    #[serde(with = "opt_duration")]
    pub slow_query: Option<Duration>,
    /// Log when one client runs one fingerprint more than this many times within
    /// `n_plus_one_window` (target `pgcached::n_plus_one`); 0: off.
    pub n_plus_one: u32,
    #[serde(with = "duration")]
    pub n_plus_one_window: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            enabled: true,
            max_queries: 500,
            metrics_top: 20,
            slow_query: None,
            n_plus_one: 0,
            n_plus_one_window: Duration::from_secs(1),
        }
    }
}

/// The result cache.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    pub max_memory: ByteSize,
    pub max_entry_size: ByteSize,
    /// What all recordings in progress may hold together: a fill that would take more gives up
    /// (its answer still streams), so concurrent fills cost this, not clients × max_entry_size.
    pub max_filling: ByteSize,
    #[serde(with = "duration")]
    pub default_ttl: Duration,
    /// Cache reads of system catalogs too.
    pub catalogs: bool,
    pub invalidation: InvalidationMode,
    /// `cache.invalidation: replication`: the publication, the slot and the lag bound.
    pub replication: ReplicationConfig,
    pub rules: Vec<CacheRule>,
    /// Answers past their TTL (not invalidated) that may be served while Postgres cannot be
    /// reached.
    pub serve_stale_on_error: ServeStaleConfig,
}

/// `cache.serve_stale_on_error`: when no server connection can be opened (network error, or
/// the circuit breaker open), a cacheable read in autocommit whose answer expired at most
/// `max_age` ago — and was never invalidated — is answered from it, after a NOTICE.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeStaleConfig {
    pub enabled: bool,
    /// How long past its TTL an answer may still be served this way (entries are kept that
    /// much longer in memory while this is on).
    #[serde(with = "duration")]
    pub max_age: Duration,
}

impl Default for ServeStaleConfig {
    fn default() -> Self {
        ServeStaleConfig { enabled: false, max_age: Duration::from_secs(60) }
    }
}

impl ServeStaleConfig {
    /// How long past its TTL an entry is kept: `max_age` when on, else nothing.
    pub fn grace(&self) -> Option<Duration> {
        self.enabled.then_some(self.max_age)
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_memory: ByteSize::mib(256),
            max_entry_size: ByteSize::mib(8),
            max_filling: ByteSize::mib(64),
            default_ttl: Duration::from_secs(60),
            catalogs: false,
            invalidation: InvalidationMode::Proxy,
            replication: ReplicationConfig::default(),
            rules: Vec::new(),
            serve_stale_on_error: ServeStaleConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidationMode {
    /// Only writes seen by this proxy invalidate; TTL bounds the rest.
    Proxy,
    /// Also LISTEN for trigger NOTIFYs from the database.
    Notify,
    /// Also read every committed row change from the logical replication stream.
    Replication,
}

/// `cache.replication`: how pgcached follows each database's logical replication stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// The publication to stream; created `FOR ALL TABLES` when it does not exist.
    pub publication: String,
    /// A permanent slot name (per database: `<slot>_<database>`); `None`: a temporary slot
    /// per connection, gone with it.
    pub slot: Option<String>,
    /// How far behind the stream may be before the database's answers stop being served.
    #[serde(with = "duration")]
    pub max_lag: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig { publication: "pgcached".into(), slot: None, max_lag: Duration::from_secs(1) }
    }
}

/// `cache.rules`: the first rule that matches decides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRule {
    pub table: Option<String>,
    pub fingerprint: Option<String>,
    pub regex: Option<String>,
    #[serde(default, with = "opt_duration")]
    pub ttl: Option<Duration>,
    pub cache: Option<bool>,
}
