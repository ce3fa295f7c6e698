//! The Prometheus registry behind `GET /metrics`.
//!
//! Nothing here runs on the data path: the cache, pools and client registry keep their own
//! counters, and [`ProxyCollector`] copies them into Prometheus metrics when a scrape asks
//! ([`prometheus::core::Collector::collect`]). Pool series are rebuilt at every scrape, so a
//! closed pool disappears from the output.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::cache::ResultCache;
use crate::client::cancel::CancelRegistry;
use crate::pool::Pools;

/// What a scrape reads: the shared structures of the running proxy.
#[derive(Clone)]
pub struct Sources {
    pub cache: Arc<ResultCache>,
    pub pools: Arc<Pools>,
    pub cancels: Arc<CancelRegistry>,
    /// What the data path counts itself (see `traffic`).
    pub traffic: Arc<super::traffic::Traffic>,
    /// Per-query statistics and how many of the top queries to export (`stats.metrics_top`).
    pub queries: Option<(Arc<super::query_stats::QueryStats>, usize)>,
    /// The replication streams (`cache.invalidation: replication`).
    pub replication: Option<Arc<crate::replication::Streams>>,
}

/// A registry holding the proxy's collectors (and nothing else).
pub fn registry(sources: Sources) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let stats = sources.queries.as_ref().map(|(stats, _)| stats.clone());
    sources.traffic.register(&registry, move || {
        if let Some(stats) = &stats {
            stats.drain();
        }
    })?;
    if let Some((stats, top)) = &sources.queries {
        registry.register(Box::new(super::query_stats::QueryStatsCollector::new(stats.clone(), *top)?))?;
    }
    if let Some(streams) = &sources.replication {
        registry.register(Box::new(crate::replication::metrics::ReplicationCollector::new(streams.clone())?))?;
    }
    registry.register(Box::new(ProxyCollector::new(sources)?))?;
    Ok(registry)
}

/// `registry` in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> prometheus::Result<String> {
    TextEncoder::new().encode_to_string(&registry.gather())
}

/// Reads [`Sources`] at collect time into ordinary Prometheus metrics.
pub struct ProxyCollector {
    sources: Sources,
    /// Held while the metrics below are refreshed and collected: two concurrent scrapes must
    /// not interleave a counter's reset and its refill.
    refresh: Mutex<()>,
    build_info: IntGaugeVec,
    hits: IntCounter,
    misses: IntCounter,
    fills: IntCounter,
    rejected: IntCounterVec,
    evictions: IntCounter,
    expirations: IntCounter,
    invalidations: IntCounterVec,
    flight_joined: IntCounter,
    flight_fallbacks: IntCounter,
    churn_suspensions: IntCounter,
    churn_bypasses: IntCounter,
    bypassed: IntCounterVec,
    bytes: IntGauge,
    entries: IntGauge,
    pool_max_size: IntGaugeVec,
    pool_size: IntGaugeVec,
    pool_available: IntGaugeVec,
    pool_waiting: IntGaugeVec,
    clients: IntGauge,
    analysis_memo: IntGauge,
    filling: IntGauge,
    stale_served: IntCounter,
    upstream_down: IntGauge,
    breaker_opened: IntCounter,
    fast_failures: IntCounter,
    connect_retries: IntCounterVec,
}

const POOL_LABELS: &[&str] = &["database", "user"];

impl ProxyCollector {
    pub fn new(sources: Sources) -> prometheus::Result<ProxyCollector> {
        let counter = |name: &str, help: &str| IntCounter::with_opts(Opts::new(name, help));
        let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help));
        let pool_gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), POOL_LABELS);
        let build_info = IntGaugeVec::new(
            Opts::new("pgcached_build_info", "Always 1; the version of pgcached in the `version` label."),
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(ProxyCollector {
            sources,
            refresh: Mutex::new(()),
            build_info,
            hits: counter("pgcached_cache_hits_total", "Lookups answered from the result cache.")?,
            misses: counter("pgcached_cache_misses_total", "Cacheable lookups that found no fresh entry.")?,
            fills: counter("pgcached_cache_fills_total", "Answers stored in the result cache.")?,
            rejected: IntCounterVec::new(
                Opts::new("pgcached_cache_fills_rejected_total", "Answers recorded but not stored, by reason."),
                &["reason"],
            )?,
            evictions: counter("pgcached_cache_evictions_total", "Entries removed by the cache.max_memory bound.")?,
            expirations: counter("pgcached_cache_expirations_total", "Entries removed because their TTL ran out.")?,
            invalidations: IntCounterVec::new(
                Opts::new("pgcached_cache_invalidations_total", "Invalidations, by cause."),
                &["cause"],
            )?,
            flight_joined: counter(
                "pgcached_cache_flight_joined_total",
                "Concurrent misses of one key served by the leader's fill.",
            )?,
            flight_fallbacks: counter(
                "pgcached_cache_flight_fallbacks_total",
                "Concurrent misses of one key that had to go upstream themselves.",
            )?,
            churn_suspensions: counter(
                "pgcached_cache_churn_suspensions_total",
                "Times a table stopped being recorded because its answers were invalidated before any hit.",
            )?,
            churn_bypasses: counter(
                "pgcached_cache_churn_bypasses_total",
                "Lookups that bypassed the cache because their table was suspended from recording.",
            )?,
            bypassed: IntCounterVec::new(
                Opts::new(
                    "pgcached_cache_bypassed_total",
                    "Reads sent to Postgres without the cache (neither answered nor recorded), by reason.",
                ),
                &["reason"],
            )?,
            bytes: gauge("pgcached_cache_bytes", "Weighed bytes of the live cache entries.")?,
            entries: gauge("pgcached_cache_entries", "Live cache entries.")?,
            pool_max_size: pool_gauge("pgcached_pool_max_size", "Server connections a pool may hold.")?,
            pool_size: pool_gauge("pgcached_pool_size", "Server connections a pool holds (idle or leased).")?,
            pool_available: pool_gauge("pgcached_pool_available", "Idle server connections of a pool.")?,
            pool_waiting: pool_gauge("pgcached_pool_waiting", "Sessions waiting for a server connection.")?,
            clients: gauge("pgcached_clients_connected", "Client connections past startup (with a cancel key).")?,
            filling: gauge(
                "pgcached_cache_filling_bytes",
                "Bytes held by the answers being recorded now (cache.max_filling).",
            )?,
            analysis_memo: gauge(
                "pgcached_analysis_memo_bytes",
                "Bytes held by the memo of analysed statements and their templates (limits.analysis_memo).",
            )?,
            stale_served: counter(
                "pgcached_cache_stale_served_total",
                "Expired (never invalidated) answers served while Postgres could not be reached.",
            )?,
            upstream_down: gauge(
                "pgcached_upstream_down",
                "1 while the circuit breaker holds the upstream down (new connections fail fast), else 0.",
            )?,
            breaker_opened: counter("pgcached_upstream_breaker_opened_total", "Times the circuit breaker opened.")?,
            fast_failures: counter(
                "pgcached_upstream_fast_failures_total",
                "Checkouts refused at once (08006) because the circuit breaker was open.",
            )?,
            connect_retries: IntCounterVec::new(
                Opts::new(
                    "pgcached_pool_connect_retries_total",
                    "Server connection attempts repeated after a transient failure (pool.retries).",
                ),
                POOL_LABELS,
            )?,
        })
    }

    fn parts(&self) -> [&dyn Collector; 27] {
        [
            &self.build_info,
            &self.hits,
            &self.misses,
            &self.fills,
            &self.rejected,
            &self.evictions,
            &self.expirations,
            &self.invalidations,
            &self.flight_joined,
            &self.flight_fallbacks,
            &self.churn_suspensions,
            &self.churn_bypasses,
            &self.bypassed,
            &self.bytes,
            &self.entries,
            &self.pool_max_size,
            &self.pool_size,
            &self.pool_available,
            &self.pool_waiting,
            &self.clients,
            &self.analysis_memo,
            &self.filling,
            &self.stale_served,
            &self.upstream_down,
            &self.breaker_opened,
            &self.fast_failures,
            &self.connect_retries,
        ]
    }

    /// Copy the current values from the sources.
    fn refresh(&self) {
        let set = |c: &IntCounter, v: u64| {
            c.reset();
            c.inc_by(v);
        };
        let s = self.sources.cache.stats().snapshot();
        set(&self.hits, s.hits);
        set(&self.misses, s.misses);
        set(&self.fills, s.fills);
        for (why, n) in &s.rejected {
            set(&self.rejected.with_label_values(&[why.label()]), *n);
        }
        set(&self.evictions, s.evictions);
        set(&self.expirations, s.expirations);
        for (cause, n) in &s.invalidations {
            set(&self.invalidations.with_label_values(&[cause.label()]), *n);
        }
        set(&self.flight_joined, s.flight_joined);
        set(&self.flight_fallbacks, s.flight_fallbacks);
        set(&self.churn_suspensions, s.churn_suspensions);
        set(&self.churn_bypasses, s.churn_bypasses);
        for (why, n) in &s.bypassed {
            set(&self.bypassed.with_label_values(&[why.label()]), *n);
        }
        set(&self.stale_served, s.stale_served);
        self.bytes.set(gauge_value(s.bytes));
        self.entries.set(gauge_value(s.entries));
        self.filling.set(gauge_value(self.sources.cache.filling_bytes()));

        for vec in [&self.pool_max_size, &self.pool_size, &self.pool_available, &self.pool_waiting] {
            vec.reset();
        }
        self.connect_retries.reset();
        for (key, st) in self.sources.pools.status() {
            let labels = [key.database.as_str(), key.user.as_str()];
            self.pool_max_size.with_label_values(&labels).set(gauge_value(st.max_size));
            self.pool_size.with_label_values(&labels).set(gauge_value(st.size));
            self.pool_available.with_label_values(&labels).set(gauge_value(st.available));
            self.pool_waiting.with_label_values(&labels).set(gauge_value(st.waiting));
            self.connect_retries.with_label_values(&labels).inc_by(st.connect_retries);
        }
        let breaker = self.sources.pools.breaker();
        self.upstream_down.set(i64::from(breaker.is_open()));
        set(&self.breaker_opened, breaker.times_opened());
        set(&self.fast_failures, breaker.fast_failures());
        self.clients.set(gauge_value(self.sources.cancels.len()));
        self.analysis_memo.set(gauge_value(crate::sql::memo::weighted_size()));
    }
}

fn gauge_value(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

impl Collector for ProxyCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh();
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::stats::{InvalidationCause, Rejected};
    use crate::config::Config;

    fn sources() -> Sources {
        let config = Arc::new(Config::default());
        Sources {
            cache: Arc::new(ResultCache::new(&config.cache)),
            pools: Arc::new(Pools::new(config).unwrap()),
            cancels: Arc::new(CancelRegistry::default()),
            traffic: Arc::new(super::super::traffic::Traffic::new().unwrap()),
            queries: None,
            replication: None,
        }
    }

    #[test]
    fn a_scrape_shows_the_current_counters() {
        let src = sources();
        let registry = registry(src.clone()).unwrap();
        src.cache.stats().hit();
        src.cache.stats().rejected(Rejected::TooLarge);
        src.cache.stats().invalidated(InvalidationCause::Notify);
        let _client = src.cancels.register();
        let text = render(&registry).unwrap();
        for line in [
            "pgcached_cache_hits_total 1",
            "pgcached_cache_misses_total 0",
            "pgcached_cache_fills_rejected_total{reason=\"too_large\"} 1",
            "pgcached_cache_fills_rejected_total{reason=\"stale\"} 0",
            "pgcached_cache_invalidations_total{cause=\"notify\"} 1",
            "pgcached_clients_connected 1",
            "pgcached_upstream_down 0",
            "pgcached_cache_stale_served_total 0",
            "# TYPE pgcached_cache_hits_total counter",
            "# TYPE pgcached_cache_bytes gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in:\n{text}");
        }
        assert!(text.contains(&format!("pgcached_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));

        // A second scrape reflects new values rather than adding to the old ones.
        src.cache.stats().hit();
        let text = render(&registry).unwrap();
        assert!(text.lines().any(|l| l == "pgcached_cache_hits_total 2"), "{text}");
    }
}
