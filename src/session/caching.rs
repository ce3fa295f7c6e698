//! The session's side of the result cache: which statements may be answered from memory, the
//! key of an answer, replaying a hit, arming a fill, and the invalidations a session owes when
//! its transaction commits.
//!
//! Cacheable (DESIGN.md, cache correctness rules): one read-only, deterministic statement — no
//! volatile/stable/unknown functions, no FOR UPDATE/SHARE, no SELECT INTO, no data-modifying
//! CTE, no system catalogs unless `cache.catalogs` — in autocommit or in a READ COMMITTED block
//! that has not written what it reads nor changed settings (see `isolation`), in a session
//! whose answers are not private to it (`state::Private`: temporary tables, settings the proxy
//! cannot follow, statements it cannot read). A read that is not is counted by reason
//! ([`Bypass`]).

use bytes::Bytes;
use tracing::debug;

use smol_str::SmolStr;

use crate::cache::rowkey::{self, BindValues};
use crate::cache::{Bypass, Catalog, RowDeps, RowWrite, WriteClosure};

use super::Session;
use super::catalog_memo::WriteFacts;
use super::isolation::TxReads;
use super::state::{Effects, Private, Writes};
use std::sync::Arc;

use crate::cache::{
    CacheKey, CachedResult, FillSpec, KeyBuilder, Lookup, Protocol, SettingsDigest, SettingsGeneration,
};
use crate::sql::{Analysis, RowPins, StatementAnalysis, StatementKind};
use crate::wire::build;

/// What identifies an extended-protocol execution besides the statement text.
#[derive(Clone, Copy, Debug)]
pub(super) struct Execution<'a> {
    /// The Bind body after the portal and statement names (formats, values, result formats).
    pub bind_tail: &'a [u8],
    /// The parameter types the statement was prepared with.
    pub param_types: &'a [u32],
    /// The result shape the client knows a named statement by (see `shapes`): answers
    /// recorded for another shape are not this client's.
    pub shape: Option<u64>,
}

/// The cacheable statement of `analysis`, if there is exactly one and it qualifies.
pub(super) fn cacheable_statement(analysis: &Analysis, catalogs_ok: bool) -> Option<&StatementAnalysis> {
    let [s] = analysis.statements.as_slice() else { return None };
    let ok = s.kind == StatementKind::Read
        && s.is_read_only()
        && s.calls_may_be_cached()
        && s.wrapper.is_none()
        && s.parse_error.is_none()
        && !s.locking
        && !s.select_into
        && !s.data_modifying_cte
        && s.temp_tables_created.is_empty()
        && !s.names_temp_schema()
        && (catalogs_ok || !s.reads_system_catalog());
    ok.then_some(s)
}

/// For `EXPLAIN CACHE`: the statement of `analysis` that may be cached whatever the session's
/// state (the catalog and the session decide the rest), or why none may.
pub fn cacheability(analysis: &Analysis, catalogs_ok: bool) -> Result<&StatementAnalysis, &'static str> {
    cacheable_statement(analysis, catalogs_ok)
        .ok_or_else(|| why_not_cacheable(analysis, catalogs_ok).map_or("it does not read", Bypass::label))
}

/// Why the statements of `analysis` are not cacheable ([`cacheable_statement`] said no), if
/// they read: statements that do not read are not counted.
fn why_not_cacheable(analysis: &Analysis, catalogs_ok: bool) -> Option<Bypass> {
    let reads = |s: &StatementAnalysis| s.kind == StatementKind::Read;
    let [s] = analysis.statements.as_slice() else {
        return analysis.statements.iter().any(reads).then_some(Bypass::Other);
    };
    if !reads(s) {
        return None;
    }
    Some(if s.locking {
        Bypass::Locking
    } else if !s.calls_may_be_cached() || !s.is_read_only() {
        Bypass::Function
    } else if !catalogs_ok && s.reads_system_catalog() {
        Bypass::SystemCatalog
    } else {
        Bypass::Other
    })
}

/// The column and keys of the rows a read pinned by equality depends on (`None`: the whole
/// table — its rows or types are not known well enough).
async fn read_keys(
    catalog: Option<Arc<Catalog>>,
    pins: &RowPins,
    exec: Option<Execution<'_>>,
) -> Option<(SmolStr, Vec<u64>)> {
    let catalog = catalog?;
    let relation = rowkey::relation(&pins.table);
    let columns = match Box::pin(catalog.row_columns(&relation)).await {
        Ok(columns) => columns?,
        Err(e) => {
            debug!(error = %e, "catalog look-up failed: tracked by table");
            return None;
        }
    };
    let params = exec.map(|e| BindValues::parse(e.bind_tail, e.param_types)).unwrap_or_default();
    rowkey::read_keys(&rowkey::bind(&pins.columns, &params), &columns)
}

impl Session {
    /// Whether this session may use the cache at all right now. Only with the transaction
    /// status settled: a read pipelined behind a ReadyForQuery still to come goes to Postgres
    /// (fuzzer, seed 190252: answered from the cache with status `I` inside a block a 42P05
    /// had just failed).
    pub(super) fn cache_usable(&self) -> bool {
        self.shared.cache.enabled()
            && self.private.is_empty()
            && self.tx_reads().usable()
            && self.status_settled()
            && self.queue.is_quiet(!self.tx.is_idle())
            && self.segment.is_synced()
    }

    /// The statement of `analysis` to look up in the cache, if it is cacheable and the session
    /// may use the cache now; else `None`, and a read is counted with the reason.
    pub(super) fn cacheable_now<'a>(&self, analysis: &'a Analysis) -> Option<&'a StatementAnalysis> {
        if !self.shared.cache.enabled() {
            return None;
        }
        let catalogs = self.shared.config.cache.catalogs;
        let why = if self.cache_usable() {
            match cacheable_statement(analysis, catalogs) {
                Some(s) => return Some(s),
                None => why_not_cacheable(analysis, catalogs)?,
            }
        } else {
            // Not yet usable because requests are in flight (a pipeline): not a reason.
            let why = if !self.private.is_empty() {
                Bypass::PrivateSession
            } else if let TxReads::Uncached(why) = self.tx_reads() {
                why
            } else {
                return None;
            };
            if !analysis.statements.iter().any(|s| s.kind == StatementKind::Read) {
                return None;
            }
            why
        };
        self.note_bypass(why, analysis.statements.first().map_or("", |s| &*s.fingerprint));
        None
    }

    /// Count a read sent to Postgres without the cache, and say why in the debug log (the
    /// fingerprint masks literals).
    fn note_bypass(&self, why: Bypass, fingerprint: &str) {
        self.shared.cache.stats().bypassed(why);
        self.tally.bypassed(why);
        debug!(reason = why.label(), %fingerprint, "read not cached");
    }

    /// Look a statement's answer up (waiting for a concurrent fill of the same key if there is
    /// one). `exec`: what else identifies an extended-protocol execution (`None`: simple Query).
    pub(super) async fn cache_lookup(
        &mut self,
        text: &[u8],
        s: &StatementAnalysis,
        exec: Option<Execution<'_>>,
    ) -> Lookup {
        let cache = &self.shared.cache;
        let Ok(text_str) = std::str::from_utf8(text) else { return Lookup::Bypass };
        let read: Vec<&str> = s.tables_read.iter().map(|t| t.name.as_str()).collect();
        if !self.judge_calls(s).cacheable {
            // A bare built-in name a user function of that name may shadow.
            self.note_bypass(Bypass::Function, &s.fingerprint);
            return Lookup::Bypass;
        }
        let decision = self.shared.rules.decide(text_str, &read, Some(&s.fingerprint));
        if !decision.cache {
            self.note_bypass(Bypass::Rule, &s.fingerprint);
            return Lookup::Bypass;
        }
        // Views and partitions: track the entry under the base tables too.
        let mut tables: Vec<String> = Vec::new();
        // The table whose rows the read pins, if it is not a view or a parent and no other
        // relation read depends on it: it may be tracked by rows.
        let pinned = s.rows.as_ref().map(|r| &r.table);
        let mut pinned_plain = false;
        let mut others_deps: Vec<String> = Vec::new();
        if !s.tables_read.is_empty() {
            let Some(catalog) = self.catalog() else {
                self.note_bypass(Bypass::Other, &s.fingerprint);
                return Lookup::Bypass;
            };
            for t in &s.tables_read {
                let rel = match &t.schema {
                    Some(schema) => format!("{schema}.{}", t.name),
                    None => t.name.to_string(),
                };
                // Boxed (as the stampede wait below): a catalog query is a large state
                // machine, and this future is part of every cacheable statement's.
                match Box::pin(catalog.dependencies(&rel)).await {
                    Ok(deps) => {
                        // Tracked by their version keys from here on (cheap to compare).
                        let keys = deps.iter().map(|d| crate::cache::version_key(d).into_owned());
                        if pinned == Some(t) {
                            pinned_plain = deps.len() == 1;
                            tables.extend(keys);
                        } else {
                            let start = tables.len();
                            tables.extend(keys);
                            others_deps.extend_from_slice(&tables[start..]);
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "catalog look-up failed: not cached");
                        self.note_bypass(Bypass::Other, &s.fingerprint);
                        return Lookup::Bypass;
                    }
                }
                // Row-level security or a view body that depends on more than the key holds.
                match Box::pin(catalog.privacy(&rel)).await {
                    Ok(None) => {}
                    Ok(Some(why)) => {
                        debug!(relation = %rel, %why, "not cached");
                        self.note_bypass(Bypass::RowSecurity, &s.fingerprint);
                        return Lookup::Bypass;
                    }
                    Err(e) => {
                        debug!(error = %e, "catalog look-up failed: not cached");
                        self.note_bypass(Bypass::Other, &s.fingerprint);
                        return Lookup::Bypass;
                    }
                }
                tables.push(crate::cache::version_key(&t.name).into_owned());
            }
            tables.sort();
            tables.dedup();
        }
        if self.tx_reads() == TxReads::AfterWrites && self.tx_wrote_any(&tables) {
            // Its own uncommitted writes are what this read must see.
            self.note_bypass(Bypass::WrittenInTransaction, &s.fingerprint);
            return Lookup::Bypass;
        }
        let table_refs: Vec<&str> = tables.iter().map(String::as_str).collect();
        // The pinned table, unless another table read depends on it too (then by table).
        let pinned_alone = |pins: &crate::sql::RowPins| {
            let key = crate::cache::version_key(&pins.table.name);
            pinned_plain && !others_deps.iter().any(|d| *d == key)
        };
        let rows = match &s.rows {
            Some(pins) if pinned_alone(pins) => {
                let catalog = self.catalog();
                read_keys(catalog, pins, exec).await.map(|keys| (&pins.table.name, keys))
            }
            _ => None,
        };
        let rows = rows.as_ref().map(|(table, (column, values))| RowDeps { table, column, values });
        let key = self.cache_key(text, exec);
        let spec = FillSpec {
            database: &self.key.database,
            tables: &table_refs,
            rows,
            ttl: decision.ttl,
            query: self.tally.id.as_ref(),
        };
        match cache.lookup(key, &spec) {
            // Holding a server connection (in a block), never wait for a leader: it may be
            // waiting for this very connection (a pool of one), and both would sit out their
            // timeouts. The read runs here instead.
            Lookup::Wait(waiter) if self.server.is_some() => cache.fill_alone(waiter, key, &spec),
            Lookup::Wait(waiter) => Box::pin(cache.wait(waiter, key, &spec)).await,
            other => other,
        }
    }

    /// What this session's settings are at (see [`SettingsGeneration`]).
    fn settings_generation(&self) -> SettingsGeneration {
        let read_only = self.read_only_ahead || self.tx.block().is_some_and(|b| b.read_only);
        (self.wanted.generation(), self.placeholders.len(), read_only)
    }

    /// The digest of this session's settings (part of every key), memoized until they change.
    /// A custom setting the client defined and holds no value for counts too: for it
    /// `current_setting(name, true)` is '' where a session that never defined it gets NULL
    /// (`SET LOCAL` outside a block, or a block that ended, leaves the name defined, empty).
    /// A `READ ONLY` block's reads see `transaction_read_only` on: it counts as a setting, so
    /// those blocks share answers among themselves and with no one else (DECISIONS 53).
    fn settings_digest(&self) -> SettingsDigest {
        let generation = self.settings_generation();
        match self.digest_memo.get() {
            Some((g, digest)) if g == generation => digest,
            _ => {
                // NUL is in no setting's value: a defined, empty name is told from any value.
                let defined =
                    self.placeholders.iter().filter(|p| self.wanted.get(p).is_none()).map(|p| (p.as_str(), "\0"));
                let read_only = generation.2.then_some(("transaction_read_only", "on"));
                let settings = self.wanted.iter().chain(defined).chain(read_only);
                let digest = SettingsDigest::new(self.shared.cache.seed(), settings);
                self.digest_memo.set(Some((generation, digest)));
                digest
            }
        }
    }

    /// The key of `text`'s answer for this session (`exec`: see [`Self::cache_lookup`]).
    fn cache_key(&self, text: &[u8], exec: Option<Execution<'_>>) -> CacheKey {
        let protocol = if exec.is_some() { Protocol::Extended } else { Protocol::Simple };
        let mut builder = self.statement_key(text, protocol);
        if let Some(exec) = exec {
            builder = builder.bind_tail(exec.bind_tail).param_types(exec.param_types);
            if let Some(shape) = exec.shape {
                builder = builder.result_shape(shape);
            }
        }
        builder.finish()
    }

    /// The key state after the session's context and `text`, remembered for the last
    /// statement (see [`crate::cache::StatementKeyMemo`]). The settings generation covers the
    /// role; the database and the seed never change in a session.
    fn statement_key(&self, text: &[u8], protocol: Protocol) -> KeyBuilder {
        let generation = self.settings_generation();
        self.key_memo.borrow_mut().get_or_build(generation, protocol, text, || {
            let seed = self.shared.cache.seed();
            let digest = self.settings_digest();
            let role = self.wanted.get("role").filter(|r| !r.eq_ignore_ascii_case("none")).unwrap_or(&self.key.user);
            let builder = KeyBuilder::new(seed, &self.key.database, role, protocol, digest);
            let builder = if *role == self.key.user { builder } else { builder.login_user(&self.key.user) };
            let builder = if crate::cache::key::may_read_settings(text) {
                builder.ignored_settings(SettingsDigest::ignored(seed, self.wanted.iter()))
            } else {
                builder
            };
            builder.statement(text)
        })
    }

    /// A fresh cached answer to `text`, found without analysing it (call only when
    /// [`Self::cache_usable`] and no policy applies). Sound because an entry exists only if this
    /// same key — text, database, role, every setting, protocol — was found cacheable when it
    /// was filled, and neither the analysis of a text nor the rules (`cache.rules`,
    /// `cache.catalogs`) change while the process runs. A miss takes the long way
    /// ([`Self::cache_lookup`]), which counts it.
    pub(super) fn cached_answer(&self, text: &[u8], exec: Option<Execution<'_>>) -> Option<Arc<CachedResult>> {
        // In a block that wrote, whether the entry's tables were written needs the analysis.
        if !matches!(self.tx_reads(), TxReads::Autocommit | TxReads::Clean) {
            return None;
        }
        self.shared.cache.peek(&self.cache_key(text, exec))
    }

    /// Answer a simple Query from a hit: the recorded frames, then ReadyForQuery.
    pub(super) fn replay_simple(&mut self, frames: &Bytes) {
        // As the Query would have on the server: the client's unnamed statement is gone, and a
        // server connection that held it must not keep it for this client.
        self.unnamed_parse = None;
        if let Some(lease) = &mut self.server
            && lease.obj.unnamed_owner == self.id
        {
            lease.obj.unnamed_owner = 0;
        }
        let status = self.tx.status();
        self.answer_with(frames.len() + 6, |out| {
            out.extend_from_slice(frames);
            build::ready_for_query(out, status);
        });
    }

    /// Whether the server may lex this session's SQL differently from the analyzer: a client
    /// encoding other than UTF-8, or backslash escapes in ordinary strings.
    pub(super) fn lexing_unreliable(&self) -> bool {
        let generation = self.wanted.generation();
        if let Some((at, unreliable)) = self.lexing_memo.get()
            && at == generation
        {
            return unreliable;
        }
        let encoding = self.wanted.get("client_encoding").unwrap_or("UTF8");
        let utf8 = ["UTF8", "UTF-8", "UNICODE"].iter().any(|e| encoding.eq_ignore_ascii_case(e));
        let unreliable =
            !utf8 || self.wanted.get("standard_conforming_strings").is_some_and(|v| v.eq_ignore_ascii_case("off"));
        self.lexing_memo.set(Some((generation, unreliable)));
        unreliable
    }

    /// A statement whose text is not UTF-8 (or unknown to the proxy): nothing can be known
    /// about it. Its session is no longer cached; it may write anything in its database.
    pub(super) fn note_opaque_statement(&mut self) -> Option<Box<[Arc<Effects>]>> {
        self.private.add(Private::OPAQUE);
        self.tx.sent();
        let writes = Writes { database: true, ..Writes::default() };
        Some(Box::new([Arc::new(Effects { writes, ..Effects::default() })]))
    }

    /// Invalidate what a commit (or an unknown outcome) wrote.
    pub(super) fn invalidate(&self, writes: &Writes) {
        use crate::cache::InvalidationCause;
        let cache = &self.shared.cache;
        if writes.login_defaults {
            // Before the flush: from now on no answer recorded on a connection logged in with
            // the old defaults is stored (`finish_fill`), and no client is greeted with them.
            self.shared.pools.new_login_defaults();
            self.shared.welcomes.invalidate_all();
        }
        if writes.all {
            cache.flush_all(InvalidationCause::Ddl);
            self.shared.catalogs.refresh_all();
            self.shared.prepared_ok.invalidate_all();
        } else if writes.database {
            cache.flush_database(&self.key.database, InvalidationCause::Unknown);
        } else if !writes.tables.is_empty() {
            let closures = self.write_closures(&writes.tables);
            let Some((catalog, closures)) = closures else {
                cache.flush_database(&self.key.database, InvalidationCause::Unknown);
                return;
            };
            let mut tables: Vec<&str> = closures.iter().flat_map(|c| c.tables.iter().map(String::as_str)).collect();
            tables.sort_unstable();
            tables.dedup();
            let rows = rows_written(&catalog, self.write_facts.as_ref(), writes, &closures, &tables);
            tables.retain(|t| !rows.iter().any(|(table, _)| table == t));
            if !tables.is_empty() {
                cache.invalidate_tables(&self.key.database, tables.iter().copied(), InvalidationCause::Write);
            }
            if !rows.is_empty() {
                let rows: Vec<RowWrite<'_>> = rows.iter().map(|(table, columns)| RowWrite { table, columns }).collect();
                cache.invalidate_rows(&self.key.database, &rows);
            }
        }
    }

    /// What a write to each of `tables` may change, Postgres' writes on its behalf included
    /// (`Catalog::write_closure`, looked up before the statement was sent), in their order;
    /// `None` — flush the database — when a trigger may write anything, or the catalog has not
    /// answered (it is asked now, for the next time: failing safe, never guessing).
    pub(super) fn write_closures(&self, tables: &[SmolStr]) -> Option<(Arc<Catalog>, Vec<WriteClosure>)> {
        let catalog = self.catalog()?;
        let mut closures = Vec::with_capacity(tables.len());
        for table in tables {
            let facts = self.write_facts.as_ref().and_then(|f| f.closure(&catalog, table));
            let Some(closure) = facts.or_else(|| catalog.write_closure_known(table)) else {
                let (catalog, table) = (catalog.clone(), table.clone());
                tokio::spawn(async move {
                    if let Err(e) = catalog.write_closure(&table).await {
                        debug!(error = %e, %table, "catalog look-up failed");
                    }
                });
                return None;
            };
            if closure.database {
                return None;
            }
            closures.push(closure);
        }
        Some((catalog, closures))
    }
}

/// Of the tables written, those invalidated by rows (their version keys, and the keys of the
/// values pinned per column): the statements pinned their rows, the catalog says Postgres
/// writes no other row of the table on their behalf and how its columns compare, and no other
/// written table's closure reaches it. `closures`: those of `writes.tables`, in order; `all`:
/// their union. A catalog answer not known yet means the whole table (it is asked now, for the
/// next time).
fn rows_written<'w>(
    catalog: &Arc<Catalog>,
    facts: Option<&WriteFacts>,
    writes: &'w Writes,
    closures: &[WriteClosure],
    all: &[&str],
) -> Vec<(std::borrow::Cow<'w, str>, rowkey::ColumnKeys)> {
    let mut out = Vec::new();
    for w in &writes.rows {
        let table = crate::cache::version_key(&w.table.name);
        let mut own = None;
        let mut reached_otherwise = false;
        for (name, closure) in writes.tables.iter().zip(closures) {
            if *name == w.table.name {
                own = Some(closure);
            } else {
                reached_otherwise |= closure.tables.iter().any(|t| *t == *table);
            }
        }
        let rewrites_self = own.is_none_or(|c| c.rewrites_self);
        if reached_otherwise || rewrites_self || !all.contains(&&*table) {
            continue;
        }
        let known = facts.and_then(|f| f.columns(catalog, &w.table));
        let columns = match known.or_else(|| catalog.row_columns_known(&rowkey::relation(&w.table))) {
            Some(Some(columns)) => columns,
            Some(None) => continue,
            None => {
                let relation = rowkey::relation(&w.table);
                let (catalog, relation) = (catalog.clone(), relation.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = catalog.row_columns(&relation).await {
                        debug!(error = %e, %relation, "catalog look-up failed");
                    }
                });
                continue;
            }
        };
        let keys = rowkey::keys(&w.columns, &columns);
        if !keys.is_empty() {
            out.push((table, keys));
        }
    }
    out
}
