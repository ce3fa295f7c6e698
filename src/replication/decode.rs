//! Decoding what a logical walsender sends inside CopyData: the replication envelope (XLogData
//! `w`, primary keepalive `k`) and, inside XLogData, the `pgoutput` messages of protocol
//! version 1 (Begin, Commit, Relation, Insert, Update, Delete, Truncate; Origin, Type and
//! logical Message are read and ignored). Pure functions over borrowed bytes: no I/O.
//!
//! Malformed input is an error, never a panic: the stream is then treated as lost (which
//! flushes the database's cache), not half-applied. Also here: the standby status update (`r`)
//! pgcached sends back.

use bytes::{BufMut, BytesMut};

/// A WAL position.
pub type Lsn = u64;

/// What could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("replication message truncated ({0})")]
    Truncated(&'static str),
    #[error("unknown replication message {0:?}")]
    UnknownMessage(char),
    #[error("unknown tuple column kind {0:?}")]
    UnknownColumn(char),
    #[error("unknown tuple marker {0:?}")]
    UnknownTuple(char),
}

/// A CopyData payload from the walsender.
#[derive(Debug, PartialEq, Eq)]
pub enum CopyMessage<'a> {
    /// `w`: a pgoutput message starting at `start`.
    XLogData { start: Lsn, data: &'a [u8] },
    /// `k`: the walsender has sent everything up to `end`; `reply`: answer now or be dropped.
    Keepalive { end: Lsn, reply: bool },
}

/// One column of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    /// A TOASTed value the change did not touch: not sent.
    Unchanged,
    /// The column's text output.
    Text(&'a [u8]),
}

/// A column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the key an old tuple `K` carries).
    pub key: bool,
}

/// A Relation message: what a relation id means from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<Column>,
}

/// The old row of an Update or Delete, as the replica identity allows.
#[derive(Debug, PartialEq, Eq)]
pub enum OldRow<'a> {
    /// `K`: the identity's columns; the others are sent as NULL and mean "unknown".
    Key(Vec<Value<'a>>),
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Full(Vec<Value<'a>>),
}

/// A pgoutput message.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Begin {
        final_lsn: Lsn,
    },
    /// `commit_time`: microseconds since 2000-01-01 (Postgres's epoch), by the server's clock.
    Commit {
        end_lsn: Lsn,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Value<'a>>,
    },
    Update {
        relation: u32,
        old: Option<OldRow<'a>>,
        new: Vec<Value<'a>>,
    },
    Delete {
        relation: u32,
        old: OldRow<'a>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Origin, Type, logical Message: nothing to invalidate.
    Other,
}

/// A cursor over a message body.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let end = self.buf.iter().position(|b| *b == 0).ok_or(DecodeError::Truncated(self.what))?;
        let s = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
}

/// Decode a CopyData body from the walsender.
pub fn copy_message(body: &[u8]) -> Result<CopyMessage<'_>, DecodeError> {
    let mut r = Reader { buf: body, what: "CopyData" };
    match r.u8()? {
        b'w' => {
            let start = r.u64()?;
            let _end = r.u64()?;
            let _sent_at = r.u64()?;
            Ok(CopyMessage::XLogData { start, data: r.buf })
        }
        b'k' => {
            let end = r.u64()?;
            let _sent_at = r.u64()?;
            Ok(CopyMessage::Keepalive { end, reply: r.u8()? == 1 })
        }
        other => Err(DecodeError::UnknownMessage(char::from(other))),
    }
}

/// Decode a pgoutput message (protocol version 1).
pub fn message(data: &[u8]) -> Result<Message<'_>, DecodeError> {
    let mut r = Reader { buf: data, what: "pgoutput" };
    let tag = r.u8()?;
    r.what = match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'R' => "Relation",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        _ => "pgoutput",
    };
    Ok(match tag {
        b'B' => {
            let final_lsn = r.u64()?;
            r.take(8 + 4)?; // commit time, xid
            Message::Begin { final_lsn }
        }
        b'C' => {
            r.take(1 + 8)?; // flags, commit lsn
            let end_lsn = r.u64()?;
            let commit_time = i64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
            Message::Commit { end_lsn, commit_time }
        }
        b'R' => Message::Relation(relation(&mut r)?),
        b'I' => {
            let relation = r.u32()?;
            expect_new(&mut r)?;
            Message::Insert { relation, new: tuple(&mut r)? }
        }
        b'U' => {
            let relation = r.u32()?;
            let old = match r.u8()? {
                b'K' => Some(OldRow::Key(tuple(&mut r)?)),
                b'O' => Some(OldRow::Full(tuple(&mut r)?)),
                b'N' => None,
                other => return Err(DecodeError::UnknownTuple(char::from(other))),
            };
            if old.is_some() {
                expect_new(&mut r)?;
            }
            Message::Update { relation, old, new: tuple(&mut r)? }
        }
        b'D' => {
            let relation = r.u32()?;
            let old = match r.u8()? {
                b'K' => OldRow::Key(tuple(&mut r)?),
                b'O' => OldRow::Full(tuple(&mut r)?),
                other => return Err(DecodeError::UnknownTuple(char::from(other))),
            };
            Message::Delete { relation, old }
        }
        b'T' => {
            let n = r.u32()?;
            r.take(1)?; // CASCADE / RESTART IDENTITY
            let relations = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        b'O' | b'Y' | b'M' => Message::Other,
        other => return Err(DecodeError::UnknownMessage(char::from(other))),
    })
}

fn expect_new(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u8()? {
        b'N' => Ok(()),
        other => Err(DecodeError::UnknownTuple(char::from(other))),
    }
}

fn relation(r: &mut Reader<'_>) -> Result<Relation, DecodeError> {
    let id = r.u32()?;
    let schema = r.cstr()?;
    let name = r.cstr()?;
    let replica_identity = r.u8()?;
    let n = r.i16()?;
    let mut columns = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for _ in 0..n {
        let flags = r.u8()?;
        let name = r.cstr()?;
        let type_oid = r.u32()?;
        let _typmod = r.u32()?;
        columns.push(Column { name, type_oid, key: flags & 1 == 1 });
    }
    Ok(Relation { id, schema, name, replica_identity, columns })
}

fn tuple<'a>(r: &mut Reader<'a>) -> Result<Vec<Value<'a>>, DecodeError> {
    let n = r.i16()?;
    let mut values = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for _ in 0..n {
        values.push(match r.u8()? {
            b'n' => Value::Null,
            b'u' => Value::Unchanged,
            b't' => {
                let len = r.u32()?;
                Value::Text(r.take(usize::try_from(len).map_err(|_| DecodeError::Truncated(r.what))?)?)
            }
            other => return Err(DecodeError::UnknownColumn(char::from(other))),
        });
    }
    Ok(values)
}

/// Microseconds between the Unix epoch and Postgres's (2000-01-01).
pub const PG_EPOCH_MICROS: u64 = 946_684_800_000_000;

/// A standby status update (`r`) as a CopyData frame: everything up to `flushed` is applied
/// (written, flushed and applied alike); `reply`: ask for a keepalive back at once.
pub fn status_update(out: &mut BytesMut, flushed: Lsn, reply: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    out.put_u8(b'd');
    out.put_u32(4 + 1 + 8 * 4 + 1);
    out.put_u8(b'r');
    out.put_u64(flushed);
    out.put_u64(flushed);
    out.put_u64(flushed);
    out.put_u64(now.saturating_sub(PG_EPOCH_MICROS));
    out.put_u8(u8::from(reply));
}

/// An LSN as Postgres prints it (`16/B374D848`).
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// An LSN as Postgres prints it, read back.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
