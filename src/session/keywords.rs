//! The pass-through keyword scan: whether a statement's text may change session state the
//! proxy follows, decided without parsing it.
//!
//! It runs for every query and unnamed Parse in pure pass-through (no policy, no cache), so it
//! is built for speed on short texts: it finds where a word's first two letters stand, sixteen
//! positions at a time (SSE2 on x86_64, a plain loop elsewhere), and compares the word at each
//! with one masked 8-byte load. Two letters, not one: `s`, `t`, `l`, `p`, `d`, `a` are in
//! nearly every statement (`select`, `pgbench_accounts`), `se`, `te`, `li`, `pr`, `do`, `de`,
//! `di`, `ad` far less often. A text it flags gets a second, token-level look
//! ([`words_may_change_session`]) before the full analysis: `UPDATE t SET …` has the word but
//! cannot change the session.

/// Whether a statement may change session state the proxy follows (settings, pinning, statement
/// names): true when any of `set`, `listen`, `prepare`, `temp`, `deallocate`, `discard`, `do`,
/// `declare` (a cursor WITH HOLD), `advisory` (a session-level advisory lock) occurs in `text`,
/// in any case, anywhere (also inside longer words: `offset`, `pg_temp`). A
/// text with none of them is forwarded without analysis when neither a policy nor the cache
/// needs it; false positives only cost an analysis.
///
/// Bytes, not `str`: the words are ASCII, so they are found in any client encoding, and the
/// text needs no UTF-8 validation first.
pub(super) fn may_change_session(text: &[u8]) -> bool {
    let mut block = 0;
    while block < text.len() {
        let mut starts = match text.get(block..block + 17) {
            Some(whole) => pair_starts(whole.try_into().expect("17 bytes")),
            None => pair_starts(&padded_window(text, block)),
        };
        while starts != 0 {
            let at = block + starts.trailing_zeros() as usize;
            if word_at(text, at) {
                return true;
            }
            starts &= starts - 1;
        }
        block += 16;
    }
    false
}

/// The second look at a text [`may_change_session`] flagged, on its tokens (strings, quoted
/// identifiers and comments are not words): true when a statement starts with `set`, `reset`,
/// `do`, `listen`, `unlisten`, `prepare`, `deallocate` or `discard`, or when any word or quoted
/// identifier contains `temp` (TEMP, TEMPORARY, pg_temp), `set_config` or `advisory`
/// (`pg_advisory_lock`), or a statement starts with `declare`. Elsewhere those words
/// change nothing about the session (`UPDATE t SET`, `ON CONFLICT DO UPDATE SET`, `ALTER ROLE …
/// SET`, `CREATE FUNCTION … SET`, `OFFSET`). Only for a session whose SQL the lexer reads as the
/// server does (`Session::lexing_unreliable` is false).
pub(super) fn words_may_change_session(text: &str) -> bool {
    const STARTS: [&str; 9] =
        ["set", "reset", "do", "listen", "unlisten", "prepare", "deallocate", "discard", "declare"];
    // Without lowering a copy of every word: this runs for each `UPDATE … SET` forwarded.
    let anywhere = |t: &Token| {
        matches!(t.kind, TokKind::Word | TokKind::QuotedIdent) && {
            let word = t.text(text).as_bytes();
            [&b"temp"[..], b"set_config", b"advisory"].iter().any(|part| contains_ignore_ascii_case(word, part))
        }
    };
    split_statements(text).iter().any(|s| {
        let first = s.tokens.first().is_some_and(|t| STARTS.iter().any(|w| t.is_word(text, w)));
        first || s.tokens.iter().any(anywhere)
    })
}

/// The last bytes of `text` from `block`, zero-padded to 17. A window is a block of 16
/// positions and the byte after it, where a word starting at the block's last position has its
/// second letter.
fn padded_window(text: &[u8], block: usize) -> [u8; 17] {
    let mut out = [0u8; 17];
    let rest = &text[block..];
    out[..rest.len()].copy_from_slice(rest);
    out
}

/// Bit `i` set when position `i` of the window starts one of the words' first two letters
/// (`se`, `li`, `pr`, `te`, `do`, `de`, `di`, `ad`, in any case). `| 0x20` lower-cases ASCII letters
/// and turns no other byte into one; the zero padding becomes spaces.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pair_starts(w: &[u8; 17]) -> u32 {
    // SAFETY: SSE2 is part of x86_64's baseline: every x86_64 CPU has it.
    unsafe { pair_starts_sse2(w) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn pair_starts_sse2(w: &[u8; 17]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: `w` has 17 bytes, so both unaligned 16-byte loads (from 0 and from 1) are in bounds.
    let (first, second) = unsafe { (_mm_loadu_si128(w.as_ptr().cast()), _mm_loadu_si128(w.as_ptr().add(1).cast())) };
    let lower = _mm_set1_epi8(0x20);
    let (a, b) = (_mm_or_si128(first, lower), _mm_or_si128(second, lower));
    let is = |v: __m128i, c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
    let (b_e, b_i) = (is(b, b'e'), is(b, b'i'));
    let d_pairs = _mm_and_si128(is(a, b'd'), _mm_or_si128(_mm_or_si128(is(b, b'o'), b_e), b_i));
    let s_or_t = _mm_and_si128(_mm_or_si128(is(a, b's'), is(a, b't')), b_e);
    let l_p = _mm_or_si128(_mm_and_si128(is(a, b'l'), b_i), _mm_and_si128(is(a, b'p'), is(b, b'r')));
    let ad = _mm_and_si128(is(a, b'a'), is(b, b'd'));
    _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(d_pairs, s_or_t), _mm_or_si128(l_p, ad))) as u32
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn pair_starts(w: &[u8; 17]) -> u32 {
    pair_starts_plain(w)
}

/// [`pair_starts`] one position at a time: the definition, and the code where SSE2 is not there.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn pair_starts_plain(w: &[u8; 17]) -> u32 {
    let mut starts = 0;
    for i in 0..16 {
        let pair = [w[i] | 0x20, w[i + 1] | 0x20];
        if matches!(&pair, b"se" | b"li" | b"pr" | b"te" | b"do" | b"de" | b"di" | b"ad") {
            starts |= 1 << i;
        }
    }
    starts
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
        b'a' => is(ADVISORY),
        _ => is(DO) || is(DEALLOCATE) || is(DISCARD) || is(DECLARE),
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
const DECLARE: (u64, u64) = word(b"declare");
const ADVISORY: (u64, u64) = word(b"advisory");

use crate::sql::lex::{TokKind, Token, contains_ignore_ascii_case, split_statements};

#[cfg(test)]
mod tests {
    use super::{may_change_session, pair_starts, pair_starts_plain, words_may_change_session};

    #[test]
    fn plain_reads_and_writes_need_no_session_analysis() {
        assert!(!may_change_session(b"SELECT abalance FROM pgbench_accounts WHERE aid = 7"));
        assert!(!may_change_session(b"UPDATE t SE"), "a word cut off at the end is no match");
        assert!(!may_change_session(b"se"));
        assert!(!may_change_session(b"d"));
        assert!(!may_change_session(b""));
        assert!(
            !may_change_session(b"select dea, disc, liste, prepar, tem, so, decla, advisor"),
            "prefixes are no match"
        );
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
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "select pg_Advisory_lock(1)",
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
            "declare c cursor with hold for select 1",
            "SELECT pg_try_advisory_lock(42)",
        ] {
            assert!(words_may_change_session(t), "{t}");
        }
    }

    /// xorshift64 from `state`: deterministic random numbers, no dependency.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The scan against the plain definition (lower-case, then look for each word), on texts
    /// dense in near-misses, at every alignment against the 16-byte blocks (a word whose first
    /// letters straddle two blocks included).
    #[test]
    fn the_block_scan_agrees_with_a_plain_substring_search() {
        const WORDS: [&str; 9] =
            ["set", "listen", "prepare", "temp", "do", "dealloca", "discard", "declare", "advisory"];
        let reference = |text: &[u8]| {
            let lower: Vec<u8> = text.iter().map(|b| b.to_ascii_lowercase()).collect();
            WORDS.iter().any(|w| lower.windows(w.len()).any(|win| win == w.as_bytes()))
        };
        let alphabet = b"sSeEtTlLiInNpPrRaAmMdDoOcCvVyY _;\xe9\xd3\x00";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let (mut matched, mut unmatched) = (0, 0);
        for _ in 0..50_000 {
            let len = (next() % 50) as usize;
            let text: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let expected = reference(&text);
            assert_eq!(may_change_session(&text), expected, "{:?}", String::from_utf8_lossy(&text));
            if expected { matched += 1 } else { unmatched += 1 }
        }
        for (i, w) in WORDS.iter().enumerate() {
            for pad in 0..35 {
                let text = format!("{}{}", "x".repeat(pad), if i % 2 == 0 { w.to_uppercase() } else { w.to_string() });
                assert!(may_change_session(text.as_bytes()), "{text}");
                assert!(!may_change_session(&text.as_bytes()[..text.len() - 1]), "{text} cut short");
            }
        }
        assert!(matched > 1_000 && unmatched > 1_000, "both outcomes exercised: {matched} / {unmatched}");
    }

    /// The SSE2 pair search against the one-position-at-a-time definition, byte for byte.
    #[test]
    fn the_vector_pair_search_agrees_with_the_plain_one() {
        let alphabet = b"sSeElLiIpPrRtTdDoOaA _\x00\xe5\xc4\x80\xff";
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut hits = 0;
        for _ in 0..100_000 {
            let mut w = [0u8; 17];
            for b in &mut w {
                *b = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let plain = pair_starts_plain(&w);
            assert_eq!(pair_starts(&w), plain, "{:?}", String::from_utf8_lossy(&w));
            hits += plain.count_ones();
        }
        assert!(hits > 10_000, "pairs were found: {hits}");
    }
}
