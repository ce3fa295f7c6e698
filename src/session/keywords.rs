//! The pass-through keyword scan: whether a statement's text may change session state the
//! proxy follows, decided without parsing it.
//!
//! It runs for every query and unnamed Parse in pure pass-through (no policy, no cache), so it
//! is built for speed on short texts: it finds the bytes that could start a word eight at a
//! time (SWAR on a `u64`), and compares the word at each with one masked 8-byte load.
//! A text it flags gets a second, token-level look ([`words_may_change_session`]) before the
//! full analysis: `UPDATE t SET …` has the word but cannot change the session.

/// Whether a statement may change session state the proxy follows (settings, pinning, statement
/// names): true when any of `set`, `listen`, `prepare`, `temp`, `deallocate`, `discard`, `do`
/// occurs in `text`, in any case, anywhere (also inside longer words: `offset`, `pg_temp`). A
/// text with none of them is forwarded without analysis when neither a policy nor the cache
/// needs it; false positives only cost an analysis.
///
/// Bytes, not `str`: the words are ASCII, so they are found in any client encoding, and the
/// text needs no UTF-8 validation first.
pub(super) fn may_change_session(text: &[u8]) -> bool {
    let mut block = 0;
    while block < text.len() {
        let mut starts = word_starts(lowered_window(text, block));
        while starts != 0 {
            let at = block + (starts.trailing_zeros() / 8) as usize;
            if word_at(text, at) {
                return true;
            }
            // Only high bits are set: this clears the lowest candidate.
            starts &= starts - 1;
        }
        block += 8;
    }
    false
}

/// The second look at a text [`may_change_session`] flagged, on its tokens (strings, quoted
/// identifiers and comments are not words): true when a statement starts with `set`, `reset`,
/// `do`, `listen`, `unlisten`, `prepare`, `deallocate` or `discard`, or when any word or quoted
/// identifier contains `temp` (TEMP, TEMPORARY, pg_temp) or `set_config`. Elsewhere those words
/// change nothing about the session (`UPDATE t SET`, `ON CONFLICT DO UPDATE SET`, `ALTER ROLE …
/// SET`, `CREATE FUNCTION … SET`, `OFFSET`). Only for a session whose SQL the lexer reads as the
/// server does (`Session::lexing_unreliable` is false).
pub(super) fn words_may_change_session(text: &str) -> bool {
    const STARTS: [&str; 8] = ["set", "reset", "do", "listen", "unlisten", "prepare", "deallocate", "discard"];
    let anywhere = |t: &Token| {
        matches!(t.kind, TokKind::Word | TokKind::QuotedIdent) && {
            let word = t.text(text).to_ascii_lowercase();
            word.contains("temp") || word.contains("set_config")
        }
    };
    split_statements(text).iter().any(|s| {
        let first = s.tokens.first().is_some_and(|t| STARTS.iter().any(|w| t.is_word(text, w)));
        first || s.tokens.iter().any(anywhere)
    })
}

/// The high bit of each byte of `w` that is the first letter of one of the words, else 0.
/// Exact (no carries between bytes): `((t & 0x7f) + 0x7f) | t` has its high bit set iff `t != 0`.
#[inline(always)]
fn word_starts(w: u64) -> u64 {
    let mut no_match = u64::MAX;
    for first in FIRSTS {
        let t = w ^ first;
        no_match &= ((t & LOW7) + LOW7) | t;
    }
    !no_match & HIGH
}

/// Whether one of the words starts at `at`, whose byte is a candidate first letter.
#[inline(always)]
fn word_at(text: &[u8], at: usize) -> bool {
    let w = lowered_window(text, at);
    let is = |(pattern, mask): (u64, u64)| w & mask == pattern;
    match w as u8 {
        b's' => is(SET),
        b'l' => is(LISTEN),
        b'p' => is(PREPARE),
        b't' => is(TEMP),
        _ => is(DO) || is(DEALLOCATE) || is(DISCARD),
    }
}

/// The (up to) 8 bytes of `text` from `i`, little-endian, with `| 0x20` on every byte: that
/// lower-cases ASCII letters and turns no other byte into a letter; past the end the zero
/// padding becomes spaces, never a letter.
#[inline(always)]
fn lowered_window(text: &[u8], i: usize) -> u64 {
    let w = match text.get(i..i + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => {
            let mut padded = [0u8; 8];
            let rest = &text[i..];
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    };
    w | 0x2020_2020_2020_2020
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The words' first letters, each in every byte of a `u64`.
const FIRSTS: [u64; 5] = [
    0x0101_0101_0101_0101 * b's' as u64,
    0x0101_0101_0101_0101 * b'l' as u64,
    0x0101_0101_0101_0101 * b'p' as u64,
    0x0101_0101_0101_0101 * b't' as u64,
    0x0101_0101_0101_0101 * b'd' as u64,
];

/// A word of at most 8 letters as (pattern, mask) for a little-endian 8-byte window.
const fn word(w: &[u8]) -> (u64, u64) {
    let mut pattern = 0u64;
    let mut i = 0;
    while i < w.len() {
        pattern |= (w[i] as u64) << (8 * i);
        i += 1;
    }
    (pattern, u64::MAX >> (8 * (8 - w.len())))
}

const SET: (u64, u64) = word(b"set");
const LISTEN: (u64, u64) = word(b"listen");
const PREPARE: (u64, u64) = word(b"prepare");
const TEMP: (u64, u64) = word(b"temp");
const DO: (u64, u64) = word(b"do");
/// `deallocate` by its first eight letters: a false positive at worst.
const DEALLOCATE: (u64, u64) = word(b"dealloca");
const DISCARD: (u64, u64) = word(b"discard");

use crate::sql::lex::{TokKind, Token, split_statements};

#[cfg(test)]
mod tests {
    use super::{may_change_session, words_may_change_session};

    #[test]
    fn plain_reads_and_writes_need_no_session_analysis() {
        assert!(!may_change_session(b"SELECT abalance FROM pgbench_accounts WHERE aid = 7"));
        assert!(!may_change_session(b"UPDATE t SE"), "a word cut off at the end is no match");
        assert!(!may_change_session(b"se"));
        assert!(!may_change_session(b"d"));
        assert!(!may_change_session(b""));
        assert!(!may_change_session(b"select dea, disc, liste, prepar, tem, so"), "prefixes are no match");
        assert!(!may_change_session(b"select 'caf\xe9' -- LATIN1 bytes"));
        assert!(!may_change_session(b"\xd3\xc5\xd4 \xf3\xe5\xf4"), "0x80 | 'SET' is no letter");
        for t in [
            "SET search_path TO x",
            "select set_config('a','b',false)",
            "LISTEN ch",
            "PREPARE p AS SELECT 1",
            "CREATE TEMP TABLE t (x int)",
            "DEALLOCATE ALL",
            "DISCARD ALL",
            "RESET ALL",
            "DO $$ BEGIN END $$",
            "create table PG_TEMP.x (a int)",
            "select 1; Set role r",
            "sElEcT 1; dIsCaRd plans",
            "Deallocate p",
            "select 1 offset 0",
            "select 1;set",
            "LISTEN",
            "x do",
        ] {
            assert!(may_change_session(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn words_count_where_they_can_change_the_session() {
        for t in [
            "UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = 3",
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
            "ALTER ROLE app SET search_path = x",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = x AS 'SELECT 1'",
            "SELECT 1 OFFSET 5",
            "SELECT 'SET TimeZone = x; LISTEN c', \"prepare\" FROM t -- set role r",
            "UPDATE t SET a = 1; UPDATE u SET b = 2",
        ] {
            assert!(may_change_session(t.as_bytes()), "the byte scan flags it: {t}");
            assert!(!words_may_change_session(t), "{t}");
        }
        for t in [
            "SET search_path TO x",
            "set local statement_timeout = 5",
            "UPDATE t SET a = 1; RESET ALL",
            "BEGIN; SET TimeZone = 'UTC'",
            "DO $$ BEGIN PERFORM 1; END $$",
            "LISTEN ch",
            "unlisten *",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE p",
            "DISCARD ALL",
            "CREATE TEMP TABLE t (x int)",
            "CREATE TEMPORARY VIEW v AS SELECT 1",
            "SELECT 1 INTO TEMP t",
            "CREATE TABLE pg_temp.x (a int)",
            "SELECT * FROM \"pg_temp\".x",
            "UPDATE t SET a = set_config('search_path', 'x', false)",
            "SELECT pg_catalog.SET_CONFIG('a', 'b', false)",
        ] {
            assert!(words_may_change_session(t), "{t}");
        }
    }

    /// The scan against the plain definition (lower-case, then look for each word), on texts
    /// dense in near-misses, at every alignment against the 8-byte blocks.
    #[test]
    fn the_block_scan_agrees_with_a_plain_substring_search() {
        const WORDS: [&str; 7] = ["set", "listen", "prepare", "temp", "do", "dealloca", "discard"];
        let reference = |text: &[u8]| {
            let lower: Vec<u8> = text.iter().map(|b| b.to_ascii_lowercase()).collect();
            WORDS.iter().any(|w| lower.windows(w.len()).any(|win| win == w.as_bytes()))
        };
        let alphabet = b"sSeEtTlLiInNpPrRaAmMdDoOcC _;\xe9\xd3\x00";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64: deterministic, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut matched, mut unmatched) = (0, 0);
        for _ in 0..50_000 {
            let len = (next() % 30) as usize;
            let text: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let expected = reference(&text);
            assert_eq!(may_change_session(&text), expected, "{:?}", String::from_utf8_lossy(&text));
            if expected { matched += 1 } else { unmatched += 1 }
        }
        for (i, w) in WORDS.iter().enumerate() {
            for pad in 0..17 {
                let text = format!("{}{}", "x".repeat(pad), if i % 2 == 0 { w.to_uppercase() } else { w.to_string() });
                assert!(may_change_session(text.as_bytes()), "{text}");
                assert!(!may_change_session(&text.as_bytes()[..text.len() - 1]), "{text} cut short");
            }
        }
        assert!(matched > 1_000 && unmatched > 1_000, "both outcomes exercised: {matched} / {unmatched}");
    }
}
