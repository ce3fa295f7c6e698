//! A result set of the admin console: typed columns (named as PgBouncer names the same
//! concept) and rows of text values, written as RowDescription, DataRows and CommandComplete.

use bytes::BytesMut;

use crate::wire::build;

/// Type OIDs of the columns.
pub const TEXT: u32 = 25;
pub const INT8: u32 = 20;
pub const FLOAT8: u32 = 701;
pub const BOOL: u32 = 16;

/// A result set: typed columns and rows of text values.
pub struct ResultSet {
    columns: Vec<(&'static str, u32)>,
    rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    pub fn new(columns: &[(&'static str, u32)]) -> ResultSet {
        ResultSet { columns: columns.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, values: Vec<Option<String>>) {
        debug_assert_eq!(values.len(), self.columns.len());
        self.rows.push(values);
    }

    pub fn write(&self, out: &mut BytesMut) {
        build::row_description(out, &self.columns);
        for row in &self.rows {
            build::data_row(out, &row.iter().map(Option::as_deref).collect::<Vec<_>>());
        }
        build::command_complete(out, &format!("SHOW {}", self.rows.len()));
    }
}

/// A value in its text form.
pub fn text(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}
