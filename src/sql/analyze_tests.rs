use super::*;
use crate::sql::{StatementKind, TxKind};

fn one(q: &str) -> StatementAnalysis {
    let mut a = analyze_uncached(q);
    assert_eq!(a.statements.len(), 1, "{q}");
    a.statements.remove(0)
}

fn names(v: &[TableRef]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

#[test]
fn from_only_reports_the_real_table() {
    let s = one("SELECT * FROM ONLY parent p WHERE p.a = 1");
    assert_eq!(names(&s.tables_read), ["parent"]);
    assert_eq!(names(&one("DELETE FROM ONLY s.t WHERE a = 1").tables_written), ["s.t"]);
}

#[test]
fn inheritance_star_and_table_command_parse() {
    assert_eq!(names(&one("SELECT * FROM t* WHERE a > 1").tables_read), ["t"]);
    let s = one("TABLE public.t");
    assert_eq!((s.kind, names(&s.tables_read)), (StatementKind::Read, vec!["public.t".to_string()]));
}

#[test]
fn copy_reports_its_relation_both_ways() {
    let to = one("COPY t TO STDOUT");
    assert_eq!((to.kind, names(&to.tables_read), to.may_write()), (StatementKind::Utility, vec!["t".into()], false));
    let from = one("COPY s.t (a, b) FROM STDIN");
    assert_eq!(names(&from.tables_written), ["s.t"]);
    assert!(from.may_write());
}

#[test]
fn do_blocks_are_dynamic_writes() {
    let s = one("DO $$ BEGIN DELETE FROM t; END $$");
    assert!(s.dynamic_sql && s.may_write());
    assert_eq!(s.kind, StatementKind::Utility);
}

#[test]
fn cte_names_are_not_tables_but_shadowed_tables_are() {
    let s = one("WITH x AS (SELECT * FROM a), y AS (SELECT * FROM x) SELECT * FROM y JOIN b ON true");
    assert_eq!(names(&s.tables_read), ["a", "b"]);
    // A non-recursive CTE's body sees the real table of the same name.
    assert_eq!(names(&one("WITH users AS (SELECT * FROM users) SELECT * FROM users").tables_read), ["users"]);
    let r = one("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r");
    assert!(r.tables_read.is_empty());
}

#[test]
fn identifiers_fold_like_postgres() {
    let s = one(r#"SELECT * FROM Public."MixedCase" JOIN USERS ON true"#);
    assert_eq!(names(&s.tables_read), ["public.MixedCase", "users"]);
}

#[test]
fn explain_analyze_of_a_write_is_a_write() {
    let s = one("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1");
    assert_eq!(s.kind, StatementKind::Write);
    assert_eq!(names(&s.tables_written), ["t"]);
    let s = one("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1");
    assert!(s.may_write());
    let plain = one("EXPLAIN DELETE FROM t");
    assert!(!plain.may_write());
    assert_eq!(plain.inner_kind, Some(StatementKind::Write));
    assert!(!one("EXPLAIN (ANALYZE false) DELETE FROM t").may_write());
}

#[test]
fn data_modifying_cte_is_a_write() {
    let s = one("WITH x AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM x");
    assert_eq!(s.kind, StatementKind::Write);
    assert!(s.data_modifying_cte);
    assert_eq!(names(&s.tables_written), ["t"]);
}

#[test]
fn select_into_writes_the_new_table() {
    let s = one("SELECT a, b INTO TEMP newt FROM t");
    assert!(s.select_into && s.may_write());
    assert_eq!(names(&s.tables_written), ["newt"]);
}

#[test]
fn nextval_is_volatile_and_may_write() {
    let s = one("SELECT nextval('seq')");
    assert_eq!(s.kind, StatementKind::Read);
    assert!(s.may_write() && !s.is_read_only());
    assert_eq!(s.functions[0].volatility, Volatility::Volatile);
}

#[test]
fn functions_that_run_sql_text_may_write() {
    for q in [
        "SELECT query_to_xml('delete from t returning 1', true, true, '')",
        "SELECT * FROM dblink('x', 'delete from t') AS r(a int)",
    ] {
        let s = one(q);
        assert!(s.dynamic_sql && s.may_write(), "{q}");
    }
}

#[test]
fn sql_value_functions_are_stable() {
    let s = one("SELECT current_user, CURRENT_DATE, localtime, current_setting('x')");
    assert!(s.functions.iter().all(|f| f.volatility == Volatility::Stable), "{:?}", s.functions);
    assert_eq!(s.functions.len(), 4);
}

#[test]
fn unknown_functions_are_reported_for_lookup() {
    let s = one("SELECT app.my_fn(a) FROM t");
    assert_eq!(s.unknown_functions().collect::<Vec<_>>(), ["app.my_fn"]);
}

#[test]
fn transaction_control_kinds() {
    for (q, k) in [
        ("BEGIN", TxKind::Begin),
        ("START TRANSACTION READ ONLY", TxKind::Begin),
        ("COMMIT", TxKind::Commit),
        ("END", TxKind::Commit),
        ("ROLLBACK", TxKind::Rollback),
        ("ROLLBACK TO SAVEPOINT a", TxKind::RollbackTo),
        ("SAVEPOINT a", TxKind::Savepoint),
        ("RELEASE a", TxKind::Release),
        ("PREPARE TRANSACTION 'x'", TxKind::Prepare),
        ("COMMIT PREPARED 'x'", TxKind::CommitPrepared),
    ] {
        assert_eq!(one(q).kind, StatementKind::Transaction(k), "{q}");
    }
}

#[test]
fn multi_statement_strings_split_like_the_server() {
    let a = analyze_uncached("SELECT 1; UPDATE t SET a = 'x;y';; -- done");
    assert_eq!(a.statements.len(), 2);
    assert!(a.may_write() && !a.is_read_only());
    assert_eq!(names(&a.tables_written()), ["t"]);
    assert_eq!(&*a.fingerprint, "select ?; update t set a = ?");
}

#[test]
fn set_config_calls_are_settings() {
    let s = one("SELECT set_config('standard_conforming_strings', 'off', false)");
    assert_eq!(s.settings[0].name.as_deref(), Some("standard_conforming_strings"));
    assert_eq!(s.settings[0].value.as_deref(), Some("off"));
}

#[test]
fn unparseable_statements_keep_their_lexical_kind() {
    let s = one("SELEC * FRM t");
    assert!(s.parse_error.is_some());
    assert_eq!(s.kind, StatementKind::Unknown);
    assert!(s.may_write());
    let s = one("UPDATE t SET WHERE");
    assert_eq!(s.kind, StatementKind::Write);
}

#[test]
fn limit_facts_of_reads() {
    assert!(one("SELECT * FROM t LIMIT 5").limit.has_limit());
    assert!(one("SELECT * FROM t OFFSET 1 ROWS FETCH FIRST 3 ROWS ONLY").limit.has_limit());
    assert!(!one("SELECT * FROM (SELECT * FROM t LIMIT 5) s").limit.has_limit());
    assert!(one("SELECT count(*) FROM t").aggregates);
    assert!(one("SELECT a FROM t GROUP BY a").aggregates);
    assert!(!one("SELECT a, (SELECT count(*) FROM u) FROM t").aggregates);
    assert!(one("SELECT * FROM t FOR SHARE").locking);
}

#[test]
fn weaker_row_locks_parse() {
    for q in ["SELECT * FROM t FOR NO KEY UPDATE", "SELECT * FROM t FOR KEY SHARE OF t NOWAIT"] {
        let s = one(q);
        assert!(s.parse_error.is_none() && s.locking, "{q}: {:?}", s.parse_error);
    }
}

#[test]
fn a_do_block_that_may_leave_session_state_is_reported() {
    for sql in [
        "DO $$ BEGIN CREATE TEMP TABLE t (x int); END $$",
        "DO $body$ BEGIN PERFORM set_config('search_path', 'x', false); END $body$",
        "DO 'BEGIN SET work_mem = ''1GB''; END'",
        "DO LANGUAGE plpython3u $$ pass $$",
        "DO E'BEGIN NULL; END'",
    ] {
        let s = one(sql);
        assert!(s.dynamic_sql && s.opaque_session_state, "{sql}");
    }
    for sql in [
        "DO $$ BEGIN UPDATE t SET x = 1; END $$",
        "DO 'BEGIN NULL; END' LANGUAGE plpgsql",
        "DO $x$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'm') THEN CREATE TYPE m AS ENUM ('a'); END IF; END $x$",
    ] {
        let s = one(sql);
        assert!(s.dynamic_sql && !s.opaque_session_state, "{sql}");
    }
}

#[test]
fn temp_tables_and_catalog_reads_are_reported() {
    assert_eq!(names(&one("CREATE TEMP TABLE tmp (a int)").temp_tables_created), ["tmp"]);
    assert_eq!(names(&one("SELECT * INTO TEMP x FROM t").temp_tables_created), ["x"]);
    assert!(one("CREATE TABLE p (a int)").temp_tables_created.is_empty());
    // Any object made in the session's temporary schema, and the other TEMP forms.
    for sql in [
        "CREATE TABLE pg_temp.foo (a int)",
        "CREATE TABLE \"pg_temp\".foo (a int)",
        "CREATE TABLE pg_temp_3.foo (a int)",
        "CREATE TEMP VIEW foo AS SELECT 1",
        "CREATE VIEW pg_temp.foo AS SELECT 1",
        "CREATE TEMPORARY SEQUENCE foo",
        "CREATE SEQUENCE pg_temp.foo",
        "CREATE DOMAIN pg_temp.foo AS text",
        "CREATE TYPE pg_temp.foo AS (a int)",
        "CREATE FUNCTION pg_temp.foo() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ] {
        let created = one(sql).temp_tables_created;
        assert_eq!(created.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["foo"], "{sql}");
    }
    for sql in ["CREATE VIEW v AS SELECT 1", "CREATE SEQUENCE s", "CREATE DOMAIN public.d AS text"] {
        assert!(one(sql).temp_tables_created.is_empty(), "{sql}");
    }
    assert!(one("SELECT v FROM pg_temp.c").names_temp_schema());
    assert!(one("SELECT pg_temp.f(1)").names_temp_schema());
    assert!(!one("SELECT v FROM public.c").names_temp_schema());
    assert!(one("SELECT * FROM pg_class").reads_system_catalog());
    assert!(one("SELECT * FROM information_schema.tables").reads_system_catalog());
    assert!(!one("SELECT * FROM t").reads_system_catalog());
}

#[test]
fn quoting_and_comment_edge_cases_do_not_hide_tables() {
    for q in [
        "SELECT $$ ' $$ FROM secrets",
        "SELECT $a$ x $b$ ' $a$ FROM secrets",
        "SELECT /* /* */ FROM t */ 1 FROM secrets",
        "SELECT e'\\'' FROM secrets",
        "SELECT E'\\\\' FROM secrets",
        "SELECT U&'\\0041' FROM secrets",
        "SELECT 1 -- c\nFROM secrets",
        "SELECT \"a\"\"b\" FROM secrets",
        "SELECT 1/*x*/FROM secrets",
        "SELECT B'101', X'ff', N'x' FROM secrets",
        "SELECT x$$y FROM secrets",
        "SELECT 'a'\n'b' FROM secrets",
        "SELECT 1 FROM secrets WHERE a=-1",
        "SELECT 'x' FROM secrets -- ' FROM t",
        "SELECT 1 AS \"FROM t\" FROM secrets",
        "SELECT $_$ a $_$ FROM secrets",
    ] {
        let s = one(q);
        assert!(s.parse_error.is_none(), "{q}: {:?}", s.parse_error);
        assert_eq!(names(&s.tables_read), ["secrets"], "{q}");
    }
}

#[test]
fn pathological_nesting_is_refused_not_a_stack_overflow() {
    // sqlparser builds `1+1+…` as a left-deep tree; walking 100k levels would abort the process.
    for q in [
        format!("SELECT {}1 FROM t", "1+".repeat(100_000)),
        format!("SELECT 1 FROM t WHERE {}", vec!["a = 1"; 100_000].join(" AND ")),
        format!("SELECT 1 {}", "UNION SELECT 1 ".repeat(50_000)),
        format!("SELECT {}1{} FROM t", "(".repeat(10_000), ")".repeat(10_000)),
        "EXPLAIN ".repeat(20_000) + "SELECT 1",
        "PREPARE a AS ".repeat(20_000) + "SELECT 1",
    ] {
        let s = one(&q);
        assert!(s.parse_error.is_some(), "{:.40}", q);
    }
    // A big but flat statement is still analyzed.
    let bulk = format!("INSERT INTO t VALUES {}", vec!["(1, 'a', 2.5)"; 20_000].join(", "));
    assert_eq!(names(&one(&bulk).tables_written), ["t"]);
}

#[test]
fn long_flat_chains_from_tools_are_analysed_on_a_stack_of_their_own() {
    // pgjdbc getUDTs, BI tools' IN-lists as ORs, generated CASE maps, UNION ALL of many arms:
    // trees thousands of levels deep, analysed on the test thread's 2 MiB stack.
    let list = |n: usize, f: &dyn Fn(usize) -> String, sep: &str| (0..n).map(f).collect::<Vec<_>>().join(sep);
    for q in [
        format!("SELECT * FROM t WHERE {}", list(5000, &|i| format!("id = {i}"), " OR ")),
        format!("SELECT 1 FROM t WHERE {}", list(5000, &|i| format!("a = {i}"), " AND ")),
        format!("SELECT CASE {} END FROM t", list(5000, &|i| format!("WHEN id = {i} THEN {i}"), " ")),
        list(5000, &|i| format!("SELECT {i} FROM t"), " UNION ALL "),
    ] {
        let s = one(&q);
        assert!(s.parse_error.is_none(), "{:.60}: {:?}", q, s.parse_error);
        assert_eq!(names(&s.tables_read), ["t"], "{q:.60}");
    }
}

#[test]
fn rows_from_is_analysed_with_its_functions() {
    let s = one("SELECT * FROM ROWS FROM (generate_series(1, 3), app.f(2)) WITH ORDINALITY AS t(a, b, n)");
    assert!(s.parse_error.is_none(), "{:?}", s.parse_error);
    let called: Vec<&str> = s.functions.iter().map(|f| f.name.as_str()).collect();
    assert!(called.contains(&"generate_series") && called.contains(&"app.f"), "{called:?}");
}

#[test]
fn many_targets_are_all_reported() {
    // (Quadratic bookkeeping here once made this take minutes.)
    let q = format!("TRUNCATE {}", (0..50_000).map(|i| format!("t{i}")).collect::<Vec<_>>().join(", "));
    let s = one(&q);
    assert_eq!(s.tables_written.len(), 50_000);
    assert!(s.tables_read.is_empty());
}
