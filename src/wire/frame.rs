//! Frame codec: split a buffer into whole frames without copying them.
//!
//! A tagged frame is `tag: u8, len: u32 (includes itself), body`. The startup packet has no tag:
//! `len: u32, code: u32, body`. Incomplete input is normal (`Ok(None)`), a length outside the
//! caps is an error, and the length is checked before a single byte is reserved for the body.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Largest startup packet accepted, as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Protocol 3.0 as sent in a StartupMessage.
pub const PROTOCOL_V3: u32 = 196_608;
/// Request codes that share the startup packet's layout.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("invalid message length {len} for message type '{tag}'", tag = char::from(*tag))]
    BadLength { tag: u8, len: usize },
    #[error("message of type '{tag}' is {len} bytes, over the limit of {max}", tag = char::from(*tag))]
    TooLarge { tag: u8, len: usize, max: usize },
    #[error("invalid startup packet length {0}")]
    BadStartupLength(usize),
}

/// One whole tagged frame: `bytes` holds the original bytes, tag and length included, so it can
/// be forwarded untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// Wrap bytes that are known to hold exactly one whole frame.
    pub fn from_bytes(bytes: Bytes) -> Frame {
        debug_assert!(bytes.len() >= 5);
        Frame { bytes }
    }

    pub fn tag(&self) -> u8 {
        self.bytes[0]
    }

    /// The body, after tag and length.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }

    /// The whole frame as received (tag, length, body).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Frame {
    /// This frame, borrowed.
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef { bytes: &self.bytes }
    }
}

/// One whole tagged frame borrowed from a read buffer: frames that are only looked at and copied
/// on need not be split off and reference-counted one by one (see [`peek_frame`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    bytes: &'a [u8],
}

impl<'a> FrameRef<'a> {
    pub fn tag(&self) -> u8 {
        self.bytes[0]
    }

    /// The body, after tag and length.
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[5..]
    }

    /// The whole frame as received (tag, length, body).
    pub fn as_slice(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The whole tagged frame at the start of `buf`, borrowed, or `Ok(None)` if it is not all there
/// yet (then see [`reserve_for_next`]). The length is checked against `max` first.
pub fn peek_frame(buf: &[u8], max: usize) -> Result<Option<FrameRef<'_>>, FrameError> {
    match peek_header(buf, max)? {
        Some((_, total)) if buf.len() >= total => Ok(Some(FrameRef { bytes: &buf[..total] })),
        _ => Ok(None),
    }
}

/// The free room a read buffer keeps before each read (see [`keep_read_room`]).
pub const READ_ROOM: usize = 4096;

/// Make sure the next read into `buf` has [`READ_ROOM`] bytes to fill. A buffer whose frames
/// were split off keeps only the tail of its allocation: with 29 bytes left, a 62-byte Query
/// takes two reads (two syscalls and a partial frame). Cheap when there is room; otherwise
/// the allocation is reused from its start when nothing else holds it, else a new one is made.
#[inline]
pub fn keep_read_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_ROOM {
        buf.reserve(READ_ROOM);
    }
}

/// Reserve room in `buf` for the rest of the partial frame at its start, if its header is there
/// (its length was checked by [`peek_frame`] already).
pub fn reserve_for_next(buf: &mut BytesMut) {
    if let Ok(Some((_, total))) = peek_header(buf, usize::MAX)
        && total > buf.len()
    {
        buf.reserve(total - buf.len());
    }
}

/// The header of the next tagged frame in `buf`, if 5 bytes are there: `(tag, total_len)` where
/// `total_len` counts the tag byte too. Checks the length against `max` first.
pub fn peek_header(buf: &[u8], max: usize) -> Result<Option<(u8, usize)>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 {
        return Err(FrameError::BadLength { tag, len });
    }
    if len > max {
        return Err(FrameError::TooLarge { tag, len, max });
    }
    Ok(Some((tag, len + 1)))
}

/// Take the next whole tagged frame off `buf`, or `Ok(None)` if it is not all there yet. When
/// the header is there but the body is not, capacity for the rest is reserved (the length was
/// already checked against `max`).
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some((_, total)) = peek_header(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(Frame { bytes: buf.split_to(total).freeze() }))
}

/// A startup-phase packet (no tag byte): the 4-byte request code and the body after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupPacket {
    pub code: u32,
    pub body: Bytes,
}

/// Take a startup-phase packet off `buf` (capped at [`MAX_STARTUP_LEN`]).
pub fn take_startup(buf: &mut BytesMut) -> Result<Option<StartupPacket>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(FrameError::BadStartupLength(len));
    }
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut packet = buf.split_to(len);
    packet.advance(4);
    let code = packet.get_u32();
    Ok(Some(StartupPacket { code, body: packet.freeze() }))
}

/// Startup parameters (`name\0value\0…\0`) of a StartupMessage body. Returns `None` when the
/// body is malformed (missing terminators, non-UTF-8 names or values).
pub fn startup_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut rest = body;
    loop {
        let (name, after) = split_cstr(rest)?;
        if name.is_empty() {
            return Some(params);
        }
        let (value, after) = split_cstr(after)?;
        params.push((String::from_utf8(name.to_vec()).ok()?, String::from_utf8(value.to_vec()).ok()?));
        rest = after;
    }
}

/// The `name=value` settings of the libpq `options` startup parameter, parsed as the backend
/// does: whitespace-separated words (a backslash escapes the next character), from `-c name=value`,
/// `-cname=value` and `--name=value` switches; dashes in names become underscores.
pub fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("--") {
            Some(rest.to_string())
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((n, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            out.push((n.replace('-', "_"), v.to_string()));
        }
    }
    out
}

/// Split a NUL-terminated string off the front of `buf`.
pub fn split_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    // memchr: statement texts are long, and this runs for every Parse and Query.
    let nul = memchr::memchr(0, buf)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn incomplete_input_is_not_an_error() {
        let whole = frame(b'Q', b"select 1\0");
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(take_frame(&mut buf, 1024), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed");
        }
        let mut buf = BytesMut::from(&whole[..]);
        let f = take_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(f.tag(), b'Q');
        assert_eq!(f.body(), b"select 1\0");
        assert_eq!(f.as_bytes().as_ref(), &whole[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn two_frames_in_one_read_come_out_in_order() {
        let mut bytes = frame(b'P', b"\0select 1\0\0\0");
        bytes.extend(frame(b'S', b""));
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(take_frame(&mut buf, 1024).unwrap().unwrap().tag(), b'P');
        assert_eq!(take_frame(&mut buf, 1024).unwrap().unwrap().tag(), b'S');
        assert_eq!(take_frame(&mut buf, 1024), Ok(None));
    }

    #[test]
    fn borrowed_frames_walk_a_buffer_and_a_partial_one_gets_room_reserved() {
        let mut bytes = frame(b'T', b"row description");
        bytes.extend(frame(b'D', b"\0\x01\xff"));
        let next = frame(b'C', b"SELECT 1\0");
        bytes.extend(&next[..3]);
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some(f) = peek_frame(&bytes[at..], 1024).unwrap() {
            seen.push((f.tag(), f.body().to_vec()));
            at += f.len();
        }
        assert_eq!(seen, vec![(b'T', b"row description".to_vec()), (b'D', b"\0\x01\xff".to_vec())]);
        let mut rest = BytesMut::from(&bytes[at..]);
        assert_eq!(peek_frame(&rest, 1024), Ok(None), "header incomplete");
        rest.extend_from_slice(&next[3..6]);
        assert_eq!(peek_frame(&rest, 1024), Ok(None), "body incomplete");
        reserve_for_next(&mut rest);
        assert!(rest.capacity() >= next.len());
        assert!(matches!(peek_frame(&[b'D', 0x7f, 0, 0, 0], 1024), Err(FrameError::TooLarge { .. })));
        assert!(matches!(peek_frame(&[b'D', 0, 0, 0, 1], 1024), Err(FrameError::BadLength { .. })));
    }

    #[test]
    fn huge_length_is_refused_before_allocating() {
        let mut buf = BytesMut::from(&[b'Q', 0x7f, 0xff, 0xff, 0xff][..]);
        let cap_before = buf.capacity();
        assert!(matches!(take_frame(&mut buf, 1 << 20), Err(FrameError::TooLarge { tag: b'Q', .. })));
        assert_eq!(buf.capacity(), cap_before);
    }

    #[test]
    fn length_below_four_is_malformed() {
        let mut buf = BytesMut::from(&[b'Q', 0, 0, 0, 3][..]);
        assert_eq!(take_frame(&mut buf, 1024), Err(FrameError::BadLength { tag: b'Q', len: 3 }));
    }

    #[test]
    fn startup_packet_is_capped_at_10000_bytes() {
        let mut buf = BytesMut::from(&10_001u32.to_be_bytes()[..]);
        assert_eq!(take_startup(&mut buf), Err(FrameError::BadStartupLength(10_001)));
        let mut buf = BytesMut::from(&4u32.to_be_bytes()[..]);
        assert_eq!(take_startup(&mut buf), Err(FrameError::BadStartupLength(4)));
    }

    #[test]
    fn a_read_buffer_drained_by_its_frames_gets_room_for_a_whole_next_read() {
        let mut buf = BytesMut::with_capacity(READ_ROOM);
        let query = frame(b'Q', &[b'x'; 57]);
        let mut frames = Vec::new();
        while buf.capacity() - buf.len() >= query.len() {
            buf.extend_from_slice(&query);
            frames.push(take_frame(&mut buf, 1 << 20).unwrap().unwrap());
        }
        assert!(buf.capacity() - buf.len() < query.len(), "a Query would now arrive in two reads");
        keep_read_room(&mut buf);
        assert!(buf.capacity() - buf.len() >= READ_ROOM);
        assert!(frames.iter().all(|f| f.as_bytes() == query.as_slice()), "the frames taken are intact");
    }

    #[test]
    fn startup_options_follow_the_backend_rules() {
        let got = startup_options("-c search_path=a\\ b --statement-timeout=5s -cwork_mem=64MB junk");
        let want = [("search_path", "a b"), ("statement_timeout", "5s"), ("work_mem", "64MB")];
        assert_eq!(got, want.map(|(n, v)| (n.to_string(), v.to_string())));
    }

    #[test]
    fn startup_message_parameters_are_read() {
        let mut body = Vec::new();
        body.extend_from_slice(&PROTOCOL_V3.to_be_bytes());
        body.extend_from_slice(b"user\0alice\0database\0app\0\0");
        let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        pkt.extend(body);
        let mut buf = BytesMut::from(&pkt[..]);
        let p = take_startup(&mut buf).unwrap().unwrap();
        assert_eq!(p.code, PROTOCOL_V3);
        let params = startup_params(&p.body).unwrap();
        assert_eq!(params, vec![("user".into(), "alice".into()), ("database".into(), "app".into())]);
        assert_eq!(startup_params(b"user\0alice"), None, "missing terminator is malformed");
    }
}
