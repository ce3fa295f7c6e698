//! The `/metrics` series of [`QueryStats`]: the top queries by total time, and the slow-query
//! and N+1 totals. Built at scrape time, like `admin::metrics`; nothing here runs on the data
//! path.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, IntCounter, IntCounterVec, Opts};

use super::{QueryStats, clip};

/// Characters of a fingerprint in the `query` label.
pub const QUERY_LABEL_CHARS: usize = 120;

const QUERY_LABELS: &[&str] = &["database", "query_id", "query"];

/// The per-query series of `/metrics`, for the `top` queries by total time only (bounded
/// cardinality; `<other>` rows are not exported), and the slow-query and N+1 totals.
///
/// The series are rebuilt at each scrape: a query that leaves the top disappears, and one that
/// was evicted and comes back restarts from zero (a counter reset, which `rate()` handles).
pub struct QueryStatsCollector {
    stats: Arc<QueryStats>,
    top: usize,
    /// Held while the series are rebuilt and collected, so two scrapes do not interleave.
    refresh: Mutex<()>,
    calls: IntCounterVec,
    seconds: CounterVec,
    hits: IntCounterVec,
    rows: IntCounterVec,
    slow_queries: IntCounter,
    n_plus_one: IntCounter,
}

impl QueryStatsCollector {
    /// A collector of `stats`' `top` queries.
    pub fn new(stats: Arc<QueryStats>, top: usize) -> prometheus::Result<QueryStatsCollector> {
        let per_query = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), QUERY_LABELS);
        Ok(QueryStatsCollector {
            stats,
            top,
            refresh: Mutex::new(()),
            calls: per_query("pgcached_query_calls_total", "Statements run, per query (the top by total time).")?,
            seconds: CounterVec::new(
                Opts::new("pgcached_query_seconds_total", "Time spent answering, per query (the top by total time)."),
                QUERY_LABELS,
            )?,
            hits: per_query(
                "pgcached_query_cache_hits_total",
                "Statements answered from the cache, per query (the top by total time).",
            )?,
            rows: per_query("pgcached_query_rows_total", "Rows returned, per query (the top by total time).")?,
            slow_queries: IntCounter::new("pgcached_slow_queries_total", "Statements logged as slow.")?,
            n_plus_one: IntCounter::new("pgcached_n_plus_one_total", "Bursts of one repeated statement (N+1).")?,
        })
    }

    fn parts(&self) -> [&dyn Collector; 6] {
        [&self.calls, &self.seconds, &self.hits, &self.rows, &self.slow_queries, &self.n_plus_one]
    }

    fn refresh(&self) {
        self.calls.reset();
        self.seconds.reset();
        self.hits.reset();
        self.rows.reset();
        for row in self.stats.snapshot().into_iter().filter(|r| !r.is_other).take(self.top) {
            let query_id = format!("{:016x}", row.fingerprint_hash);
            let query = clip(&row.fingerprint, QUERY_LABEL_CHARS);
            let labels = [row.database.as_str(), query_id.as_str(), &query];
            self.calls.with_label_values(&labels).inc_by(row.calls);
            self.seconds.with_label_values(&labels).inc_by(row.total.as_secs_f64());
            self.hits.with_label_values(&labels).inc_by(row.hits);
            self.rows.with_label_values(&labels).inc_by(row.rows);
        }
        for (counter, value) in
            [(&self.slow_queries, self.stats.slow_queries_total()), (&self.n_plus_one, self.stats.n_plus_one_total())]
        {
            counter.reset();
            counter.inc_by(value);
        }
    }
}

impl Collector for QueryStatsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh();
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}
