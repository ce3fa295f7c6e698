//! Values of any type for tokio-postgres: a column read as the bytes Postgres sent, and a
//! parameter that is NULL whatever its type (for comparing answers byte for byte).

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// Any column's raw bytes, whatever its type (`Option<Raw>`: `None` for NULL).
pub struct Raw(pub Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
pub struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}
