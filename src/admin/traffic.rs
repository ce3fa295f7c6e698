//! Metrics the data path updates as it goes (unlike [`super::metrics::ProxyCollector`], which
//! reads counters kept elsewhere at scrape time): statement latency by path, pool waits, bytes
//! in and out, upstream errors by SQLSTATE class, refusals by policy and rule, cancel requests
//! by outcome.
//!
//! Each update is an atomic add (a histogram observation a few): the label sets are resolved
//! once — paths are a fixed list, SQLSTATE classes two characters, policies and rules come from
//! the configuration — so cardinality is bounded and nothing is allocated per statement.

use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::local::LocalHistogram;
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::outcome::{Outcome, PATHS};

/// Latency buckets, seconds: 50 µs (a cache hit) to 30 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// A session's halves of the statement histograms: observed without atomics, added to the
/// shared ones by [`LocalStatements::flush`] (with the session's per-query statistics, see
/// `query_stats::run`; a scrape drains them first: [`Traffic::register`]).
pub struct LocalStatements([LocalHistogram; PATHS.len()]);

impl LocalStatements {
    /// A statement answered along `outcome`'s path in `elapsed`.
    #[inline]
    pub fn observe(&self, outcome: Outcome, elapsed: Duration) {
        self.0[outcome.path()].observe(elapsed.as_secs_f64());
    }

    /// Adds what was observed to the shared histograms.
    pub fn flush(&self) {
        for h in &self.0 {
            h.flush();
        }
    }
}

/// The statement histograms, collected after `before` ran (it adds the sessions' local halves).
struct DrainedFirst {
    histograms: HistogramVec,
    before: Box<dyn Fn() + Send + Sync>,
}

impl Collector for DrainedFirst {
    fn desc(&self) -> Vec<&Desc> {
        self.histograms.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        (self.before)();
        self.histograms.collect()
    }
}

/// The data path's metrics; register them with [`Traffic::register`].
pub struct Traffic {
    statement_seconds: HistogramVec,
    by_path: [Histogram; PATHS.len()],
    pool_wait_seconds: Histogram,
    bytes_received: IntCounter,
    bytes_sent: IntCounter,
    upstream_errors: IntCounterVec,
    refusals: IntCounterVec,
    /// Statements sent again on another server connection (see `session::retry`).
    statement_retries: IntCounter,
    cancel_requests: IntCounterVec,
    login_defaults_checks: IntCounterVec,
}

impl Traffic {
    pub fn new() -> prometheus::Result<Traffic> {
        let statement_seconds = HistogramVec::new(
            HistogramOpts::new(
                "pgcached_statement_duration_seconds",
                "Statements (simple queries and extended-protocol exchanges) from arrival to the end of their answer, by path.",
            )
            .buckets(BUCKETS.to_vec()),
            &["path"],
        )?;
        let by_path = PATHS.map(|p| statement_seconds.with_label_values(&[p]));
        Ok(Traffic {
            by_path,
            statement_seconds,
            pool_wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "pgcached_pool_wait_seconds",
                    "Time a session waited for a server connection from its pool.",
                )
                .buckets(BUCKETS.to_vec()),
            )?,
            bytes_received: IntCounter::with_opts(Opts::new(
                "pgcached_client_bytes_received_total",
                "Bytes received from clients.",
            ))?,
            bytes_sent: IntCounter::with_opts(Opts::new(
                "pgcached_client_bytes_sent_total",
                "Bytes sent to clients (answers from Postgres, from the cache, and the proxy's own).",
            ))?,
            upstream_errors: IntCounterVec::new(
                Opts::new("pgcached_upstream_errors_total", "ErrorResponses from Postgres, by SQLSTATE class."),
                &["class"],
            )?,
            refusals: IntCounterVec::new(
                Opts::new("pgcached_refusals_total", "Statements refused by a policy, by policy and rule."),
                &["policy", "rule"],
            )?,
            statement_retries: IntCounter::with_opts(Opts::new(
                "pgcached_statement_retries_total",
                "Autocommit reads sent again on another server connection because theirs died before answering (pool.retries).",
            ))?,
            cancel_requests: IntCounterVec::new(
                Opts::new(
                    "pgcached_cancel_requests_total",
                    "Clients' CancelRequests, by outcome: sent, not_running (ignored as Postgres ignores it, or a wait for a server cancelled), unknown_key, failed.",
                ),
                &["outcome"],
            )?,
            login_defaults_checks: IntCounterVec::new(
                Opts::new(
                    "pgcached_login_defaults_checks_total",
                    "Reads of the login defaults' fingerprint (changes made around pgcached), by outcome: first, same, changed, failed.",
                ),
                &["outcome"],
            )?,
        })
    }

    /// Add these metrics to `registry`; `before_statements` runs before each collection of
    /// the statement histograms (it flushes the sessions' [`LocalStatements`]).
    pub fn register(
        &self,
        registry: &Registry,
        before_statements: impl Fn() + Send + Sync + 'static,
    ) -> prometheus::Result<()> {
        let histograms = self.statement_seconds.clone();
        registry.register(Box::new(DrainedFirst { histograms, before: Box::new(before_statements) }))?;
        registry.register(Box::new(self.pool_wait_seconds.clone()))?;
        registry.register(Box::new(self.bytes_received.clone()))?;
        registry.register(Box::new(self.bytes_sent.clone()))?;
        registry.register(Box::new(self.upstream_errors.clone()))?;
        registry.register(Box::new(self.refusals.clone()))?;
        registry.register(Box::new(self.statement_retries.clone()))?;
        registry.register(Box::new(self.cancel_requests.clone()))?;
        registry.register(Box::new(self.login_defaults_checks.clone()))?;
        Ok(())
    }

    /// A session's own statement histograms (see [`LocalStatements`]).
    pub fn local_statements(&self) -> LocalStatements {
        LocalStatements(self.by_path.each_ref().map(Histogram::local))
    }

    /// A checkout that had to wait `waited` for a server connection.
    pub fn pool_wait(&self, waited: Duration) {
        self.pool_wait_seconds.observe(waited.as_secs_f64());
    }

    #[inline]
    pub fn received_from_client(&self, bytes: usize) {
        self.bytes_received.inc_by(bytes as u64);
    }

    #[inline]
    pub fn sent_to_client(&self, bytes: usize) {
        self.bytes_sent.inc_by(bytes as u64);
    }

    /// An ErrorResponse from Postgres with SQLSTATE `code` (counted by its two-letter class).
    pub fn upstream_error(&self, code: &[u8]) {
        let class = code.get(..2).filter(|c| c.iter().all(u8::is_ascii_alphanumeric)).unwrap_or(b"??");
        let class = std::str::from_utf8(class).unwrap_or("??");
        self.upstream_errors.with_label_values(&[class]).inc();
    }

    /// A statement sent again on another server connection.
    pub fn statement_retried(&self) {
        self.statement_retries.inc();
    }

    /// A client's CancelRequest, and what became of it (a fixed set of outcomes).
    pub fn cancel_request(&self, outcome: &'static str) {
        self.cancel_requests.with_label_values(&[outcome]).inc();
    }

    /// A read of the login defaults' fingerprint, and what it found (a fixed set of outcomes:
    /// see `invalidate::defaults`).
    pub fn login_defaults_check(&self, outcome: &'static str) {
        self.login_defaults_checks.with_label_values(&[outcome]).inc();
    }

    /// A statement refused by `policy`'s `rule`.
    pub fn refused(&self, policy: &str, rule: &str) {
        self.refusals.with_label_values(&[policy, rule]).inc();
    }

    /// Refusals so far, by (policy, rule), for the console's `SHOW POLICIES`.
    pub fn refusal_counts(&self) -> Vec<(String, String, u64)> {
        use prometheus::core::Collector;
        let mut out = Vec::new();
        for family in self.refusals.collect() {
            for m in family.get_metric() {
                let label = |name: &str| {
                    m.get_label().iter().find(|l| l.name() == name).map(|l| l.value().to_string()).unwrap_or_default()
                };
                out.push((label("policy"), label("rule"), m.get_counter().get_value() as u64));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_update_lands_under_its_labels() {
        let traffic = Traffic::new().unwrap();
        let registry = Registry::new();
        let local = std::sync::Arc::new(std::sync::Mutex::new(traffic.local_statements()));
        let drained = local.clone();
        traffic.register(&registry, move || drained.lock().unwrap().flush()).unwrap();
        // Observed locally: in the histograms once the scrape has drained them.
        local.lock().unwrap().observe(Outcome::Hit, Duration::from_micros(80));
        local.lock().unwrap().observe(Outcome::Forwarded, Duration::from_millis(3));
        traffic.upstream_error(b"23505");
        traffic.upstream_error(b"\x00");
        traffic.refused("bi", "deny_tables");
        traffic.refused("bi", "deny_tables");
        traffic.received_from_client(10);
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        assert!(text.contains("pgcached_statement_duration_seconds_count{path=\"hit\"} 1"), "{text}");
        assert!(text.contains("pgcached_statement_duration_seconds_bucket{path=\"hit\",le=\"0.0001\"} 1"), "{text}");
        assert!(
            text.contains("pgcached_statement_duration_seconds_bucket{path=\"forwarded\",le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(text.contains("pgcached_upstream_errors_total{class=\"23\"} 1"), "{text}");
        assert!(text.contains("pgcached_upstream_errors_total{class=\"??\"} 1"), "{text}");
        assert!(text.contains("pgcached_client_bytes_received_total 10"), "{text}");
        assert_eq!(traffic.refusal_counts(), vec![("bi".to_string(), "deny_tables".to_string(), 2)]);
    }
}
