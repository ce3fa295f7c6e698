//! `pgcached install-triggers` / `uninstall-triggers` through the built binary, against a
//! private Postgres.

mod common;

use std::process::Output;

use common::{PgCluster, pgcached};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn triggers(pg: &PgCluster, db: &str) -> String {
    pg.psql_db(
        db,
        "SELECT string_agg(tgrelid::regclass::text, ',' ORDER BY tgrelid::regclass::text)
           FROM pg_trigger WHERE tgname = 'pgcached_invalidate'",
    )
    .trim()
    .to_string()
}

#[test]
fn install_and_uninstall_triggers_from_the_command_line() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE a(id int); CREATE TABLE b(id int); CREATE SCHEMA s; CREATE TABLE s.c(id int);");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgcached.yaml");
    std::fs::write(
        &config,
        format!(
            "upstream:\n  url: \"{}\"\n  tls: disable\ncache:\n  invalidation: notify\n",
            pg.url("postgres", "app")
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let o = pgcached(&["install-triggers", "--config", config, "--schema", "public", "--table", "s.c"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("installed the invalidation trigger on 3 tables in database \"app\""), "{out}");
    assert!(out.contains("  public.a\n  public.b\n  s.c\n"), "{out}");
    assert_eq!(triggers(&pg, "app"), "a,b,s.c");

    // Idempotent.
    let o = pgcached(&["install-triggers", "--config", config, "--table", "a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(triggers(&pg, "app"), "a,b,s.c");

    // Another database, named on the command line (the --config flag may come first).
    pg.psql("CREATE TABLE p(id int)");
    let o = pgcached(&["--config", config, "install-triggers", "--database", "postgres", "--table", "p"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("database \"postgres\""), "{}", stdout(&o));
    assert_eq!(triggers(&pg, "postgres"), "p");

    let o = pgcached(&["uninstall-triggers", "--config", config, "--table", "b", "--schema", "s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("removed the invalidation trigger from 2 tables"), "{}", stdout(&o));
    assert_eq!(triggers(&pg, "app"), "a");
}

#[test]
fn install_triggers_fails_clearly() {
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE a(id int); CREATE VIEW v AS SELECT 1;");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgcached.yaml");
    std::fs::write(&config, format!("upstream:\n  url: \"{}\"\n  tls: disable\n", pg.url("postgres", "app"))).unwrap();
    let config = config.to_str().unwrap();

    let o = pgcached(&["install-triggers", "--config", config, "--table", "a", "--table", "nosuch"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("install-triggers failed"), "{}", stderr(&o));
    assert!(stderr(&o).contains("no such table: nosuch"), "{}", stderr(&o));
    assert_eq!(triggers(&pg, "app"), "", "all or nothing");

    let o = pgcached(&["install-triggers", "--config", config, "--table", "v"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a table"), "{}", stderr(&o));

    let o = pgcached(&["install-triggers", "--config", config, "--schema", "nosuch"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no tables in schema(s) nosuch"), "{}", stderr(&o));

    // Nothing named: a usage error.
    let o = pgcached(&["install-triggers", "--config", config]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--schema"), "{}", stderr(&o));

    // Serving flags make no sense with a subcommand.
    let o = pgcached(&["--listen", "127.0.0.1:1", "install-triggers", "--config", config, "--table", "a"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--listen cannot be used with a subcommand"), "{}", stderr(&o));

    // Unreachable upstream, and the password never printed.
    let o =
        pgcached(&["install-triggers", "--upstream", "postgres://postgres:hunter2@127.0.0.1:1/app", "--table", "a"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("install-triggers failed"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
}
