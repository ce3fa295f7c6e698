//! Extended-protocol statements whose LIMIT a policy added or capped, followed from Parse to
//! Bind to Execute so that the "result limited" notice goes out with the Execute whose rows
//! reached the limit (a simple Query carries its notices itself: see `queue::Tracked`).

use bytes::Bytes;

use crate::sql::LimitNotice;
use crate::wire::Frame;
use crate::wire::frontend;

/// Statement texts (as prepared on the server) kept before the oldest is forgotten: a
/// forgotten one only loses its notice.
const MAX_TEXTS: usize = 64;

#[derive(Debug, Default)]
pub struct Limited {
    /// Prepared text → the notice due when its result is cut (newest last).
    texts: Vec<(Bytes, LimitNotice)>,
    /// Portal → the notice of the statement bound to it.
    portals: Vec<(Bytes, LimitNotice)>,
}

impl Limited {
    /// A Parse prepared `text`, whose result the policy limited.
    pub fn note(&mut self, text: Bytes, notice: LimitNotice) {
        self.texts.retain(|(t, _)| *t != text);
        if self.texts.len() >= MAX_TEXTS {
            self.texts.remove(0);
        }
        self.texts.push((text, notice));
    }

    /// A Bind made `portal` from the statement whose text is `text` (`None`: unknown).
    pub fn bind(&mut self, portal: &[u8], text: Option<&Bytes>) {
        if self.texts.is_empty() {
            return;
        }
        self.portals.retain(|(p, _)| p != portal);
        let notice = text.and_then(|text| self.texts.iter().find(|(t, _)| t == text)).map(|(_, n)| n.clone());
        if let Some(notice) = notice {
            self.portals.push((Bytes::copy_from_slice(portal), notice));
        }
    }

    /// The notice an Execute (`frame`) of a limited portal is due if its rows reach the limit.
    pub fn for_execute(&self, frame: &Frame) -> Option<LimitNotice> {
        if self.portals.is_empty() {
            return None;
        }
        let portal = frontend::execute(frame.body())?.portal;
        self.portals.iter().find(|(p, _)| p == portal).map(|(_, n)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_follows_its_text_to_the_portals_bound_from_it() {
        let notice = LimitNotice { statement: 0, rows: 5, text: "limited".into() };
        let mut l = Limited::default();
        let text = Bytes::from_static(b"SELECT * FROM t LIMIT 5");
        l.note(text.clone(), notice.clone());
        l.bind(b"p1", Some(&text));
        l.bind(b"", Some(&Bytes::from_static(b"SELECT 1")));
        let execute = |portal: &str| {
            let mut out = bytes::BytesMut::new();
            postgres_protocol::message::frontend::execute(portal, 0, &mut out).expect("execute");
            Frame::from_bytes(out.freeze())
        };
        assert_eq!(l.for_execute(&execute("p1")), Some(notice));
        assert_eq!(l.for_execute(&execute("")), None);
        l.bind(b"p1", None);
        assert!(l.portals.is_empty(), "a portal bound again from another statement has no notice");
    }
}
