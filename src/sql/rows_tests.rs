use super::*;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

fn parse(sql: &str) -> Statement {
    Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses").remove(0)
}

/// `column=v1|v2 …` of a statement's pins, or "-" when none.
fn shown(pins: Option<RowPins>) -> String {
    let Some(p) = pins else { return "-".into() };
    let cols: Vec<String> = p
        .columns
        .iter()
        .map(|c| {
            let vals: Vec<String> = c
                .values
                .iter()
                .map(|v| match v {
                    Operand::Number(n) => n.to_string(),
                    Operand::Str(s) => format!("'{s}'"),
                    Operand::Param(n) => format!("${n}"),
                })
                .collect();
            format!("{}={}", c.column, vals.join("|"))
        })
        .collect();
    format!("{} {}", p.table, cols.join(" "))
}

fn read(sql: &str) -> String {
    shown(read_pins(&parse(sql)))
}

fn write(sql: &str) -> String {
    shown(write_pins(&parse(sql)))
}

#[test]
fn reads_pinned_by_equality_on_one_table() {
    assert_eq!(read("SELECT abalance FROM pgbench_accounts WHERE aid = 5"), "pgbench_accounts aid=5");
    assert_eq!(read("SELECT * FROM t WHERE (a = $1) AND 'x' = b AND c > 3"), "t a=$1 b='x'");
    assert_eq!(read("SELECT * FROM s.t AS u WHERE u.id IN (1, -2, $3)"), "s.t id=1|-2|$3");
    assert_eq!(read("SELECT count(*) FROM t WHERE t.\"Id\" = 1 GROUP BY x ORDER BY 1 LIMIT 3"), "t Id=1");
    assert_eq!(read("SELECT * FROM s.t WHERE s.t.id = 1"), "s.t id=1");
}

#[test]
fn reads_that_may_see_other_rows_are_not_pinned() {
    for sql in [
        "SELECT * FROM t WHERE id = 1 OR id = 2",
        "SELECT * FROM t",
        "SELECT * FROM t JOIN u ON u.id = t.id WHERE id = 1",
        "SELECT * FROM t a JOIN t b ON a.p = b.id WHERE a.id = 1",
        "SELECT * FROM t JOIN (SELECT 1 AS id) s ON s.id = t.id WHERE t.id = 1",
        "SELECT (SELECT count(*) FROM t) FROM t WHERE id = 1",
        "SELECT * FROM t WHERE id = 1 AND EXISTS (SELECT 1 FROM t x WHERE x.id = 2)",
        "WITH c AS (SELECT 1) SELECT * FROM t WHERE id = 1",
        "SELECT * FROM t WHERE id = 1 UNION SELECT * FROM t WHERE id = 2",
        "SELECT * FROM t WHERE id = 1.5 + 1",
        "SELECT * FROM t WHERE id = '1'::int",
        "SELECT * FROM t WHERE id NOT IN (1)",
        "SELECT * FROM t WHERE other.id = 1",
        "SELECT * FROM t AS u WHERE t.id = 1",
        "SELECT * FROM t WHERE id = E'1'",
        "SELECT * FROM generate_series(1, 3) g WHERE g = 1",
    ] {
        assert_eq!(read(sql), "-", "{sql}");
    }
}

#[test]
fn a_join_is_pinned_by_its_driving_table() {
    assert_eq!(read("SELECT * FROM t JOIN u ON u.id = t.uid WHERE t.id = 1"), "t id=1");
    assert_eq!(read("SELECT * FROM t, u WHERE u.id = t.uid AND u.k = $1"), "u k=$1");
    assert_eq!(read("SELECT o.x FROM orders o LEFT JOIN c ON c.id = o.cid WHERE o.id IN (1, 2)"), "orders id=1|2");
}

#[test]
fn updates_pin_old_and_new_values() {
    assert_eq!(write("UPDATE t SET x = x + 1 WHERE id = $2"), "t id=$2");
    assert_eq!(write("UPDATE t SET id = 7 WHERE id = 5"), "t id=5|7");
    assert_eq!(write("UPDATE t SET id = id + 1 WHERE id = 5"), "-");
    assert_eq!(write("UPDATE t SET (id, x) = (1, 2) WHERE id = 5 AND k = 'a'"), "t k='a'");
    assert_eq!(write("UPDATE t SET x = 1 WHERE id = 5 OR id = 6"), "-");
    assert_eq!(write("UPDATE t SET x = 1 FROM u WHERE t.id = 5"), "-");
    assert_eq!(write("UPDATE t SET x = 1"), "-");
}

#[test]
fn deletes_and_inserts_pin_their_rows() {
    assert_eq!(write("DELETE FROM t WHERE id IN (1, 2) AND x > 0"), "t id=1|2");
    assert_eq!(write("DELETE FROM t USING u WHERE t.id = 1"), "-");
    assert_eq!(
        write("INSERT INTO t (id, name, at) VALUES (1, 'a', now()), ($1, 'b', now())"),
        "t id=1|$1 name='a'|'b'"
    );
    assert_eq!(write("INSERT INTO t VALUES (1, 'a')"), "-");
    assert_eq!(write("INSERT INTO t (id) SELECT 1"), "-");
    assert_eq!(write("INSERT INTO t (id, x) VALUES (1, 2) ON CONFLICT DO NOTHING"), "t id=1 x=2");
    assert_eq!(write("INSERT INTO t (id, x) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET x = 3"), "t id=1");
    assert_eq!(write("INSERT INTO t (id, x) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET id = 3"), "-");
    assert_eq!(write("INSERT INTO t (id, x) VALUES (1, 2) ON CONFLICT ON CONSTRAINT k DO UPDATE SET x = 3"), "-");
}
