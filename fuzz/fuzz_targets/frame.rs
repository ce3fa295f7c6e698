//! Fuzz target: the frame codec and the message decoders.
//!
//! Input: `[max_hi, max_lo, n, sizes[n % 8]…, stream…]`. The stream is fed to a read buffer in
//! chunks whose sizes cycle through `sizes` (1 byte each when there are none), and after every
//! chunk the whole frames are taken off, as the proxy's read loops do. Checked:
//! - the tagged codec (`take_frame`, `peek_frame`, `peek_header`, `reserve_for_next`) never
//!   returns a frame over `max`, consumes exactly the frame it returns and nothing on
//!   `Ok(None)` or an error, agrees with itself, and splits the stream the same way however it
//!   is chunked (compared with one pass of `peek_frame` over the whole stream);
//! - the untagged startup codec (`take_startup`) likewise, with its 8..=10000 cap;
//! - every frame body goes through every frontend and backend decoder, which must not panic and
//!   must describe bytes that are really in the body.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcached::wire::frame::{
    FrameError, MAX_STARTUP_LEN, peek_frame, peek_header, reserve_for_next, split_cstr, startup_options,
    startup_params, take_frame, take_startup,
};
use pgcached::wire::{backend, frontend};

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo, n], rest)) = data.split_first_chunk::<3>() else { return };
    let max = usize::from(u16::from_be_bytes([hi, lo]));
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let chunks = Chunks { sizes, at: 0 };

    let whole = frames_in_one_pass(stream, max);
    let chunked = tagged_frames_chunked(stream, max, chunks.clone());
    assert_eq!(whole, chunked, "chunking changed how the stream splits into frames");
    for frame in &whole.frames {
        decode_everything(frame[0], &frame[5..]);
    }
    startup_packets_chunked(stream, chunks);
});

/// Chunk sizes cycling through the fuzzer's bytes (0 stands for 256).
#[derive(Clone)]
struct Chunks<'a> {
    sizes: &'a [u8],
    at: usize,
}

impl Chunks<'_> {
    fn next_len(&mut self) -> usize {
        if self.sizes.is_empty() {
            return 1;
        }
        let s = self.sizes[self.at % self.sizes.len()];
        self.at += 1;
        if s == 0 { 256 } else { usize::from(s) }
    }
}

/// How a stream splits: its whole frames, then an error, or the length of an incomplete tail.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    frames: Vec<Vec<u8>>,
    end: Result<usize, FrameError>,
}

/// The reference: walk the whole stream with `peek_frame`.
fn frames_in_one_pass(stream: &[u8], max: usize) -> Split {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        match peek_frame(&stream[at..], max) {
            Ok(Some(f)) => {
                assert_eq!(f.as_slice(), &stream[at..at + f.len()]);
                frames.push(f.as_slice().to_vec());
                at += f.len();
            }
            Ok(None) => return Split { frames, end: Ok(stream.len() - at) },
            Err(e) => return Split { frames, end: Err(e) },
        }
    }
}

/// Feed `stream` in chunks and take whole frames with `take_frame` after each one, checking
/// what each call consumed.
fn tagged_frames_chunked(stream: &[u8], max: usize, mut chunks: Chunks<'_>) -> Split {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut taken = 0;
    let mut frames = Vec::new();
    loop {
        let before = buf.clone();
        let peeked = peek_frame(&before, max).map(|f| f.map(|f| f.as_slice().to_vec()));
        let header = peek_header(&before, max);
        match take_frame(&mut buf, max) {
            Ok(Some(frame)) => {
                let bytes = frame.as_bytes().to_vec();
                let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
                assert!(len <= max, "frame of {len} bytes over the max {max}");
                assert!(len >= 4);
                assert_eq!(bytes.len(), len + 1, "the frame is exactly what its header says");
                assert_eq!(frame.len(), bytes.len());
                assert_eq!(frame.tag(), bytes[0]);
                assert_eq!(frame.body(), &bytes[5..]);
                assert_eq!(frame.as_frame_ref().as_slice(), &bytes[..]);
                assert_eq!(&bytes[..], &stream[taken..taken + bytes.len()], "frames come off in order");
                assert_eq!(&buf[..], &before[bytes.len()..], "exactly the frame was consumed");
                assert_eq!(peeked, Ok(Some(bytes.clone())), "peek_frame agrees with take_frame");
                assert_eq!(header, Ok(Some((bytes[0], bytes.len()))));
                taken += bytes.len();
                frames.push(bytes);
                continue;
            }
            Ok(None) => {
                assert_eq!(buf, before, "nothing consumed from an incomplete frame");
                assert_eq!(peeked, Ok(None));
                match header {
                    Ok(None) => assert!(before.len() < 5),
                    Ok(Some((_, total))) => {
                        assert!(total > before.len(), "a whole frame was left in the buffer");
                        assert!(total <= max + 1);
                        reserve_for_next(&mut buf);
                        assert!(buf.capacity() >= total, "room reserved for the rest of the frame");
                    }
                    Err(e) => panic!("take_frame waits on a header peek_header refuses: {e}"),
                }
            }
            Err(e) => {
                assert_eq!(buf, before, "nothing consumed by an error");
                assert_eq!(peeked.as_ref().err(), Some(&e), "peek_frame agrees with take_frame");
                assert_eq!(header.as_ref().err(), Some(&e), "peek_header agrees with take_frame");
                let len = u32::from_be_bytes(before[1..5].try_into().unwrap()) as usize;
                match e {
                    FrameError::BadLength { tag, len: l } => assert!(tag == before[0] && l == len && len < 4),
                    FrameError::TooLarge { tag, len: l, max: m } => {
                        assert!(tag == before[0] && l == len && len > max && m == max)
                    }
                    FrameError::BadStartupLength(_) => panic!("startup error from the tagged codec"),
                }
                return Split { frames, end: Err(e) };
            }
        }
        if fed == stream.len() {
            assert_eq!(taken + buf.len(), stream.len());
            return Split { frames, end: Ok(buf.len()) };
        }
        let n = chunks.next_len().min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
    }
}

/// The same stream read as startup-phase packets (untagged), chunked the same way.
fn startup_packets_chunked(stream: &[u8], mut chunks: Chunks<'_>) {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut taken = 0;
    loop {
        let before = buf.clone();
        match take_startup(&mut buf) {
            Ok(Some(packet)) => {
                let len = u32::from_be_bytes(before[..4].try_into().unwrap()) as usize;
                assert!((8..=MAX_STARTUP_LEN).contains(&len));
                assert_eq!(packet.body.len(), len - 8);
                assert_eq!(packet.code.to_be_bytes(), before[4..8]);
                assert_eq!(&packet.body[..], &before[8..len]);
                assert_eq!(&buf[..], &before[len..], "exactly the packet was consumed");
                assert_eq!(&before[..len], &stream[taken..taken + len]);
                taken += len;
                if let Some(params) = startup_params(&packet.body) {
                    assert!(params.iter().all(|(n, _)| !n.is_empty() && !n.contains('\0')));
                }
                continue;
            }
            Ok(None) => {
                assert_eq!(buf, before, "nothing consumed from an incomplete packet");
                if before.len() >= 4 {
                    let len = u32::from_be_bytes(before[..4].try_into().unwrap()) as usize;
                    assert!(len > before.len() && (8..=MAX_STARTUP_LEN).contains(&len));
                }
            }
            Err(FrameError::BadStartupLength(len)) => {
                assert_eq!(buf, before, "nothing consumed by an error");
                assert_eq!(len, u32::from_be_bytes(before[..4].try_into().unwrap()) as usize);
                assert!(!(8..=MAX_STARTUP_LEN).contains(&len));
                return;
            }
            Err(e) => panic!("tagged error from the startup codec: {e}"),
        }
        if fed == stream.len() {
            assert_eq!(taken + buf.len(), stream.len());
            return;
        }
        let n = chunks.next_len().min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
    }
}

/// Whether `part` lies inside `whole` (the decoders return borrowed slices of the body).
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// Run every decoder on `body`, whatever the tag, and check what the successful ones return.
fn decode_everything(tag: u8, body: &[u8]) {
    if let Some(text) = frontend::query_text(body) {
        assert!(body.starts_with(text) && body.get(text.len()) == Some(&0));
    }
    if let Some(p) = frontend::parse(body) {
        let mut again = [p.name, b"\0", p.query, b"\0"].concat();
        again.extend_from_slice(&(p.param_types.len() as i16).to_be_bytes());
        p.param_types.iter().for_each(|t| again.extend_from_slice(&t.to_be_bytes()));
        assert!(body.starts_with(&again), "Parse fields re-encode to the body's start");
    }
    if let Some(b) = frontend::bind(body) {
        assert!(within(b.portal, body) && within(b.statement, body));
        assert!(!b.portal.contains(&0) && !b.statement.contains(&0));
        assert!(body.ends_with(b.params_and_formats));
        assert_eq!(frontend::bind_is_unnamed(body), b.statement.is_empty());
        let text = frontend::bind_text_params(&b);
        if let Some(values) = frontend::bind_values(b.params_and_formats) {
            assert_eq!(text.len(), values.len());
            assert!(values.iter().all(|v| v.value.is_none_or(|v| within(v, body))));
        }
    } else {
        let _ = frontend::bind_is_unnamed(body);
    }
    if let Some(t) = frontend::target(body) {
        assert!(matches!(t.kind, b'S' | b'P') && body[0] == t.kind);
        assert_eq!(split_cstr(&body[1..]).map(|(n, _)| n), Some(t.name));
    }
    if let Some(e) = frontend::execute(body) {
        let again = [e.portal, b"\0", &e.max_rows.to_be_bytes()].concat();
        assert!(body.starts_with(&again), "Execute fields re-encode to the body's start");
    }

    if let Some(s) = backend::ready_status(body) {
        assert_eq!(body[0], s);
    }
    let _ = backend::parameter_status(body);
    let _ = backend::error_fields(body);
    if let Some(t) = backend::command_tag(body) {
        assert!(body.starts_with(t));
    }
    assert_eq!(backend::backend_key(body).is_some(), body.len() >= 8);
    let shape = backend::result_shape(tag, body);
    if !matches!(tag, backend::tag::ROW_DESCRIPTION | backend::tag::NO_DATA) {
        assert_eq!(shape, None);
    }
    let _ = backend::result_shape(backend::tag::ROW_DESCRIPTION, body);

    let _ = startup_params(body);
    let _ = startup_options(&String::from_utf8_lossy(body));
}
