//! Self-test of the private-Postgres harness (tests/common).

mod common;

use common::{PgCluster, PgOptions, connect};
use std::time::Instant;

#[tokio::test]
async fn start_query_restart_query() {
    let t = Instant::now();
    let pg = PgCluster::start();
    eprintln!("cluster up in {:?} on port {}", t.elapsed(), pg.port());

    let c = connect(&pg.url("postgres", "app")).await;
    let v: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 1);
    assert_eq!(pg.psql("SELECT current_user").trim(), "postgres");
    assert_eq!(pg.psql("SELECT datname FROM pg_database WHERE datname = 'app'").trim(), "app");
    drop(c);

    let port = pg.port();
    pg.restart();
    assert_eq!(pg.port(), port);
    let c = connect(&pg.url("postgres", "app")).await;
    let v: i32 = c.query_one("SELECT 2", &[]).await.unwrap().get(0);
    assert_eq!(v, 2);

    pg.stop();
    assert!(common::try_connect(&pg.url("postgres", "app")).await.is_err());
    pg.start_again();
    let c = connect(&pg.url("postgres", "postgres")).await;
    let v: i32 = c.query_one("SELECT 3", &[]).await.unwrap().get(0);
    assert_eq!(v, 3);
}

#[tokio::test]
async fn options_conf_hba_ssl() {
    let pg = PgCluster::start_with(PgOptions {
        conf: vec![("work_mem".into(), "7MB".into())],
        hba: Some("host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n".into()),
        ssl: true,
    });
    assert_eq!(pg.psql("SHOW work_mem").trim(), "7MB");
    assert_eq!(pg.psql("SHOW ssl").trim(), "on");
    pg.psql("CREATE ROLE alice LOGIN PASSWORD 'secret'");
    let url = pg.url("alice", "app");
    assert!(common::try_connect(&url).await.is_err(), "no password must be refused");
    let c = connect(&format!("postgres://alice:secret@127.0.0.1:{}/app", pg.port())).await;
    let who: String = c.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(who, "alice");
    assert!(pg.cert_path().exists());
}

#[test]
fn parallel_clusters_are_independent() {
    let a = PgCluster::start();
    let b = PgCluster::start();
    assert_ne!(a.port(), b.port());
    a.psql("CREATE TABLE only_in_a (x int)");
    assert_eq!(b.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'").trim(), "0");
}
