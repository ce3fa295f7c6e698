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
use super::lex::{dollar_quote, skip_block_comment, skip_number, skip_quoted};

/// A statement's identity: its fingerprint (shared) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryId {
    pub hash: u64,
    pub text: Arc<str>,
}

/// Shapes a thread fingerprinted lately (see [`QueryId::of_bytes`]); cleared when full.
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

    /// The identity of the text of a Query or Parse nobody analysed, the same its analysis
    /// would give (see the module doc); `None` when it is not UTF-8 (checked only for a shape
    /// not seen before: a known shape's bytes are those of a text).
    pub fn of_bytes(bytes: &[u8]) -> Option<QueryId> {
        use std::hash::BuildHasher;
        MEMO_OF.with_borrow_mut(|memo| {
            let exact = memo.seed.hash_one(bytes);
            if let Some(id) = memo.by_text.get(&exact) {
                return Some(id.clone());
            }
            let (shape, masked) = shape_hash(bytes);
            let id = match memo.by_shape.get(&shape) {
                Some(id) => id.clone(),
                None => {
                    let text = std::str::from_utf8(bytes).ok()?;
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
            // A text with literals rarely comes again as it is (a new value each time): not
            // worth a place among the exact texts.
            if !masked {
                remember(&mut memo.by_text, exact, &id);
            }
            Some(id)
        })
    }
}

/// Byte classes of [`literal_free_hash`]: a word byte, another plain byte, or one that may start
/// a literal, a comment, a quoted name or whitespace (digits are: one after a word byte is part
/// of the word).
const WORD: u8 = 0;
const OTHER: u8 = 1;
const SPECIAL: u8 = 2;
static CLASS: [u8; 256] = CLASS_OF;
const CLASS_OF: [u8; 256] = {
    let mut class = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            class[b] = WORD;
        }
        if c.is_ascii_digit()
            || matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'-' | b'/' | b'\'' | b'$' | b'.' | b'"')
        {
            class[b] = SPECIAL;
        }
        b += 1;
    }
    class
};

/// Bytes that continue a word: its letters (and `_`, non-ASCII) and digits.
static IN_WORD: [bool; 256] = {
    let mut in_word = [false; 256];
    let mut b = 0;
    while b < 256 {
        in_word[b] = CLASS_OF[b] == WORD || (b as u8).is_ascii_digit();
        b += 1;
    }
    in_word
};

/// FNV-1a step.
#[inline]
fn mix(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
}

/// A hash of `text` without its literals — numbers, strings (`'…'`, `E'…'`, `$tag$…$tag$`),
/// each hashed as `?` — nor its comments, with whitespace runs as one space and unquoted
/// letters lower-cased. One pass, no allocation; literals and comments end where the lexer
/// (`lex`) ends them.
pub fn literal_free_hash(text: &[u8]) -> u64 {
    shape_hash(text).0
}

/// [`literal_free_hash`], and whether a literal was masked.
fn shape_hash(text: &[u8]) -> (u64, bool) {
    let mut masked = false;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    // The byte before is part of a word (so a digit there is not a number).
    let mut in_word = false;
    let mut space = false;
    while i < text.len() {
        let b = text[i];
        if b == b' ' {
            // The usual blank, before the general case below.
            space = true;
            in_word = false;
            i += 1;
            continue;
        }
        let special = CLASS[b as usize] == SPECIAL;
        if special && let Some(end) = blank_end(text, i) {
            space = true;
            in_word = false;
            i = end;
            continue;
        }
        if space {
            h = mix(h, b' ');
            space = false;
        }
        if special && let Some(end) = literal_end(text, i, in_word) {
            h = mix(h, b'?');
            i = end;
            in_word = false;
            masked = true;
        } else if CLASS[b as usize] == WORD {
            // A word and the digits in it, in one tight loop: what the byte-by-byte branch below
            // would hash (each byte lower-cased), without its checks for literals.
            for &c in &text[i..] {
                if !IN_WORD[c as usize] {
                    break;
                }
                h = mix(h, c.to_ascii_lowercase());
                i += 1;
            }
            in_word = true;
        } else if b == b'"' {
            // A quoted identifier: as written.
            let end = skip_quoted(text, i + 1, b'"', false);
            for &c in &text[i..end] {
                h = mix(h, c);
            }
            i = end;
            in_word = true;
        } else {
            h = mix(h, b.to_ascii_lowercase());
            in_word = CLASS[b as usize] == WORD || b.is_ascii_digit() || b == b'$';
            i += 1;
        }
    }
    (h, masked)
}

/// Where whitespace or a comment starting at `i` ends; `None`: none starts there.
fn blank_end(text: &[u8], i: usize) -> Option<usize> {
    match (text[i], text.get(i + 1)) {
        (b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c, _) => Some(i + 1),
        (b'-', Some(b'-')) => Some(text[i..].iter().position(|&c| c == b'\n').map_or(text.len(), |p| i + p)),
        (b'/', Some(b'*')) => Some(skip_block_comment(text, i)),
        _ => None,
    }
}

/// Where a literal starting at `i` ends; `None`: none starts there. `in_word`: the byte before
/// `i` belongs to a word (a digit there is part of it; a quote after a lone `e` opens E'…').
fn literal_end(text: &[u8], i: usize, in_word: bool) -> Option<usize> {
    let next = text.get(i + 1).copied();
    match text[i] {
        b'\'' => {
            let escapes = in_word && text[i - 1].eq_ignore_ascii_case(&b'e');
            Some(skip_quoted(text, i + 1, b'\'', escapes))
        }
        b'$' => dollar_quote(text, i),
        b'0'..=b'9' if !in_word => {
            // Plain digits ended by a byte that cannot continue a number (the usual `= 42;`)
            // need none of the lexer's cases (fractions, exponents, radix prefixes, `_`).
            let end = i + text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            match text.get(end) {
                Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_') => Some(skip_number(text, i)),
                _ => Some(end),
            }
        }
        b'.' if !in_word && next.is_some_and(|c| c.is_ascii_digit()) => Some(skip_number(text, i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_nobody_analysed_gets_the_identity_its_analysis_would_give() {
        for text in [
            "SELECT a FROM t WHERE id = 5;",
            "select 1; UPDATE t SET a = 'x'",
            "  BEGIN  ",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
            "select 1_000 + 0x1f + 1.5e3 + 12 from t where a = 12 and b='x'",
            "UPDATE t SET a = a + 1 WHERE id IN (1, 2, 3)",
        ] {
            assert_eq!(QueryId::of_bytes(text.as_bytes()).unwrap(), QueryId::of(&crate::sql::analyze(text)), "{text}");
        }
        assert_eq!(QueryId::of_bytes(b"SELECT '\xff'"), None, "not UTF-8, a shape never seen");
        let (a, b) = (
            QueryId::of_bytes(b"SELECT * FROM t WHERE k = 1").unwrap(),
            QueryId::of_bytes(b"SELECT * FROM t WHERE k = 2").unwrap(),
        );
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
            ("SELECT v FROM t WHERE k = 12345;", "SELECT v FROM t WHERE k = 7;"),
            ("SELECT 1_000, 12)", "SELECT 3, 4)"),
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
