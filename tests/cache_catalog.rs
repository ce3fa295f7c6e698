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

const SECURITY: &str = "
    CREATE TABLE open_t (id int, tenant int);
    CREATE TABLE by_role (id int, owner name);
    ALTER TABLE by_role ENABLE ROW LEVEL SECURITY;
    CREATE POLICY mine ON by_role USING (owner = current_user);
    CREATE TABLE by_setting (id int, tenant int);
    ALTER TABLE by_setting ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant ON by_setting USING (tenant = current_setting('app.tenant')::int);
    CREATE TABLE by_session_user (id int, owner name);
    ALTER TABLE by_session_user ENABLE ROW LEVEL SECURITY;
    CREATE POLICY mine ON by_session_user USING (owner = session_user);
    CREATE TABLE members (tenant int, member name);
    CREATE TABLE by_membership (id int, tenant int);
    ALTER TABLE by_membership ENABLE ROW LEVEL SECURITY;
    CREATE POLICY member ON by_membership USING (tenant IN (SELECT tenant FROM members WHERE member = current_user));
    CREATE TABLE events (id int, at timestamptz);
    CREATE VIEW upcoming AS SELECT * FROM events WHERE at > now();
    CREATE VIEW today AS SELECT * FROM events WHERE at > CURRENT_DATE;
    CREATE VIEW plain AS SELECT id, lower(owner) AS o FROM by_role;
    CREATE VIEW over_setting WITH (security_barrier) AS SELECT * FROM open_t WHERE tenant = current_setting('app.tenant')::int;
    CREATE VIEW over_private AS SELECT * FROM by_setting;
    CREATE FUNCTION set_tenant(t int) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN PERFORM set_config('app.tenant', t::text, false); END $$;
    CREATE FUNCTION switch_path() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          SET search_path = public; END $$;
    CREATE FUNCTION touch(i int) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN UPDATE open_t SET tenant = 1 WHERE id = i; END $$;
    CREATE FUNCTION with_clause() RETURNS int LANGUAGE sql SET search_path = public AS 'SELECT 1';
";

/// Reads through a relation are shared between sessions only when what Postgres filters them by
/// is in the key (the role): not a setting, `SESSION_USER`, the clock, or another table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_names_relations_whose_rows_depend_on_more_than_the_role() {
    let pg = PgCluster::start();
    pg.psql_db("app", SECURITY);
    let cat = catalog(&pg);
    for shared in ["open_t", "by_role", "plain", "public.by_role", "no_such_table"] {
        assert_eq!(cat.privacy(shared).await.unwrap(), None, "{shared}");
    }
    for private in
        ["by_setting", "by_session_user", "by_membership", "upcoming", "today", "over_setting", "over_private"]
    {
        let why = cat.privacy(private).await.unwrap();
        assert!(why.is_some(), "{private} is private");
    }
    let why = cat.privacy("over_private").await.unwrap().unwrap();
    assert!(why.contains("row-level security policy of public.by_setting"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_that_may_set_settings_are_told_from_their_bodies() {
    let pg = PgCluster::start();
    pg.psql_db("app", SECURITY);
    let cat = catalog(&pg);
    assert_eq!(cat.may_set_settings_known("set_tenant"), None, "not looked up yet");
    for (f, sets) in [
        ("set_tenant", true),
        ("switch_path", true),
        ("touch", false),
        ("with_clause", false),
        ("lower", false),
        ("pg_catalog.set_config", true),
        ("no_such_function", true),
    ] {
        assert_eq!(cat.may_set_settings(f).await.unwrap().sets, sets, "{f}");
    }
    assert_eq!(cat.may_set_settings_known("set_tenant").map(|s| s.sets), Some(true));
    assert_eq!(cat.may_set_settings_known("touch").map(|s| s.sets), Some(false));
}

/// The custom settings a function may define are named where its body names them: no reset
/// undefines one, so the next client of its connection must not get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_name_the_custom_settings_they_define() {
    let pg = PgCluster::start();
    pg.psql_db("app", SECURITY);
    pg.psql_db(
        "app",
        "CREATE FUNCTION two_settings() RETURNS void LANGUAGE sql AS
           $$ SELECT set_config('App.Tenant', '1', false), set_config('app.user', '2', true) $$;
         CREATE FUNCTION computed(n text) RETURNS void LANGUAGE sql AS
           $$ SELECT set_config('app.tenant', '1', false), set_config(n, '2', false) $$;",
    );
    let cat = catalog(&pg);
    let mut defined = Vec::new();
    for f in ["set_tenant", "two_settings", "touch", "computed", "switch_path", "no_such_function"] {
        defined.push(cat.may_set_settings(f).await.unwrap().defines.map(|d| d.to_vec()));
    }
    let names = |n: &[&str]| Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(defined[0], names(&["app.tenant"]), "set_tenant");
    assert_eq!(defined[1], names(&["app.tenant", "app.user"]), "two_settings");
    assert_eq!(defined[2], names(&[]), "touch sets nothing");
    assert_eq!(defined[3], None, "a computed name");
    assert_eq!(defined[4], None, "a SET statement");
    assert_eq!(defined[5], None, "no such function");
}
