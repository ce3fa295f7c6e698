//! The admin HTTP endpoint (`admin.http_listen`) of an in-process proxy: metrics after real
//! traffic, liveness, and readiness following the upstream Postgres.

mod common;

use std::time::{Duration, Instant};

use common::http::{get, sample};
use common::{PgCluster, Proxy, connect, free_port};
use tokio::net::TcpStream;

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
