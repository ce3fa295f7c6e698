//! Metrics the data path updates as it goes (unlike [`super::metrics::ProxyCollector`], which
//! reads counters kept elsewhere at scrape time): statement latency by path, pool waits, bytes
//! in and out, upstream errors by SQLSTATE class, refusals by policy and rule.
//!
//! Each update is an atomic add (a histogram observation a few): the label sets are resolved
//! once — paths are a fixed list, SQLSTATE classes two characters, policies and rules come from
//! the configuration — so cardinality is bounded and nothing is allocated per statement.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::query_stats::Outcome;

/// Paths a statement takes, as the `path` label says them.
const PATHS: [&str; 5] = ["hit", "miss", "forwarded", "bypassed", "refused"];

/// Latency buckets, seconds: 50 µs (a cache hit) to 30 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// The data path's metrics; register them with [`Traffic::register`].
pub struct Traffic {
    statement_seconds: HistogramVec,
    by_path: [Histogram; PATHS.len()],
    pool_wait_seconds: Histogram,
    bytes_received: IntCounter,
    bytes_sent: IntCounter,
    upstream_errors: IntCounterVec,
    refusals: IntCounterVec,
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
        })
    }

    /// Add these metrics to `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.statement_seconds.clone()))?;
        registry.register(Box::new(self.pool_wait_seconds.clone()))?;
        registry.register(Box::new(self.bytes_received.clone()))?;
        registry.register(Box::new(self.bytes_sent.clone()))?;
        registry.register(Box::new(self.upstream_errors.clone()))?;
        registry.register(Box::new(self.refusals.clone()))?;
        Ok(())
    }

    /// A statement answered along `outcome`'s path in `elapsed`.
    #[inline]
    pub fn statement(&self, outcome: Outcome, elapsed: Duration) {
        let path = match outcome {
            Outcome::Hit => 0,
            Outcome::Miss => 1,
            Outcome::Forwarded => 2,
            Outcome::Bypassed(_) => 3,
            Outcome::Refused => 4,
        };
        self.by_path[path].observe(elapsed.as_secs_f64());
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
        traffic.register(&registry).unwrap();
        traffic.statement(Outcome::Hit, Duration::from_micros(80));
        traffic.statement(Outcome::Forwarded, Duration::from_millis(3));
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
