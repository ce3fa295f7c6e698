//! The admin console (`psql -d pgcached`) of a real proxy, each command checked against what the
//! proxy is doing: a known number of hits, a client in a transaction holding a server
//! connection, invalidation that really drops answers.

mod common;

use common::console::{number, show, value};
use common::{PgCluster, Proxy, connect, simple_one, try_connect};
use tokio_postgres::{Client, SimpleQueryMessage};

const SETUP: &str = "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two');";

async fn setup() -> (PgCluster, Proxy, Client) {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start_with(&pg, |c| c.admin.users = vec!["postgres".into()]).await;
    let admin = connect(&proxy.url("postgres", "pgcached")).await;
    (pg, proxy, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_users_get_the_console_and_it_speaks_the_simple_protocol() {
    let (pg, proxy, admin) = setup().await;
    let version = show(&admin, "SHOW VERSION").await;
    assert_eq!(value(&version[0], "version"), concat!("pgcached ", env!("CARGO_PKG_VERSION")));
    assert!(show(&admin, "show help").await.len() >= 10);
    pg.psql("CREATE ROLE bob LOGIN");
    let refused = try_connect(&proxy.url("bob", "pgcached")).await.expect_err("bob is not an admin");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");
    // The extended protocol: refused, and the console goes on.
    let err = admin.query("SHOW VERSION", &[]).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("0A000"), "{err}");
    let err = admin.simple_query("SHOW NOTHING").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"), "{err}");
    assert!(err.as_db_error().is_some_and(|d| d.message().contains("SHOW HELP")), "{err:?}");
    // Several commands in one query string: one result set each.
    let messages = admin.simple_query("SHOW VERSION; SHOW CONFIG").await.unwrap();
    let completes = messages.iter().filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_))).count();
    assert_eq!(completes, 2);
    let config = show(&admin, "SHOW CONFIG").await;
    let url = config.iter().find(|r| value(r, "key") == "upstream.url").expect("upstream.url");
    assert!(value(url, "value").starts_with("postgres://"), "{url:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_cache_clients_and_pools_say_what_the_proxy_is_doing() {
    let (_pg, proxy, admin) = setup().await;
    let app = connect(&proxy.url("postgres", "app")).await;
    for _ in 0..3 {
        assert_eq!(simple_one(&app, "SELECT v FROM kv WHERE k = 1").await.as_deref(), Some("one"));
    }
    let cache = show(&admin, "SHOW CACHE").await;
    assert_eq!((number(&cache[0], "hits"), number(&cache[0], "misses")), (2, 1), "{cache:?}");
    assert_eq!(value(&cache[0], "hit_ratio"), "0.667");
    assert!(number(&cache[0], "entries") >= 1);

    // A client in a transaction holds a server connection; the other is idle.
    let mut busy = connect(&proxy.url("postgres", "app")).await;
    let tx = busy.transaction().await.unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();
    let pools = show(&admin, "SHOW POOLS").await;
    let pool = pools.iter().find(|r| value(r, "database") == "app").expect("the app pool");
    assert_eq!((number(pool, "cl_active"), number(pool, "cl_idle")), (1, 1), "{pool:?}");
    assert_eq!(number(pool, "sv_active"), 1, "{pool:?}");
    assert_eq!(value(pool, "pool_mode"), "transaction");
    let clients = show(&admin, "SHOW CLIENTS").await;
    let app_clients: Vec<_> = clients.iter().filter(|r| value(r, "database") == "app").collect();
    assert_eq!(app_clients.len(), 2, "{clients:?}");
    let active = app_clients.iter().find(|r| value(r, "state") == "active").expect("the busy client");
    assert!(number(active, "server_pid") > 0, "{active:?}");
    assert!(clients.iter().any(|r| value(r, "database") == "pgcached"), "the console lists itself");
    tx.commit().await.unwrap();
    let databases = show(&admin, "SHOW DATABASES").await;
    assert!(databases.iter().any(|r| value(r, "name") == "app"), "{databases:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_drops_answers_and_explain_cache_says_why() {
    let (pg, proxy, admin) = setup().await;
    let app = connect(&proxy.url("postgres", "app")).await;
    let read = |k: i32| format!("SELECT v FROM kv WHERE k = {k}");
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("one"));
    pg.psql_db("app", "UPDATE kv SET v = 'behind' WHERE k = 1");
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("one"), "cached: pgcached cannot see that write");
    admin.simple_query("INVALIDATE TABLE public.KV IN DATABASE app").await.unwrap();
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("behind"));
    pg.psql_db("app", "UPDATE kv SET v = 'again' WHERE k = 1");
    admin.simple_query("INVALIDATE TABLE kv").await.unwrap();
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("again"), "every database by default");
    pg.psql_db("app", "UPDATE kv SET v = 'and again' WHERE k = 1");
    admin.simple_query("INVALIDATE DATABASE app").await.unwrap();
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("and again"));
    pg.psql_db("app", "UPDATE kv SET v = 'last' WHERE k = 1");
    admin.simple_query("INVALIDATE ALL").await.unwrap();
    assert_eq!(simple_one(&app, &read(1)).await.as_deref(), Some("last"));
    let cache = show(&admin, "SHOW CACHE").await;
    assert_eq!(number(&cache[0], "invalidations_admin"), 4, "{cache:?}");

    let explain = show(&admin, "EXPLAIN CACHE SELECT v FROM kv WHERE k = 1").await;
    let get = |rows: &[Vec<(String, Option<String>)>], p: &str| {
        rows.iter().find(|r| value(r, "property") == p).map(|r| value(r, "value").to_string())
    };
    assert_eq!(get(&explain, "cacheable").as_deref(), Some("yes"), "{explain:?}");
    assert_eq!(get(&explain, "depends_on").as_deref(), Some("kv pinned by k"));
    assert_eq!(get(&explain, "ttl").as_deref(), Some("1m"));
    let explain = show(&admin, "EXPLAIN CACHE SELECT v, now() FROM kv").await;
    assert_eq!(get(&explain, "cacheable").as_deref(), Some("no"));
    assert_eq!(get(&explain, "reason").as_deref(), Some("function"));
}
