//! Synthetic messages: the frames the proxy sends on its own behalf.
//!
//! Everything here encodes into a caller-supplied `BytesMut` so several messages can be batched
//! into one write.

use bytes::{BufMut, BytesMut};

/// Write a frame: tag, then the body produced by `body`, with the length patched in.
fn put_frame(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let len_at = out.len();
    out.put_u32(0);
    body(out);
    let len = (out.len() - len_at) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

/// Severity of a synthetic error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// RowDescription of text-format columns: name and type OID each (no table, typmod -1).
pub fn row_description(out: &mut BytesMut, columns: &[(&str, u32)]) {
    put_frame(out, b'T', |b| {
        b.put_u16(columns.len() as u16);
        for (name, type_oid) in columns {
            put_cstr(b, name.as_bytes());
            b.put_u32(0); // table
            b.put_u16(0); // column
            b.put_u32(*type_oid);
            b.put_i16(-1); // size: variable (good enough for text output)
            b.put_i32(-1); // typmod
            b.put_u16(0); // text format
        }
    });
}

/// DataRow of text values (`None`: NULL).
pub fn data_row(out: &mut BytesMut, values: &[Option<&str>]) {
    put_frame(out, b'D', |b| {
        b.put_u16(values.len() as u16);
        for v in values {
            match v {
                Some(v) => {
                    b.put_u32(v.len() as u32);
                    b.put_slice(v.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
    });
}

/// ErrorResponse with severity, SQLSTATE and message (the fields every client reads).
pub fn error_response(out: &mut BytesMut, severity: Severity, code: &str, message: &str) {
    error_response_with(out, severity, code, message, &[]);
}

/// ErrorResponse with more fields after the message, e.g. `(b'R', routine)` for an error that
/// drivers recognize by the server function that raised it.
pub fn error_response_with(out: &mut BytesMut, severity: Severity, code: &str, message: &str, more: &[(u8, &str)]) {
    put_frame(out, b'E', |b| {
        b.put_u8(b'S');
        put_cstr(b, severity.as_str().as_bytes());
        b.put_u8(b'V');
        put_cstr(b, severity.as_str().as_bytes());
        b.put_u8(b'C');
        put_cstr(b, code.as_bytes());
        b.put_u8(b'M');
        put_cstr(b, message.as_bytes());
        for (field, value) in more {
            b.put_u8(*field);
            put_cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    });
}

/// NoticeResponse (severity NOTICE) with SQLSTATE and message.
pub fn notice_response(out: &mut BytesMut, code: &str, message: &str) {
    put_frame(out, b'N', |b| {
        for (field, value) in [(b'S', "NOTICE"), (b'V', "NOTICE"), (b'C', code), (b'M', message)] {
            b.put_u8(field);
            put_cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    });
}

/// CommandComplete with command tag `tag` (`BEGIN`, `COMMIT`, `DEALLOCATE`…).
pub fn command_complete(out: &mut BytesMut, tag: &str) {
    put_frame(out, b'C', |b| put_cstr(b, tag.as_bytes()));
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    put_frame(out, b'Z', |b| b.put_u8(status));
}

pub fn parse_complete(out: &mut BytesMut) {
    put_frame(out, b'1', |_| {});
}

pub fn bind_complete(out: &mut BytesMut) {
    put_frame(out, b'2', |_| {});
}

pub fn close_complete(out: &mut BytesMut) {
    put_frame(out, b'3', |_| {});
}

pub fn authentication_ok(out: &mut BytesMut) {
    put_frame(out, b'R', |b| b.put_i32(0));
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    put_frame(out, b'S', |b| {
        put_cstr(b, name.as_bytes());
        put_cstr(b, value.as_bytes());
    });
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    put_frame(out, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

/// A simple Query message (used for statements the proxy runs itself).
pub fn query(out: &mut BytesMut, sql: &str) {
    put_frame(out, b'Q', |b| put_cstr(b, sql.as_bytes()));
}

/// Parse message: statement name, query text, parameter type OIDs.
pub fn parse(out: &mut BytesMut, name: &[u8], query: &[u8], param_types: &[u32]) {
    put_frame(out, b'P', |b| {
        put_cstr(b, name);
        put_cstr(b, query);
        // Unsigned on the wire, as Postgres reads it (up to 65535).
        b.put_u16(param_types.len() as u16);
        for oid in param_types {
            b.put_u32(*oid);
        }
    });
}

/// Close message for a statement (`b'S'`) or portal (`b'P'`).
pub fn close(out: &mut BytesMut, kind: u8, name: &[u8]) {
    put_frame(out, b'C', |b| {
        b.put_u8(kind);
        put_cstr(b, name);
    });
}

pub fn sync(out: &mut BytesMut) {
    put_frame(out, b'S', |_| {});
}

/// Describe message for a statement (`b'S'`) or portal (`b'P'`).
pub fn describe(out: &mut BytesMut, kind: u8, name: &[u8]) {
    put_frame(out, b'D', |b| {
        b.put_u8(kind);
        put_cstr(b, name);
    });
}

/// Flush message: the server sends what it has buffered without waiting for a Sync.
pub fn flush(out: &mut BytesMut) {
    put_frame(out, b'H', |_| {});
}

/// NoData (a Describe of something that returns no rows).
pub fn no_data(out: &mut BytesMut) {
    put_frame(out, b'n', |_| {});
}

/// Terminate message.
pub fn terminate(out: &mut BytesMut) {
    put_frame(out, b'X', |_| {});
}

/// CancelRequest packet (untagged) for a server process.
pub fn cancel_request(out: &mut BytesMut, pid: i32, secret: i32) {
    out.put_u32(16);
    out.put_u32(super::frame::CANCEL_REQUEST_CODE);
    out.put_i32(pid);
    out.put_i32(secret);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::take_frame;

    #[test]
    fn error_response_round_trips_through_the_frame_reader() {
        let mut out = BytesMut::new();
        error_response(&mut out, Severity::Error, "53300", "pool full");
        let f = take_frame(&mut out, 1 << 20).unwrap().unwrap();
        assert_eq!(f.tag(), b'E');
        assert_eq!(f.body(), b"SERROR\0VERROR\0C53300\0Mpool full\0\0");
    }

    #[test]
    fn empty_messages_have_length_four() {
        let mut out = BytesMut::new();
        parse_complete(&mut out);
        ready_for_query(&mut out, b'T');
        assert_eq!(&out[..], b"1\0\0\0\x04Z\0\0\0\x05T");
    }
}
