//! `cache.invalidation: replication` against a private Postgres with `wal_level = logical`:
//! writes made directly to Postgres (around the proxy) of every kind show through pgcached
//! within `cache.replication.max_lag`, while cached answers of other rows stay cached (hit
//! counters); a freshness checker with a bypassing writer finds no read staler than the bound;
//! a lost walsender and a Postgres restart heal; no slot is left behind; without what it needs
//! the proxy refuses to start.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::console::{field, number, show};
use common::{PgCluster, PgOptions, Proxy, connect, simple_one};
use pgcached::config::{Config, InvalidationMode};

const MAX_LAG: Duration = Duration::from_millis(1000);

const SCHEMA: &str = "
    CREATE TABLE acct (id int PRIMARY KEY, owner text, bal int);
    INSERT INTO acct SELECT g, 'o' || g, 0 FROM generate_series(1, 10) g;
    CREATE TABLE prices (id int PRIMARY KEY, p int);
    INSERT INTO prices VALUES (1, 0);
    CREATE TABLE audit (acct_id int, p int);
    CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO audit VALUES (NEW.id, NEW.p); RETURN NEW; END $$;
    CREATE TRIGGER audited AFTER UPDATE ON prices FOR EACH ROW EXECUTE FUNCTION audit_it();
    CREATE TABLE parent (id int PRIMARY KEY);
    CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE);
    INSERT INTO parent VALUES (1), (2);
    INSERT INTO child VALUES (1, 1), (2, 2);
    CREATE TABLE logbook (id int PRIMARY KEY, line text);
    INSERT INTO logbook VALUES (1, 'a');
    CREATE TABLE kv (k int PRIMARY KEY, v bigint);
    INSERT INTO kv SELECT g, 0 FROM generate_series(1, 20) g;
";

fn logical() -> PgOptions {
    PgOptions {
        conf: vec![
            ("wal_level".into(), "logical".into()),
            ("max_replication_slots".into(), "20".into()),
            ("max_wal_senders".into(), "20".into()),
        ],
        ..PgOptions::default()
    }
}

fn replicating(c: &mut Config) {
    c.cache.invalidation = InvalidationMode::Replication;
    c.cache.replication.max_lag = MAX_LAG;
    c.admin.users = vec!["postgres".into()];
}

struct Fixture {
    pg: PgCluster,
    proxy: Proxy,
    proxied: tokio_postgres::Client,
    direct: tokio_postgres::Client,
    admin: tokio_postgres::Client,
}

impl Fixture {
    async fn new(tweak: impl FnOnce(&mut Config)) -> Fixture {
        let pg = PgCluster::start_with(logical());
        pg.psql_db("app", SCHEMA);
        let proxy = Proxy::start_with(&pg, |c| {
            replicating(c);
            tweak(c);
        })
        .await;
        let proxied = connect(&proxy.url("postgres", "app")).await;
        let direct = connect(&pg.url("postgres", "app")).await;
        let admin = connect(&proxy.url("postgres", "pgcached")).await;
        let f = Fixture { pg, proxy, proxied, direct, admin };
        f.serving("app").await;
        f
    }

    /// The row of `db` in `SHOW REPLICATION`.
    async fn replication(&self, db: &str) -> Option<Vec<(String, Option<String>)>> {
        show(&self.admin, "SHOW REPLICATION").await.into_iter().find(|r| field(r, "database") == Some(db))
    }

    /// Wait until `db`'s stream is up and its answers are served.
    async fn serving(&self, db: &str) {
        let start = Instant::now();
        loop {
            if let Some(r) = self.replication(db).await {
                if field(&r, "connected") == Some("t") && field(&r, "serving") == Some("t") {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{db} not served: {:?}", self.replication(db).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn hits(&self) -> u64 {
        number(&show(&self.admin, "SHOW CACHE").await[0], "hits")
    }

    /// Times the stream fell behind the bound or was lost: answers were held or flushed then.
    async fn disturbances(&self) -> u64 {
        self.replication("app").await.map_or(0, |r| number(&r, "behind") + number(&r, "losses"))
    }

    /// Read `read` through the proxy until it is cached: the second read of an answer is a hit.
    async fn cache(&self, read: &str) -> Option<String> {
        let first = simple_one(&self.proxied, read).await;
        self.assert_hit(read, &first).await;
        first
    }

    /// `read` is answered from the cache, with `want`. A miss is excused (and the read tried
    /// again) only if the stream fell behind the bound or was lost meanwhile, which a loaded
    /// machine may cause and which holds or flushes every answer of the database.
    async fn assert_hit(&self, read: &str, want: &Option<String>) {
        for _ in 0..3 {
            let (disturbed, before) = (self.disturbances().await, self.hits().await);
            assert_eq!(&simple_one(&self.proxied, read).await, want, "`{read}`");
            if self.hits().await == before + 1 {
                return;
            }
            let rep = self.replication("app").await;
            assert_ne!(self.disturbances().await, disturbed, "`{read}` must be a cache hit ({rep:?})");
            self.serving("app").await;
            simple_one(&self.proxied, read).await;
        }
        panic!("`{read}` never a hit");
    }

    /// Write around the proxy, then: `read` through the proxy shows it within the bound; then
    /// wait until the stream has applied the write (a read may show it sooner — Postgres, asked
    /// while the write's invalidation is on its way — and the invalidation would then drop that
    /// fresh answer after the caller cached it).
    async fn bypass(&self, write: &str, reads: &[&str]) {
        self.bypass_unsettled(write, reads).await;
        let written = simple_one(&self.direct, "SELECT pg_current_wal_insert_lsn()::text").await.unwrap();
        let written = lsn(&written);
        let start = Instant::now();
        loop {
            let applied = self.replication("app").await.map(|r| lsn(field(&r, "applied_lsn").unwrap()));
            // A position on a WAL page boundary is as far as the next page's header (DECISIONS 44).
            if applied.is_some_and(|a| a >= written || (a % 8192 == 0 && a + 40 >= written)) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "the stream never applied {written:X}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// [`Fixture::bypass`] without waiting for the stream.
    async fn bypass_unsettled(&self, write: &str, reads: &[&str]) {
        self.direct.batch_execute(write).await.unwrap();
        let acked = Instant::now();
        for read in reads {
            fresh_within(&self.proxied, &self.direct, read, acked).await;
        }
    }
}

/// An LSN as Postgres prints it (`16/B374D848`).
fn lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').expect("an LSN");
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// `read` through `proxied` equals `direct`'s answer before `acked + MAX_LAG`.
async fn fresh_within(proxied: &tokio_postgres::Client, direct: &tokio_postgres::Client, read: &str, acked: Instant) {
    let want = simple_one(direct, read).await;
    loop {
        let asked = Instant::now();
        let got = simple_one(proxied, read).await;
        if got == want {
            return;
        }
        assert!(asked < acked + MAX_LAG, "`{read}` still {got:?} (not {want:?}) {:?} after the write", asked - acked);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypassing_writes_of_every_kind_show_within_the_bound_and_other_rows_stay_cached() {
    let f = Fixture::new(|_| {}).await;
    let row2 = "SELECT bal FROM acct WHERE id = 2";
    let kept = f.cache(row2).await;
    let mut reads = vec![
        "SELECT bal FROM acct WHERE id = 1",
        "SELECT count(*) FROM acct WHERE id = 11",
        "SELECT owner FROM acct WHERE id = 3",
        "SELECT count(*) FROM acct WHERE id = 12",
        "SELECT count(*) FROM acct WHERE id = 4",
        "SELECT count(*) FROM acct WHERE owner = 'o5'",
        "SELECT count(*) FROM acct WHERE id = 13",
        "SELECT count(*) FROM audit WHERE acct_id = 1",
        "SELECT count(*) FROM child WHERE pid = 1",
        "SELECT count(*) FROM logbook",
    ];
    for r in &reads {
        f.cache(r).await;
    }

    f.bypass("UPDATE acct SET bal = 5 WHERE id = 1", &[reads[0]]).await;
    // What the trigger wrote (into another table) is in the stream too.
    f.bypass("UPDATE prices SET p = 2 WHERE id = 1", &[reads[7]]).await;
    f.assert_hit(row2, &kept).await;
    f.bypass("INSERT INTO acct VALUES (11, 'o11', 0)", &[reads[1]]).await;
    f.bypass("UPDATE acct SET id = 12 WHERE id = 3", &[reads[2], reads[3]]).await;
    f.bypass("DELETE FROM acct WHERE id = 4", &[reads[4]]).await;
    f.assert_hit(row2, &kept).await;
    // A non-key column: the old owner is not in the stream (REPLICA IDENTITY DEFAULT), so
    // every read pinned on owner goes; the key reads of other rows stay.
    f.bypass("UPDATE acct SET owner = 'o5' WHERE id = 7", &[reads[5]]).await;
    f.assert_hit(row2, &kept).await;
    f.pg.psql_db("app", "COPY acct FROM STDIN;\n13\to13\t0\n\\.\n");
    fresh_within(&f.proxied, &f.direct, reads[6], Instant::now()).await;
    f.bypass("DELETE FROM parent WHERE id = 1", &[reads[8]]).await;
    f.bypass("TRUNCATE logbook", &[reads[9]]).await;
    f.assert_hit(row2, &kept).await;

    // A write through pgcached is still invalidated at its commit, before the client sees it.
    let row6 = "SELECT bal FROM acct WHERE id = 6";
    f.cache(row6).await;
    f.proxied.batch_execute("UPDATE acct SET bal = 66 WHERE id = 6").await.unwrap();
    assert_eq!(simple_one(&f.proxied, row6).await.as_deref(), Some("66"), "at once, not within the bound");

    // Everything is cacheable again afterwards, and answers what Postgres answers.
    reads.push(row2);
    for r in &reads {
        let cached = f.cache(r).await;
        assert_eq!(cached, simple_one(&f.direct, r).await, "`{r}`");
    }
    let rep = f.replication("app").await.unwrap();
    assert!(number(&rep, "transactions") >= 9 && number(&rep, "changes") >= 9, "{rep:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_database_is_followed_on_its_own_and_lag_is_exported() {
    let admin_port = common::free_port();
    let f = Fixture::new(|c| c.admin.http_listen = Some(format!("127.0.0.1:{admin_port}"))).await;
    f.pg.psql("CREATE DATABASE app2");
    f.pg.psql_db("app2", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0);");
    let proxied2 = connect(&f.proxy.url("postgres", "app2")).await;
    let direct2 = connect(&f.pg.url("postgres", "app2")).await;
    f.serving("app2").await;
    let read = "SELECT v FROM t WHERE id = 1";
    let first = simple_one(&proxied2, read).await;
    assert_eq!(simple_one(&proxied2, read).await, first);
    direct2.batch_execute("UPDATE t SET v = 9 WHERE id = 1").await.unwrap();
    fresh_within(&proxied2, &direct2, read, Instant::now()).await;
    assert_eq!(simple_one(&proxied2, read).await.as_deref(), Some("9"));

    let (status, metrics) = common::http::get(admin_port, "/metrics").await;
    assert_eq!(status, 200);
    for db in ["app", "app2"] {
        let lag = common::http::sample(&metrics, &format!("pgcached_replication_lag_seconds{{database=\"{db}\"}}"));
        assert!(lag.is_some_and(|l| l < MAX_LAG.as_secs_f64()), "{db}: lag {lag:?}");
        let up = common::http::sample(&metrics, &format!("pgcached_replication_connected{{database=\"{db}\"}}"));
        assert_eq!(up, Some(1.0), "{db}");
    }
    let applied = common::http::sample(&metrics, "pgcached_replication_apply_delay_seconds_count{database=\"app2\"}");
    assert!(applied.is_some_and(|n| n >= 1.0), "the update's commit-to-invalidation delay: {applied:?}");
    let rep = f.replication("app2").await.unwrap();
    let lag: f64 = field(&rep, "lag_ms").unwrap().parse().unwrap();
    assert!(lag < 1000.0, "{rep:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_walsender_and_a_postgres_restart_heal() {
    let f = Fixture::new(|_| {}).await;
    let read = "SELECT bal FROM acct WHERE id = 1";
    f.cache(read).await;
    let killed = simple_one(
        &f.direct,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication WHERE application_name = 'pgcached-replication'",
    )
    .await;
    assert_eq!(killed.as_deref(), Some("1"));
    let start = Instant::now();
    while f.replication("app").await.map(|r| number(&r, "losses")) < Some(1) {
        assert!(start.elapsed() < Duration::from_secs(10), "the loss must be seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.serving("app").await;
    f.bypass("UPDATE acct SET bal = 7 WHERE id = 1", &[read]).await;
    f.cache(read).await;

    f.pg.restart();
    let direct = connect(&f.pg.url("postgres", "app")).await;
    let start = Instant::now();
    loop {
        if let Some(r) = f.replication("app").await {
            if number(&r, "sessions") >= 3 && field(&r, "serving") == Some("t") {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no new stream after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A pooled server connection died with Postgres: the first statement may fail.
    let _ = f.proxied.simple_query(read).await;
    let proxied = connect(&f.proxy.url("postgres", "app")).await;
    let _ = proxied.simple_query(read).await;
    direct.batch_execute("UPDATE acct SET bal = 8 WHERE id = 1").await.unwrap();
    fresh_within(&proxied, &direct, read, Instant::now()).await;
    assert_eq!(simple_one(&proxied, read).await.as_deref(), Some("8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_have_their_own_slots_and_leave_none_behind() {
    let pg = PgCluster::start_with(logical());
    pg.psql_db("app", SCHEMA);
    let direct = connect(&pg.url("postgres", "app")).await;
    let a = Proxy::start_with(&pg, replicating).await;
    let b = Proxy::start_with(&pg, replicating).await;
    let (ca, cb) = (connect(&a.url("postgres", "app")).await, connect(&b.url("postgres", "app")).await);
    let read = "SELECT bal FROM acct WHERE id = 1";
    let slots = "SELECT count(DISTINCT slot_name) FILTER (WHERE temporary AND active) FROM pg_replication_slots";
    let start = Instant::now();
    while simple_one(&direct, slots).await.as_deref() != Some("2") {
        assert!(start.elapsed() < Duration::from_secs(20), "two temporary slots expected");
        let _ = (ca.simple_query(read).await, cb.simple_query(read).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    direct.batch_execute("UPDATE acct SET bal = 3 WHERE id = 1").await.unwrap();
    let acked = Instant::now();
    fresh_within(&ca, &direct, read, acked).await;
    fresh_within(&cb, &direct, read, acked).await;
    // Each confirms what it applied: Postgres may recycle the WAL behind it.
    let written = simple_one(&direct, "SELECT pg_current_wal_insert_lsn()::text").await.unwrap();
    let behind = format!("SELECT count(*) FROM pg_replication_slots WHERE confirmed_flush_lsn < '{written}'::pg_lsn");
    let start = Instant::now();
    while simple_one(&direct, &behind).await.as_deref() != Some("0") {
        assert!(start.elapsed() < Duration::from_secs(5), "a slot does not confirm past {written}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop((ca, cb));
    a.shutdown().await;
    b.shutdown().await;
    let start = Instant::now();
    while simple_one(&direct, "SELECT count(*) FROM pg_replication_slots").await.as_deref() != Some("0") {
        assert!(start.elapsed() < Duration::from_secs(5), "slots left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_carries_the_stream() {
    let pg = PgCluster::start_with(PgOptions { ssl: true, ..logical() });
    pg.psql_db("app", SCHEMA);
    let proxy = Proxy::start_with(&pg, |c| {
        replicating(c);
        c.upstream.tls = pgcached::config::UpstreamTls::Require;
    })
    .await;
    let proxied = connect(&proxy.url("postgres", "app")).await;
    let direct = connect(&pg.url("postgres", "app")).await;
    let read = "SELECT bal FROM acct WHERE id = 1";
    simple_one(&proxied, read).await;
    let ssl = "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_replication r USING (pid) WHERE s.ssl";
    let start = Instant::now();
    while simple_one(&direct, ssl).await.as_deref() != Some("1") {
        assert!(start.elapsed() < Duration::from_secs(20), "the walsender's connection must be encrypted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    direct.batch_execute("UPDATE acct SET bal = 4 WHERE id = 1").await.unwrap();
    fresh_within(&proxied, &direct, read, Instant::now()).await;
}

/// Per key, the values acknowledged to the writer and when (values only grow).
type Acked = HashMap<i32, Vec<(Instant, i64)>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypassing_writer_never_makes_a_read_staler_than_the_bound() {
    let f = Fixture::new(|_| {}).await;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(4);
    let writer = {
        let acked = acked.clone();
        let url = f.pg.url("postgres", "app");
        tokio::spawn(async move {
            let direct = connect(&url).await;
            let update = direct.prepare("UPDATE kv SET v = $2 WHERE k = $1").await.unwrap();
            let mut n: i64 = 0;
            while Instant::now() < until {
                n += 1;
                let k = i32::try_from(n % 20).unwrap() + 1;
                direct.execute(&update, &[&k, &n]).await.unwrap();
                acked.lock().unwrap().entry(k).or_default().push((Instant::now(), n));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut readers = Vec::new();
    for r in 0..2 {
        let acked = acked.clone();
        let url = f.proxy.url("postgres", "app");
        readers.push(tokio::spawn(async move {
            let proxied = connect(&url).await;
            let select = proxied.prepare("SELECT v FROM kv WHERE k = $1").await.unwrap();
            let (mut reads, mut violations) = (0u64, Vec::new());
            while Instant::now() < until {
                for k in 1..=20 {
                    let asked = Instant::now();
                    let v: i64 = proxied.query_one(&select, &[&k]).await.unwrap().get(0);
                    reads += 1;
                    let owed = acked
                        .lock()
                        .unwrap()
                        .get(&k)
                        .and_then(|vs| vs.iter().rev().find(|(t, _)| *t + MAX_LAG < asked).map(|(_, v)| *v));
                    if let Some(owed) = owed.filter(|o| v < *o) {
                        violations.push(format!(
                            "reader {r}: k={k} read {v}, {owed} was acknowledged over {MAX_LAG:?} before"
                        ));
                    }
                }
            }
            (reads, violations)
        }));
    }
    writer.await.unwrap();
    let mut total = 0;
    for r in readers {
        let (reads, violations) = r.await.unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
        total += reads;
    }
    assert!(total > 100, "{total} reads");
    assert!(f.hits().await > 0, "the readers must have been served from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_logical_wal_or_replication_rights_it_refuses_to_start() {
    let start = |pg: &PgCluster, user: &str| {
        let mut c = Config::default();
        c.upstream.url = format!("postgres://{user}@127.0.0.1:{}/app", pg.port());
        c.upstream.tls = pgcached::config::UpstreamTls::Disable;
        c.cache.invalidation = InvalidationMode::Replication;
        let c = Arc::new(c);
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (_stop, stopped) = tokio::sync::watch::channel(false);
            let outcome =
                tokio::time::timeout(Duration::from_secs(10), pgcached::app::serve(c, listener, stopped)).await;
            format!("{:#}", outcome.expect("must refuse, not serve").expect_err("must refuse to start"))
        }
    };
    let replica = PgCluster::start();
    let err = start(&replica, "postgres").await;
    assert!(err.contains("wal_level = logical") && err.contains("wal_level = replica"), "{err}");

    let pg = PgCluster::start_with(logical());
    pg.psql("CREATE ROLE bob LOGIN");
    let err = start(&pg, "bob").await;
    assert!(err.contains("REPLICATION"), "{err}");
    pg.psql("ALTER ROLE bob REPLICATION");
    let err = start(&pg, "bob").await;
    assert!(err.contains("CREATE PUBLICATION"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_slot_outlives_the_proxy_until_dropped_as_documented() {
    let pg = PgCluster::start_with(logical());
    pg.psql_db("app", SCHEMA);
    let direct = connect(&pg.url("postgres", "app")).await;
    let named = |c: &mut Config| {
        replicating(c);
        c.cache.replication.slot = Some("keep".into());
    };
    let slot = "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'keep_app' AND NOT temporary";
    let read = "SELECT bal FROM acct WHERE id = 1";
    for (round, value) in [(1, 21), (2, 22)] {
        let proxy = Proxy::start_with(&pg, named).await;
        let proxied = connect(&proxy.url("postgres", "app")).await;
        let start = Instant::now();
        while simple_one(&direct, "SELECT count(*) FROM pg_stat_replication").await.as_deref() != Some("1") {
            assert!(start.elapsed() < Duration::from_secs(20), "round {round}: no stream");
            simple_one(&proxied, read).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        direct.batch_execute(&format!("UPDATE acct SET bal = {value} WHERE id = 1")).await.unwrap();
        fresh_within(&proxied, &direct, read, Instant::now()).await;
        drop(proxied);
        proxy.shutdown().await;
        assert_eq!(simple_one(&direct, slot).await.as_deref(), Some("1"), "round {round}: the slot stays");
        // The walsender exits a moment after the proxy (under load, long enough for the next
        // round's stream or the drop below to find the slot still active).
        let idle = "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'keep_app' AND NOT active";
        let start = Instant::now();
        while simple_one(&direct, idle).await.as_deref() != Some("1") {
            assert!(start.elapsed() < Duration::from_secs(10), "round {round}: the slot stays active");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The cleanup command README gives.
    direct.batch_execute("SELECT pg_drop_replication_slot('keep_app')").await.unwrap();
    assert_eq!(simple_one(&direct, "SELECT count(*) FROM pg_replication_slots").await.as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_altered_around_the_proxy_is_followed_by_its_new_shape() {
    let f = Fixture::new(|_| {}).await;
    // A row change first: the stream describes the table (DDL before a table's first change
    // since pgcached started, or with no row change at all, is not in the stream: README).
    f.bypass("UPDATE acct SET bal = 1 WHERE id = 10", &["SELECT bal FROM acct WHERE id = 10"]).await;
    let star = "SELECT * FROM acct WHERE id = 8";
    f.cache(star).await;
    // DDL then a row change: the stream describes the new shape before the change, and the
    // answers that relied on the old one go.
    f.bypass("ALTER TABLE acct ADD COLUMN extra int DEFAULT 7; UPDATE acct SET bal = 1 WHERE id = 9", &[star]).await;
    assert!(simple_one(&f.proxied, "SELECT count(*) FROM acct WHERE id = 8").await.is_some());
    let renamed = "SELECT bal FROM acct WHERE id = 2";
    f.cache(renamed).await;
    f.bypass("ALTER TABLE acct RENAME COLUMN owner TO holder; UPDATE acct SET holder = 'x' WHERE id = 2", &[renamed])
        .await;
    let by_holder = "SELECT count(*) FROM acct WHERE holder = 'x'";
    f.cache(by_holder).await;
    f.bypass("UPDATE acct SET holder = 'x' WHERE id = 3", &[by_holder]).await;
    assert_eq!(simple_one(&f.proxied, by_holder).await.as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_stops_the_cache_within_the_bound_and_resumes() {
    let f = Fixture::new(|_| {}).await;
    let read = "SELECT bal FROM acct WHERE id = 1";
    f.cache(read).await;
    let pid = simple_one(&f.direct, "SELECT pid FROM pg_stat_replication").await.expect("a walsender");
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &pid]).status().expect("kill").success();
        assert!(ok, "kill {sig} {pid}");
    };
    // The walsender stops sending (as a stuck network would), the connection stays open.
    signal("-STOP");
    f.bypass_unsettled("UPDATE acct SET bal = 31 WHERE id = 1", &[read]).await;
    let rep = f.replication("app").await.unwrap();
    assert_eq!((field(&rep, "connected"), field(&rep, "serving")), (Some("t"), Some("f")), "{rep:?}");
    assert!(number(&rep, "behind") >= 1, "{rep:?}");
    signal("-CONT");
    f.serving("app").await;
    f.cache(read).await;
    f.bypass("UPDATE acct SET bal = 32 WHERE id = 1", &[read]).await;
}
