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

use super::catalog_sql::*;
use super::name_memo::NameMemo;
use super::names::RelName;
use super::rowkey::{ColumnKind, RowColumns};
use super::state_setters::StateSetters;

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

/// Catalog look-ups for one database (the pool's), each answer memoized by relation or
/// function name (`NameMemo`: looked up for every write, see `session::caching`).
pub struct Catalog {
    pool: Pool,
    relations: NameMemo<Arc<[String]>>,
    functions: NameMemo<Option<Volatility>>,
    /// [`Catalog::user_volatility`] answers.
    shadows: NameMemo<Option<Volatility>>,
    /// [`Catalog::privacy`] answers: `None` when reads may be shared.
    privacy: NameMemo<Option<Arc<str>>>,
    /// [`Catalog::read_may_write`] answers.
    read_writes: NameMemo<bool>,
    /// [`Catalog::any_read_may_write`]'s answer.
    any_read_writes: Mutex<Option<bool>>,
    /// [`Catalog::may_set_settings`] answers.
    setters: NameMemo<SettingsSetter>,
    /// [`Catalog::state_setters`]' answer.
    state_setters: super::state_setters::StateSettersMemo,
    /// [`Catalog::write_closure`] answers.
    writes: NameMemo<WriteClosure>,
    /// [`Catalog::row_columns`] answers.
    rows: NameMemo<Option<Arc<RowColumns>>>,
    /// [`Catalog::default_isolation`] answers, by role.
    isolation: Mutex<HashMap<String, Option<Arc<str>>>>,
    /// Bumped by every [`Catalog::refresh`]: what others memoized from this catalog (a
    /// session's resolved table names) is stale when it moved.
    epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// What calling a function may do to the session's settings (see `SETS_SETTINGS_SQL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsSetter {
    /// It may change settings the proxy cannot see, or leave other session state on the
    /// connection (temporary objects, `LISTEN`, session advisory locks): the caller is pinned.
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

impl Catalog {
    /// Close this catalog's idle control-plane connections (the next look-up opens one).
    pub fn close_idle(&self) -> usize {
        crate::pool::control::close_idle(&self.pool)
    }

    pub fn new(pool: Pool) -> Catalog {
        Catalog {
            pool,
            relations: NameMemo::new(MAX_MEMO),
            functions: NameMemo::new(MAX_MEMO),
            shadows: NameMemo::new(MAX_MEMO),
            privacy: NameMemo::new(MAX_MEMO),
            read_writes: NameMemo::new(MAX_MEMO),
            any_read_writes: Mutex::default(),
            setters: NameMemo::new(MAX_MEMO),
            state_setters: Default::default(),
            writes: NameMemo::new(MAX_MEMO),
            rows: NameMemo::new(MAX_MEMO),
            isolation: Mutex::default(),
            epoch: Default::default(),
        }
    }

    /// The relations a read of `relation` must be tracked under: itself, and for a view every
    /// relation it is built on (recursively), for a partitioned or inherited table its
    /// children and parents. Names come back as `"schema"."name"`. An unknown relation gives
    /// just its own name (tracking it is harmless; the statement will likely fail anyway).
    pub async fn dependencies(&self, relation: &str) -> Result<Arc<[String]>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.relations.get(&rel) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let rows = client.query(DEPENDENCIES_SQL, &[&rel.name, &rel.schema]).await?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if names.is_empty() {
            names.push(relation.to_string());
        }
        names.sort();
        let names: Arc<[String]> = names.into();
        self.relations.insert(&rel, names.clone());
        Ok(names)
    }

    /// The volatility of function `name` (the most volatile overload), `None` if there is no
    /// such function (the caller should then treat it as volatile).
    pub async fn function_volatility(&self, name: &str) -> Result<Option<Volatility>, CatalogError> {
        let func = RelName::parse(name).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.functions.get(&func) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let row = client.query_one(VOLATILITY_SQL, &[&func.name, &func.schema]).await?;
        let v = volatility_of(row.get::<_, Option<String>>(0).as_deref());
        self.functions.insert(&func, v);
        Ok(v)
    }

    /// [`Catalog::function_volatility`] if it is already known, without waiting.
    pub fn function_volatility_known(&self, name: &str) -> Option<Option<Volatility>> {
        self.functions.get_spelled(name)
    }

    /// The most volatile user function named `name` (no schema; outside `pg_catalog`), `None`
    /// when there is none (see `USER_VOLATILITY_SQL`).
    pub async fn user_volatility(&self, name: &str) -> Result<Option<Volatility>, CatalogError> {
        let func = RelName::parse(name).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.shadows.get(&func) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let row = client.query_one(USER_VOLATILITY_SQL, &[&func.name]).await?;
        let v = volatility_of(row.get::<_, Option<String>>(0).as_deref());
        self.shadows.insert(&func, v);
        Ok(v)
    }

    /// [`Catalog::user_volatility`] if it is already known, without waiting.
    pub fn user_volatility_known(&self, name: &str) -> Option<Option<Volatility>> {
        self.shadows.get_spelled(name)
    }

    /// Why answers read through `relation` must not be shared between sessions that have the
    /// same role and settings (see `PRIVACY_SQL`): `None` when they may. Views, partitions
    /// and inheritance relatives count as for [`Catalog::dependencies`].
    pub async fn privacy(&self, relation: &str) -> Result<Option<Arc<str>>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.privacy.get(&rel) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let rows = client.query(PRIVACY_SQL, &[&rel.name, &rel.schema]).await?;
        let why: Option<Arc<str>> = rows.first().map(|r| r.get::<_, String>(1).into());
        self.privacy.insert(&rel, why.clone());
        Ok(why)
    }

    /// Whether reading `relation` makes Postgres call a function that may write (see
    /// `READ_VOLATILE_CALLS_SQL`): a volatile user function in the body of a view it depends
    /// on or in a row-level security policy, or a built-in that writes or runs SQL.
    pub async fn read_may_write(&self, relation: &str) -> Result<bool, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.read_writes.get(&rel) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let rows = client.query(READ_VOLATILE_CALLS_SQL, &[&rel.name, &rel.schema]).await?;
        let writes = rows.iter().any(|r| may_write(&r.get::<_, String>(0)));
        self.read_writes.insert(&rel, writes);
        Ok(writes)
    }

    /// Whether reading any relation of the database may make Postgres call a function that
    /// may write (see `ANY_VOLATILE_CALLS_SQL`): when not — nearly always — no read needs
    /// [`Catalog::read_may_write`].
    pub async fn any_read_may_write(&self) -> Result<bool, CatalogError> {
        if let Some(known) = self.any_read_may_write_known() {
            return Ok(known);
        }
        let client = self.pool.get().await?;
        let rows = client.query(ANY_VOLATILE_CALLS_SQL, &[]).await?;
        let writes = rows.iter().any(|r| may_write(&r.get::<_, String>(0)));
        *self.any_read_writes.lock().expect("catalog lock") = Some(writes);
        Ok(writes)
    }

    /// [`Catalog::any_read_may_write`] if it is already known, without waiting.
    pub fn any_read_may_write_known(&self) -> Option<bool> {
        *self.any_read_writes.lock().expect("catalog lock")
    }

    /// [`Catalog::read_may_write`] if it is already known, without waiting.
    pub fn read_may_write_known(&self, relation: &str) -> Option<bool> {
        self.read_writes.get_spelled(relation)
    }

    /// What calling function `name` may do to session settings the proxy cannot see (see
    /// `SETS_SETTINGS_SQL`); anything, for a function that does not exist.
    pub async fn may_set_settings(&self, name: &str) -> Result<SettingsSetter, CatalogError> {
        let func = RelName::parse(name).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.setters.get(&func) {
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
        self.setters.insert(&func, setter.clone());
        Ok(setter)
    }

    /// The user functions that may leave session state when called, if known (see
    /// `cache::state_setters`), and whether the caller is to read the list now (it is unknown
    /// or due, and nobody else is reading it): then it calls [`Catalog::read_state_setters`].
    pub fn state_setters(&self) -> (Option<Arc<StateSetters>>, bool) {
        let known = self.state_setters.get();
        let read = known.as_ref().is_none_or(|(_, due)| *due) && self.state_setters.start_reading();
        (known.map(|(setters, _)| setters), read)
    }

    /// Read [`Catalog::state_setters`]' list from the catalog (the caller was told to).
    pub async fn read_state_setters(&self) -> Result<(), CatalogError> {
        let read = async {
            let client = self.pool.get().await?;
            let rows = client.query(STATE_SETTERS_SQL, &[]).await?;
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            self.state_setters.set(StateSetters::new(&names));
            Ok(())
        };
        let result = read.await;
        self.state_setters.done_reading();
        result
    }

    /// The one text value `sql` answers (not memoized: e.g. a fingerprint polled for changes).
    pub async fn fingerprint(&self, sql: &str) -> Result<String, CatalogError> {
        let client = self.pool.get().await?;
        Ok(client.query_one(sql, &[]).await?.get(0))
    }

    /// [`Catalog::may_set_settings`] if it is already known, without waiting.
    pub fn may_set_settings_known(&self, name: &str) -> Option<SettingsSetter> {
        self.setters.get_spelled(name)
    }

    /// Everything a write to `relation` may change, Postgres' own writes on its behalf
    /// included (see `WRITE_CLOSURE_SQL`): foreign-key actions, rules, views, partitions and
    /// inheritance, and what the trigger functions on any of those write — followed in turn.
    /// A trigger whose writes cannot be read from its source (dynamic SQL, a call of a user
    /// function, a language other than SQL or PL/pgSQL) makes it the whole database.
    pub async fn write_closure(&self, relation: &str) -> Result<WriteClosure, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.writes.get(&rel) {
            return Ok(hit);
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
        self.writes.insert(&rel, closure.clone());
        Ok(closure)
    }

    /// Whether writes to `relation` may be tracked by rows, and by which columns (see
    /// `ROW_COLUMNS_SQL`); `None`: only as a whole.
    pub async fn row_columns(&self, relation: &str) -> Result<Option<Arc<RowColumns>>, CatalogError> {
        let rel = RelName::parse(relation).ok_or(CatalogError::EmptyName)?;
        if let Some(hit) = self.rows.get(&rel) {
            return Ok(hit);
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
        self.rows.insert(&rel, answer.clone());
        Ok(answer)
    }

    /// [`Catalog::row_columns`] if it is already known, without waiting.
    pub fn row_columns_known(&self, relation: &str) -> Option<Option<Arc<RowColumns>>> {
        self.rows.get_spelled(relation)
    }

    /// [`Catalog::write_closure`] if it is already known, without waiting.
    pub fn write_closure_known(&self, relation: &str) -> Option<WriteClosure> {
        self.writes.get_spelled(relation)
    }

    /// The schema an unqualified relation name resolves to under the schemas `path`, in order
    /// (see [`search_path_schemas`]); `None` when no schema of it has such a relation. Not
    /// memoized here: the answer depends on the session's path (the session memoizes it).
    pub async fn resolve(&self, name: &str, path: &[String]) -> Result<Option<String>, CatalogError> {
        let client = self.pool.get().await?;
        let rows = client.query(RESOLVE_SQL, &[&name, &path]).await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// The `default_transaction_isolation` a session of `role` starts with in this database
    /// (see `DEFAULT_ISOLATION_SQL`), as Postgres spells it; `None` when it cannot be known.
    /// Memoized until [`Catalog::refresh`] (`ALTER ROLE/DATABASE … SET` is DDL).
    pub async fn default_isolation(&self, role: &str) -> Result<Option<Arc<str>>, CatalogError> {
        if let Some(hit) = self.default_isolation_known(role) {
            return Ok(hit);
        }
        let client = self.pool.get().await?;
        let row = client.query_one(DEFAULT_ISOLATION_SQL, &[&role]).await?;
        let value: Option<Arc<str>> = row.get::<_, Option<String>>(0).map(Into::into);
        let mut memo = self.isolation.lock().expect("catalog lock");
        if memo.len() >= MAX_MEMO {
            memo.clear();
        }
        memo.insert(role.to_string(), value.clone());
        Ok(value)
    }

    /// [`Catalog::default_isolation`] if it is already known, without waiting.
    pub fn default_isolation_known(&self, role: &str) -> Option<Option<Arc<str>>> {
        self.isolation.lock().expect("catalog lock").get(role).cloned()
    }

    /// Forget everything memoized (after DDL: CREATE/ALTER/DROP VIEW, FUNCTION, TABLE, …).
    pub fn refresh(&self) {
        self.relations.clear();
        self.functions.clear();
        self.shadows.clear();
        self.privacy.clear();
        self.read_writes.clear();
        *self.any_read_writes.lock().expect("catalog lock") = None;
        self.setters.clear();
        self.state_setters.clear();
        self.writes.clear();
        self.rows.clear();
        self.isolation.lock().expect("catalog lock").clear();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// See the field.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether a volatile function (`schema.name`) a view or policy calls may write: a user's may,
/// a built-in if it writes a relation or runs SQL.
fn may_write(function: &str) -> bool {
    match function.strip_prefix("pg_catalog.") {
        Some(name) => {
            crate::sql::functions::writes(name) && !crate::sql::functions::writes_no_table(name)
                || crate::sql::functions::executes_sql(name)
        }
        None => true,
    }
}

/// `pg_proc.provolatile` as read (`None`: no such function).
fn volatility_of(provolatile: Option<&str>) -> Option<Volatility> {
    match provolatile {
        Some("i") => Some(Volatility::Immutable),
        Some("s") => Some(Volatility::Stable),
        Some(_) => Some(Volatility::Volatile),
        None => None,
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
