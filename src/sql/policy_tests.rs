use super::*;
use crate::sql::analyze_uncached;

fn policy(yaml: &str) -> Policy {
    let c: PolicyConfig = serde_yaml::from_str(yaml).expect("valid policy yaml");
    Policy::compile(0, &c, true, true).expect("compiles")
}

fn check(p: &Policy, q: &str) -> Result<(), Refusal> {
    p.check(&analyze_uncached(q))
}

fn refused(p: &Policy, q: &str) -> Refusal {
    check(p, q).expect_err(q)
}

const BI: &str = "name: bi\nread_only: true\ndeny_columns: [users.ssn]\ndeny_tables: [secrets]\nrequire_where: true";

#[test]
fn denied_column_message_names_column_and_policy() {
    let r = refused(&policy(BI), "SELECT ssn FROM users");
    assert_eq!(r.sqlstate, "42501");
    assert_eq!(r.message, "pgcached: column \"users.ssn\" is denied by policy \"bi\"");
}

#[test]
fn denied_columns_through_stars_whole_rows_and_clauses() {
    let p = policy(BI);
    for q in [
        "SELECT * FROM users",
        "SELECT u.* FROM users u",
        "SELECT row_to_json(u) FROM users u",
        "SELECT to_jsonb(users) FROM users",
        "SELECT u FROM public.users u",
        "SELECT id FROM users WHERE ssn LIKE '1%'",
        "SELECT id FROM users u ORDER BY u.ssn",
        "SELECT x.id FROM (SELECT * FROM users) x",
        "WITH c AS (SELECT ssn AS s FROM users) SELECT s FROM c",
        "SELECT id FROM orders o JOIN users u ON u.id = o.uid WHERE u.ssn IS NOT NULL",
        "SELECT count(DISTINCT ssn) FROM users",
        "SELECT json_agg(u.*) FROM users u",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    check(&p, "SELECT id, name FROM users u WHERE u.id = 1").expect("allowed columns");
    check(&p, "SELECT count(*) FROM users").expect("count(*) exposes no column");
    check(&p, "SELECT * FROM orders").expect("other tables");
}

#[test]
fn returning_and_write_targets_use_columns() {
    let p = policy("name: w\ndeny_columns: [users.ssn]");
    assert!(check(&p, "UPDATE users SET name = 'x' WHERE id = 1 RETURNING *").is_err());
    assert!(check(&p, "UPDATE users SET ssn = 'x' WHERE id = 1").is_err());
    assert!(check(&p, "INSERT INTO users (id, ssn) VALUES (1, 'x')").is_err());
    assert!(check(&p, "UPDATE users SET name = 'x' WHERE id = 1 RETURNING id").is_ok());
}

/// `read_only` sessions are read-only on the server too; nothing may turn that off.
#[test]
fn read_only_keeps_the_server_read_only() {
    let p = policy(BI);
    for q in [
        "RESET ALL",
        "RESET default_transaction_read_only",
        "RESET transaction_read_only",
        "DISCARD ALL",
        "BEGIN READ WRITE",
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
        "SET TRANSACTION READ WRITE",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SET default_transaction_read_only = off",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    // Settings that change no data and no read-only-ness stay the client's (drivers and ORMs
    // set them), by SET or by set_config().
    for q in [
        "BEGIN",
        "BEGIN READ ONLY",
        "RESET search_path",
        "DISCARD PLANS",
        "SET TRANSACTION READ ONLY",
        "SELECT set_config('search_path', 'public', false)",
        "SELECT set_config('app.tenant_id', '5', true)",
    ] {
        assert!(check(&p, q).is_ok(), "{q}");
    }
    assert!(check(&policy("name: n\nrequire_where: true"), "RESET ALL").is_ok(), "only under read_only");
}

#[test]
fn read_only_refuses_hidden_writes() {
    let p = policy(BI);
    for q in [
        "DELETE FROM t WHERE a = 1",
        "EXPLAIN ANALYZE DELETE FROM t WHERE a = 1",
        "WITH x AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM x",
        "SELECT * INTO copy_t FROM t",
        "SELECT nextval('s')",
        "SELECT query_to_xml('delete from t', true, true, '')",
        "COPY t FROM STDIN",
        "PREPARE p AS DELETE FROM t WHERE a = $1",
        "CREATE TABLE x (a int)",
        "CALL my_proc()",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    check(&p, "SELECT * FROM t").expect("a read");
    check(&p, "BEGIN; SELECT 1; COMMIT").expect("transaction control");
    check(&p, "EXPLAIN DELETE FROM t").expect("plan only");
}

#[test]
fn tables_denied_and_allowed() {
    let p = policy(BI);
    let r = refused(&p, "SELECT * FROM public.secrets");
    assert_eq!(r.message, "pgcached: table \"public.secrets\" is denied by policy \"bi\"");
    assert!(check(&p, "SELECT * FROM ONLY secrets").is_err());
    assert!(check(&p, "TABLE secrets").is_err());
    assert!(check(&p, "SELECT * FROM secrets*").is_err());
    assert!(check(&p, "COPY secrets TO STDOUT").is_err());
    assert!(check(&p, "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets").is_err());
    let a = policy("name: a\nallow_tables: [orders, \"pg_catalog.*\"]");
    assert!(check(&a, "SELECT * FROM orders JOIN pg_catalog.pg_class ON true").is_ok());
    assert!(check(&a, "SELECT * FROM users").is_err());
    assert_eq!(refused(&a, "SELECT query_to_xml('select * from users', true, true, '')").sqlstate, "0A000");
}

#[test]
fn default_denied_functions_apply_to_any_guarded_policy() {
    let p = policy("name: g\nmax_statements: 5");
    for q in [
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT * FROM dblink('h', 'x') AS t(a int)",
        "SELECT pg_terminate_backend(1)",
        "SELECT pg_catalog.pg_ls_dir('.')",
    ] {
        let r = refused(&p, q);
        assert_eq!(r.sqlstate, "42501", "{q}");
        assert!(r.message.contains("function"), "{}", r.message);
    }
    let own = policy("name: g\ndeny_functions: [\"app.*\"]");
    assert!(check(&own, "SELECT app.f()").is_err());
}

#[test]
fn lexing_settings_cannot_change() {
    let p = policy("name: g\nmax_statements: 5");
    for q in [
        "SET standard_conforming_strings = off",
        "SET standard_conforming_strings TO 'off'",
        "SET client_encoding TO 'SJIS'",
        "SET NAMES 'BIG5'",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT set_config('client_encoding', 'GBK', true)",
        "SELECT set_config(current_user, 'x', false)",
        "SET ROLE admin",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    check(&p, "SET search_path TO a, \"B\"").expect("ordinary settings");
    check(&p, "SET client_encoding = 'UTF8'").expect("utf-8");
    check(&p, "RESET ALL").expect("reset");
    assert!(p.check_startup_params(&[("options", "-c standard_conforming_strings=off")]).is_err());
    assert!(p.check_startup_params(&[("client_encoding", "UTF8")]).is_ok());
}

#[test]
fn the_backslash_attack_is_one_statement_here_and_refused_before_it_can_matter() {
    // With scs off Postgres would run `DROP TABLE t`; the guard keeps scs on, so Postgres agrees.
    let p = policy("name: g\nmax_statements: 1");
    let q = "SELECT 'x\\'' ; DROP TABLE t; -- '";
    assert_eq!(analyze_uncached(q).statements.len(), 1);
    assert!(check(&p, "SET standard_conforming_strings = off").is_err());
}

#[test]
fn require_where_max_statements_and_parse_errors() {
    let p = policy("name: w\nrequire_where: true\nmax_statements: 2");
    assert!(refused(&p, "DELETE FROM t").message.contains("without WHERE"));
    assert!(check(&p, "UPDATE t SET a = 1 WHERE id = 2").is_ok());
    assert_eq!(refused(&p, "SELECT 1; SELECT 2; SELECT 3").sqlstate, "54000");
    assert_eq!(refused(&p, "SELEC 1").sqlstate, "42601");
    let f = policy("name: f\nrequire_where: true\non_parse_error: forward");
    assert!(check(&f, "SELEC 1").is_ok());
}

#[test]
fn deny_statements_by_kind_or_keyword() {
    let p = policy("name: d\ndeny_statements: [ddl, truncate, copy]");
    assert!(check(&p, "DROP TABLE t").is_err());
    assert!(check(&p, "TRUNCATE t").is_err());
    assert!(check(&p, "COPY t TO STDOUT").is_err());
    assert!(check(&p, "EXPLAIN CREATE TABLE x AS SELECT 1").is_err());
    assert!(check(&p, "INSERT INTO t VALUES (1)").is_ok());
}

#[test]
fn empty_policies_and_kill_switches_check_nothing() {
    let list: Vec<PolicyConfig> = serde_yaml::from_str(
        "- {name: app, user: app}\n- {name: bi, user: bi, read_only: true, limit: {inject: 10}}\n- {name: default, deny_tables: [secrets]}",
    )
    .expect("yaml");
    let on = Policies::from_config(&SafetyConfig { enabled: true }, &LimitConfig { enabled: true }, &list).expect("ok");
    assert!(on.for_session("app", "db").is_none(), "an empty policy is no policy");
    assert_eq!(on.for_session("bi", "db").expect("bi").name(), "bi");
    assert_eq!(on.for_session("other", "db").expect("default").name(), "default");
    let off =
        Policies::from_config(&SafetyConfig { enabled: false }, &LimitConfig { enabled: true }, &list).expect("ok");
    let bi = off.for_session("bi", "db").expect("limit still applies");
    assert!(check(&bi, "DELETE FROM t").is_ok());
    assert!(bi.limit_rule().is_some());
    assert!(off.for_session("other", "db").is_none());
    let none =
        Policies::from_config(&SafetyConfig { enabled: false }, &LimitConfig { enabled: false }, &list).expect("ok");
    assert!(none.for_session("bi", "db").is_none());
}

#[test]
fn config_errors_name_the_key() {
    let bad: Vec<PolicyConfig> = serde_yaml::from_str("- {name: x, deny_columns: [ssn]}").expect("yaml");
    let e = Policies::from_config(&SafetyConfig::default(), &LimitConfig::default(), &bad).expect_err("bad column");
    assert_eq!(e.to_string(), "policies[0].deny_columns: \"ssn\" is not table.column");
}

#[test]
fn column_renaming_aliases_using_joins_and_copy_expose_columns() {
    let p = policy(BI);
    for q in [
        "SELECT c FROM users AS u(a, b, c)",
        "SELECT o.id FROM orders o JOIN users u USING (ssn)",
        "SELECT o.id FROM orders o NATURAL JOIN users u",
        "COPY users TO STDOUT",
        "COPY users (id, ssn) TO STDOUT",
        "TABLE users",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    check(&p, "COPY users (id, name) TO STDOUT").expect("allowed columns");
}

#[test]
fn do_blocks_are_refused_under_any_guarded_policy() {
    let p = policy("name: g\nmax_statements: 5");
    assert_eq!(refused(&p, "DO $$ BEGIN PERFORM pg_read_file('x'); END $$").sqlstate, "0A000");
}

#[test]
fn read_only_refuses_row_locks_but_runs_prepared_statements() {
    let p = policy(BI);
    assert!(check(&p, "SELECT * FROM t FOR UPDATE").is_err());
    assert!(check(&p, "PREPARE q AS SELECT * FROM t").is_ok());
    assert!(check(&p, "EXECUTE q").is_ok());
}

#[test]
fn set_returning_functions_in_from_are_functions() {
    let p = policy("name: g\nmax_statements: 5");
    assert!(check(&p, "SELECT * FROM pg_ls_dir('.')").is_err());
    assert!(check(&p, "SELECT * FROM generate_series(1, 3)").is_ok());
}

#[test]
fn unqualified_catalog_tables_match_pg_catalog_patterns() {
    let p = policy("name: a\nallow_tables: [\"pg_catalog.*\", \"public.*\"]");
    assert!(check(&p, "SELECT * FROM pg_class JOIN orders ON true").is_ok());
    assert!(check(&p, "SELECT * FROM other.orders").is_err());
}

struct FixedCost(f64);

impl crate::sql::CostEstimator for FixedCost {
    async fn estimate(&self, _sql: &str, _fingerprint_hash: u64) -> Result<f64, crate::sql::CostError> {
        Ok(self.0)
    }
}

struct Broken;

impl crate::sql::CostEstimator for Broken {
    async fn estimate(&self, _sql: &str, _fingerprint_hash: u64) -> Result<f64, crate::sql::CostError> {
        Err(crate::sql::CostError("control plane down".into()))
    }
}

#[tokio::test]
async fn max_cost_is_checked_through_the_estimator() {
    let p = policy("name: c\nmax_cost: 1000");
    let q = "SELECT * FROM t; SELECT * FROM u";
    let a = analyze_uncached(q);
    assert!(crate::sql::check_cost(&p, &FixedCost(10.0), q, &a).await.is_ok());
    let r = crate::sql::check_cost(&p, &FixedCost(5000.0), q, &a).await.expect_err("too costly");
    assert_eq!(r.sqlstate, "54000");
    assert_eq!(r.message, "pgcached: estimated cost 5000 exceeds max_cost 1000 of policy \"c\"");
    assert!(crate::sql::check_cost(&p, &Broken, q, &a).await.is_err(), "fails closed");
    let none = policy("name: n\nread_only: true");
    assert!(crate::sql::check_cost(&none, &Broken, q, &a).await.is_ok(), "no max_cost, no estimate");
}

#[test]
fn server_files_programs_and_libraries_are_denied() {
    let p = policy("name: g\nmax_statements: 5");
    for q in [
        "COPY t TO '/tmp/x'",
        "COPY t FROM PROGRAM 'cat /etc/passwd'",
        "COPY (SELECT 1) TO PROGRAM 'sh'",
        "LOAD 'plpgsql'",
    ] {
        assert_eq!(refused(&p, q).sqlstate, "42501", "{q}");
    }
    check(&p, "COPY t TO STDOUT").expect("to the client");
}

#[test]
fn tuple_update_targets_are_column_uses() {
    let p = policy("name: w\ndeny_columns: [users.ssn]");
    assert!(check(&p, "UPDATE users SET (name, ssn) = ('a', 'b') WHERE id = 1").is_err());
}
