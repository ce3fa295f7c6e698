//! The admin console seen from a test: a command's rows as (column, value) lists.

use tokio_postgres::{Client, SimpleQueryMessage};

/// One result row: (column name, text value) in column order.
pub type Row = Vec<(String, Option<String>)>;

/// The rows of a console command (panics with the command if it fails).
pub async fn show(admin: &Client, command: &str) -> Vec<Row> {
    let messages = admin.simple_query(command).await.unwrap_or_else(|e| panic!("{command}: {e}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Column `name` of `row`: `None` when NULL or absent.
pub fn field<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
}

/// Column `name` of `row`, which must be there and not NULL.
pub fn value<'a>(row: &'a [(String, Option<String>)], name: &str) -> &'a str {
    field(row, name).unwrap_or_else(|| panic!("no {name}: {row:?}"))
}

/// Column `name` of `row` as a number.
pub fn number(row: &[(String, Option<String>)], name: &str) -> u64 {
    value(row, name).parse().unwrap_or_else(|e| panic!("{name}: {e}: {row:?}"))
}

/// Column `column` of the first row of `command` whose `key_column` is `key`.
pub async fn lookup(admin: &Client, command: &str, key_column: &str, key: &str, column: &str) -> Option<String> {
    show(admin, command)
        .await
        .iter()
        .find(|r| field(r, key_column) == Some(key))
        .and_then(|r| field(r, column))
        .map(str::to_string)
}
