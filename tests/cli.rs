//! The command-line contract, through the built binary.

mod common;

use common::pgcached;

use std::path::Path;
use std::process::{Command, Output};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn version() {
    let o = pgcached(&["--version"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(env!("CARGO_PKG_VERSION")), "{}", text(&o));
}

#[test]
fn check_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.yaml", "listen: \"127.0.0.1:7432\"\npool:\n  max_size: 5\n");
    let o = pgcached(&["--check", "--config", &f]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("configuration OK"), "{}", text(&o));
}

#[test]
fn check_example_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let o = pgcached(&["--check", "--config", example]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_without_file_uses_defaults() {
    let o = pgcached(&["--check", "--upstream", "postgres://127.0.0.1:5432"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.yaml", "upstream:\n  url: postgres://h\n  foo: 1\n");
    let o = pgcached(&["--check", "--config", &f]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("upstream.foo"), "{t}");
    assert!(t.contains("unknown field"), "{t}");
}

#[test]
fn check_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.yaml", "pool:\n  max_size: lots\n");
    let o = pgcached(&["--check", "--config", &f]);
    assert!(!o.status.success());
    assert!(text(&o).contains("pool.max_size"), "{}", text(&o));

    let f = write(dir.path(), "bad2.yaml", "pool:\n  max_size: 0\n");
    let o = pgcached(&["--check", "--config", &f]);
    assert!(!o.status.success());
    assert!(text(&o).contains("pool.max_size"), "{}", text(&o));
}

#[test]
fn check_bad_flag_and_env() {
    let o = pgcached(&["--check", "--listen", "nonsense"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("listen"), "{}", text(&o));

    let o = Command::new(env!("CARGO_BIN_EXE_pgcached"))
        .args(["--check"])
        .env("PGCACHED_UPSTREAM", "postgres://u:hunter2@h:notaport/db")
        .env_remove("PGCACHED_CONFIG")
        .env_remove("PGCACHED_LISTEN")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("upstream.url"), "{t}");
    assert!(!t.contains("hunter2"), "password leaked: {t}");

    // the flag wins over the bad environment value
    let o = Command::new(env!("CARGO_BIN_EXE_pgcached"))
        .args(["--check", "--upstream", "postgres://h:5432/db"])
        .env("PGCACHED_UPSTREAM", "postgres://u:hunter2@h:notaport/db")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_missing_file() {
    let o = pgcached(&["--check", "--config", "/nonexistent/pgcached.yaml"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/pgcached.yaml"), "{}", text(&o));
}

#[test]
fn config_from_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.yaml", "bogus: 1\n");
    let o = Command::new(env!("CARGO_BIN_EXE_pgcached")).args(["--check"]).env("PGCACHED_CONFIG", &f).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("bogus"), "{}", text(&o));
}

/// `--check` refuses what startup refuses, and a few mistakes that used to pass both and then
/// did nothing (a level that logs nothing, a statement kind that never matches).
#[test]
fn check_refuses_what_startup_would_and_silent_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, names) in [
        ("policies: [{user: bi, read_only: true}]", "policies[0].name"),
        ("policies: [{name: a, deny_columns: [ssn]}]", "policies[0].deny_columns"),
        ("policies: [{name: a, limit: {inject: 0}}]", "policies[0].limit"),
        ("policies: [{name: a, limit: {inject: 100, max: 10}}]", "policies[0].limit"),
        ("policies: [{name: a, deny_statements: [dll]}]", "policies[0].deny_statements"),
        ("policies: [{name: a}, {name: a}]", "policies[1].name"),
        ("log: {level: verbose}", "log.level"),
        ("cache: {rules: [{ttl: 5s}]}", "cache.rules[0]"),
    ] {
        let f = write(dir.path(), "c.yaml", &format!("upstream: {{url: \"postgres://127.0.0.1:5432\"}}\n{extra}\n"));
        let o = pgcached(&["--check", "--config", &f]);
        let t = text(&o);
        assert!(!o.status.success() && t.contains(names), "{extra}: {t}");
    }
    let f = write(
        dir.path(),
        "ok.yaml",
        "upstream: {url: \"postgres://127.0.0.1:5432\"}\nlog: {level: \"info,pgcached=debug\"}\n\
         policies: [{name: a, deny_statements: [ddl, truncate], limit: {inject: 10, max: 10}}]\n",
    );
    let o = pgcached(&["--check", "--config", &f]);
    assert!(o.status.success(), "{}", text(&o));
}
