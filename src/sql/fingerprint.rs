//! Statement fingerprints: the text with literals replaced by `?`, comments dropped, unquoted
//! words lowercased and whitespace normalized, plus a stable 64-bit hash of it — for stats and
//! logs, where literal values must not appear. Lists of literals collapse (`IN (?)`).

use super::lex::{TokKind, Token};

/// Builds the fingerprint of one statement from its tokens.
pub fn fingerprint(src: &str, toks: &[Token]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(toks.len());
    let mut lowered: Vec<String> = Vec::new();
    let mut words: Vec<(usize, usize)> = Vec::new();
    for t in toks {
        let piece = match t.kind {
            TokKind::String | TokKind::Number => "?",
            TokKind::Word => {
                let s = t.text(src);
                if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    words.push((out.len(), lowered.len()));
                    lowered.push(s.to_ascii_lowercase());
                    ""
                } else {
                    s
                }
            }
            _ => t.text(src),
        };
        // Collapse `?, ?` lists into one `?`.
        if piece == "?" && out.len() >= 2 && out[out.len() - 1] == "," && out[out.len() - 2] == "?" {
            out.pop();
            continue;
        }
        out.push(piece);
    }
    let mut s = String::with_capacity(src.len());
    let mut w = words.iter().peekable();
    for (i, piece) in out.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        match w.peek() {
            Some((pos, idx)) if *pos == i => {
                s.push_str(&lowered[*idx]);
                w.next();
            }
            _ => s.push_str(piece),
        }
    }
    s
}

/// A statement's identity in statistics and logs: its fingerprint (shared) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryId {
    pub hash: u64,
    pub text: std::sync::Arc<str>,
}

/// Texts a thread fingerprinted lately (see [`QueryId::of_text`]); cleared when full.
const TEXT_MEMO: usize = 4096;

thread_local! {
    static BY_TEXT: std::cell::RefCell<std::collections::HashMap<u64, QueryId, foldhash::fast::RandomState>> =
        std::cell::RefCell::new(std::collections::HashMap::with_hasher(Default::default()));
}

impl QueryId {
    /// The identity of an analysed query string.
    pub fn of(analysis: &super::Analysis) -> QueryId {
        QueryId { hash: analysis.fingerprint_hash, text: analysis.fingerprint.clone() }
    }

    /// The identity of a text nobody analysed (a statement passed straight through, a cache
    /// hit answered before analysis): lexed and fingerprinted, memoized per thread by the
    /// text's hash (a collision files a statement under another's numbers, nothing worse).
    pub fn of_text(text: &str) -> QueryId {
        use std::hash::BuildHasher;
        static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
        let key = SEED.get_or_init(Default::default).hash_one(text);
        if let Some(id) = BY_TEXT.with_borrow(|memo| memo.get(&key).cloned()) {
            return id;
        }
        // As `analyze` builds it: each statement's, joined with `; `.
        let fp = super::lex::split_statements(text)
            .iter()
            .map(|st| fingerprint(text, &st.tokens))
            .collect::<Vec<_>>()
            .join("; ");
        let id = QueryId { hash: hash64(&fp), text: fp.into() };
        BY_TEXT.with_borrow_mut(|memo| {
            if memo.len() >= TEXT_MEMO {
                memo.clear();
            }
            memo.insert(key, id.clone());
        });
        id
    }
}

/// FNV-1a, 64-bit: stable across runs, versions and machines (unlike `DefaultHasher`).
pub fn hash64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
    use crate::sql::lex::tokenize;

    fn fp(s: &str) -> String {
        fingerprint(s, &tokenize(s))
    }

    #[test]
    fn literals_become_placeholders_and_params_stay() {
        assert_eq!(
            fp("SELECT *  FROM Users WHERE id = 42 AND name = 'bob' -- hi"),
            "select * from users where id = ? and name = ?"
        );
        assert_eq!(fp("select a from t where b = $1"), "select a from t where b = $1");
    }

    #[test]
    fn literal_lists_collapse_and_quoted_identifiers_keep_case() {
        assert_eq!(fp("SELECT \"A\" FROM t WHERE x IN (1, 2,3)"), "select \"A\" from t where x in ( ? )");
    }

    #[test]
    fn same_shape_same_hash() {
        assert_eq!(hash64(&fp("SELECT 1")), hash64(&fp("select   2")));
    }
}
