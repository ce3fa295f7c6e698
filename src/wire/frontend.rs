//! Borrowed views of the client (frontend) messages the proxy inspects.
//!
//! Each view borrows the frame body; nothing is copied. A body that does not parse gives `None`
//! and the caller answers with a protocol-violation error.

use super::frame::split_cstr;

/// Tags of frontend messages.
pub mod tag {
    pub const QUERY: u8 = b'Q';
    pub const PARSE: u8 = b'P';
    pub const BIND: u8 = b'B';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const CLOSE: u8 = b'C';
    pub const SYNC: u8 = b'S';
    pub const FLUSH: u8 = b'H';
    pub const TERMINATE: u8 = b'X';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const PASSWORD: u8 = b'p';
}

/// Query: the SQL text (without the trailing NUL).
pub fn query_text(body: &[u8]) -> Option<&[u8]> {
    let (text, _) = split_cstr(body)?;
    Some(text)
}

/// Parse: statement name, query text, parameter type OIDs.
#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a [u8],
    pub query: &'a [u8],
    pub param_types: Vec<u32>,
}

pub fn parse(body: &[u8]) -> Option<Parse<'_>> {
    let (name, rest) = split_cstr(body)?;
    let (query, rest) = split_cstr(rest)?;
    // Counts are unsigned 16-bit on the wire, as Postgres reads them (up to 65535 parameters).
    let n = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let oids = rest.get(2..2 + 4 * n)?;
    let param_types = oids.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect();
    Some(Parse { name, query, param_types })
}

/// Bind: portal and statement names, and where the parameter section starts and ends so the
/// parameters (formats + values) can be hashed as raw bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    /// Parameter format codes, parameter values and result format codes, exactly as sent.
    pub params_and_formats: &'a [u8],
    /// Result-column format codes.
    pub result_formats: Vec<i16>,
}

pub fn bind(body: &[u8]) -> Option<Bind<'_>> {
    let (portal, rest) = split_cstr(body)?;
    let (statement, rest) = split_cstr(rest)?;
    let params_and_formats = rest;
    let mut r = Reader(rest);
    let nfmt = r.count()?;
    for _ in 0..nfmt {
        r.i16()?;
    }
    let nparams = r.count()?;
    for _ in 0..nparams {
        let len = r.i32()?;
        if len > 0 {
            r.take(len as usize)?;
        }
    }
    let nres = r.count()?;
    let mut result_formats = Vec::with_capacity(nres);
    for _ in 0..nres {
        result_formats.push(r.i16()?);
    }
    Some(Bind { portal, statement, params_and_formats, result_formats })
}

/// Whether a Bind body names the unnamed statement, read without decoding the rest.
pub fn bind_is_unnamed(body: &[u8]) -> bool {
    split_cstr(body).is_some_and(|(_portal, rest)| rest.first() == Some(&0))
}

/// The parameters of a Bind as text: `None` for NULL or a value that is not valid UTF-8. A
/// binary-format value is taken as its bytes: the binary form of `text`, `varchar` and `name` is
/// the string itself (drivers such as tokio-postgres send text parameters in binary). For the
/// text arguments this is read for (`set_config($1, $2, …)`), a value of another type makes
/// Postgres refuse the call, so nothing is followed from it.
pub fn bind_text_params(b: &Bind<'_>) -> Vec<Option<String>> {
    // Text and binary are read alike (see above).
    let values = bind_values(b.params_and_formats).unwrap_or_default();
    values.iter().map(|v| v.value.and_then(|v| std::str::from_utf8(v).ok()).map(str::to_string)).collect()
}

/// One Bind parameter: its format and bytes (`None`: NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindValue<'a> {
    pub binary: bool,
    pub value: Option<&'a [u8]>,
}

/// The parameters of a Bind, from its body after the portal and statement names
/// ([`Bind::params_and_formats`]); `None` when malformed.
pub fn bind_values(params_and_formats: &[u8]) -> Option<Vec<BindValue<'_>>> {
    let mut r = Reader(params_and_formats);
    let nfmt = r.count()?;
    let formats: Vec<i16> = (0..nfmt).map(|_| r.i16()).collect::<Option<_>>()?;
    let n = r.count()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let len = r.i32()?;
        let value = if len < 0 { None } else { Some(r.take(len as usize)?) };
        let format = match formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => *many.get(i)?,
        };
        out.push(BindValue { binary: format == 1, value });
    }
    Some(out)
}

/// Describe or Close target: `b'S'` statement or `b'P'` portal, and its name.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: u8,
    pub name: &'a [u8],
}

pub fn target(body: &[u8]) -> Option<Target<'_>> {
    let kind = *body.first()?;
    if kind != b'S' && kind != b'P' {
        return None;
    }
    let (name, _) = split_cstr(&body[1..])?;
    Some(Target { kind, name })
}

/// Execute: portal name and the row limit (0 = all rows).
#[derive(Debug, PartialEq, Eq)]
pub struct Execute<'a> {
    pub portal: &'a [u8],
    pub max_rows: i32,
}

pub fn execute(body: &[u8]) -> Option<Execute<'_>> {
    let (portal, rest) = split_cstr(body)?;
    let max_rows = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    Some(Execute { portal, max_rows })
}

/// A cursor over a body, for the few fixed-width fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    /// A count of formats or parameters: unsigned 16-bit, as Postgres reads it (up to 65535).
    fn count(&mut self) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_message_fields() {
        let body = b"s1\0select $1\0\0\x01\0\0\0\x17";
        let p = parse(body).unwrap();
        assert_eq!(p.name, b"s1");
        assert_eq!(p.query, b"select $1");
        assert_eq!(p.param_types, vec![23]);
        assert_eq!(parse(b"s1\0select\0\0\x02\0\0\0\x17"), None, "truncated OID list");
        // Counts are unsigned, as Postgres reads them: 40,000 types.
        let mut big = b"\0select\0".to_vec();
        big.extend_from_slice(&40_000u16.to_be_bytes());
        big.extend(std::iter::repeat_n([0, 0, 0, 23], 40_000).flatten());
        assert_eq!(parse(&big).unwrap().param_types.len(), 40_000);
    }

    #[test]
    fn bind_message_fields() {
        // portal "", statement "s1", 1 format (binary), 2 params: 4 bytes and NULL, 1 result fmt.
        let body = b"\0s1\0\0\x01\0\x01\0\x02\0\0\0\x04abcd\xff\xff\xff\xff\0\x01\0\x01";
        let b = bind(body).unwrap();
        assert_eq!(b.portal, b"");
        assert_eq!(b.statement, b"s1");
        assert_eq!(b.result_formats, vec![1]);
        assert_eq!(b.params_and_formats, &body[4..]);
        assert_eq!(bind(&body[..body.len() - 1]), None);
        assert!(!bind_is_unnamed(body));
        assert!(bind_is_unnamed(b"\0\0\0\0\0\0\0\0"), "unnamed portal and statement");
        assert!(bind_is_unnamed(b"p1\0\0\0\0"), "named portal, unnamed statement");
        assert!(!bind_is_unnamed(b"p1\0"), "statement name missing");
        assert!(!bind_is_unnamed(b"\0s"), "unterminated statement name");
    }

    #[test]
    fn bind_parameters_as_text() {
        // no format codes (all text), 2 params: "off" and NULL, no result formats
        let body = b"\0s\0\0\0\0\x02\0\0\0\x03off\xff\xff\xff\xff\0\0";
        let b = bind(body).unwrap();
        assert_eq!(bind_text_params(&b), vec![Some("off".to_string()), None]);
        // one format code for all (binary): text's binary form is its bytes; not UTF-8 is None
        let body = b"\0s\0\0\x01\0\x01\0\x02\0\0\0\x02on\0\0\0\x01\xff\0\0";
        let b = bind(body).unwrap();
        assert_eq!(bind_text_params(&b), vec![Some("on".to_string()), None]);
    }

    #[test]
    fn describe_and_execute() {
        assert_eq!(target(b"Sfoo\0"), Some(Target { kind: b'S', name: b"foo" }));
        assert_eq!(target(b"Xfoo\0"), None);
        assert_eq!(execute(b"\0\0\0\0\x0a"), Some(Execute { portal: b"", max_rows: 10 }));
    }
}
