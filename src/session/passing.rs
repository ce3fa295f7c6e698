//! Server frames too large to hold whole — a DataRow of a 300 MB value, a CopyData of one — are
//! passed on piece by piece as they arrive: the session never holds more of one than a read
//! brings (docs/DECISIONS.md 45).
//!
//! Only DataRow and CopyData can be that large, and the proxy needs nothing from inside either:
//! whether a frame goes to the client, and whether a fill records it, is decided from its
//! header and the reply queue alone, exactly as `backend` decides it for a whole frame. Every
//! other frame (errors, ReadyForQuery, descriptions: small) is still read whole and inspected.
//! A recorded frame is fed to the fill's [`crate::cache::Recorder`] in pieces too; one that
//! would take the recording past `cache.max_entry_size` ends the recording at its header, so
//! nothing of it is copied there.

use bytes::BytesMut;

use super::Session;
use super::queue::{self, Entry, Kind, Request, Step};
use crate::wire::backend::tag;

/// A DataRow or CopyData longer than this (tag and length included) is passed on in pieces
/// rather than read whole. Frames up to it are read whole, so it bounds a server read buffer.
pub(super) const PASS_OVER: usize = 256 * 1024;

/// Room kept for each server read while a frame is passed on: fewer, larger reads.
const PASS_READ: usize = 64 * 1024;

/// The frame being passed on.
#[derive(Debug)]
pub(super) struct Passing {
    /// Bytes of it still to come from the server.
    remaining: usize,
    /// Its pieces go to the client (else the proxy swallows them, as it would the whole frame).
    forward: bool,
    /// Its pieces are fed to the recorder of the request at the head of the queue.
    record: bool,
}

impl Session {
    /// If the incomplete frame at the start of `rest` (whose header says `frame_tag`, `total`
    /// bytes) is to be passed on in pieces, start doing so with what `rest` holds of it, and
    /// return true. Else (small, or a frame the proxy must see whole) false: it is read whole.
    pub(super) fn start_passing(&mut self, rest: &[u8], frame_tag: u8, total: usize) -> bool {
        if total <= PASS_OVER || !matches!(frame_tag, tag::DATA_ROW | tag::COPY_DATA) {
            return false;
        }
        // What `on_server_frame` would do with it: forward or drop for a request that goes on;
        // anything else (no request waiting, one it would complete or fail) takes the long way.
        let (kind, forward) = match self.queue.head() {
            Some(Entry::Server(Request { kind, forward, .. })) if queue::step(*kind, frame_tag) == Step::Continue => {
                (*kind, *forward)
            }
            _ => return false,
        };
        let record = self.queue.recording() && matches!(kind, Kind::Query | Kind::Describe | Kind::Execute);
        // Counted once, whole, as a frame read whole is (see `stats`).
        self.tally.server_sent(total, frame_tag == tag::DATA_ROW);
        if record && let Some(recorder) = self.queue.head_recorder() {
            recorder.record_start(total, rest);
        }
        if forward {
            self.to_client.extend_from_slice(rest);
        }
        self.passing = Some(Passing { remaining: total - rest.len(), forward, record });
        true
    }

    /// Pass on the next piece of the frame being passed on, from the start of `buf`. Returns
    /// how many bytes of `buf` it took (the rest are frames after it).
    pub(super) fn pass_piece(&mut self, buf: &[u8]) -> usize {
        let Some(passing) = &mut self.passing else { return 0 };
        let n = passing.remaining.min(buf.len());
        passing.remaining -= n;
        let (forward, record, last) = (passing.forward, passing.record, passing.remaining == 0);
        if last {
            self.passing = None;
        }
        if record && let Some(recorder) = self.queue.head_recorder() {
            recorder.record_more(&buf[..n], last);
        }
        if forward {
            self.to_client.extend_from_slice(&buf[..n]);
        }
        n
    }

    /// Before a server read: room for the next read, larger while a frame is passed on.
    pub(super) fn server_read_room(passing: bool, rbuf: &mut BytesMut) {
        if passing {
            if rbuf.capacity() - rbuf.len() < PASS_READ {
                rbuf.reserve(PASS_READ);
            }
        } else {
            crate::wire::frame::keep_read_room(rbuf);
        }
    }
}
