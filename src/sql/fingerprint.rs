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
