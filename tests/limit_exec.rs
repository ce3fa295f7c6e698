//! LIMIT rewrites executed on a real Postgres: every rewritten text is valid SQL, returns at
//! most N rows, and returns the same rows as the original's first N (queries are ordered).

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private Postgres (main's `tests/common` harness did not build on this branch yet): initdb
/// as the `postgres` OS user, trust auth, fsync off, stopped on Drop.
struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(args: &[&str]) -> bool {
    let cmd = args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", &cmd]).status().is_ok_and(|s| s.success())
}

impl PgCluster {
    fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = Command::new("chown").args(["-R", "postgres", dir.path().to_str().unwrap()]).status();
        let data: PathBuf = dir.path().join("data");
        let d = dir.path().to_str().unwrap().to_string();
        assert!(as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "--nosync",
            "-U",
            "postgres"
        ]));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let opts = format!("-p {port} -c fsync=off -k {d} -c listen_addresses=127.0.0.1");
        assert!(as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            &format!("{d}/log"),
            "-w",
            "start"
        ]));
        PgCluster { dir, port }
    }
    fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        as_postgres(&[&format!("{BIN}/pg_ctl"), "-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}
use pgcached::sql::{LimitRule, analyze_uncached, limit::rewrite};

const N: u64 = 7;
const RULE: LimitRule = LimitRule { inject: Some(N), max: Some(N), catalogs: true, exempt_schemas: Vec::new() };

/// Ordered reads; each is run as written and rewritten.
const CASES: &[&str] = &[
    "SELECT * FROM t ORDER BY id",
    "SELECT * FROM t ORDER BY id;",
    "SELECT * FROM t ORDER BY id -- trailing ; comment",
    "SELECT * FROM t ORDER BY id /* block */ ;",
    "SELECT id FROM t ORDER BY id\n-- comment\n;;",
    "SELECT * FROM t WHERE id > 3 ORDER BY id FOR UPDATE",
    "SELECT * FROM t ORDER BY id FOR SHARE SKIP LOCKED",
    "SELECT id FROM t WHERE id < 10 UNION SELECT id FROM u ORDER BY 1",
    "(SELECT id FROM t ORDER BY id)",
    "((SELECT id FROM t ORDER BY id))",
    "(SELECT id FROM t ORDER BY id LIMIT 3) UNION ALL (SELECT id FROM u ORDER BY id) ORDER BY 1",
    "WITH x AS (SELECT * FROM t) SELECT * FROM x ORDER BY id",
    "SELECT * FROM t ORDER BY id LIMIT 1000",
    "SELECT * FROM t ORDER BY id LIMIT ALL",
    "SELECT * FROM t ORDER BY id LIMIT ALL OFFSET 2",
    "SELECT * FROM t ORDER BY id OFFSET 2",
    "SELECT * FROM t ORDER BY id OFFSET 2 ROWS",
    "SELECT * FROM t ORDER BY id OFFSET 1 ROWS FETCH NEXT 50 ROWS ONLY",
    "SELECT * FROM t ORDER BY id LIMIT (SELECT 20)",
    "SELECT * FROM t ORDER BY id LIMIT NULL",
    "SELECT * FROM t JOIN u USING (id) ORDER BY id",
    "SELECT * FROM t WHERE id IN (SELECT id FROM u LIMIT 30) ORDER BY id FOR UPDATE OF t NOWAIT",
    "SELECT * FROM t ORDER BY id FOR NO KEY UPDATE",
    "SELECT * FROM t* ORDER BY id",
    "SELECT * FROM t ORDER BY id -- no newline at the end",
    "SELECT * FROM t ORDER BY id FETCH FIRST 100 ROWS ONLY",
    "SELECT * FROM t ORDER BY id LIMIT 10 * 10",
    "SELECT * FROM ONLY t ORDER BY id",
    "TABLE t ORDER BY id",
    "VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9) ORDER BY 1",
    "SELECT g FROM generate_series(1, 50) g ORDER BY g",
    "SELECT id, row_number() OVER (ORDER BY id) FROM t ORDER BY id",
    "SELECT DISTINCT id % 20 AS m FROM t ORDER BY m",
    "select 'a;b', $$x--y$$, id from t order by id",
];

fn rows_text(rows: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn rewritten_reads_run_and_return_the_first_n_rows() {
    let pg = PgCluster::start();
    let client = connect(&pg.url("postgres", "postgres")).await;
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;
             CREATE TABLE u (id int); INSERT INTO u SELECT g FROM generate_series(50, 120) g;",
        )
        .await
        .expect("fixture");
    let mut rewritten = 0;
    for q in CASES {
        let a = analyze_uncached(q);
        let r = rewrite(q, &a, &RULE).unwrap_or_else(|| panic!("no rewrite for {q}"));
        let Some(new) = r.text else { panic!("only a parameter cap for {q}") };
        // The rewrite is a pure insertion/replacement: the original's bytes around it are kept.
        let prefix = q.chars().zip(new.chars()).take_while(|(a, b)| a == b).count();
        assert!(prefix > 0, "{q} -> {new}");
        // FOR UPDATE needs a transaction to be meaningful; simple queries run in one anyway.
        let original = client.simple_query(q).await.unwrap_or_else(|e| panic!("original {q}: {e}"));
        let limited = client.simple_query(&new).await.unwrap_or_else(|e| panic!("rewritten {new:?}: {e}"));
        let (original, limited) = (rows_text(&original), rows_text(&limited));
        assert!(limited.len() as u64 <= N, "{new}: {} rows", limited.len());
        let want: Vec<_> = original.into_iter().take(N as usize).collect();
        assert_eq!(limited, want, "{q}\n -> {new}");
        rewritten += 1;
    }
    println!("limit_exec: {rewritten} rewritten statements executed");
}

#[tokio::test]
async fn aggregated_reads_are_left_alone_and_still_run() {
    for q in ["SELECT count(*) FROM t", "SELECT v, count(*) FROM t GROUP BY v", "SELECT * FROM t ORDER BY id LIMIT 3"] {
        assert!(rewrite(q, &analyze_uncached(q), &RULE).is_none(), "{q}");
    }
}

/// The attack the lexing guard exists for, verified on a real server: with
/// `standard_conforming_strings = off`, a text the analyzer sees as one SELECT runs a DROP.
#[tokio::test]
async fn backslash_strings_off_would_smuggle_a_second_statement() {
    let pg = PgCluster::start();
    let client = connect(&pg.url("postgres", "postgres")).await;
    client.batch_execute("CREATE TABLE victim (a int)").await.expect("fixture");
    let attack = "SELECT 'x\\'' ; DROP TABLE victim; -- '";
    let a = analyze_uncached(attack);
    assert_eq!(a.statements.len(), 1, "one statement to the analyzer");
    assert!(a.is_read_only(), "a harmless read to the analyzer");
    // With the default (on), Postgres agrees: one SELECT, victim survives.
    client.simple_query(attack).await.expect("one select");
    client.simple_query("SELECT * FROM victim").await.expect("victim still there");
    // With it off, Postgres runs the DROP. This is why a guarded policy refuses the SET.
    client.batch_execute("SET standard_conforming_strings = off").await.expect("set");
    let _ = client.simple_query(attack).await;
    let gone = client.simple_query("SELECT * FROM victim").await;
    assert!(gone.is_err(), "the DROP ran: the table is gone");
}
