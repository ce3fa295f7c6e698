//! What a session keeps of its database's catalog. The catalog itself, asked for once: the
//! catalogs' map is behind a lock and a statement wants its catalog several times (the catalogs
//! live as long as the process; a reload keeps them). And what the catalog says about the table
//! the session writes — its write closure and how its columns compare (see
//! `caching::invalidate`): a session writes the same table statement after statement (an app's
//! UPDATE by key, pgbench), and each write asked the catalog's memos for both twice, before it
//! is sent (so the answers are known at commit) and at its commit, each time a lock, a hash and
//! a copy. The session asks once per table and catalog epoch: the answers hold while the
//! catalog's epoch is the one they were read under (DDL refreshes the catalog and moves its
//! epoch) and the catalog is the same one (compared by pointer).

use std::sync::Arc;

use crate::cache::rowkey::RowColumns;
use crate::cache::{Catalog, WriteClosure};
use crate::sql::TableRef;

use super::Session;

impl Session {
    /// The catalog of this session's database, asked for once.
    pub(super) fn catalog_ref(&self) -> Option<&Arc<Catalog>> {
        self.catalog.get_or_init(|| self.shared.catalogs.for_database(&self.key.database)).as_ref()
    }

    /// [`Session::catalog_ref`], owned.
    pub(super) fn catalog(&self) -> Option<Arc<Catalog>> {
        self.catalog_ref().cloned()
    }
}

/// The catalog's answers for one written table, as of one catalog epoch.
pub(super) struct WriteFacts {
    catalog: Arc<Catalog>,
    /// `catalog`'s epoch read before the answers were.
    epoch: u64,
    table: TableRef,
    closure: WriteClosure,
    /// How its columns compare (`None`: not known when read; the catalog is asked then).
    columns: Option<Option<Arc<RowColumns>>>,
}

impl WriteFacts {
    /// The answers the catalog's memo holds for `table` now, if it knows its write closure.
    /// `with_columns`: the write pins rows, so how its columns compare is wanted too.
    pub fn read(catalog: &Arc<Catalog>, table: &TableRef, with_columns: bool) -> Option<WriteFacts> {
        // Before the answers: a refresh in between moves it past them.
        let epoch = catalog.epoch();
        let closure = catalog.write_closure_known(&table.name)?;
        let columns =
            if with_columns { catalog.row_columns_known(&crate::cache::rowkey::relation(table)) } else { None };
        Some(WriteFacts { catalog: catalog.clone(), epoch, table: table.clone(), closure, columns })
    }

    /// Whether these are the current answers for `table` (as written) in `catalog`, with its
    /// columns known when `with_columns`.
    pub fn hold(&self, catalog: &Arc<Catalog>, table: &TableRef, with_columns: bool) -> bool {
        self.current(catalog) && self.table == *table && (!with_columns || self.columns.is_some())
    }

    /// The write closure of the relation named `name` (unqualified, as `Writes::tables` holds it).
    pub fn closure(&self, catalog: &Arc<Catalog>, name: &str) -> Option<WriteClosure> {
        (self.current(catalog) && self.table.name == name).then(|| self.closure.clone())
    }

    /// How `table`'s columns compare, as `Catalog::row_columns_known` answers.
    pub fn columns(&self, catalog: &Arc<Catalog>, table: &TableRef) -> Option<Option<Arc<RowColumns>>> {
        if self.current(catalog) && self.table == *table { self.columns.clone() } else { None }
    }

    fn current(&self, catalog: &Arc<Catalog>) -> bool {
        Arc::ptr_eq(&self.catalog, catalog) && catalog.epoch() == self.epoch
    }
}
