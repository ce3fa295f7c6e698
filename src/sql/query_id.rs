//! A statement's identity in statistics and logs ([`QueryId`]): its fingerprint (literals
//! masked, see [`super::fingerprint`]) and the fingerprint's hash.
//!
//! A text nobody analysed (passed straight through, or a cache hit answered before analysis)
//! gets the identity its analysis would give. Lexing a text costs thousands of instructions,
//! and a simple-protocol client sends a new text for every literal value. So a per-thread memo
//! answers a text seen before by its exact hash (prepared statements, cache hits: the same
//! text again), and a new text by [`literal_free_hash`] — one pass over its bytes hashing
//! everything but literals, comments and whitespace runs. Texts of one fingerprint hash alike
//! there (or, written with other spacing, differently — never texts of different fingerprints
//! alike, save for a 64-bit collision), so each shape is lexed once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::fingerprint::{fingerprint, hash64};

/// A statement's identity: its fingerprint (shared) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryId {
    pub hash: u64,
    pub text: Arc<str>,
}

/// Shapes a thread fingerprinted lately (see [`QueryId::of_text`]); cleared when full.
const MEMO: usize = 4096;

/// A thread's identities: by exact text hash, and by [`literal_free_hash`].
#[derive(Default)]
struct Memo {
    by_text: HashMap<u64, QueryId, foldhash::fast::RandomState>,
    by_shape: HashMap<u64, QueryId, foldhash::fast::RandomState>,
    seed: foldhash::fast::RandomState,
}

thread_local! {
    static MEMO_OF: RefCell<Memo> = RefCell::new(Memo::default());
}

/// `map[key] = id`, clearing `map` first when it is full.
fn remember(map: &mut HashMap<u64, QueryId, foldhash::fast::RandomState>, key: u64, id: &QueryId) {
    if map.len() >= MEMO {
        map.clear();
    }
    map.insert(key, id.clone());
}

impl QueryId {
    /// The identity of an analysed query string.
    pub fn of(analysis: &super::Analysis) -> QueryId {
        QueryId { hash: analysis.fingerprint_hash, text: analysis.fingerprint.clone() }
    }

    /// The identity of a text nobody analysed, the same its analysis would give (see the
    /// module doc).
    pub fn of_text(text: &str) -> QueryId {
        use std::hash::BuildHasher;
        MEMO_OF.with_borrow_mut(|memo| {
            let exact = memo.seed.hash_one(text);
            if let Some(id) = memo.by_text.get(&exact) {
                return id.clone();
            }
            let shape = literal_free_hash(text.as_bytes());
            let id = match memo.by_shape.get(&shape) {
                Some(id) => id.clone(),
                None => {
                    // As `analyze` builds it: each statement's, joined with `; `.
                    let fp = super::lex::split_statements(text)
                        .iter()
                        .map(|st| fingerprint(text, &st.tokens))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let id = QueryId { hash: hash64(&fp), text: fp.into() };
                    remember(&mut memo.by_shape, shape, &id);
                    id
                }
            };
            remember(&mut memo.by_text, exact, &id);
            id
        })
    }
}

/// Byte classes of [`literal_free_hash`]: a word byte (digits count as words only after one:
/// handled before the table is read for them), another plain byte, or one that may start a
/// literal, a comment, a quoted name or whitespace.
const WORD: u8 = 0;
const OTHER: u8 = 1;
const SPECIAL: u8 = 2;
const CLASS: [u8; 256] = {
    let mut class = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            class[b] = WORD;
        }
        if c.is_ascii_digit()
            || matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'-' | b'/' | b'\'' | b'$' | b'.' | b'"')
        {
            class[b] = SPECIAL;
        }
        b += 1;
    }
    class
};

/// FNV-1a step.
#[inline]
fn mix(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
}

/// A hash of `text` without its literals — numbers, strings (`'…'`, `E'…'`, `$tag$…$tag$`),
/// each hashed as `?` — nor its comments, with whitespace runs as one space and unquoted
/// letters lower-cased. One pass, no allocation.
pub fn literal_free_hash(text: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    let n = text.len();
    // The byte before is part of a word (so a digit there is not a number).
    let mut in_word = false;
    let mut space = false;
    while i < n {
        let b = text[i];
        if CLASS[b as usize] == WORD {
            // Most bytes: letters, `_`, and digits inside words.
            if space {
                h = mix(h, b' ');
                space = false;
            }
            h = mix(h, b.to_ascii_lowercase());
            in_word = true;
            i += 1;
            continue;
        }
        if CLASS[b as usize] == OTHER {
            if space {
                h = mix(h, b' ');
                space = false;
            }
            h = mix(h, b);
            in_word = false;
            i += 1;
            continue;
        }
        let next = text.get(i + 1).copied();
        let literal_end = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                space = true;
                in_word = false;
                i += 1;
                continue;
            }
            b'-' if next == Some(b'-') => {
                i = text[i..].iter().position(|&c| c == b'\n').map_or(n, |p| i + p);
                space = true;
                in_word = false;
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = block_comment_end(text, i);
                space = true;
                in_word = false;
                continue;
            }
            b'\'' => {
                // E'…' (escapes): the word before it is a lone `e`.
                let escapes = in_word && i >= 1 && text[i - 1].eq_ignore_ascii_case(&b'e');
                Some(string_end(text, i, escapes))
            }
            b'$' if next.is_some_and(|c| !c.is_ascii_digit()) => dollar_quote_end(text, i),
            b'0'..=b'9' if !in_word => Some(number_end(text, i)),
            b'.' if !in_word && next.is_some_and(|c| c.is_ascii_digit()) => Some(number_end(text, i)),
            _ => None,
        };
        if space {
            h = mix(h, b' ');
            space = false;
        }
        match literal_end {
            Some(end) => {
                h = mix(h, b'?');
                i = end;
                in_word = false;
            }
            None if b == b'"' => {
                // A quoted identifier: as written.
                let end = quoted_end(text, i, b'"');
                for &c in &text[i..end] {
                    h = mix(h, c);
                }
                i = end;
                in_word = true;
            }
            None => {
                h = mix(h, b.to_ascii_lowercase());
                in_word = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
                i += 1;
            }
        }
    }
    h
}

/// After the `*/` closing the comment opening at `start` (nested, as Postgres reads them).
fn block_comment_end(text: &[u8], start: usize) -> usize {
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < text.len() {
        match (text[i], text[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    text.len()
}

/// After the quote closing the one at `start` (a doubled quote is part of the text).
fn quoted_end(text: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < text.len() {
        if text[i] == quote {
            if text.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    text.len()
}

/// After the string opening at `start`; `escapes`: backslashes escape (E'…').
fn string_end(text: &[u8], start: usize, escapes: bool) -> usize {
    if !escapes {
        return quoted_end(text, start, b'\'');
    }
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'\'' if text.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// After the number starting at `start` (digits, a point, an exponent, `_` separators, a hex,
/// octal or binary prefix).
fn number_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < text.len() {
        let c = text[i];
        let exponent_sign = (c == b'+' || c == b'-') && i > start && text[i - 1].eq_ignore_ascii_case(&b'e');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// After the dollar-quoted string opening at `start` (`$$…$$`, `$tag$…$tag$`); `None` when
/// `$` starts no such string there.
fn dollar_quote_end(text: &[u8], start: usize) -> Option<usize> {
    let tag_len = text[start + 1..].iter().position(|&c| c == b'$')? + 2;
    let tag = &text[start..start + tag_len];
    if !tag[1..tag_len - 1].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
        return None;
    }
    let body = start + tag_len;
    let close = text[body..].windows(tag_len).position(|w| w == tag)?;
    Some(body + close + tag_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_nobody_analysed_gets_the_identity_its_analysis_would_give() {
        for text in ["SELECT a FROM t WHERE id = 5;", "select 1; UPDATE t SET a = 'x'", "  BEGIN  "] {
            assert_eq!(QueryId::of_text(text), QueryId::of(&crate::sql::analyze(text)), "{text}");
        }
        let (a, b) = (QueryId::of_text("SELECT * FROM t WHERE k = 1"), QueryId::of_text("SELECT * FROM t WHERE k = 2"));
        assert_eq!(a, b, "literals are masked");
        assert_eq!(&*a.text, "select * from t where k = ?");
    }

    #[test]
    fn literals_comments_and_case_do_not_change_the_hash() {
        let same = [
            ("SELECT v FROM t WHERE k = 1", "select v from t where k = 98765"),
            ("SELECT v FROM t WHERE s = 'a''b'", "SELECT v FROM t WHERE s = 'zz'"),
            ("SELECT v FROM t WHERE s = E'it\\'s'", "SELECT v FROM t WHERE s = E'x'"),
            ("SELECT $$a$b$$, $q$x$q$", "SELECT $$other$$, $q$$q$"),
            ("SELECT 1.5e-3, .5, 0x1F", "SELECT 2, 3, 4"),
            ("SELECT a /* c /* nested */ */ FROM t -- end", "SELECT a FROM t"),
            ("SELECT a\n\t FROM   t", "SELECT a FROM t"),
        ];
        for (a, b) in same {
            assert_eq!(literal_free_hash(a.as_bytes()), literal_free_hash(b.as_bytes()), "{a} / {b}");
        }
        let different = [
            ("SELECT v FROM t1 WHERE k = 1", "SELECT v FROM t2 WHERE k = 1"),
            ("SELECT v FROM t WHERE k = $1", "SELECT v FROM t WHERE k = $2"),
            ("SELECT \"A\" FROM t", "SELECT \"a\" FROM t"),
            ("SELECT a FROM t", "SELECT b FROM t"),
            ("SELECT 'x' AS a", "SELECT x AS a"),
        ];
        for (a, b) in different {
            assert_ne!(literal_free_hash(a.as_bytes()), literal_free_hash(b.as_bytes()), "{a} / {b}");
        }
    }
}
