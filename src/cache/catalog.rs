//! Catalog look-ups for cache correctness, through a control-plane pool (never the data path):
//! what a relation depends on (views → base tables, recursively; partitions and inheritance
//! both ways) and how volatile a function is. Answers are memoized per name until
//! [`Catalog::refresh`], which the session calls after DDL it forwarded.
//!
//! Name resolution: the control-plane connection does not share the client's `search_path`,
//! so a bare name is looked up in **every** schema and the answers are united. That
//! over-approximates (more tables tracked, more invalidation), which is the safe direction;
//! for functions it returns the most volatile overload of that name.
//!
//! Limits: tables read inside a function body are not dependencies in the catalog; such
//! functions are STABLE or VOLATILE and make a statement uncacheable anyway (an IMMUTABLE
//! function that reads tables is the user's lie, and TTL bounds it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;

use super::names::RelName;

/// Memoized names kept before the memo is cleared (bounds memory under odd workloads).
const MAX_MEMO: usize = 10_000;

/// `pg_proc.provolatile`, ordered from safest to least safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("catalog query: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("empty relation or function name")]
    EmptyName,
}

/// Catalog look-ups for one database (the pool's).
pub struct Catalog {
    pool: Pool,
    relations: Mutex<HashMap<RelName, Arc<[String]>>>,
    functions: Mutex<HashMap<RelName, Option<Volatility>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// All relations `relation` depends on, itself included, as `"schema"."name"`.
const DEPENDENCIES_SQL: &str = "
WITH RECURSIVE deps(oid) AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
  UNION
    SELECT nxt.oid FROM deps, LATERAL (
        -- a view: the relations its rewrite rule references
        SELECT d.refobjid AS oid
          FROM pg_rewrite r
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass
         WHERE r.ev_class = deps.oid AND d.refobjid <> deps.oid
           AND (SELECT relkind FROM pg_class WHERE oid = deps.oid) = 'v'
        -- partitions / inheritance children (a read of the parent reads them)
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = deps.oid
        -- and parents (a write through the parent changes the child)
        UNION ALL SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = deps.oid
    ) nxt
)
SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
  FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')";

const VOLATILITY_SQL: &str = "
SELECT max(p.provolatile::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2)";

impl Catalog {
    pub fn new(pool: Pool) -> Catalog {
        Catalog { pool, relations: Mutex::default(), functions: Mutex::default() }
    }

    /// The relations a read of `relation` must be tracked under: itself, and for a view every
    /// relation it is built on (recursively), for a partitioned or inherited table its
    /// children and parents. Names come back as `"schema"."name"`. An unknown relation gives
    /// just its own name (tracking it is harmless; the statement will likely fail anyway).
    pub async fn dependencies(&self, relation: &str) -> Result<Arc<[String]>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.relations.lock().expect("catalog lock").get(&rel) {
            return Ok(hit.clone());
        }
        let client = self.pool.get().await?;
        let rows = client.query(DEPENDENCIES_SQL, &[&rel.name, &rel.schema]).await?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if names.is_empty() {
            names.push(relation.to_string());
        }
        names.sort();
        let names: Arc<[String]> = names.into();
        memo_insert(&self.relations, rel, names.clone());
        Ok(names)
    }

    /// The volatility of function `name` (the most volatile overload), `None` if there is no
    /// such function (the caller should then treat it as volatile).
    pub async fn function_volatility(&self, name: &str) -> Result<Option<Volatility>, CatalogError> {
        let func = RelName::parse(name).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.functions.lock().expect("catalog lock").get(&func) {
            return Ok(*hit);
        }
        let client = self.pool.get().await?;
        let row = client.query_one(VOLATILITY_SQL, &[&func.name, &func.schema]).await?;
        let v = match row.get::<_, Option<String>>(0).as_deref() {
            Some("i") => Some(Volatility::Immutable),
            Some("s") => Some(Volatility::Stable),
            Some(_) => Some(Volatility::Volatile),
            None => None,
        };
        memo_insert(&self.functions, func, v);
        Ok(v)
    }

    /// Forget everything memoized (after DDL: CREATE/ALTER/DROP VIEW, FUNCTION, TABLE, …).
    pub fn refresh(&self) {
        self.relations.lock().expect("catalog lock").clear();
        self.functions.lock().expect("catalog lock").clear();
    }
}

fn memo_insert<V>(memo: &Mutex<HashMap<RelName, V>>, k: RelName, v: V) {
    let mut m = memo.lock().expect("catalog lock");
    if m.len() >= MAX_MEMO {
        m.clear();
    }
    m.insert(k, v);
}
