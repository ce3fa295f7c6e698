use super::*;
use crate::sql::analyze_uncached;

const RULE: LimitRule = LimitRule { inject: Some(100), max: Some(1000), catalogs: true, exempt_schemas: Vec::new() };

fn rw(q: &str) -> Option<String> {
    rewrite(q, &analyze_uncached(q), &RULE).and_then(|r| r.text)
}

#[test]
fn injects_before_trailing_semicolons_and_comments() {
    assert_eq!(rw("SELECT * FROM t").as_deref(), Some("SELECT * FROM t LIMIT 100"));
    assert_eq!(rw("SELECT * FROM t;").as_deref(), Some("SELECT * FROM t LIMIT 100;"));
    assert_eq!(rw("SELECT * FROM t -- all ; of it\n").as_deref(), Some("SELECT * FROM t LIMIT 100 -- all ; of it\n"));
    assert_eq!(rw("SELECT * FROM t /* c */ ; ").as_deref(), Some("SELECT * FROM t LIMIT 100 /* c */ ; "));
    assert_eq!(
        rw("  select *\n  from t\n  order by a desc ;;").as_deref(),
        Some("  select *\n  from t\n  order by a desc LIMIT 100 ;;")
    );
}

#[test]
fn goes_before_the_locking_clause() {
    assert_eq!(
        rw("SELECT * FROM t WHERE a = 1 FOR UPDATE SKIP LOCKED").as_deref(),
        Some("SELECT * FROM t WHERE a = 1 LIMIT 100 FOR UPDATE SKIP LOCKED")
    );
    assert_eq!(rw("SELECT * FROM t FOR NO KEY UPDATE").as_deref(), Some("SELECT * FROM t LIMIT 100 FOR NO KEY UPDATE"));
}

#[test]
fn applies_to_a_whole_union_and_parenthesized_queries() {
    assert_eq!(
        rw("SELECT a FROM t UNION SELECT a FROM u ORDER BY 1").as_deref(),
        Some("SELECT a FROM t UNION SELECT a FROM u ORDER BY 1 LIMIT 100")
    );
    assert_eq!(
        rw("(SELECT a FROM t LIMIT 5) UNION ALL (SELECT a FROM u)").as_deref(),
        Some("(SELECT a FROM t LIMIT 5) UNION ALL (SELECT a FROM u) LIMIT 100")
    );
    assert_eq!(rw("((SELECT * FROM t))").as_deref(), Some("((SELECT * FROM t)) LIMIT 100"));
    assert_eq!(rw("(SELECT * FROM t LIMIT 5000)").as_deref(), Some("(SELECT * FROM t LIMIT 1000)"));
}

#[test]
fn ctes_subqueries_and_window_functions_are_left_alone_inside() {
    assert_eq!(
        rw("WITH x AS (SELECT * FROM t LIMIT 3) SELECT * FROM x WHERE a IN (SELECT a FROM u)").as_deref(),
        Some("WITH x AS (SELECT * FROM t LIMIT 3) SELECT * FROM x WHERE a IN (SELECT a FROM u) LIMIT 100")
    );
    assert_eq!(rw("VALUES (1), (2)").as_deref(), Some("VALUES (1), (2) LIMIT 100"));
    assert_eq!(rw("TABLE t").as_deref(), Some("TABLE t LIMIT 100"));
}

#[test]
fn existing_limits_are_capped_in_place() {
    assert_eq!(rw("SELECT * FROM t LIMIT 5000 OFFSET 10"), Some("SELECT * FROM t LIMIT 1000 OFFSET 10".into()));
    assert_eq!(rw("SELECT * FROM t LIMIT ALL"), Some("SELECT * FROM t LIMIT 1000".into()));
    assert_eq!(
        rw("SELECT * FROM t FETCH FIRST 5000 ROWS ONLY"),
        Some("SELECT * FROM t FETCH FIRST 1000 ROWS ONLY".into())
    );
    assert_eq!(rw("SELECT * FROM t LIMIT 10 * 1000"), Some("SELECT * FROM t LIMIT LEAST((10 * 1000), 1000)".into()));
    assert_eq!(rw("SELECT * FROM t LIMIT 10"), None);
    assert_eq!(rw("SELECT * FROM t FETCH FIRST ROW ONLY"), None);
}

#[test]
fn limit_parameters_are_reported_for_bind() {
    let q = "SELECT * FROM t WHERE a = $1 LIMIT $2";
    let r = rewrite(q, &analyze_uncached(q), &RULE).expect("a change");
    assert_eq!(r.text, None);
    assert_eq!(r.changes, [LimitChange::CapParam { statement: 0, param: 2, max: 1000 }]);
}

#[test]
fn aggregates_writes_and_select_into_are_not_injected() {
    for q in [
        "SELECT count(*) FROM t",
        "SELECT a, count(*) FROM t GROUP BY a",
        "DELETE FROM t",
        "SELECT * INTO n FROM t",
        "EXPLAIN SELECT * FROM t",
        "SHOW search_path",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    ] {
        assert_eq!(rw(q), None, "{q}");
    }
}

#[test]
fn every_read_of_a_multi_statement_string_is_limited() {
    assert_eq!(
        rw("SELECT 1 FROM t; SELECT 2 FROM u").as_deref(),
        Some("SELECT 1 FROM t LIMIT 100; SELECT 2 FROM u LIMIT 100")
    );
}

#[test]
fn inject_alone_and_max_alone() {
    let q = "SELECT * FROM t LIMIT ALL";
    assert_eq!(
        rewrite(
            q,
            &analyze_uncached(q),
            &LimitRule { inject: Some(5), max: None, catalogs: true, exempt_schemas: Vec::new() }
        ),
        None
    );
    let q = "SELECT * FROM t";
    let r = rewrite(
        q,
        &analyze_uncached(q),
        &LimitRule { inject: None, max: Some(7), catalogs: true, exempt_schemas: Vec::new() },
    )
    .expect("change");
    assert_eq!(r.text.as_deref(), Some("SELECT * FROM t LIMIT 7"));
}

#[test]
fn notice_names_the_policy() {
    let n = notice_text("bi", &LimitChange::Injected { statement: 0, limit: 100 });
    assert_eq!(n, "pgcached: result limited to 100 rows by policy \"bi\" (LIMIT 100 added)");
}

#[test]
fn reads_of_system_catalogs_only_are_left_whole_unless_asked() {
    let rule = LimitRule { inject: Some(1000), max: Some(5000), catalogs: false, exempt_schemas: Vec::new() };
    for q in [
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'",
        "SELECT relname FROM pg_class WHERE relkind = 'r' LIMIT 100000",
    ] {
        assert_eq!(rewrite(q, &analyze_uncached(q), &rule), None, "{q}");
    }
    // A user table among them, or no table at all: limited as before.
    for q in ["SELECT * FROM pg_class c JOIN orders o ON o.id = c.oid", "SELECT generate_series(1, 100000000)"] {
        assert!(rewrite(q, &analyze_uncached(q), &rule).is_some(), "{q}");
    }
    let q = "SELECT relname FROM pg_catalog.pg_class";
    let limited = rewrite(q, &analyze_uncached(q), &LimitRule { catalogs: true, ..rule.clone() }).expect("asked for");
    assert_eq!(limited.text.as_deref(), Some("SELECT relname FROM pg_catalog.pg_class LIMIT 1000"));
}

#[test]
fn configured_metadata_schemas_are_left_whole_when_named() {
    let rule = LimitRule {
        inject: Some(10),
        max: Some(50),
        catalogs: false,
        exempt_schemas: vec!["meta".into(), "Docs".into()],
    };
    for q in [
        "SELECT * FROM meta.fields",
        "SELECT f.* FROM meta.fields f JOIN pg_catalog.pg_class c ON c.relname = f.t",
        "SELECT * FROM \"Docs\".pages",
    ] {
        assert_eq!(rewrite(q, &analyze_uncached(q), &rule), None, "{q}");
    }
    // Unqualified (the search path decides), another schema, or a user table beside it.
    for q in ["SELECT * FROM fields", "SELECT * FROM docs.pages", "SELECT * FROM meta.fields, public.orders"] {
        assert!(rewrite(q, &analyze_uncached(q), &rule).is_some(), "{q}");
    }
    // With `catalogs: true` the system catalogs are limited, the named schemas still not.
    let strict = LimitRule { catalogs: true, ..rule };
    let q = "SELECT * FROM meta.fields f JOIN pg_class c ON c.relname = f.t";
    assert!(rewrite(q, &analyze_uncached(q), &strict).is_some());
    assert_eq!(rewrite("SELECT * FROM meta.f", &analyze_uncached("SELECT * FROM meta.f"), &strict), None);
}

#[test]
fn copy_of_a_query_is_limited_inside_its_parentheses() {
    let rule = LimitRule { inject: Some(100), max: Some(500), catalogs: false, exempt_schemas: Vec::new() };
    let rw = |q: &str| rewrite(q, &analyze_uncached(q), &rule).and_then(|r| r.text);
    assert_eq!(
        rw("COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)").as_deref(),
        Some("COPY (SELECT * FROM t LIMIT 100) TO STDOUT WITH (FORMAT csv)")
    );
    assert_eq!(
        rw("copy (select a from t limit 10000) to stdout").as_deref(),
        Some("copy (select a from t limit 500) to stdout")
    );
    assert_eq!(
        rw("COPY ((SELECT * FROM t)) TO STDOUT").as_deref(),
        Some("COPY ((SELECT * FROM t) LIMIT 100) TO STDOUT")
    );
    // A table's COPY, COPY FROM, and a query that aggregates are left alone.
    for q in ["COPY t TO STDOUT", "COPY t FROM STDIN", "COPY (SELECT count(*) FROM t) TO STDOUT"] {
        assert_eq!(rw(q), None, "{q}");
    }
}
