//! Statistics of a real proxy under known traffic, read from the admin console and /metrics:
//! per-query numbers (literals masked) for the simple and extended protocols, per-database
//! sums, server connections, refusals by policy and rule, latency histograms by path, upstream
//! errors by SQLSTATE class, the slow-query and N+1 counters.

mod common;

use common::console::{Row, field, number, show};
use common::http::{get, sample};
use common::{PgCluster, Proxy, connect, free_port, simple_one};
use tokio_postgres::Client;

/// The `SHOW QUERIES` row of `query` in `database`.
async fn query_row(admin: &Client, database: &str, query: &str) -> Row {
    let rows = show(admin, "SHOW QUERIES").await;
    rows.iter()
        .find(|r| field(r, "database") == Some(database) && field(r, "query") == Some(query))
        .cloned()
        .unwrap_or_else(|| panic!("no row for {query:?}: {rows:#?}"))
}

/// `SHOW STATS`'s row of `database` once it counts at least `queries` statements: a driver may
/// return an error before the ReadyForQuery that ends (and reports) its exchange has arrived.
async fn stats_row(admin: &Client, database: &str, queries: u64) -> Row {
    for _ in 0..50 {
        let rows = show(admin, "SHOW STATS").await;
        let row = rows.iter().find(|r| field(r, "database") == Some(database)).cloned();
        if let Some(row) = row.filter(|r| number(r, "total_query_count") >= queries) {
            return row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{database} never counted {queries} queries: {:?}", show(admin, "SHOW STATS").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_queries_counts_each_path_and_masks_literals() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two');");
    let http = free_port();
    let proxy = Proxy::start_with(&pg, |c| {
        c.admin.users = vec!["postgres".into()];
        c.admin.http_listen = Some(format!("127.0.0.1:{http}"));
    })
    .await;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let app = connect(&proxy.url("postgres", "app")).await;

    // Simple protocol: a miss, then hits — two texts, one fingerprint.
    for k in [1, 1, 1, 2] {
        simple_one(&app, &format!("SELECT v FROM kv WHERE k = {k}")).await;
    }
    app.batch_execute("UPDATE kv SET v = 'secret value' WHERE k = 2").await.unwrap();
    // Extended protocol: one statement, three executions (a miss, then hits).
    for _ in 0..3 {
        let row = app.query_one("SELECT v FROM kv WHERE k = $1", &[&1i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "one");
    }
    let e = app.batch_execute("INSERT INTO kv VALUES (1, 'dup')").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("23505"));

    let read = query_row(&admin, "app", "select v from kv where k = ?").await;
    assert_eq!(number(&read, "calls"), 4, "{read:?}");
    assert_eq!((number(&read, "misses"), number(&read, "hits")), (2, 2), "k = 1 then k = 2 missed: {read:?}");
    assert_eq!(number(&read, "rows"), 4, "{read:?}");
    assert!(number(&read, "bytes") > 0, "{read:?}");
    assert_eq!(field(&read, "user"), Some("postgres"));
    assert!(field(&read, "p99_ms").unwrap().parse::<f64>().unwrap() > 0.0, "{read:?}");

    let extended = query_row(&admin, "app", "select v from kv where k = $1").await;
    assert_eq!(number(&extended, "calls"), 3, "{extended:?}");
    assert_eq!((number(&extended, "misses"), number(&extended, "hits")), (1, 2), "{extended:?}");

    let write = query_row(&admin, "app", "update kv set v = ? where k = ?").await;
    assert_eq!((number(&write, "calls"), number(&write, "forwarded")), (1, 1), "{write:?}");
    let everything = format!("{:?}", show(&admin, "SHOW QUERIES").await);
    assert!(!everything.contains("secret value") && !everything.contains("dup"), "no literal is kept: {everything}");

    let tables = show(&admin, "SHOW CACHE TABLES").await;
    let kv = tables.iter().find(|r| field(r, "table") == Some("kv")).unwrap_or_else(|| panic!("{tables:?}"));
    // k = 1 cached and hit (simple and extended: two keys); k = 2 cached, never hit, its row
    // written once (its dead entry goes when a look-up finds it).
    assert!(number(kv, "entries") >= 2, "{kv:?}");
    assert_eq!((number(kv, "entries_hit"), number(kv, "writes_seen")), (2, 1), "{kv:?}");
    assert!(number(kv, "bytes") > 0);

    // Nine statements, each its own transaction (autocommit).
    let app_stats = stats_row(&admin, "app", 9).await;
    assert_eq!(number(&app_stats, "total_query_count"), 9, "{app_stats:?}");
    assert_eq!(number(&app_stats, "total_xact_count"), 9, "{app_stats:?}");
    assert_eq!(number(&app_stats, "total_cache_hits"), 4, "{app_stats:?}");

    let refused = common::try_connect(&proxy.url("postgres", "no_such_db")).await.expect_err("no such database");
    assert_eq!(refused.code().map(|c| c.code()), Some("3D000"), "{refused}");

    let (_, metrics) = get(http, "/metrics").await;
    assert!(!metrics.contains("no_such_db"), "a pool that never logged in does not linger: {metrics}");
    assert_eq!(sample(&metrics, "pgcached_statement_duration_seconds_count{path=\"hit\"}"), Some(4.0), "{metrics}");
    assert_eq!(sample(&metrics, "pgcached_statement_duration_seconds_count{path=\"miss\"}"), Some(3.0), "{metrics}");
    assert_eq!(sample(&metrics, "pgcached_upstream_errors_total{class=\"23\"}"), Some(1.0), "{metrics}");
    assert!(sample(&metrics, "pgcached_client_bytes_sent_total").unwrap() > 0.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_pool_wait_seconds_count").unwrap() >= 1.0, "{metrics}");
    let id = field(&read, "query_id").unwrap();
    let calls = format!(
        "pgcached_query_calls_total{{database=\"app\",query=\"select v from kv where k = ?\",query_id=\"{id}\"}}"
    );
    assert_eq!(sample(&metrics, &calls), Some(4.0), "{metrics}");

    // A block is one transaction, however many statements it holds (a hit among them).
    let block = ["BEGIN", "SELECT v FROM kv WHERE k = 1", "UPDATE kv SET v = 'uno' WHERE k = 1", "COMMIT"];
    for statement in block {
        simple_one(&app, statement).await;
    }
    let after = stats_row(&admin, "app", 13).await;
    assert_eq!(number(&after, "total_xact_count"), 10, "{after:?}");
    // Bytes received: the block's four Query messages ('Q', length, text, NUL), exactly.
    let query_bytes: u64 = block.iter().map(|s| 1 + 4 + s.len() as u64 + 1).sum();
    assert!(number(&app_stats, "total_received") > 0, "{app_stats:?}");
    assert_eq!(number(&after, "total_received") - number(&app_stats, "total_received"), query_bytes, "{after:?}");
    assert!(field(&after, "avg_xact_time_ms").unwrap().parse::<f64>().unwrap() > 0.0, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_servers_slow_queries_and_n_plus_one() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');");
    pg.psql("CREATE ROLE bob LOGIN; GRANT ALL ON SCHEMA public TO bob");
    let http = free_port();
    let proxy = Proxy::start_with(&pg, |c| {
        c.admin.users = vec!["postgres".into()];
        c.admin.http_listen = Some(format!("127.0.0.1:{http}"));
        c.stats.slow_query = Some(std::time::Duration::from_millis(400));
        c.stats.n_plus_one = 5;
        c.policies = vec![
            serde_yaml::from_str("{name: locked, user: bob, deny_tables: [kv]}").unwrap(),
            serde_yaml::from_str("{name: bi, user: carol, limit: {inject: 10}}").unwrap(),
        ];
    })
    .await;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let app = connect(&proxy.url("postgres", "app")).await;
    let bob = connect(&proxy.url("bob", "app")).await;

    let e = bob.simple_query("SELECT v FROM kv WHERE k = 1").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    let policies = show(&admin, "SHOW POLICIES").await;
    assert_eq!(policies.len(), 2, "{policies:?}");
    assert_eq!(
        (field(&policies[0], "policy"), field(&policies[0], "rule"), number(&policies[0], "refusals")),
        (Some("locked"), Some("deny_tables"), 1)
    );
    assert_eq!((field(&policies[1], "policy"), number(&policies[1], "refusals")), (Some("bi"), 0));
    // EXPLAIN CACHE says what each policy would do with a statement.
    let explained = show(&admin, "EXPLAIN CACHE SELECT v FROM kv").await;
    let said = |property: &str| {
        explained
            .iter()
            .find(|r| field(r, "property") == Some(property))
            .and_then(|r| field(r, "value"))
            .map(str::to_string)
    };
    assert!(said("policy locked").is_some_and(|v| v.starts_with("refused (42501)")), "{explained:?}");
    assert_eq!(said("policy bi").as_deref(), Some("rewritten: SELECT v FROM kv LIMIT 10"), "{explained:?}");
    let refused = query_row(&admin, "app", "select v from kv where k = ?").await;
    assert_eq!(number(&refused, "refused"), 1, "{refused:?}");

    // A transaction holding a server: listed active, with its client.
    app.batch_execute("BEGIN; SELECT v FROM kv WHERE k = 1 FOR UPDATE").await.unwrap();
    let servers = show(&admin, "SHOW SERVERS").await;
    let active: Vec<_> = servers.iter().filter(|r| field(r, "state") == Some("active")).collect();
    assert_eq!(active.len(), 1, "{servers:?}");
    assert!(field(active[0], "client_id").is_some());
    app.batch_execute("COMMIT").await.unwrap();
    // The server goes back to its pool just after the client has its answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let servers = show(&admin, "SHOW SERVERS").await;
        if servers.iter().all(|r| field(r, "state") == Some("idle")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{servers:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    simple_one(&app, "SELECT pg_sleep(0.5)").await;
    for _ in 0..8 {
        app.query_one("SELECT v FROM kv WHERE k = $1", &[&1i32]).await.unwrap();
    }
    let (_, metrics) = get(http, "/metrics").await;
    assert_eq!(sample(&metrics, "pgcached_slow_queries_total"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "pgcached_n_plus_one_total"), Some(1.0), "one report per run: {metrics}");
    assert_eq!(sample(&metrics, "pgcached_refusals_total{policy=\"locked\",rule=\"deny_tables\"}"), Some(1.0));
    let repeated = query_row(&admin, "app", "select v from kv where k = $1").await;
    assert_eq!(number(&repeated, "n_plus_one"), 1, "{repeated:?}");

    // Every series the Grafana dashboard charts is one the proxy exports.
    assert!(app.batch_execute("INSERT INTO kv VALUES (1, 'dup')").await.is_err());
    let (_, metrics) = get(http, "/metrics").await;
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/pgcached.json")).unwrap();
    let names: std::collections::BTreeSet<&str> = dashboard
        .match_indices("pgcached_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    for name in names {
        let series = format!("\n{name}");
        assert!(metrics.contains(&series), "the dashboard charts {name}, which /metrics does not have:\n{metrics}");
    }
}
