//! The admin HTTP endpoint (`admin.http_listen`) of an in-process proxy: metrics after real
//! traffic, liveness, and readiness following the upstream Postgres.

mod common;

use std::time::{Duration, Instant};

use common::{PgCluster, Proxy, connect, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` over a fresh HTTP/1.1 connection: (status, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    // `Proxy::start_with` returns before `serve` has bound the admin port: retry a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect admin port {port}: {e}"),
        }
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await.expect("admin answer").unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head:?}"));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "unexpected chunked body: {head}");
    (status, body.to_string())
}

/// The value of the sample line starting with `series` (name plus labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_over_http() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');");
    let admin = free_port();
    let proxy = Proxy::start_with(&pg, |c| c.admin.http_listen = Some(format!("127.0.0.1:{admin}"))).await;

    let client = connect(&proxy.url("postgres", "app")).await;
    for _ in 0..2 {
        let row = client.query_one("SELECT v FROM kv WHERE k = 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "one");
    }

    let (status, metrics) = get(admin, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    assert!(sample(&metrics, "pgcached_cache_hits_total").unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_cache_misses_total").unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_cache_fills_total").unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_cache_entries").unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_pool_size{database=\"app\",user=\"postgres\"}").unwrap() >= 1.0, "{metrics}");
    assert!(sample(&metrics, "pgcached_pool_waiting{database=\"app\",user=\"postgres\"}").is_some(), "{metrics}");
    assert_eq!(sample(&metrics, "pgcached_clients_connected"), Some(1.0), "{metrics}");
    assert!(metrics.contains("pgcached_cache_invalidations_total{cause=\"write\"}"), "{metrics}");
    assert!(metrics.contains("pgcached_build_info{version=\""), "{metrics}");

    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_string()));
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(admin, "/nope").await.0, 404);

    drop(client);
    pg.stop();
    // The last answer is cached for about a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get(admin, "/readyz").await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "/readyz still 200 after the upstream stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(body.contains(&format!("127.0.0.1:{}", pg.port())), "{body}");
    assert_eq!(get(admin, "/healthz").await.0, 200, "liveness does not follow the upstream");

    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(admin, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover after the upstream came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    proxy.shutdown().await;
    // The admin server stops with the proxy (its task ends shortly after `serve` returns).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", admin)).await.is_ok() {
        assert!(Instant::now() < deadline, "admin port still open after shutdown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server that refuses the control-plane login (here: every TCP login) is still up: ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_control_login_still_counts_as_ready() {
    let pg = PgCluster::start_with(common::PgOptions {
        hba: Some("host all all 127.0.0.1/32 reject".into()),
        ..Default::default()
    });
    let admin = free_port();
    let _proxy = Proxy::start_with(&pg, |c| c.admin.http_listen = Some(format!("127.0.0.1:{admin}"))).await;
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
}
