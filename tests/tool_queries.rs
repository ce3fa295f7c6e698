//! Real tools' catalog queries (`tests/data/tool_queries/`: psql `\d`, pgjdbc DatabaseMetaData,
//! SQLAlchemy reflection, Superset, Metabase, DBeaver) — what BI tools and drivers send all day:
//!
//! - every statement is analysed (sqlparser reads it, or the proxy knows it from its tokens):
//!   none is refused by a guarded policy as unreadable, and a catalog read writes nothing;
//! - a read of system catalogs only gets no LIMIT under a `limit.inject` policy;
//! - against a real Postgres, through pgcached under a guarded, limiting policy, every read
//!   returns the same rows as directly, twice (the second may come from the cache) — in the
//!   simple protocol, and those with parameters in the extended protocol (all NULL: what
//!   matters is that they parse, bind and describe the same).

mod common;

use common::values::{Null, Raw};
use common::{PgCluster, Proxy, connect};
use pgcached::sql::{LimitRule, StatementKind, analyze_uncached, limit::rewrite};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::ToSql;

const TOOLS: &[&str] = &["psql", "pgjdbc", "sqlalchemy", "superset", "metabase", "dbeaver"];

/// Reads of the server's own state, which differs between any two connections (process ids,
/// activity, where a setting came from: pgcached sets `client_encoding` by `SET`, so its
/// `pg_settings.source` is `session`, not `client`), and a call the guarded policy denies by
/// default (`pg_terminate_backend`): not compared.
const SERVER_STATE: &[&str] =
    &["pg_stat_activity", "pg_backend_pid", "pg_catalog.pg_settings\n", "pg_terminate_backend"];

/// One statement of the corpus: the tool, the text, and whether it runs only after another
/// statement (a `-- needs:` note).
struct ToolQuery {
    tool: &'static str,
    text: String,
    needs_context: bool,
}

/// The statements of every file: chunks between `-- next` lines, without their leading
/// annotation lines (see the corpus README).
fn corpus() -> Vec<ToolQuery> {
    let mut all = Vec::new();
    for tool in TOOLS {
        let path = format!("{}/tests/data/tool_queries/{tool}.sql", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for chunk in text.split("\n-- next\n") {
            let mut lines = chunk.lines().peekable();
            let mut needs_context = false;
            while let Some(l) = lines.peek() {
                if !(l.trim().is_empty() || l.starts_with("--")) {
                    break;
                }
                needs_context |= l.starts_with("-- needs:");
                lines.next();
            }
            let body = lines.collect::<Vec<_>>().join("\n").trim().to_string();
            if !body.is_empty() {
                all.push(ToolQuery { tool, text: body, needs_context });
            }
        }
    }
    all
}

#[test]
fn every_tool_query_is_analysed_and_catalog_reads_are_never_limited() {
    let corpus = corpus();
    assert!(corpus.len() >= 250, "corpus has {} statements", corpus.len());
    let rule = LimitRule { inject: Some(5), max: Some(5), catalogs: false, exempt_schemas: Vec::new() };
    let mut failures = Vec::new();
    for q in &corpus {
        let a = analyze_uncached(&q.text);
        let short: String = q.text.chars().take(100).collect();
        for s in &a.statements {
            if let Some(e) = &s.parse_error {
                failures.push(format!("{}: not analysed ({e}): {short}", q.tool));
            }
            if s.kind == StatementKind::Read && s.may_write() {
                failures.push(format!("{}: a read that may write: {short}", q.tool));
            }
        }
        let catalog_reads =
            a.statements.iter().all(|s| s.kind == StatementKind::Read && s.reads_only_system_catalogs());
        if catalog_reads && let Some(r) = rewrite(&q.text, &a, &rule) {
            failures.push(format!("{}: a catalog read was limited ({:?}): {short}", q.tool, r.changes));
        }
    }
    assert!(failures.is_empty(), "{} of {} statements:\n{}", failures.len(), corpus.len(), failures.join("\n"));
}

fn message(e: tokio_postgres::Error) -> String {
    e.as_db_error().map_or(e.to_string(), |d| d.message().into())
}

/// The rows of an answer, as bytes: in the simple protocol (text), or, for a statement with
/// parameters, in the extended protocol with every parameter NULL (binary), after the column
/// names and types its description gave.
async fn rows(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>, String> {
    if !sql.contains("$1") {
        let messages = c.simple_query(sql).await.map_err(message)?;
        return Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(|v| v.as_bytes().to_vec())).collect())
                }
                _ => None,
            })
            .collect());
    }
    let statement = c.prepare(sql).await.map_err(message)?;
    let nulls: Vec<&(dyn ToSql + Sync)> = statement.params().iter().map(|_| &Null as _).collect();
    let described = statement.columns().iter().map(|c| Some(format!("{}:{}", c.name(), c.type_()).into_bytes()));
    let mut all = vec![described.collect()];
    for r in c.query(&statement, &nulls).await.map_err(message)? {
        all.push((0..r.len()).map(|i| r.get::<_, Option<Raw>>(i).map(|x| x.0)).collect());
    }
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_reads_return_the_same_rows_through_a_guarded_policy() {
    let pg = PgCluster::start();
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tool_queries/capture/schema.sql"))
            .expect("schema");
    pg.psql_db("app", &schema);
    pg.psql_db(
        "app",
        "CREATE ROLE bi LOGIN; GRANT USAGE ON SCHEMA shop TO bi; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO bi",
    );
    let policies = "
        - name: bi
          user: bi
          read_only: true
          limit: {inject: 5, max: 5, notice: true}";
    let admin = common::free_port();
    let proxy = Proxy::start_with(&pg, |c| {
        c.policies = serde_yaml::from_str(policies).expect("policies");
        c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
    })
    .await;
    let direct = connect(&pg.url("bi", "app")).await;
    // What a `read_only` policy sets upstream (psql's `\dconfig` shows it).
    direct.batch_execute("SET default_transaction_read_only = on").await.unwrap();
    let through = connect(&proxy.url("bi", "app")).await;
    // pgcached's first look at the login defaults opens a connection to `postgres`, whose
    // backend writes that database's relation-cache file (~150 kB, after `CREATE ROLE`):
    // psql's `\l+` sizes would differ between a direct read before it and one through pgcached
    // after. Compared from when it has happened.
    through.simple_query("SELECT 1").await.unwrap();
    let first = r#"pgcached_login_defaults_checks_total{outcome="first"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while common::http::metric(admin, first).await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the login defaults were never read");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut compared = 0;
    let mut failures = Vec::new();
    for q in corpus() {
        let a = analyze_uncached(&q.text);
        // Other statements change the session.
        if q.needs_context
            || !a.statements.iter().all(|s| s.kind == StatementKind::Read)
            || SERVER_STATE.iter().any(|s| format!("{}\n", q.text).contains(s))
        {
            continue;
        }
        let Ok(want) = rows(&direct, &q.text).await else { continue };
        let short: String = q.text.chars().take(100).collect();
        for pass in 1..=2 {
            match rows(&through, &q.text).await {
                Ok(got) if got == want => {}
                Ok(got) => failures.push(format!(
                    "{} pass {pass}: {} rows, direct {}: {short}\n  only through: {:?}\n  only direct: {:?}",
                    q.tool,
                    got.len(),
                    want.len(),
                    got.iter().filter(|r| !want.contains(r)).take(3).collect::<Vec<_>>(),
                    want.iter().filter(|r| !got.contains(r)).take(3).collect::<Vec<_>>()
                )),
                Err(e) => failures.push(format!("{} pass {pass}: {e}: {short}", q.tool)),
            }
        }
        compared += 1;
    }
    assert!(compared >= 200, "only {compared} reads compared");
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}
