use super::*;

#[test]
fn dbg_print() {
    for q in [
        "SELECT * FROM ONLY t",
        "SELECT * FROM t*",
        "TABLE t",
        "COPY t TO STDOUT",
        "COPY t FROM STDIN",
        "WITH users AS (SELECT * FROM users) SELECT * FROM users",
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "EXPLAIN ANALYZE DELETE FROM t",
        "SELECT * INTO newt FROM t",
        "SELECT nextval('s'), current_user, CURRENT_TIMESTAMP, now()",
        "SELECT query_to_xml('delete from t', true, true, '')",
        "select set_config('search_path', 'a', false)",
        "SELECT count(*) FROM t",
        "SELECT u.* , row_to_json(u) FROM users u WHERE ssn = 1 FOR UPDATE",
    ] {
        let a = analyze_uncached(q);
        let s = &a.statements[0];
        eprintln!("{q}\n  kind={:?} err={:?} r={:?} w={:?} f={:?} lim={:?} agg={} dyn={} mw={} cols={:?} set={:?}", s.kind, s.parse_error, s.tables_read, s.tables_written, s.functions, s.limit, s.aggregates, s.dynamic_sql, s.may_write(), s.columns, s.settings);
    }
}
