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
//!
//! Two more answers keep the cache inside security boundaries:
//! - [`Catalog::privacy`]: why reads through a relation must not be shared between sessions
//!   with the same role and settings — a row-level security policy, or a view body, whose
//!   answer depends on more than the role (a stable or volatile function such as
//!   `current_setting()`, `SESSION_USER`, the clock, or another table).
//! - [`Catalog::may_set_settings`]: whether calling a function may change session settings
//!   the proxy cannot see (`set_config` or `SET` inside its body, or code it cannot read).
//!
//! And one for completeness of invalidation: [`Catalog::write_closure`], every relation a write
//! may change through what Postgres does on the writer's behalf.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;

use super::names::RelName;
use super::rowkey::{ColumnKind, RowColumns};

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

/// Answers memoized by relation or function name (a fast seeded hash: looked up for every
/// write, see `session::caching`).
type Memo<V> = Mutex<HashMap<RelName, V, foldhash::fast::RandomState>>;

/// Catalog look-ups for one database (the pool's).
pub struct Catalog {
    pool: Pool,
    relations: Memo<Arc<[String]>>,
    functions: Memo<Option<Volatility>>,
    /// [`Catalog::privacy`] answers: `None` when reads may be shared.
    privacy: Memo<Option<Arc<str>>>,
    /// [`Catalog::may_set_settings`] answers.
    setters: Memo<SettingsSetter>,
    /// [`Catalog::write_closure`] answers.
    writes: Memo<WriteClosure>,
    /// [`Catalog::row_columns`] answers.
    rows: Memo<Option<Arc<RowColumns>>>,
    /// Bumped by every [`Catalog::refresh`]: what others memoized from this catalog (a
    /// session's resolved table names) is stale when it moved.
    epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// `deps(oid)`: `$1` (in schema `$2`, or any) and every relation a read of it depends on — for a
/// view the relations its rewrite rule references (recursively), for a partitioned or inherited
/// table its children (a read of the parent reads them) and its parents (a write through the
/// parent changes the child). A macro, to be the head of several queries.
macro_rules! deps_cte {
    () => {
        "
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
"
    };
}

/// All relations `relation` depends on, itself included, as `"schema"."name"`.
const DEPENDENCIES_SQL: &str = concat!(
    deps_cte!(),
    "SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
  FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
);

/// For each relation a read of `relation` depends on (as [`DEPENDENCIES_SQL`]), why its rows
/// may differ between two sessions with the same role and settings; no row when none.
/// - a table with row-level security whose policies call a function that is not immutable
///   (`current_setting()`, `now()`, a user function), use `SESSION_USER` or the clock, or read
///   another relation: the key holds the role and the settings, not what those depend on;
/// - a view whose body does the same (a `security_barrier` view filtering by a setting, or
///   `WHERE at > now()`).
///
/// `pg_depend` does not record uses of built-in (pinned) functions, so the stored expression
/// trees are read: every `:funcid` and every operator's (`:opno`) implementing function must be
/// immutable, and a policy may name no `:relid` but its own table's. The SQL keywords that are
/// not functions (`SESSION_USER`, `CURRENT_DATE`, …) are found in the deparsed text, where
/// keywords are upper case and identifiers are not.
const PRIVACY_SQL: &str = concat!(
    deps_cte!(),
    ",
-- what filters the rows of each relation: its policies (RLS tables), its body (views)
guards(policy, rel, expr, tree) AS (
    SELECT true, c.oid,
           coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
           coalesce(p.polqual::text, '') || ' ' || coalesce(p.polwithcheck::text, '')
      FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_policy p ON p.polrelid = c.oid
     WHERE c.relrowsecurity
  UNION ALL
    SELECT false, c.oid, pg_get_viewdef(c.oid), r.ev_action::text
      FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_rewrite r ON r.ev_class = c.oid
     WHERE c.relkind = 'v'
)
SELECT DISTINCT format('%I.%I', n.nspname, c.relname),
       CASE WHEN g.policy THEN 'a row-level security policy of ' ELSE 'the view ' END
       || format('%I.%I', n.nspname, c.relname) || ' depends on more than the role'
  FROM guards g JOIN pg_class c ON c.oid = g.rel JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE g.expr ~ '\\m(SESSION_USER|CURRENT_DATE|CURRENT_TIME|CURRENT_TIMESTAMP|LOCALTIME|LOCALTIMESTAMP)\\M'
    OR EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':funcid (\\d+)', 'g') m
                 JOIN pg_proc pr ON pr.oid = m[1]::oid WHERE pr.provolatile <> 'i')
    OR EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':opno (\\d+)', 'g') m
                 JOIN pg_operator o ON o.oid = m[1]::oid JOIN pg_proc pr ON pr.oid = o.oprcode
                WHERE pr.provolatile <> 'i')
    OR (g.policy AND EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':relid (\\d+)', 'g') m
                              WHERE m[1]::oid <> g.rel))
 ORDER BY 1"
);

/// Whether any function named `$1` (in schema `$2`, or any) may change session settings when
/// called: a built-in only if it is `set_config`; SQL and PL/pgSQL when their body mentions
/// `set_config`, has a statement starting with `SET` or `RESET` (not `UPDATE … SET`), or runs
/// dynamic SQL (`EXECUTE`); any other language (C, Python…) is opaque. No such function: NULL
/// (the caller assumes it may). A function's own `SET` clause is restored when it returns and
/// is not its body.
///
/// Then the custom (dotted) settings it may define: the literal names of its `set_config`
/// calls, and whether that list is all of them (not when a `set_config` name is computed, a
/// `SET` statement or dynamic SQL is in the body, or the body cannot be read).
const SETS_SETTINGS_SQL: &str = "
WITH f AS (
  SELECT n.nspname = 'pg_catalog' AS builtin, p.proname, l.lanname IN ('sql', 'plpgsql') AS readable,
         coalesce(nullif(p.prosrc, ''), pg_get_function_sqlbody(p.oid), '') AS body
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
   WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2))
SELECT bool_or(CASE
         WHEN builtin THEN proname = 'set_config'
         WHEN readable THEN body ~* '(set_config|(^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*(set|reset)\\M|\\mexecute\\M)'
         ELSE true END),
       bool_or(CASE
         WHEN builtin THEN proname = 'set_config'
         WHEN readable THEN body ~* '((^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*(set|reset)\\M|\\mexecute\\M)'
              OR (SELECT count(*) FROM regexp_matches(body, 'set_config\\s*\\(', 'gi'))
               > (SELECT count(*) FROM regexp_matches(body, 'set_config\\s*\\(\\s*''[^'']*''', 'gi'))
         ELSE true END),
       array(SELECT DISTINCT lower(m[1])
               FROM f f2, regexp_matches(f2.body, 'set_config\\s*\\(\\s*''([^'']*)''', 'gi') m
              WHERE f2.readable AND strpos(m[1], '.') > 0 ORDER BY 1)
  FROM f";

/// What calling a function may do to the session's settings (see `SETS_SETTINGS_SQL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsSetter {
    /// It may change settings the proxy cannot see.
    pub sets: bool,
    /// The custom (dotted) settings it may define, lower case; `None` when it may define
    /// others the proxy cannot name.
    pub defines: Option<Arc<[String]>>,
}

impl SettingsSetter {
    /// A function that may do anything (one that does not exist, or whose body is opaque).
    fn opaque() -> SettingsSetter {
        SettingsSetter { sets: true, defines: None }
    }
}

/// Every relation a write to `$1` (in schema `$2`, or any) may change, itself included: through
/// a view or a rule (the relations its rewrite rules reference — a view's base tables, a `DO
/// ALSO` rule's targets), partitions and inheritance relatives both ways, and tables whose
/// foreign keys act on it (`ON DELETE/UPDATE CASCADE | SET NULL | SET DEFAULT`), recursively;
/// with, for each, the user triggers' functions (language and source) — what those write is
/// read from the source ([`crate::sql::body_writes`]).
const WRITE_CLOSURE_SQL: &str = "
WITH RECURSIVE w(oid, depth) AS (
    SELECT c.oid, 0 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
  UNION
    SELECT nxt.oid, w.depth + 1 FROM w, LATERAL (
        SELECT d.refobjid AS oid
          FROM pg_rewrite r
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass
         WHERE r.ev_class = w.oid AND d.refobjid <> w.oid
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = w.oid
        UNION ALL SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = w.oid
        UNION ALL SELECT con.conrelid FROM pg_constraint con
         WHERE con.contype = 'f' AND con.confrelid = w.oid
           AND (con.confdeltype IN ('c', 'n', 'd') OR con.confupdtype IN ('c', 'n', 'd'))
    ) nxt
     WHERE w.depth < 64
)
SELECT c.relname::text,
       coalesce((SELECT array_agg(l.lanname::text || ':' || p.prosrc)
                   FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                   JOIN pg_language l ON l.oid = p.prolang
                  WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '{}'),
       bool_or(w.depth > 0 AND w.oid IN (SELECT oid FROM w WHERE depth = 0) OR w.depth >= 63)
  FROM w JOIN pg_class c ON c.oid = w.oid
 GROUP BY c.oid, c.relname";

/// Whether a table may be tracked by rows (a plain table nothing rewrites on a write's behalf:
/// no user trigger — pgcached's own NOTIFY trigger aside —, rule, inheritance or self-referencing
/// foreign-key action), its pinnable
/// columns as `name:kind` (integer, deterministic text, uuid; not generated) and its primary
/// key's columns. One row per relation of that name: more than one is not tracked by rows.
const ROW_COLUMNS_SQL: &str = "
SELECT c.relkind = 'r'
       AND NOT c.relhasrules AND NOT c.relispartition AND NOT c.relhassubclass
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                         JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
                        WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                          AND NOT (pn.nspname = 'pgcached' AND p.proname = 'notify_invalidate'))
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                        WHERE k.contype = 'f' AND k.conrelid = c.oid AND k.confrelid = c.oid
                          AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))),
       coalesce((SELECT array_agg(a.attname::text || ':' || CASE WHEN a.atttypid IN (20, 21, 23) THEN 'int'
                                                              WHEN a.atttypid = 2950 THEN 'uuid'
                                                              ELSE 'text' END)
                   FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                    AND (a.atttypid IN (20, 21, 23, 2950)
                         OR a.atttypid IN (25, 1043) AND coalesce(co.collisdeterministic, true))), '{}'),
       coalesce((SELECT array_agg(a.attname::text)
                   FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                  WHERE i.indrelid = c.oid AND i.indisprimary), '{}')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)";

/// What a write to a relation may change (see [`Catalog::write_closure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteClosure {
    /// Relation names (unqualified, as `cache::names` keys them), the written one included.
    pub tables: Arc<[String]>,
    /// A trigger may write what its source does not tell: the whole database.
    pub database: bool,
    /// Postgres may write other rows of the written relation itself on the write's behalf (a
    /// cycle of foreign-key actions or triggers leads back to it): not tracked by rows.
    pub rewrites_self: bool,
}

/// Relations followed for one write before the closure gives up (and says: the database).
const MAX_CLOSURE: usize = 64;

/// The first schema of `$2` (in order) holding a relation named `$1`: where Postgres resolves
/// an unqualified name under that search path.
const RESOLVE_SQL: &str = "
SELECT n.nspname
  FROM unnest($2::text[]) WITH ORDINALITY AS s(name, pos)
  JOIN pg_namespace n ON n.nspname = s.name
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $1
 ORDER BY s.pos
 LIMIT 1";

const VOLATILITY_SQL: &str = "
SELECT max(p.provolatile::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2)";

impl Catalog {
    pub fn new(pool: Pool) -> Catalog {
        Catalog {
            pool,
            relations: Mutex::default(),
            functions: Mutex::default(),
            privacy: Mutex::default(),
            setters: Mutex::default(),
            writes: Mutex::default(),
            rows: Mutex::default(),
            epoch: Default::default(),
        }
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

    /// Why answers read through `relation` must not be shared between sessions that have the
    /// same role and settings (see `PRIVACY_SQL`): `None` when they may. Views, partitions
    /// and inheritance relatives count as for [`Catalog::dependencies`].
    pub async fn privacy(&self, relation: &str) -> Result<Option<Arc<str>>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.privacy.lock().expect("catalog lock").get(&rel) {
            return Ok(hit.clone());
        }
        let client = self.pool.get().await?;
        let rows = client.query(PRIVACY_SQL, &[&rel.name, &rel.schema]).await?;
        let why: Option<Arc<str>> = rows.first().map(|r| r.get::<_, String>(1).into());
        memo_insert(&self.privacy, rel, why.clone());
        Ok(why)
    }

    /// What calling function `name` may do to session settings the proxy cannot see (see
    /// `SETS_SETTINGS_SQL`); anything, for a function that does not exist.
    pub async fn may_set_settings(&self, name: &str) -> Result<SettingsSetter, CatalogError> {
        let func = RelName::parse(name).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.known_setter(&func) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let row = client.query_one(SETS_SETTINGS_SQL, &[&func.name, &func.schema]).await?;
        let setter = match (row.get::<_, Option<bool>>(0), row.get::<_, Option<bool>>(1)) {
            (Some(sets), Some(unnamed)) => {
                SettingsSetter { sets, defines: (!unnamed).then(|| row.get::<_, Vec<String>>(2).into()) }
            }
            _ => SettingsSetter::opaque(),
        };
        memo_insert(&self.setters, func, setter.clone());
        Ok(setter)
    }

    /// [`Catalog::may_set_settings`] if it is already known, without waiting.
    pub fn may_set_settings_known(&self, name: &str) -> Option<SettingsSetter> {
        self.known_setter(&RelName::parse(name)?)
    }

    fn known_setter(&self, func: &RelName) -> Option<SettingsSetter> {
        self.setters.lock().expect("catalog lock").get(func).cloned()
    }

    /// Everything a write to `relation` may change, Postgres' own writes on its behalf
    /// included (see `WRITE_CLOSURE_SQL`): foreign-key actions, rules, views, partitions and
    /// inheritance, and what the trigger functions on any of those write — followed in turn.
    /// A trigger whose writes cannot be read from its source (dynamic SQL, a call of a user
    /// function, a language other than SQL or PL/pgSQL) makes it the whole database.
    pub async fn write_closure(&self, relation: &str) -> Result<WriteClosure, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.writes.lock().expect("catalog lock").get(&rel) {
            return Ok(hit.clone());
        }
        let client = self.pool.get().await?;
        let mut tables: Vec<String> = vec![rel.name.to_lowercase()];
        let mut database = false;
        let mut rewrites_self = false;
        let mut todo = vec![rel.clone()];
        let mut seen = std::collections::HashSet::new();
        while let Some(next) = todo.pop() {
            if seen.len() >= MAX_CLOSURE {
                database = true;
                break;
            }
            if !seen.insert(next.clone()) {
                continue;
            }
            for row in client.query(WRITE_CLOSURE_SQL, &[&next.name, &next.schema]).await? {
                let name = row.get::<_, String>(0).to_lowercase();
                // Reached again from itself, or from a relation it makes Postgres write.
                rewrites_self |= name == tables[0] && (next != rel || row.get::<_, Option<bool>>(2) == Some(true));
                tables.push(name);
                for trigger in row.get::<_, Vec<String>>(1) {
                    let (language, source) = trigger.split_once(':').unwrap_or(("", ""));
                    match crate::sql::body_writes::body_writes(language, source) {
                        Some(written) => todo.extend(written.into_iter().map(|name| RelName { schema: None, name })),
                        None => database = true,
                    }
                }
            }
        }
        tables.sort();
        tables.dedup();
        let closure = WriteClosure { tables: tables.into(), database, rewrites_self };
        memo_insert(&self.writes, rel, closure.clone());
        Ok(closure)
    }

    /// Whether writes to `relation` may be tracked by rows, and by which columns (see
    /// `ROW_COLUMNS_SQL`); `None`: only as a whole.
    pub async fn row_columns(&self, relation: &str) -> Result<Option<Arc<RowColumns>>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.rows.lock().expect("catalog lock").get(&rel) {
            return Ok(hit.clone());
        }
        let client = self.pool.get().await?;
        let rows = client.query(ROW_COLUMNS_SQL, &[&rel.name, &rel.schema]).await?;
        let answer = match rows.as_slice() {
            [row] if row.get::<_, Option<bool>>(0) == Some(true) => {
                let columns = row
                    .get::<_, Vec<String>>(1)
                    .iter()
                    .filter_map(|c| {
                        let (name, kind) = c.rsplit_once(':')?;
                        let kind = match kind {
                            "int" => ColumnKind::Int,
                            "uuid" => ColumnKind::Uuid,
                            _ => ColumnKind::Text,
                        };
                        Some((name.to_owned(), kind))
                    })
                    .collect();
                Some(Arc::new(RowColumns { columns, primary: row.get(2) }))
            }
            _ => None,
        };
        memo_insert(&self.rows, rel, answer.clone());
        Ok(answer)
    }

    /// [`Catalog::row_columns`] if it is already known, without waiting.
    pub fn row_columns_known(&self, relation: &str) -> Option<Option<Arc<RowColumns>>> {
        self.rows.lock().expect("catalog lock").get(&RelName::parse(relation)?).cloned()
    }

    /// [`Catalog::write_closure`] if it is already known, without waiting.
    pub fn write_closure_known(&self, relation: &str) -> Option<WriteClosure> {
        self.writes.lock().expect("catalog lock").get(&RelName::parse(relation)?).cloned()
    }

    /// The schema an unqualified relation name resolves to under the schemas `path`, in order
    /// (see [`search_path_schemas`]); `None` when no schema of it has such a relation. Not
    /// memoized here: the answer depends on the session's path (the session memoizes it).
    pub async fn resolve(&self, name: &str, path: &[String]) -> Result<Option<String>, CatalogError> {
        let client = self.pool.get().await?;
        let rows = client.query(RESOLVE_SQL, &[&name, &path]).await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Forget everything memoized (after DDL: CREATE/ALTER/DROP VIEW, FUNCTION, TABLE, …).
    pub fn refresh(&self) {
        self.relations.lock().expect("catalog lock").clear();
        self.functions.lock().expect("catalog lock").clear();
        self.privacy.lock().expect("catalog lock").clear();
        self.setters.lock().expect("catalog lock").clear();
        self.writes.lock().expect("catalog lock").clear();
        self.rows.lock().expect("catalog lock").clear();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// See the field.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The schemas a `search_path` value makes Postgres search, in order: `pg_catalog` first unless
/// the path names it, `"$user"` as `role`, quoted names as written, others folded to lower case.
/// (The session's temporary schema, searched first, holds only its own tables.)
pub fn search_path_schemas(search_path: &str, role: &str) -> Vec<String> {
    let mut schemas = Vec::new();
    for item in search_path.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = match item.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some("$user") => role.to_string(),
            Some(quoted) => quoted.replace("\"\"", "\""),
            None if item == "$user" => role.to_string(),
            None => item.to_ascii_lowercase(),
        };
        schemas.push(name);
    }
    if !schemas.iter().any(|s| s == "pg_catalog") {
        schemas.insert(0, "pg_catalog".to_string());
    }
    schemas
}

fn memo_insert<V>(memo: &Memo<V>, k: RelName, v: V) {
    let mut m = memo.lock().expect("catalog lock");
    if m.len() >= MAX_MEMO {
        m.clear();
    }
    m.insert(k, v);
}

#[cfg(test)]
mod tests {
    use super::search_path_schemas;

    #[test]
    fn search_paths_read_as_postgres_reads_them() {
        assert_eq!(search_path_schemas("\"$user\", public", "alice"), ["pg_catalog", "alice", "public"]);
        assert_eq!(
            search_path_schemas("Secret, \"Mixed\"\"Q\", pg_catalog", "a"),
            ["secret", "Mixed\"Q", "pg_catalog"]
        );
        assert_eq!(search_path_schemas("", "a"), ["pg_catalog"]);
    }
}
