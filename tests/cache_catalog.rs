//! Catalog look-ups against a private Postgres: views resolve to their base tables
//! (recursively), partitions to their parents and children, functions to their volatility,
//! and `refresh` forgets memoized answers after DDL.

mod common;

use common::PgCluster;
use deadpool_postgres::{Manager, Pool};
use pgcached::cache::{Catalog, Volatility};
use tokio_postgres::NoTls;

fn catalog(pg: &PgCluster) -> Catalog {
    let mgr = Manager::new(pg.url("postgres", "app").parse().unwrap(), NoTls);
    Catalog::new(Pool::builder(mgr).max_size(2).build().unwrap())
}

const SCHEMA: &str = "
    CREATE TABLE a(id int); CREATE TABLE b(id int); CREATE TABLE c(id int);
    CREATE SCHEMA s; CREATE TABLE s.a(id int);
    CREATE VIEW v1 AS SELECT a.id FROM a JOIN b USING (id);
    CREATE VIEW v2 AS SELECT * FROM v1 WHERE id > 0;
    CREATE TABLE p(id int) PARTITION BY RANGE (id);
    CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
    CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20);
    CREATE FUNCTION f_imm(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
    CREATE FUNCTION f_stable(int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1';
    CREATE FUNCTION f_mixed(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
    CREATE FUNCTION f_mixed(text) RETURNS text VOLATILE LANGUAGE sql AS 'SELECT $1';
";

fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_resolve_recursively_to_their_base_tables() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let cat = catalog(&pg);
    let deps = cat.dependencies("v2").await.unwrap();
    assert_eq!(names(&deps), ["public.a", "public.b", "public.v1", "public.v2"]);
    let deps = cat.dependencies("public.a").await.unwrap();
    assert_eq!(names(&deps), ["public.a"]);
    // A bare name is looked up in every schema (the client's search_path is unknown here).
    let deps = cat.dependencies("a").await.unwrap();
    assert_eq!(names(&deps), ["public.a", "s.a"]);
    let deps = cat.dependencies("no_such_table").await.unwrap();
    assert_eq!(names(&deps), ["no_such_table"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_resolve_to_parents_and_children() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let cat = catalog(&pg);
    assert_eq!(names(&cat.dependencies("p").await.unwrap()), ["public.p", "public.p1", "public.p2"]);
    let deps = cat.dependencies("p1").await.unwrap();
    assert!(deps.contains(&"public.p".to_string()), "{deps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_volatility_is_the_most_volatile_overload() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let cat = catalog(&pg);
    assert_eq!(cat.function_volatility("f_imm").await.unwrap(), Some(Volatility::Immutable));
    assert_eq!(cat.function_volatility("public.f_stable").await.unwrap(), Some(Volatility::Stable));
    assert_eq!(cat.function_volatility("f_mixed").await.unwrap(), Some(Volatility::Volatile));
    assert_eq!(cat.function_volatility("now").await.unwrap(), Some(Volatility::Stable));
    assert_eq!(cat.function_volatility("random").await.unwrap(), Some(Volatility::Volatile));
    assert_eq!(cat.function_volatility("pg_catalog.lower").await.unwrap(), Some(Volatility::Immutable));
    assert_eq!(cat.function_volatility("no_such_fn").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_forgets_answers_made_stale_by_ddl() {
    let pg = PgCluster::start();
    pg.psql_db("app", SCHEMA);
    let cat = catalog(&pg);
    assert_eq!(names(&cat.dependencies("v1").await.unwrap()), ["public.a", "public.b", "public.v1"]);
    pg.psql_db("app", "CREATE OR REPLACE VIEW v1 AS SELECT id FROM c");
    // Memoized until refreshed.
    assert_eq!(names(&cat.dependencies("v1").await.unwrap()), ["public.a", "public.b", "public.v1"]);
    cat.refresh();
    assert_eq!(names(&cat.dependencies("v1").await.unwrap()), ["public.c", "public.v1"]);
}
