//! Recording one statement's answer while it streams to the client, and deciding at the end
//! whether it may be stored.
//!
//! The session keeps streaming every frame to the client whatever happens here; the recorder
//! only copies the frames of the answer — RowDescription (`T`) or NoData (`n`), DataRows (`D`),
//! CommandComplete (`C`) — and gives up (recording, not streaming) when:
//! - the answer passes `cache.max_entry_size` ([`Rejected::TooLarge`]; the buffer is freed
//!   at once), or the recordings in progress would hold more than `cache.max_filling`
//!   together ([`Rejected::FillBudget`]: the buffer grows only with bytes taken from it),
//! - the server sent ErrorResponse, PortalSuspended, anything of COPY, a ParameterStatus or a
//!   NoticeResponse (the answer is not the plain, deterministic result the key describes),
//! - the command tag is not `SELECT` (a safety net: the caller decides what is a read),
//! - the answer did not end with CommandComplete,
//! - **stale-set safety**: a table read by the statement had its version bumped between the
//!   snapshot taken before the upstream execution ([`super::ResultCache::lookup`]) and
//!   [`Recorder::finish`]. The entry also keeps that snapshot, so a bump that lands after
//!   `finish` still kills it on the next hit.
//!
//! Frames the session synthesizes on a hit (ParseComplete, BindComplete, ParameterDescription,
//! ReadyForQuery) and asynchronous NotificationResponses are ignored if fed in.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::fill_budget::FillBudget;
use super::flight::Flight;
use super::key::CacheKey;
pub use super::stats::Rejected;
use super::versions::{TableVersions, Versions};
use crate::sql::query_id::QueryId;

/// A stored answer: the recorded frames and the versions they were read under.
#[derive(Debug)]
pub struct CachedResult {
    /// The recorded server frames, whole (tag and length included), in order.
    pub frames: Bytes,
    /// How many leading bytes of `frames` are the description (`T` or `n`): a hit on an
    /// extended Execute without Describe replays only the rest.
    pub description_len: usize,
    /// The table versions the answer was read under.
    pub versions: Versions,
    /// The tables the answer depends on (as given by the caller), for diagnostics.
    pub tables: Arc<[String]>,
    /// Time to live of this entry.
    pub ttl: Duration,
    /// When the answer was recorded: with `cache.serve_stale_on_error` on, entries outlive
    /// their TTL in the cache and freshness is `stored_at + ttl` (see `ResultCache::fresh`).
    pub stored_at: std::time::Instant,
    /// Whether it has been hit (see `churn`).
    pub hit: std::sync::atomic::AtomicBool,
    /// DataRows in `frames` (for statistics).
    pub rows: u64,
    /// The statement's identity in per-query statistics, when they are on: a hit is reported
    /// under it without fingerprinting the text again.
    pub query: Option<QueryId>,
}

impl CachedResult {
    /// The RowDescription or NoData frame, if the answer had one.
    pub fn description(&self) -> Option<&[u8]> {
        (self.description_len > 0).then(|| &self.frames[..self.description_len])
    }

    /// The frames after the description: DataRows and CommandComplete.
    pub fn rows(&self) -> &[u8] {
        &self.frames[self.description_len..]
    }
}

/// Where the recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Recording,
    /// Gave up; later frames are ignored. The first reason wins.
    Failed(Rejected),
}

/// Records one statement's answer. Made by [`super::ResultCache::lookup`] (or `begin`) with the
/// version snapshot; ended by [`super::ResultCache::complete`] or by dropping it (which also
/// releases any stampede followers).
#[derive(Debug)]
pub struct Recorder {
    pub(crate) key: CacheKey,
    buf: BytesMut,
    description_len: usize,
    last_tag: u8,
    state: State,
    versions: Versions,
    source: Arc<TableVersions>,
    tables: Arc<[String]>,
    ttl: Duration,
    /// DataRows recorded.
    rows: u64,
    /// The statement's identity in statistics, for the entry (boxed: [`super::Lookup`] carries
    /// recorders by value).
    pub(crate) query: Option<Box<QueryId>>,
    /// Where the buffer's bytes come from, and how many it holds (its capacity).
    budget: Arc<FillBudget>,
    held: usize,
    /// Held so that followers are released when this recording ends, however it ends.
    pub(crate) flight: Option<Flight>,
}

impl Recorder {
    /// A recorder for `key`, whose tables were snapshotted in `versions` (from `source`)
    /// **before** the statement was sent upstream.
    pub fn new(
        key: CacheKey,
        versions: Versions,
        source: Arc<TableVersions>,
        tables: Arc<[String]>,
        ttl: Duration,
        budget: Arc<FillBudget>,
    ) -> Recorder {
        Recorder {
            key,
            buf: BytesMut::new(),
            description_len: 0,
            last_tag: 0,
            state: State::Recording,
            versions,
            source,
            tables,
            ttl,
            rows: 0,
            query: None,
            budget,
            held: 0,
            flight: None,
        }
    }

    pub fn key(&self) -> CacheKey {
        self.key
    }

    /// Whether the recording is still going (the caller may stop feeding frames if not).
    pub fn is_recording(&self) -> bool {
        self.state == State::Recording
    }

    /// Feed one whole server frame (tag, length, body), in order.
    pub fn record(&mut self, frame: &[u8]) {
        if self.state != State::Recording {
            return;
        }
        let Some(&tag) = frame.first() else {
            return self.fail(Rejected::Unexpected);
        };
        match tag {
            b'T' | b'n' => {
                if self.description_len == self.buf.len() && self.last_tag != b'C' {
                    self.description_len += frame.len();
                }
                self.push(tag, frame);
            }
            b'D' => {
                self.rows += 1;
                self.push(tag, frame);
            }
            b'C' => {
                if !frame.get(5..).is_some_and(|body| body.starts_with(b"SELECT ")) {
                    return self.fail(Rejected::NotSelect);
                }
                self.push(tag, frame);
            }
            b'E' => self.fail(Rejected::Error),
            b's' => self.fail(Rejected::Suspended),
            b'G' | b'H' | b'W' | b'd' | b'c' => self.fail(Rejected::Copy),
            b'1' | b'2' | b't' | b'Z' | b'A' => {}
            _ => self.fail(Rejected::Unexpected),
        }
    }

    /// Feed the start of a frame too large to be held whole, `total` bytes long (tag and
    /// length included): `piece` holds its first bytes, header included; the rest comes by
    /// [`Recorder::record_more`]. A DataRow that would take the recording past
    /// `cache.max_entry_size` ends it here, before a byte of it is copied.
    pub fn record_start(&mut self, total: usize, piece: &[u8]) {
        if self.state != State::Recording {
            return;
        }
        match piece.first() {
            Some(b'D') if self.buf.len() + total > self.budget.max_entry() => self.fail(Rejected::TooLarge),
            Some(b'D') => {
                if !self.grow_for(total) {
                    return self.fail(Rejected::FillBudget);
                }
                self.rows += 1;
                self.buf.extend_from_slice(piece);
                // Not a whole frame yet: the answer cannot end here.
                self.last_tag = 0;
            }
            Some(b'd') => self.fail(Rejected::Copy),
            _ => self.fail(Rejected::Unexpected),
        }
    }

    /// The next piece of the frame begun by [`Recorder::record_start`]; `last` when it ends it.
    pub fn record_more(&mut self, piece: &[u8], last: bool) {
        if self.state != State::Recording {
            return;
        }
        self.buf.extend_from_slice(piece);
        if last {
            self.last_tag = b'D';
        }
    }

    /// End the recording: the entry to store, or why not. Checks the versions one last time.
    pub fn finish(mut self) -> Result<CachedResult, Rejected> {
        if let State::Failed(why) = self.state {
            return Err(why);
        }
        if self.last_tag != b'C' {
            return Err(Rejected::Incomplete);
        }
        if !self.source.is_current(&self.versions) {
            return Err(Rejected::Stale);
        }
        // From here the bytes are the entry's, weighed by the cache (`cache.max_memory`).
        self.budget.give(std::mem::take(&mut self.held));
        Ok(CachedResult {
            frames: std::mem::take(&mut self.buf).freeze(),
            description_len: self.description_len,
            versions: self.versions.clone(),
            tables: self.tables.clone(),
            ttl: self.ttl,
            stored_at: std::time::Instant::now(),
            hit: std::sync::atomic::AtomicBool::new(false),
            rows: self.rows,
            query: self.query.take().map(|q| *q),
        })
    }

    fn push(&mut self, tag: u8, frame: &[u8]) {
        if self.buf.len() + frame.len() > self.budget.max_entry() {
            return self.fail(Rejected::TooLarge);
        }
        if !self.grow_for(frame.len()) {
            return self.fail(Rejected::FillBudget);
        }
        self.buf.extend_from_slice(frame);
        self.last_tag = tag;
    }

    /// Room in the buffer for `more` bytes (within `cache.max_entry_size`, checked by the
    /// caller), growing it only with bytes taken from the budget; false if they are not there.
    fn grow_for(&mut self, more: usize) -> bool {
        let needed = self.buf.len() + more;
        if needed <= self.buf.capacity() {
            return true;
        }
        // Doubling, as the buffer would grow by itself, but never past the entry limit.
        let want = needed.max((self.buf.capacity() * 2).min(self.budget.max_entry()));
        if !self.take_up_to(want) {
            return false;
        }
        // Exactly `want`: `reserve` would let the vector double past what was taken.
        let mut grown = BytesMut::with_capacity(want);
        grown.extend_from_slice(&self.buf);
        self.buf = grown;
        debug_assert_eq!(self.buf.capacity(), want);
        true
    }

    /// Hold `total` bytes of the budget in all.
    fn take_up_to(&mut self, total: usize) -> bool {
        if total <= self.held {
            return true;
        }
        if !self.budget.take(total - self.held) {
            return false;
        }
        self.held = total;
        true
    }

    fn fail(&mut self, why: Rejected) {
        self.state = State::Failed(why);
        self.buf = BytesMut::new();
        self.budget.give(std::mem::take(&mut self.held));
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![tag];
        f.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn recorder(v: &Arc<TableVersions>, max: usize) -> Recorder {
        recorder_in(v, Arc::new(FillBudget::new(usize::MAX, max)))
    }

    fn recorder_in(v: &Arc<TableVersions>, budget: Arc<FillBudget>) -> Recorder {
        let snap = v.snapshot("app", ["t"], None);
        let tables = Arc::from(vec!["t".to_string()]);
        Recorder::new(CacheKey(1), snap, v.clone(), tables, Duration::from_secs(60), budget)
    }

    fn answer() -> Vec<Vec<u8>> {
        vec![
            frame(b'T', b"\0\x01a\0\0\0\0\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"),
            frame(b'D', b"\0\x01\0\0\0\x011"),
            frame(b'D', b"\0\x01\0\0\0\x012"),
            frame(b'C', b"SELECT 2\0"),
        ]
    }

    #[test]
    fn a_complete_select_is_recorded_byte_for_byte() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        let frames = answer();
        r.record(&frame(b'1', b""));
        r.record(&frame(b'2', b""));
        for f in &frames {
            r.record(f);
        }
        r.record(&frame(b'Z', b"I"));
        let res = r.finish().unwrap();
        assert_eq!(&res.frames[..], frames.concat().as_slice());
        assert_eq!(res.description().unwrap(), frames[0].as_slice());
        assert_eq!(res.rows(), frames[1..].concat().as_slice());
    }

    #[test]
    fn a_write_between_start_and_finish_rejects_the_fill() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        for f in &answer()[..2] {
            r.record(f);
        }
        // A write commits on another session while the answer streams.
        v.bump("app", ["public.t"]);
        for f in &answer()[2..] {
            r.record(f);
        }
        assert_eq!(r.finish().unwrap_err(), Rejected::Stale);
    }

    #[test]
    fn a_write_before_the_first_frame_rejects_the_fill() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        v.bump("app", ["T"]);
        for f in &answer() {
            r.record(f);
        }
        assert_eq!(r.finish().unwrap_err(), Rejected::Stale);
    }

    #[test]
    fn an_answer_past_the_size_cap_is_not_kept() {
        let v = Arc::new(TableVersions::new());
        let frames = answer();
        let mut r = recorder(&v, frames[0].len() + frames[1].len());
        for f in &frames {
            r.record(f);
        }
        assert!(!r.is_recording());
        assert_eq!(r.finish().unwrap_err(), Rejected::TooLarge);
    }

    #[test]
    fn recordings_hold_no_more_than_the_fill_budget_together_and_give_it_back() {
        let v = Arc::new(TableVersions::new());
        let budget = Arc::new(FillBudget::new(4096, 1 << 20));
        let frames = answer();
        let mut first = recorder_in(&v, budget.clone());
        for f in &frames[..2] {
            first.record(f);
        }
        assert!(budget.used() >= frames[0].len() + frames[1].len(), "held while recording: {}", budget.used());
        let mut second = recorder_in(&v, budget.clone());
        second.record(&frames[0]);
        second.record(&frame(b'D', &[0; 5000]));
        assert!(!second.is_recording());
        assert_eq!(second.finish().unwrap_err(), Rejected::FillBudget);
        for f in &frames[2..] {
            first.record(f);
        }
        assert!(first.finish().is_ok(), "the first fits and is stored");
        assert_eq!(budget.used(), 0, "given back when stored and when rejected");

        let mut third = recorder_in(&v, budget.clone());
        third.record(&frames[0]);
        third.record_start(3000, b"D\0\0\x0b\xb7");
        assert!(budget.used() >= 3000);
        drop(third);
        assert_eq!(budget.used(), 0, "given back when dropped mid-answer");
        let mut fourth = recorder_in(&v, budget.clone());
        fourth.record_start(5000, b"D\0\0\x13\x83");
        assert_eq!(fourth.finish().unwrap_err(), Rejected::FillBudget, "a row in pieces over the budget");
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_row_fed_in_pieces_is_recorded_byte_for_byte() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        let big = frame(b'D', &[7u8; 1000]);
        let frames = answer();
        r.record(&frames[0]);
        r.record_start(big.len(), &big[..3]);
        r.record_more(&big[3..600], false);
        r.record_more(&big[600..], true);
        r.record(&frames[3]);
        let res = r.finish().unwrap();
        assert_eq!(&res.frames[..], [frames[0].clone(), big, frames[3].clone()].concat().as_slice());
        assert_eq!(res.rows, 1);
    }

    #[test]
    fn a_row_in_pieces_past_the_size_cap_ends_the_recording_at_its_header() {
        let v = Arc::new(TableVersions::new());
        let frames = answer();
        let mut r = recorder(&v, 1000);
        r.record(&frames[0]);
        r.record_start(2000, b"D\0\0\x07\xcc");
        assert!(!r.is_recording());
        assert_eq!(r.buf.capacity(), 0, "nothing of it was copied");
        r.record_more(&[0; 500], false);
        r.record_more(&[0; 1495], true);
        r.record(&frames[3]);
        assert_eq!(r.finish().unwrap_err(), Rejected::TooLarge);
    }

    #[test]
    fn a_row_cut_off_in_pieces_is_incomplete() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        r.record(&answer()[0]);
        r.record_start(1000, b"D\0\0\x03\xe7");
        r.record_more(&[1; 100], false);
        assert_eq!(r.finish().unwrap_err(), Rejected::Incomplete);
    }

    #[test]
    fn copy_data_in_pieces_is_rejected() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        r.record_start(1000, b"d\0\0\x03\xe7");
        assert_eq!(r.finish().unwrap_err(), Rejected::Copy);
    }

    #[test]
    fn errors_partial_results_copy_and_notices_are_rejected() {
        let v = Arc::new(TableVersions::new());
        for (tag, why) in [
            (b'E', Rejected::Error),
            (b's', Rejected::Suspended),
            (b'H', Rejected::Copy),
            (b'd', Rejected::Copy),
            (b'N', Rejected::Unexpected),
            (b'S', Rejected::Unexpected),
            (b'I', Rejected::Unexpected),
        ] {
            let mut r = recorder(&v, 1 << 20);
            let frames = answer();
            r.record(&frames[0]);
            r.record(&frame(tag, b"x\0"));
            r.record(&frames[3]);
            assert_eq!(r.finish().unwrap_err(), why, "tag {}", tag as char);
        }
    }

    #[test]
    fn an_answer_without_command_complete_is_incomplete() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        for f in &answer()[..3] {
            r.record(f);
        }
        assert_eq!(r.finish().unwrap_err(), Rejected::Incomplete);
    }

    #[test]
    fn a_non_select_command_tag_is_rejected() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        r.record(&frame(b'C', b"INSERT 0 1\0"));
        assert_eq!(r.finish().unwrap_err(), Rejected::NotSelect);
    }

    #[test]
    fn extended_execute_without_describe_has_no_description() {
        let v = Arc::new(TableVersions::new());
        let mut r = recorder(&v, 1 << 20);
        for f in &answer()[1..] {
            r.record(f);
        }
        let res = r.finish().unwrap();
        assert!(res.description().is_none());
        assert_eq!(res.rows(), &res.frames[..]);
    }
}
