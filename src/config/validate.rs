//! Semantic checks of a parsed [`Config`], and the derived views other modules use
//! (`upstream_target`, `redacted_summary`). Every error names its key path.

use std::path::Path;

use super::{
    AuthMethod, ClientTlsMode, Config, ConfigError, LogFormat, PoolMode, UpstreamAddr, UpstreamTls, parse_host_port,
};

/// PostgreSQL's own cap on a message (1 GB).
const MAX_MESSAGE_CAP: u64 = 1 << 30;
/// Below this a client could not even send an ordinary query.
const MIN_MESSAGE_CAP: u64 = 4096;
/// `pool.retries`: past this, a client waits longer for a failing upstream than any retry helps.
const MAX_RETRIES: u32 = 10;
const MAX_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);
const MIN_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
const MAX_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// `cache.serve_stale_on_error.max_age`: entries are kept this much past their TTL.
const MAX_STALE_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

fn check_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(err(key, format!("{} is not a regular file", path.display()))),
        Err(e) => Err(err(key, format!("cannot read {}: {e}", path.display()))),
    }
}

impl Config {
    /// Check every value; the first problem is returned, naming its key path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (_, port) = parse_host_port(&self.listen).map_err(|m| err("listen", m))?;
        if let Some(dir) = &self.unix_socket_dir {
            crate::client::unix_socket::check_dir(dir, port).map_err(|m| err("unix_socket_dir", m))?;
        }

        // upstream
        if self.upstream_target()?.socket {
            self.upstream.tls.on_a_socket().map_err(|m| err("upstream.tls", m))?;
        }
        if let Some(ca) = &self.upstream.ca_file {
            check_file("upstream.ca_file", ca)?;
        }

        // client TLS
        if matches!(self.tls.mode, ClientTlsMode::Allow | ClientTlsMode::Require) {
            let mode = if self.tls.mode == ClientTlsMode::Allow { "allow" } else { "require" };
            for (key, value) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
                match value {
                    None => return Err(err(key, format!("required when tls.mode is {mode}"))),
                    Some(p) => check_file(key, p)?,
                }
            }
        }

        // pool
        let p = &self.pool;
        if p.max_size < 1 {
            return Err(err("pool.max_size", "must be at least 1"));
        }
        if p.min_idle > p.max_size {
            return Err(err("pool.min_idle", format!("{} is larger than pool.max_size ({})", p.min_idle, p.max_size)));
        }
        if p.acquire_timeout.is_zero() {
            return Err(err("pool.acquire_timeout", "must be greater than 0"));
        }
        if p.max_prepared_statements < 1 {
            return Err(err("pool.max_prepared_statements", "must be at least 1"));
        }
        if p.retries > MAX_RETRIES {
            return Err(err("pool.retries", format!("{} is more than {MAX_RETRIES}", p.retries)));
        }
        if p.retries > 0 && p.retry_backoff.is_zero() {
            return Err(err("pool.retry_backoff", "must be greater than 0 when pool.retries is set"));
        }
        if p.retry_backoff > MAX_RETRY_BACKOFF {
            return Err(err("pool.retry_backoff", "must be at most 10s"));
        }
        if !(MIN_PROBE_INTERVAL..=MAX_PROBE_INTERVAL).contains(&p.breaker_probe_interval) {
            return Err(err("pool.breaker_probe_interval", "must be within 10ms..=60s"));
        }

        // auth
        let a = &self.auth;
        if a.method != AuthMethod::Trust && a.users.is_empty() && a.auth_query.is_none() {
            return Err(err("auth.method", format!("{} needs auth.users or auth.auth_query", auth_name(a.method))));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in a.users.iter().enumerate() {
            if u.name.is_empty() {
                return Err(err(format!("auth.users[{i}].name"), "must not be empty"));
            }
            if !seen.insert(u.name.as_str()) {
                return Err(err(format!("auth.users[{i}].name"), format!("user {:?} is listed twice", u.name)));
            }
            if u.password.is_empty() {
                return Err(err(format!("auth.users[{i}].password"), "must not be empty"));
            }
        }
        if let Some(q) = &a.auth_query {
            if !q.contains("$1") {
                return Err(err("auth.auth_query", "must take the user name as $1"));
            }
        }

        // limits
        if self.limits.max_clients < 1 {
            return Err(err("limits.max_clients", "must be at least 1"));
        }
        if self.limits.worker_threads > super::MAX_WORKER_THREADS {
            return Err(err(
                "limits.worker_threads",
                format!("must be 0 (one per core) ..= {}", super::MAX_WORKER_THREADS),
            ));
        }
        let m = self.limits.max_message_size.as_u64();
        if !(MIN_MESSAGE_CAP..=MAX_MESSAGE_CAP).contains(&m) {
            return Err(err("limits.max_message_size", format!("{m} bytes is outside 4KiB..=1GiB")));
        }
        let b = self.limits.session_buffer.as_u64();
        if !(64 * 1024..=1 << 30).contains(&b) {
            return Err(err("limits.session_buffer", format!("{b} bytes is outside 64KiB..=1GiB")));
        }
        let a = self.limits.analysis_memo.as_u64();
        if a < 1 << 20 {
            return Err(err("limits.analysis_memo", format!("{a} bytes is under the minimum of 1MiB")));
        }

        // timeouts
        if self.timeouts.login.is_zero() {
            return Err(err("timeouts.login", "must be greater than 0"));
        }

        // log
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| err("log.level", format!("{:?} is not a level or filter: {e}", self.log.level)))?;
        // A bare word the filter syntax takes as a target (`verbose`) would log nothing.
        const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
        if let Some(bad) = self
            .log
            .level
            .split(',')
            .map(str::trim)
            .find(|d| !d.is_empty() && !d.contains('=') && !LEVELS.contains(&d.to_ascii_lowercase().as_str()))
        {
            return Err(err(
                "log.level",
                format!("{bad:?} is not a level (trace, debug, info, warn, error, off) or a target=level directive"),
            ));
        }

        // admin
        if self.admin.database.is_empty() {
            return Err(err("admin.database", "must not be empty"));
        }
        if let Some(i) = self.admin.users.iter().position(String::is_empty) {
            return Err(err(format!("admin.users[{i}]"), "must not be empty"));
        }
        if let Some(h) = &self.admin.http_listen {
            parse_host_port(h).map_err(|m| err("admin.http_listen", m))?;
        }

        // cache
        let c = &self.cache;
        if c.max_entry_size > c.max_memory {
            return Err(err(
                "cache.max_entry_size",
                format!("{} is larger than cache.max_memory ({})", c.max_entry_size, c.max_memory),
            ));
        }
        if c.max_filling < c.max_entry_size {
            return Err(err(
                "cache.max_filling",
                format!("{} is smaller than cache.max_entry_size ({})", c.max_filling, c.max_entry_size),
            ));
        }
        let stale = &c.serve_stale_on_error;
        if stale.enabled && stale.max_age.is_zero() {
            return Err(err("cache.serve_stale_on_error.max_age", "must be greater than 0 when enabled"));
        }
        if stale.enabled && !c.enabled {
            return Err(err("cache.serve_stale_on_error.enabled", "needs cache.enabled: true"));
        }
        if stale.max_age > MAX_STALE_AGE {
            return Err(err("cache.serve_stale_on_error.max_age", "must be at most 24h"));
        }
        if c.enabled && c.default_ttl.is_zero() {
            return Err(err("cache.default_ttl", "must be greater than 0 (set cache.enabled: false to disable)"));
        }
        if c.replication.max_lag.is_zero() {
            return Err(err("cache.replication.max_lag", "must be greater than 0"));
        }
        if c.replication.publication.is_empty() {
            return Err(err("cache.replication.publication", "must name a publication"));
        }
        let slot_name =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if c.replication.slot.as_deref().is_some_and(|s| !slot_name(s)) {
            return Err(err("cache.replication.slot", "a slot name is lower-case letters, digits and underscores"));
        }
        for (i, r) in c.rules.iter().enumerate() {
            let key = format!("cache.rules[{i}]");
            let matchers =
                [r.table.is_some(), r.fingerprint.is_some(), r.regex.is_some()].iter().filter(|b| **b).count();
            if matchers != 1 {
                return Err(err(key, format!("needs exactly one of table, fingerprint, regex (has {matchers})")));
            }
            if let Some(re) = &r.regex {
                regex::Regex::new(re).map_err(|e| err(format!("{key}.regex"), format!("invalid regex: {e}")))?;
            }
            for (k, v) in [("table", &r.table), ("fingerprint", &r.fingerprint)] {
                if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    return Err(err(format!("{key}.{k}"), "must not be empty"));
                }
            }
            if r.ttl.is_none() && r.cache.is_none() {
                return Err(err(key, "needs ttl or cache (a rule with neither changes nothing)"));
            }
            if r.cache == Some(false) && r.ttl.is_some() {
                return Err(err(format!("{key}.ttl"), "makes no sense with cache: false"));
            }
        }
        Ok(())
    }

    /// Non-fatal remarks worth a warning line at startup.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.auth.method == AuthMethod::Trust {
            let loopback = parse_host_port(&self.listen).is_ok_and(|(h, _)| is_loopback_host(&h));
            if !loopback {
                w.push(format!(
                    "auth.method is trust and listen is {}: clients from other hosts will be refused \
                     (trust is accepted only from loopback); set auth.method to scram-sha-256",
                    self.listen
                ));
            }
        }
        if self.upstream.tls == UpstreamTls::Disable && self.upstream.ca_file.is_some() {
            w.push("upstream.ca_file is ignored because upstream.tls is disable".into());
        }
        w
    }

    /// The upstream server parsed from `upstream.url`.
    pub fn upstream_target(&self) -> Result<UpstreamAddr, ConfigError> {
        UpstreamAddr::parse(&self.upstream.url).map_err(|m| err("upstream.url", m))
    }

    /// One line for the startup log: the settings that matter, never a password.
    pub fn redacted_summary(&self) -> String {
        let upstream = match self.upstream_target() {
            Ok(t) => t.redacted_url(),
            Err(_) => super::redact_url(&self.upstream.url),
        };
        let opt = |d: Option<std::time::Duration>| match d {
            Some(d) => humantime::format_duration(d).to_string(),
            None => "none".into(),
        };
        format!(
            "listen={} upstream={} upstream_tls={} pool={}/max={}/min_idle={} auth={}({} users{}) \
             client_tls={} max_clients={} max_message_size={} session_buffer={} analysis_memo={} workers={} \
             timeouts(login={} query={} idle_in_tx={} client_idle={} client_write={}) \
             cache={} admin_http={} policies={} log={}/{}",
            self.listen,
            upstream,
            self.upstream.tls.as_str(),
            match self.pool.mode {
                PoolMode::Transaction => "transaction",
                PoolMode::Session => "session",
            },
            self.pool.max_size,
            self.pool.min_idle,
            auth_name(self.auth.method),
            self.auth.users.len(),
            if self.auth.auth_query.is_some() { ", auth_query" } else { "" },
            match self.tls.mode {
                ClientTlsMode::Disable => "disable",
                ClientTlsMode::Allow => "allow",
                ClientTlsMode::Require => "require",
            },
            self.limits.max_clients,
            self.limits.max_message_size,
            self.limits.session_buffer,
            self.limits.analysis_memo,
            self.limits.worker_threads,
            humantime::format_duration(self.timeouts.login),
            opt(self.timeouts.query),
            opt(self.timeouts.idle_in_transaction),
            opt(self.timeouts.client_idle),
            opt(self.timeouts.client_write),
            if self.cache.enabled {
                format!(
                    "on(max_memory={} max_entry_size={} max_filling={} ttl={} rules={} invalidation={})",
                    self.cache.max_memory,
                    self.cache.max_entry_size,
                    self.cache.max_filling,
                    humantime::format_duration(self.cache.default_ttl),
                    self.cache.rules.len(),
                    match self.cache.invalidation {
                        super::InvalidationMode::Proxy => "proxy",
                        super::InvalidationMode::Notify => "notify",
                        super::InvalidationMode::Replication => "replication",
                    }
                )
            } else {
                "off".into()
            },
            self.admin.http_listen.as_deref().unwrap_or("off"),
            self.policies.len(),
            self.log.level,
            match self.log.format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
        )
    }
}

fn auth_name(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::Trust => "trust",
        AuthMethod::Md5 => "md5",
        AuthMethod::ScramSha256 => "scram-sha-256",
    }
}

/// `localhost`, `127.x.y.z`, `::1`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
