//! An upstream on its Unix-domain socket (`upstream.url` naming a directory, as libpq's
//! `host=/var/run/postgresql`): Postgres here refuses every TCP login, so each thing that
//! works below went over the socket — statements on both protocols, a cached read and the
//! write that invalidates it, a cancel, the readiness check's control-plane login, and an
//! idle pooled connection found dead after a Postgres restart — and replication invalidation,
//! whose stream logs in there too.

mod common;

use std::time::{Duration, Instant};

use common::console::{field, number, show};
use common::{PgCluster, PgOptions, Proxy, connect};
use pgcached::config::InvalidationMode;

/// A Postgres that takes logins (replication ones too) on its socket only, with `conf`.
fn socket_only_postgres(conf: &[(&str, &str)]) -> PgCluster {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some("local all all trust\nlocal replication all trust\nhost all all all reject".into()),
        conf: conf.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..PgOptions::default()
    });
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two')");
    pg
}

/// `upstream.url` for `pg`'s socket, percent-encoded as a libpq URL carries a directory.
fn socket_url(pg: &PgCluster) -> String {
    let dir = pg.socket_dir().display().to_string().replace('/', "%2F");
    format!("postgres://postgres@{dir}:{}/app", pg.port())
}

async fn metric(admin: u16, series: &str) -> f64 {
    let (_, body) = common::http::get(admin, "/metrics").await;
    common::http::sample(&body, series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_socket_serves_statements_cache_cancels_and_readiness() {
    let pg = socket_only_postgres(&[]);
    assert!(
        common::try_connect(&pg.url("postgres", "app")).await.is_err(),
        "the harness's Postgres must refuse TCP logins, or this test proves nothing"
    );
    let admin = common::free_port();
    let url = socket_url(&pg);
    let proxy = Proxy::start_with(&pg, move |c| {
        c.upstream.url = url;
        c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
    })
    .await;
    let client = connect(&proxy.url("postgres", "app")).await;

    // Both protocols.
    let row = client.query_one("SELECT v FROM kv WHERE k = $1", &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "one");
    let read = "SELECT v FROM kv WHERE k = 2";
    assert_eq!(common::simple_one(&client, read).await.as_deref(), Some("two"));

    // A read answered from the cache, then the write through the proxy invalidates it.
    let hits = metric(admin, "pgcached_cache_hits_total").await;
    assert_eq!(common::simple_one(&client, read).await.as_deref(), Some("two"));
    assert!(metric(admin, "pgcached_cache_hits_total").await > hits, "the second read was not a hit");
    client.batch_execute("UPDATE kv SET v = 'deux' WHERE k = 2").await.unwrap();
    assert_eq!(common::simple_one(&client, read).await.as_deref(), Some("deux"));

    // The readiness check logs in (the control plane, tokio-postgres) over the socket too.
    let (status, body) = common::http::get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    // A cancel goes to the same server, over the socket.
    let token = client.cancel_token();
    let started = Instant::now();
    let running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(10) AS running").await.map(drop) });
    let active = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%AS running'";
    while pg.psql(active).trim() == "0" {
        assert!(started.elapsed() < Duration::from_secs(8), "the statement never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = running.await.unwrap().expect_err("cancelled");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());

    // The pooled connection on the socket is found dead after a restart, and the next read
    // gets a new one without an error.
    pg.restart();
    let client = connect(&proxy.url("postgres", "app")).await;
    let row = client.query_one("SELECT v FROM kv WHERE k = $1", &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "one");
}

/// Replication invalidation over the socket: the stream and its control connection log in
/// there, and a write made around the proxy drops the cached answer it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_invalidation_streams_over_an_upstream_socket() {
    let pg =
        socket_only_postgres(&[("wal_level", "logical"), ("max_replication_slots", "4"), ("max_wal_senders", "4")]);
    let url = socket_url(&pg);
    let proxy = Proxy::start_with(&pg, move |c| {
        c.upstream.url = url;
        c.cache.invalidation = InvalidationMode::Replication;
        c.cache.default_ttl = Duration::from_secs(600);
        c.admin.users = vec!["postgres".into()];
    })
    .await;
    // A database's stream starts with its first client.
    let client = connect(&proxy.url("postgres", "app")).await;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    let started = Instant::now();
    loop {
        let rows = show(&admin, "SHOW REPLICATION").await;
        let app = rows.iter().find(|r| field(r, "database") == Some("app"));
        if app.is_some_and(|r| field(r, "connected") == Some("t") && field(r, "serving") == Some("t")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "app not served: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Postgres shows no client address for a walsender on its socket.
    assert_eq!(pg.psql("SELECT count(*) FROM pg_stat_replication WHERE client_addr IS NULL").trim(), "1");

    let read = "SELECT v FROM kv WHERE k = 1";
    assert_eq!(common::simple_one(&client, read).await.as_deref(), Some("one"));
    let hits = number(&show(&admin, "SHOW CACHE").await[0], "hits");
    assert_eq!(common::simple_one(&client, read).await.as_deref(), Some("one"));
    assert_eq!(number(&show(&admin, "SHOW CACHE").await[0], "hits"), hits + 1, "the second read was not a hit");
    pg.psql_db("app", "UPDATE kv SET v = 'uno' WHERE k = 1");
    let started = Instant::now();
    while common::simple_one(&client, read).await.as_deref() != Some("uno") {
        assert!(started.elapsed() < Duration::from_secs(5), "the write around the proxy never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `upstream.tls: require` (or verify-full) with a socket host is refused at `--check`, naming
/// the key: Postgres takes no TLS on its socket, so the promise could not be kept.
#[test]
fn tls_required_on_an_upstream_socket_is_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgcached.yaml");
    std::fs::write(&config, "upstream:\n  url: postgres://%2Fvar%2Frun%2Fpostgresql/app\n  tls: require\n").unwrap();
    let out = common::pgcached(&["--config", config.to_str().unwrap(), "--check"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--check took it: {said}");
    assert!(said.contains("upstream.tls") && said.contains("TCP host"), "{said}");

    std::fs::write(&config, "upstream:\n  url: postgres://%2Fvar%2Frun%2Fpostgresql/app\n  tls: prefer\n").unwrap();
    let out = common::pgcached(&["--config", config.to_str().unwrap(), "--check"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
