//! What the functions a statement calls may do, from the built-in list and what `pg_proc`
//! says (through the catalog's memo, looked up before the statement is sent):
//!
//! - a function the built-in list does not know (`pg_get_expr`, `pg_typeof`, a user's) is as
//!   volatile as the most volatile function of that name in the catalog (for a bare name, in
//!   any schema); only a volatile one may write — Postgres refuses data-modifying statements in
//!   stable and immutable functions — so only such a call makes the statement an unknown writer
//!   (its database is flushed at commit); a name the catalog does not know may be anything;
//! - a bare call of a built-in name may resolve to a user function of the same name (search
//!   path, argument types): when one exists, the call is as volatile as the worse of the two,
//!   and a volatile one may write; `app.lower(…)` is never the built-in (see
//!   `sql::functions::volatility`);
//! - a statement is answered from the cache only if every call is immutable by both, or is a
//!   built-in stable function the cache key determines (`sql::functions::keyed`: catalog
//!   look-ups, the role, settings) that no user function of the same name may shadow;
//! - reading a view or a table with row-level security makes Postgres call the functions in the
//!   view's body or the policies: when one of those may write (a volatile user function; see
//!   `Catalog::read_may_write`), so does the read (with the cache on: without it there is
//!   nothing to invalidate);
//! - a statement that names a user function which may leave session state (settings, temporary
//!   objects, `LISTEN`, advisory locks) is looked at even in pure pass-through, where the proxy
//!   otherwise looks only for words (see `cache::state_setters`).

use std::sync::Arc;

use tracing::debug;

use super::Session;
use crate::cache::{Catalog, Volatility as PgVolatility};
use crate::sql::functions::{self, Volatility};
use crate::sql::{Analysis, StatementAnalysis};

/// What the calls of one statement may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Calls {
    /// Every call is immutable or determined by the cache key: the statement may be cached.
    pub cacheable: bool,
    /// A call may write what the proxy cannot name: its database is invalidated at commit.
    pub may_write: bool,
}

/// The catalog answers a judgment needs that are not memoized yet.
enum Ask {
    /// [`Catalog::function_volatility`] of the name.
    Function(String),
    /// [`Catalog::user_volatility`] of the bare name.
    User(String),
    /// [`Catalog::read_may_write`] of the relation.
    Relation(String),
}

impl Session {
    /// Whether `text` may call a user function that leaves session state (see
    /// `cache::state_setters`): then it is looked at also in pure pass-through. True while
    /// the list is not known (its read is started).
    pub(super) fn may_call_state_setter(&self, text: &[u8]) -> bool {
        let Some(catalog) = self.catalog_ref() else { return true };
        let (known, read) = catalog.state_setters();
        if read {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                if let Err(e) = catalog.read_state_setters().await {
                    debug!(error = %e, "catalog look-up of state-setting functions failed");
                }
            });
        }
        known.is_none_or(|setters| setters.may_be_called(text))
    }

    /// Judge the calls of `s` from the built-in list and what the catalog already said; a name
    /// not looked up yet counts as volatile and writing (it is looked up meanwhile). Without a
    /// catalog, the built-in list alone decides (nothing is cached then, and writes flush the
    /// database anyway).
    pub(super) fn judge_calls(&self, s: &StatementAnalysis) -> Calls {
        let reads_relations = self.shared.cache.enabled() && relations_read(s).next().is_some();
        if s.functions.is_empty() && !reads_relations {
            return Calls { cacheable: true, may_write: false };
        }
        let Some(catalog) = self.catalog() else {
            return Calls { cacheable: s.is_deterministic(), may_write: s.unknown_functions().next().is_some() };
        };
        let mut asks = Vec::new();
        let mut calls = Calls { cacheable: true, may_write: false };
        for f in &s.functions {
            let judged = judge(&catalog, &f.name, &mut asks);
            calls.cacheable &= judged.cacheable;
            calls.may_write |= judged.may_write;
        }
        if reads_relations {
            for rel in relations_read(s) {
                calls.may_write |= judge_read(&catalog, rel, &mut asks);
            }
        }
        if !asks.is_empty() {
            tokio::spawn(async move {
                for ask in asks {
                    if let Err(e) = ask_catalog(&catalog, &ask).await {
                        debug!(error = %e, "catalog look-up failed");
                    }
                }
            });
        }
        calls
    }
}

/// Look up, before `analysis` is sent, what [`Session::judge_calls`] needs (memoized per
/// database: one catalog query per function name until DDL).
pub(super) async fn look_up_calls(catalog: &Arc<Catalog>, analysis: &Analysis, cache_enabled: bool) {
    let mut asks = Vec::new();
    for f in analysis.statements.iter().flat_map(|s| &s.functions) {
        judge(catalog, &f.name, &mut asks);
    }
    // Nearly always known to be none: then nothing is collected per statement.
    let relations: Vec<&crate::sql::TableRef> = if cache_enabled && catalog.any_read_may_write_known() != Some(false) {
        analysis.statements.iter().flat_map(relations_read).collect()
    } else {
        Vec::new()
    };
    if !relations.is_empty() {
        // The database-wide answer first: it decides whether relations need looking up.
        if catalog.any_read_may_write_known().is_none()
            && let Err(e) = Box::pin(catalog.any_read_may_write()).await
        {
            debug!(error = %e, "catalog look-up failed");
        }
        for rel in relations {
            judge_read(catalog, rel, &mut asks);
        }
    }
    for ask in asks {
        // Boxed: a catalog query is a large state machine, rare on this path.
        if let Err(e) = Box::pin(ask_catalog(catalog, &ask)).await {
            debug!(error = %e, "catalog look-up failed");
        }
    }
}

/// What one call may do.
struct Judged {
    /// Its answer may be cached: immutable, or a built-in [`functions::keyed`] stable function.
    cacheable: bool,
    /// It may write what the proxy cannot name.
    may_write: bool,
}

/// What a call of `name` may do; catalog answers it lacks are added to `asks` (meanwhile it
/// counts as volatile and writing).
fn judge(catalog: &Catalog, name: &str, asks: &mut Vec<Ask>) -> Judged {
    const UNKNOWN: Judged = Judged { cacheable: false, may_write: true };
    let builtin = functions::volatility(name);
    // The built-in itself: cacheable when immutable or determined by the key.
    let as_builtin = Judged { cacheable: builtin == Volatility::Immutable || functions::keyed(name), may_write: false };
    if builtin == Volatility::Unknown {
        return match catalog.function_volatility_known(name) {
            Some(Some(v)) => Judged { cacheable: v == PgVolatility::Immutable, may_write: v == PgVolatility::Volatile },
            // No such function: the statement will fail; nothing is known of it.
            Some(None) => UNKNOWN,
            None => {
                asks.push(Ask::Function(name.to_string()));
                UNKNOWN
            }
        };
    }
    if name.contains('.') {
        // `pg_catalog.lower`: the built-in itself.
        return as_builtin;
    }
    match catalog.user_volatility_known(name) {
        Some(None) => as_builtin,
        // A user function of that name may be the one called: as volatile as the worse of
        // the two, and never "determined by the key" (it may read anything).
        Some(Some(user)) => Judged {
            cacheable: builtin == Volatility::Immutable && user == PgVolatility::Immutable,
            may_write: user == PgVolatility::Volatile,
        },
        None => {
            asks.push(Ask::User(name.to_string()));
            UNKNOWN
        }
    }
}

/// The relations `s` reads that are not system catalogs, as `schema.name` or `name`.
fn relations_read(s: &StatementAnalysis) -> impl Iterator<Item = &crate::sql::TableRef> {
    s.tables_read.iter().filter(|t| !t.is_system_catalog())
}

/// Whether reading `rel` may make Postgres call a function that writes; a relation not looked
/// up yet may (it is added to `asks`). Nearly always no view or policy of the database calls
/// one, and that is known without a look-up per relation.
fn judge_read(catalog: &Catalog, rel: &crate::sql::TableRef, asks: &mut Vec<Ask>) -> bool {
    match catalog.any_read_may_write_known() {
        Some(false) => return false,
        Some(true) => {}
        // Not known yet: `look_up_calls` asks (once, before the statement is sent); asking
        // here too would only add a query to the catalog's two connections as sessions start.
        None => return true,
    }
    let name = rel.to_string();
    catalog.read_may_write_known(&name).unwrap_or_else(|| {
        asks.push(Ask::Relation(name));
        true
    })
}

async fn ask_catalog(catalog: &Catalog, ask: &Ask) -> Result<(), crate::cache::CatalogError> {
    match ask {
        Ask::Function(name) => catalog.function_volatility(name).await.map(drop),
        Ask::User(name) => catalog.user_volatility(name).await.map(drop),
        Ask::Relation(name) => catalog.read_may_write(name).await.map(drop),
    }
}
