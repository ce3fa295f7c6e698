//! Borrowed views of the server (backend) messages the proxy inspects.

use super::frame::split_cstr;

/// Tags of backend messages.
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION: u8 = b'A';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const NO_DATA: u8 = b'n';
    pub const DATA_ROW: u8 = b'D';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const EMPTY_QUERY: u8 = b'I';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const COPY_IN: u8 = b'G';
    pub const COPY_OUT: u8 = b'H';
    pub const COPY_BOTH: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
}

/// Transaction status byte of ReadyForQuery: `I` idle, `T` in a transaction, `E` failed one.
pub fn ready_status(body: &[u8]) -> Option<u8> {
    body.first().copied().filter(|s| matches!(s, b'I' | b'T' | b'E'))
}

/// ParameterStatus: name and value.
pub fn parameter_status(body: &[u8]) -> Option<(&str, &str)> {
    let (name, rest) = split_cstr(body)?;
    let (value, _) = split_cstr(rest)?;
    Some((std::str::from_utf8(name).ok()?, std::str::from_utf8(value).ok()?))
}

/// The fields of an ErrorResponse or NoticeResponse the proxy looks at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// `V`: non-localized severity (`ERROR`, `FATAL`, `PANIC`), or `S` when `V` is absent.
    pub severity: String,
    /// `C`: SQLSTATE.
    pub code: String,
    /// `M`: primary message.
    pub message: String,
}

pub fn error_fields(body: &[u8]) -> ErrorFields {
    let mut fields = ErrorFields::default();
    let mut rest = body;
    while let Some((&kind, after)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Some((value, after)) = split_cstr(after) else { break };
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            b'V' => fields.severity = value,
            b'S' if fields.severity.is_empty() => fields.severity = value,
            b'C' => fields.code = value,
            b'M' => fields.message = value,
            _ => {}
        }
        rest = after;
    }
    fields
}

/// CommandComplete: the command tag, e.g. `SELECT 3`, `INSERT 0 1`.
pub fn command_tag(body: &[u8]) -> Option<&[u8]> {
    split_cstr(body).map(|(tag, _)| tag)
}

/// BackendKeyData: process id and secret key.
pub fn backend_key(body: &[u8]) -> Option<(i32, i32)> {
    let pid = i32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    let secret = i32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    Some((pid, secret))
}

/// A fingerprint of what a RowDescription (or NoData) says about a statement's result type: each
/// column's name, type OID and type modifier — what Postgres compares before it reports
/// `cached plan must not change result type`. Table OIDs, column numbers and formats are left
/// out (a table dropped and re-created with the same columns is the same result type).
/// `None` for a malformed RowDescription or another message.
pub fn result_shape(tag: u8, body: &[u8]) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    match tag {
        tag::NO_DATA => {
            b"no data".hash(&mut h);
            return Some(h.finish());
        }
        tag::ROW_DESCRIPTION => {}
        _ => return None,
    }
    let count = u16::from_be_bytes(body.get(..2)?.try_into().ok()?);
    count.hash(&mut h);
    let mut rest = &body[2..];
    for _ in 0..count {
        let (name, after) = split_cstr(rest)?;
        // table OID (4), column number (2), type OID (4), type length (2), modifier (4), format (2)
        let fixed = after.get(..18)?;
        name.hash(&mut h);
        fixed[6..10].hash(&mut h);
        fixed[12..16].hash(&mut h);
        rest = &after[18..];
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_prefer_the_non_localized_severity() {
        let body = b"SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        let f = error_fields(body);
        assert_eq!(f.severity, "ERROR");
        assert_eq!(f.code, "42P01");
        assert_eq!(f.message, "relation \"x\" does not exist");
    }

    #[test]
    fn ready_status_rejects_unknown_bytes() {
        assert_eq!(ready_status(b"T"), Some(b'T'));
        assert_eq!(ready_status(b"X"), None);
        assert_eq!(parameter_status(b"TimeZone\0UTC\0"), Some(("TimeZone", "UTC")));
    }

    #[test]
    fn result_shapes_see_names_types_and_modifiers_only() {
        fn row(name: &str, table: u32, ty: u32, typmod: i32, format: i16) -> Vec<u8> {
            let mut b = 1u16.to_be_bytes().to_vec();
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(&table.to_be_bytes());
            b.extend_from_slice(&1i16.to_be_bytes());
            b.extend_from_slice(&ty.to_be_bytes());
            b.extend_from_slice(&4i16.to_be_bytes());
            b.extend_from_slice(&typmod.to_be_bytes());
            b.extend_from_slice(&format.to_be_bytes());
            b
        }
        let shape = |b: Vec<u8>| result_shape(tag::ROW_DESCRIPTION, &b).unwrap();
        let base = shape(row("v", 16384, 23, -1, 0));
        assert_eq!(base, shape(row("v", 99999, 23, -1, 1)), "table OID and format do not count");
        assert_ne!(base, shape(row("v", 16384, 20, -1, 0)), "int4 -> int8");
        assert_ne!(base, shape(row("w", 16384, 23, -1, 0)), "renamed");
        assert_ne!(base, shape(row("v", 16384, 23, 8, 0)), "modifier");
        assert_ne!(base, result_shape(tag::NO_DATA, b"").unwrap());
        assert_eq!(result_shape(tag::ROW_DESCRIPTION, &row("v", 1, 23, -1, 0)[..10]), None);
    }
}
