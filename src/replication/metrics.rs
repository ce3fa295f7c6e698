//! The streams' Prometheus series, read from their [`StreamState`]s at scrape time (nothing
//! on the data path): `pgcached_replication_lag_seconds`, `…_connected`, `…_held`,
//! `…_transactions_total`, `…_changes_total`, `…_losses_total`, and the histogram
//! `…_apply_delay_seconds` (commit on the server to invalidated here), each by `database`.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};

use super::Streams;

/// Lag reported while freshness is not proved (no stream, or not caught up since it started).
pub const UNKNOWN_LAG_SECONDS: f64 = f64::INFINITY;

/// The commit-to-invalidation histogram (one per proxy; the streams observe into it).
pub fn apply_delay() -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(
            "pgcached_replication_apply_delay_seconds",
            "From a transaction's commit on the server to its invalidation in the cache (clocks of one host).",
        )
        .buckets(vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
        &["database"],
    )
    .expect("valid histogram")
}

pub struct ReplicationCollector {
    streams: Arc<Streams>,
    refresh: Mutex<()>,
    lag: GaugeVec,
    connected: IntGaugeVec,
    held: IntGaugeVec,
    transactions: IntCounterVec,
    changes: IntCounterVec,
    losses: IntCounterVec,
    delay: Option<HistogramVec>,
}

impl ReplicationCollector {
    pub fn new(streams: Arc<Streams>) -> prometheus::Result<ReplicationCollector> {
        let by_db = &["database"];
        let delay = streams.apply_delay().cloned();
        Ok(ReplicationCollector {
            delay,
            streams,
            refresh: Mutex::new(()),
            lag: GaugeVec::new(
                Opts::new(
                    "pgcached_replication_lag_seconds",
                    "How far behind now the database is known fresh (+Inf: not proved; answers held past cache.replication.max_lag).",
                ),
                by_db,
            )?,
            connected: IntGaugeVec::new(
                Opts::new("pgcached_replication_connected", "1 while the database's replication stream is up."),
                by_db,
            )?,
            held: IntGaugeVec::new(
                Opts::new(
                    "pgcached_replication_held",
                    "1 while the database's cached answers are not served (stream down or behind).",
                ),
                by_db,
            )?,
            transactions: IntCounterVec::new(
                Opts::new("pgcached_replication_transactions_total", "Committed transactions applied from the stream."),
                by_db,
            )?,
            changes: IntCounterVec::new(
                Opts::new("pgcached_replication_changes_total", "Row changes (and truncates) applied from the stream."),
                by_db,
            )?,
            losses: IntCounterVec::new(
                Opts::new(
                    "pgcached_replication_losses_total",
                    "Streams lost or failed to start (each flushed the database).",
                ),
                by_db,
            )?,
        })
    }

    fn parts(&self) -> [&dyn Collector; 6] {
        [&self.lag, &self.connected, &self.held, &self.transactions, &self.changes, &self.losses]
    }

    fn refresh(&self) {
        let set = |c: &prometheus::IntCounter, v: u64| {
            c.reset();
            c.inc_by(v);
        };
        for (db, st) in self.streams.states() {
            let l = [db.as_str()];
            let lag: Gauge = self.lag.with_label_values(&l);
            lag.set(st.lag().map_or(UNKNOWN_LAG_SECONDS, |d| d.as_secs_f64()));
            self.connected.with_label_values(&l).set(i64::from(st.is_connected()));
            self.held.with_label_values(&l).set(i64::from(st.is_held()));
            set(&self.transactions.with_label_values(&l), st.transactions());
            set(&self.changes.with_label_values(&l), st.changes());
            set(&self.losses.with_label_values(&l), st.losses());
        }
    }
}

impl Collector for ReplicationCollector {
    fn desc(&self) -> Vec<&Desc> {
        let delay = self.delay.iter().flat_map(|d| d.desc());
        self.parts().into_iter().flat_map(|c| c.desc()).chain(delay).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh();
        let delay = self.delay.iter().flat_map(|d| d.collect());
        self.parts().into_iter().flat_map(|c| c.collect()).chain(delay).collect()
    }
}
