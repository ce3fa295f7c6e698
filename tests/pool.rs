//! Server pools against a private Postgres: size limit and acquire timeout, reuse, recycling
//! of broken / restarted / old connections, LIFO reuse, slots freed by failures, waiting and
//! closing, idle reaping, credentials, the control pool.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PgCluster, PgOptions};
use pgcached::config::{Config, UpstreamTls, UserEntry};
use pgcached::pool::{PoolError, PoolKey, Pools, ServerObject, control::control_pool};

fn config(pg: &PgCluster, tune: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut c = Config::default();
    c.upstream.url = format!("postgres://127.0.0.1:{}/postgres", pg.port());
    c.upstream.tls = UpstreamTls::Disable;
    c.pool.acquire_timeout = Duration::from_millis(300);
    tune(&mut c);
    Arc::new(c)
}

fn key(user: &str) -> PoolKey {
    PoolKey { database: "postgres".into(), user: user.into() }
}

#[tokio::test]
async fn max_size_is_respected_and_the_next_get_times_out_with_53300() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.max_size = 2)).unwrap();
    let a = pools.get(&key("postgres")).await.unwrap();
    let b = pools.get(&key("postgres")).await.unwrap();
    let started = Instant::now();
    let err = pools.get(&key("postgres")).await.err().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(290), "{:?}", started.elapsed());
    assert_eq!(err.sqlstate(), "53300");
    assert!(matches!(&err, PoolError::Timeout { pool, max_size: 2, .. } if pool == "postgres/postgres"), "{err}");
    assert_eq!(
        err.to_string(),
        "pgcached: no server connection available in pool \"postgres/postgres\" after 300ms (pool.max_size = 2)"
    );
    let used = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = 'postgres' AND application_name = ''");
    assert_eq!(used.trim(), "2", "two server connections, not three");
    drop(a);
    let c = tokio::time::timeout(Duration::from_secs(1), pools.get(&key("postgres"))).await.unwrap().unwrap();
    drop((b, c));
    let status = pools.status();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].1.size, status[0].1.max_size), (2, 2));
}

#[tokio::test]
async fn an_idle_connection_is_reused_and_a_broken_one_is_not() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.health_check_after = Duration::ZERO)).unwrap();
    let first = pools.get(&key("postgres")).await.unwrap().id;
    let mut obj = pools.get(&key("postgres")).await.unwrap();
    assert_eq!(obj.id, first, "reused (and passed the health check)");
    obj.broken = true;
    drop(obj);
    let obj = pools.get(&key("postgres")).await.unwrap();
    assert_ne!(obj.id, first, "a broken connection is replaced");
}

#[tokio::test]
async fn a_health_check_that_hangs_is_bounded_by_acquire_timeout_and_replaced() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.health_check_after = Duration::ZERO)).unwrap();
    let obj = pools.get(&key("postgres")).await.unwrap();
    let (first, pid) = (obj.id, obj.backend_key.0);
    drop(obj);
    // The idle backend stops answering: its health check gets no reply.
    let stop = |signal: &str| {
        let ok = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill {signal} {pid}");
    };
    stop("-STOP");
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(5), pools.get(&key("postgres"))).await;
    stop("-CONT");
    let mut obj = got.expect("the checkout did not hang").unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_secs(2), "{waited:?}");
    assert_ne!(obj.id, first, "the hung connection was dropped, a new one opened");
    obj.run_hidden("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn a_connection_whose_server_restarted_is_discarded_and_the_next_get_works() {
    let pg = PgCluster::start();
    // No health check: the unsolicited FATAL/EOF alone must be noticed.
    let pools = Pools::new(config(&pg, |c| c.pool.health_check_after = Duration::from_secs(3600))).unwrap();
    let first = pools.get(&key("postgres")).await.unwrap().id;
    pg.restart();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut obj = pools.get(&key("postgres")).await.unwrap();
    assert_ne!(obj.id, first);
    obj.run_hidden("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn connections_older_than_max_lifetime_are_replaced() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.max_lifetime = Duration::from_millis(200))).unwrap();
    let first = pools.get(&key("postgres")).await.unwrap().id;
    assert_eq!(pools.get(&key("postgres")).await.unwrap().id, first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(pools.get(&key("postgres")).await.unwrap().id, first);
}

#[tokio::test]
async fn idle_connections_are_reaped_down_to_min_idle() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| {
        c.pool.idle_timeout = Duration::from_millis(200);
        c.pool.min_idle = 1;
    }))
    .unwrap();
    let k = key("postgres");
    let objs = futures::future::join_all((0..3).map(|_| pools.get(&k))).await;
    assert!(objs.iter().all(Result::is_ok));
    drop(objs);
    assert_eq!(pools.status()[0].1.size, 3);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(pools.status()[0].1.size, 1, "reaped to min_idle");
}

#[tokio::test]
async fn min_idle_connections_are_opened_in_the_background() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| {
        c.pool.idle_timeout = Duration::from_millis(200);
        c.pool.min_idle = 2;
    }))
    .unwrap();
    drop(pools.get(&key("postgres")).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(pools.status()[0].1.size, 2);
}

#[tokio::test]
async fn pools_log_in_with_the_configured_password_and_report_28p01() {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some("host all all 127.0.0.1/32 scram-sha-256\n".into()),
        ..PgOptions::default()
    });
    pg.psql("CREATE ROLE alice LOGIN PASSWORD 'a1'; CREATE ROLE bob LOGIN PASSWORD 'b1'");
    let pools = Pools::new(config(&pg, |c| {
        c.upstream.url = format!("postgres://alice:a1@127.0.0.1:{}/postgres", pg.port());
        c.auth.users = vec![UserEntry { name: "bob".into(), password: "wrong".into() }];
    }))
    .unwrap();
    let _alice = pools.get(&key("alice")).await.unwrap();
    let err = pools.get(&key("bob")).await.err().unwrap();
    assert_eq!(err.sqlstate(), "28P01", "{err}");
    assert_eq!(err.server_error_frame().map(|f| f[0]), Some(b'E'));
    let err = pools.get(&key("nobody")).await.err().unwrap();
    assert_eq!(err.sqlstate(), "08006", "no password known: {err}");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_connection_failure() {
    let port = common::free_port();
    let mut c = Config::default();
    c.upstream.url = format!("postgres://127.0.0.1:{port}/postgres");
    c.upstream.tls = UpstreamTls::Disable;
    let pools = Pools::new(Arc::new(c)).unwrap();
    let err = pools.get(&key("postgres")).await.err().unwrap();
    assert_eq!(err.sqlstate(), "08006", "{err}");
}

#[tokio::test]
async fn closed_pools_refuse_new_gets() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |_| {})).unwrap();
    drop(pools.get(&key("postgres")).await.unwrap());
    pools.close();
    assert!(matches!(pools.get(&key("postgres")).await, Err(PoolError::Closed)));
    assert_eq!(PoolError::Closed.sqlstate(), "57P01");
    assert!(pools.status().is_empty());
}

#[tokio::test]
async fn connections_come_back_most_recently_used_first() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.max_size = 3)).unwrap();
    let (a, b) = (pools.get(&key("postgres")).await.unwrap(), pools.get(&key("postgres")).await.unwrap());
    let (a_id, b_id) = (a.id, b.id);
    drop(a);
    drop(b);
    let again = pools.get(&key("postgres")).await.unwrap();
    assert_eq!(again.id, b_id, "the last one returned goes out first");
    let next = pools.get(&key("postgres")).await.unwrap();
    assert_eq!(next.id, a_id);
    assert_eq!(pools.status()[0].1.available, 0);
}

/// A checkout that prefers some connections takes the most recently used one that fits, and
/// only when none fits the most recently used one.
#[tokio::test]
async fn a_preferring_get_takes_the_most_recent_fitting_connection() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.max_size = 3)).unwrap();
    let handle = pools.handle(&key("postgres")).unwrap();
    let (a, mut b) = (handle.get().await.unwrap(), handle.get().await.unwrap());
    let (a_id, b_id) = (a.id, b.id);
    b.placeholders.push("app.tenant".into());
    drop(a);
    drop(b);
    let clean = |c: &pgcached::server::ServerConn| c.placeholders.is_empty();
    let got = handle.get_preferring(&clean).await.unwrap();
    assert_eq!(got.id, a_id, "the older one fits; the most recent does not");
    let other = handle.get_preferring(&clean).await.unwrap();
    assert_eq!(other.id, b_id, "none fits: the most recent one, for the caller to judge");
}

/// A pool of one connection: that one held, and a second `get` spawned and waiting for it.
async fn one_held_one_waiting(
    pg: &PgCluster,
    acquire_timeout: Duration,
) -> (Arc<Pools>, ServerObject, tokio::task::JoinHandle<Result<ServerObject, PoolError>>) {
    let pools = Arc::new(
        Pools::new(config(pg, |c| {
            c.pool.max_size = 1;
            c.pool.acquire_timeout = acquire_timeout;
        }))
        .unwrap(),
    );
    let held = pools.get(&key("postgres")).await.unwrap();
    let waiter = tokio::spawn({
        let pools = pools.clone();
        async move { pools.get(&key("postgres")).await }
    });
    while pools.status()[0].1.waiting == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (pools, held, waiter)
}

#[tokio::test]
async fn a_waiting_get_opens_a_new_connection_when_a_held_one_breaks() {
    let pg = PgCluster::start();
    let (pools, mut held, waiter) = one_held_one_waiting(&pg, Duration::from_secs(5)).await;
    let first = held.id;
    held.broken = true;
    let started = Instant::now();
    drop(held);
    let got = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap().unwrap();
    assert_ne!(got.id, first, "the broken connection was closed and a new one opened");
    assert!(started.elapsed() < Duration::from_secs(2), "served at once, not at acquire_timeout");
    drop(got);
    let st = pools.status()[0].1;
    assert_eq!((st.size, st.available, st.waiting), (1, 1, 0));
}

#[tokio::test]
async fn a_failed_login_gives_its_slot_back() {
    let pg = PgCluster::start_with(PgOptions {
        hba: Some("host all all 127.0.0.1/32 scram-sha-256\n".into()),
        ..PgOptions::default()
    });
    pg.psql("CREATE ROLE bob LOGIN PASSWORD 'b1'");
    let pools = Pools::new(config(&pg, |c| {
        c.pool.max_size = 1;
        c.auth.users = vec![UserEntry { name: "bob".into(), password: "wrong".into() }];
    }))
    .unwrap();
    for _ in 0..3 {
        // Were the slot of a failed login kept, the next get would wait and answer 53300.
        let err = pools.get(&key("bob")).await.err().unwrap();
        assert_eq!(err.sqlstate(), "28P01", "{err}");
    }
    assert_eq!(pools.status()[0].1.size, 0);
}

#[tokio::test]
async fn a_timed_out_wait_leaves_no_waiter_and_no_slot_behind() {
    let pg = PgCluster::start();
    let pools = Pools::new(config(&pg, |c| c.pool.max_size = 1)).unwrap();
    let held = pools.get(&key("postgres")).await.unwrap();
    let err = pools.get(&key("postgres")).await.err().unwrap();
    assert_eq!(err.sqlstate(), "53300");
    assert_eq!(pools.status()[0].1.waiting, 0, "the timed-out wait is not counted any more");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(1), pools.get(&key("postgres"))).await.unwrap();
    assert!(again.is_ok(), "the slot is free again");
}

#[tokio::test]
async fn closing_a_pool_refuses_its_waiting_gets() {
    let pg = PgCluster::start();
    let (pools, held, waiter) = one_held_one_waiting(&pg, Duration::from_secs(10)).await;
    pools.close();
    let got = tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
    assert!(matches!(got, Err(PoolError::Closed)), "{:?}", got.as_ref().err());
    let pid = held.backend_key.0;
    drop(held);
    let gone = || pg.psql(&format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")).trim() == "0";
    for _ in 0..50 {
        if gone() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a connection returned to a closed pool is closed");
}

#[tokio::test]
async fn control_pool_runs_queries_as_the_url_user() {
    let pg = PgCluster::start();
    let c = config(&pg, |_| {});
    let pools = Pools::new(c.clone()).unwrap();
    let pool = control_pool(pools.target(), "postgres", 2, Duration::from_secs(2)).unwrap();
    let client = pool.get().await.unwrap();
    let row = client.query_one("SELECT current_user::text, current_database()::text", &[]).await.unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("postgres".into(), "postgres".into()));
}
