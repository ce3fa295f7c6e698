//! `max_cost` estimates: `EXPLAIN (FORMAT JSON)` of a client's read on a control-plane
//! connection (one small pool per database), as the client would plan it — same database, the
//! session user as role (`SET ROLE` cannot be changed under a guarded policy), the client's
//! `search_path` — inside a transaction that is always rolled back. The top plan node's
//! `Total Cost` is cached per (database, role, search_path, statement) for [`COST_TTL`].
//!
//! - The cache key is the exact statement text (with its fingerprint hash), not the fingerprint
//!   alone: `WHERE id > 0` and `WHERE id > 999999` share a fingerprint but not a cost, and
//!   keying by fingerprint would let one cheap literal vouch for an expensive one.
//! - A statement with parameters (`$1`, from a Parse) has no values to plan with, and PG15 has
//!   no `EXPLAIN (GENERIC_PLAN)`: it is `PREPARE`d on the control connection and explained with
//!   `EXPLAIN EXECUTE …(NULL, …)` under `plan_cache_mode = force_generic_plan`, which plans it
//!   without looking at the values (NULLs would otherwise fold `x > $1` to a free "false").
//!   Parameter types come from the statement text, as `PREPARE` infers them.
//! - Everything runs through the extended protocol (one statement per Parse), so the client's
//!   text cannot smuggle a second statement onto the control connection.
//! - The control user must be able to `SET ROLE` to the guarded users (superuser or member).
//!   Any failure (e.g. a temporary table only the client's session can see, a parameter whose
//!   type cannot be inferred) is a failed estimate, which refuses (fail closed) — except a
//!   syntax error (42601): nothing runs, so the statement goes on and the server reports it.

use std::collections::HashMap;
use std::error::Error as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use moka::sync::Cache;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};

use crate::pool::control::control_pool;
use crate::server::UpstreamTarget;
use crate::sql::lex::max_param;
use crate::sql::{CostError, CostEstimator};

/// How long an estimate is reused.
pub const COST_TTL: Duration = Duration::from_secs(60);
/// Estimates kept at most.
const COST_CACHE_SIZE: u64 = 10_000;
/// Control-plane connections per database for EXPLAIN.
const EXPLAIN_POOL_SIZE: usize = 2;
/// Planning time allowed for one EXPLAIN.
const EXPLAIN_TIMEOUT: &str = "5s";

/// The `search_path` a login of role `$1` to the current database gets from `ALTER ROLE … SET`
/// / `ALTER DATABASE … SET` (most specific first), if any.
const ROLE_SEARCH_PATH: &str = "SELECT substr(s, 13) FROM (
    SELECT unnest(setconfig) AS s,
           (setrole = 0)::int * 2 + (setdatabase = 0)::int AS rank
    FROM pg_catalog.pg_db_role_setting
    WHERE setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1))
      AND setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
) settings WHERE s LIKE 'search\\_path=%' ORDER BY rank LIMIT 1";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CostKey {
    database: String,
    role: String,
    search_path: Option<String>,
    fingerprint_hash: u64,
    text_hash: u64,
}

/// EXPLAIN-based cost estimates, shared by every session.
pub struct CostEstimates {
    target: Arc<UpstreamTarget>,
    acquire_timeout: Duration,
    pools: Mutex<HashMap<String, Pool>>,
    cache: Cache<CostKey, f64>,
    next_statement: AtomicU64,
}

/// The estimator for one session: its database, role and search_path.
pub struct SessionCosts<'a> {
    costs: &'a CostEstimates,
    database: &'a str,
    role: &'a str,
    search_path: Option<&'a str>,
}

impl CostEstimates {
    pub fn new(target: Arc<UpstreamTarget>, acquire_timeout: Duration) -> CostEstimates {
        CostEstimates {
            target,
            acquire_timeout,
            pools: Mutex::new(HashMap::new()),
            cache: Cache::builder().max_capacity(COST_CACHE_SIZE).time_to_live(COST_TTL).build(),
            next_statement: AtomicU64::new(0),
        }
    }

    /// The estimator for a session of `role` on `database` with `search_path` (`None`: the
    /// role's default).
    pub fn for_session<'a>(
        &'a self,
        database: &'a str,
        role: &'a str,
        search_path: Option<&'a str>,
    ) -> SessionCosts<'a> {
        SessionCosts { costs: self, database, role, search_path }
    }

    /// Close the idle control-plane connections to `database` (see `Pools::close_idle`).
    pub fn close_idle(&self, database: &str) -> usize {
        let pool = self.pools.lock().expect("cost pools poisoned").get(database).cloned();
        pool.map_or(0, |p| crate::pool::control::close_idle(&p))
    }

    fn pool(&self, database: &str) -> Result<Pool, CostError> {
        let mut pools = self.pools.lock().expect("cost pools poisoned");
        if let Some(p) = pools.get(database) {
            return Ok(p.clone());
        }
        let pool = control_pool(&self.target, database, EXPLAIN_POOL_SIZE, self.acquire_timeout)
            .map_err(|e| CostError(e.to_string()))?;
        pools.insert(database.to_string(), pool.clone());
        Ok(pool)
    }
}

impl CostEstimator for SessionCosts<'_> {
    async fn estimate(&self, sql: &str, fingerprint_hash: u64) -> Result<f64, CostError> {
        let mut h = DefaultHasher::new();
        sql.hash(&mut h);
        let key = CostKey {
            database: self.database.to_string(),
            role: self.role.to_string(),
            search_path: self.search_path.map(str::to_string),
            fingerprint_hash,
            text_hash: h.finish(),
        };
        if let Some(cost) = self.costs.cache.get(&key) {
            return Ok(cost);
        }
        let pool = self.costs.pool(self.database)?;
        let cost = self.explain(&pool, sql).await?;
        self.costs.cache.insert(key, cost);
        Ok(cost)
    }
}

impl SessionCosts<'_> {
    async fn explain(&self, pool: &Pool, sql: &str) -> Result<f64, CostError> {
        let mut client = pool.get().await.map_err(|e| CostError(e.to_string()))?;
        let params = max_param(sql);
        let prepared = (params > 0)
            .then(|| format!("pgcached_cost_{}", self.costs.next_statement.fetch_add(1, Ordering::Relaxed)));
        let tx = client.transaction().await.map_err(db_error)?;
        // The client's search_path; else the role's own default (`ALTER ROLE … SET`), which
        // SET ROLE does not apply. (Read before SET ROLE: the role may not see the catalog.)
        let path = match self.search_path {
            Some(path) => Some(path.to_string()),
            None => tx.query_opt(ROLE_SEARCH_PATH, &[&self.role]).await.map_err(db_error)?.map(|r| r.get(0)),
        };
        tx.execute(
            "SELECT set_config('role', $1, true), set_config('statement_timeout', $2, true), \
             set_config('plan_cache_mode', 'force_generic_plan', true)",
            &[&self.role, &EXPLAIN_TIMEOUT],
        )
        .await
        .map_err(db_error)?;
        if let Some(path) = path {
            tx.execute("SELECT set_config('search_path', $1, true)", &[&path]).await.map_err(db_error)?;
        }
        let explain = match &prepared {
            None => format!("EXPLAIN (FORMAT JSON) {sql}"),
            Some(name) => {
                match tx.execute(&format!("PREPARE {name} AS {sql}"), &[]).await {
                    Ok(_) => {}
                    Err(e) if e.code() == Some(&SqlState::SYNTAX_ERROR) => return Ok(0.0),
                    Err(e) => return Err(db_error(e)),
                }
                let nulls = vec!["NULL"; params as usize].join(", ");
                format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})")
            }
        };
        let row = tx.query_one(&explain, &[]).await;
        let syntax_error = row.as_ref().err().and_then(|e| e.code()) == Some(&SqlState::SYNTAX_ERROR);
        let row = row.map_err(db_error);
        // Nothing the EXPLAIN did (plan-time function calls included) is kept.
        let _ = tx.rollback().await;
        if let Some(name) = &prepared {
            // Prepared statements outlive the transaction.
            let _ = client.batch_execute(&format!("DEALLOCATE {name}")).await;
        }
        let row = match row {
            Ok(row) => row,
            // Nothing runs: the server will refuse the statement itself with its own error.
            Err(_) if syntax_error => return Ok(0.0),
            Err(e) => return Err(e),
        };
        let plan: JsonText = row.try_get(0).map_err(db_error)?;
        total_cost(&plan.0).ok_or_else(|| CostError("EXPLAIN returned no total cost".into()))
    }
}

/// The top plan node's `"Total Cost"`: the first one in the document (a node's own keys come
/// before its `"Plans"`).
fn total_cost(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"Total Cost\"")? + "\"Total Cost\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end =
        rest.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn db_error(e: tokio_postgres::Error) -> CostError {
    match e.as_db_error() {
        Some(db) => CostError(db.message().to_string()),
        None => CostError(e.source().map_or_else(|| e.to_string(), |s| s.to_string())),
    }
}

/// EXPLAIN's `json` column as text (its binary form is the text).
struct JsonText(String);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(String::from_utf8(raw.to_vec())?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::TEXT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_node_total_cost_is_read() {
        let json = r#"[{"Plan": {"Node Type": "Limit", "Startup Cost": 0.00, "Total Cost": 0.16,
            "Plans": [{"Node Type": "Seq Scan", "Total Cost": 1443.00}]}}]"#;
        assert_eq!(total_cost(json), Some(0.16));
        assert_eq!(total_cost(r#"[{"Plan": {"Total Cost": 12345678.5}}]"#), Some(12345678.5));
        assert_eq!(total_cost("[]"), None);
    }
}
