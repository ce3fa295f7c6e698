//! A small PostgreSQL lexer over raw bytes: token kinds and byte spans, statement splitting.
//!
//! sqlparser owns the grammar; this lexer owns *where things are* in the original text. It is
//! what the LIMIT rewrite edits by byte offset, what splits a multi-statement string the way
//! Postgres does (with `standard_conforming_strings = on`), and what the fingerprint is built
//! from — so it works on text sqlparser cannot parse. It never panics and never allocates per
//! byte; unterminated strings and comments run to the end of the text, as Postgres would see them.

use std::ops::Range;

/// What a token is; comments and whitespace are not tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokKind {
    /// An unquoted identifier or keyword.
    Word,
    /// A `"quoted"` (or `U&"…"`) identifier.
    QuotedIdent,
    /// Any string literal: `'…'`, `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`, `$tag$…$tag$`.
    String,
    /// A numeric literal.
    Number,
    /// A positional parameter `$n`.
    Param,
    /// An operator (`::`, `<=`, `*`, …).
    Op,
    /// One of `( ) [ ] , ; .`
    Punct,
}

/// One token: its kind and where it is in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokKind,
    /// Byte range in the text that was lexed.
    pub span: Range<usize>,
}

impl Token {
    /// The token's text.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.span.clone()]
    }
    /// Whether this is the unquoted keyword `kw` (ASCII case-insensitive).
    pub fn is_word(&self, src: &str, kw: &str) -> bool {
        self.kind == TokKind::Word && self.text(src).eq_ignore_ascii_case(kw)
    }
    /// Whether this is the punctuation character `c`.
    pub fn is_punct(&self, src: &str, c: char) -> bool {
        self.kind == TokKind::Punct && self.text(src).len() == 1 && self.text(src).starts_with(c)
    }
    /// The identifier this token names, as Postgres folds it: an unquoted one with its ASCII
    /// letters in lower case (other bytes as they are, as in a UTF-8 database), a `"quoted"` one
    /// without its quotes and with `""` as `"`. `None` for other tokens, `U&"…"` identifiers
    /// and a quote left open.
    pub fn identifier(&self, src: &str) -> Option<String> {
        let text = self.text(src);
        match self.kind {
            TokKind::Word => Some(text.to_ascii_lowercase()),
            TokKind::QuotedIdent if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') => {
                Some(text[1..text.len() - 1].replace("\"\"", "\""))
            }
            _ => None,
        }
    }
}

/// Byte classes, one table look-up per byte of the lexer's hot loops.
const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT_CONT: u8 = 4;
const OP: u8 = 8;
/// A letter that may start a literal's prefix (`E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`).
const PREFIX: u8 = 16;

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if b.is_ascii_whitespace() || b == 0x0b {
            class |= SPACE;
        }
        if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            class |= IDENT_START | IDENT_CONT;
        }
        if b.is_ascii_digit() || b == b'$' {
            class |= IDENT_CONT;
        }
        if matches!(
            b,
            b'+' | b'-'
                | b'*'
                | b'/'
                | b'<'
                | b'>'
                | b'='
                | b'~'
                | b'!'
                | b'@'
                | b'#'
                | b'%'
                | b'^'
                | b'&'
                | b'|'
                | b'`'
                | b'?'
                | b':'
        ) {
            class |= OP;
        }
        if matches!(b, b'u' | b'U' | b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N') {
            class |= PREFIX;
        }
        table[i] = class;
        i += 1;
    }
    table
}

static CLASS: [u8; 256] = classes();

fn is(class: u8, b: u8) -> bool {
    CLASS[b as usize] & class != 0
}

fn is_ident_start(b: u8) -> bool {
    is(IDENT_START, b)
}
fn is_ident_cont(b: u8) -> bool {
    is(IDENT_CONT, b)
}
fn is_op_char(b: u8) -> bool {
    is(OP, b)
}

/// Whether the letter at `i` starts a literal's prefix: `U&'`, `U&"`, or `E'`, `B'`, `X'`, `N'`.
fn literal_prefix(b: &[u8], i: usize) -> bool {
    match b[i] {
        b'u' | b'U' => b.get(i + 1) == Some(&b'&') && matches!(b.get(i + 2), Some(b'\'' | b'"')),
        _ => is(PREFIX, b[i]) && b.get(i + 1) == Some(&b'\''),
    }
}

/// The highest `$n` in `sql` (0: no parameters): with the types a Parse declares, how many
/// parameters Postgres gives the statement.
pub fn max_param(sql: &str) -> u32 {
    tokenize(sql)
        .iter()
        .filter(|t| t.kind == TokKind::Param)
        .filter_map(|t| t.text(sql)[1..].parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

/// Lexes `src` into tokens (comments and whitespace dropped).
pub fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    // About one token per five bytes of SQL: sized once rather than grown (a large text is
    // grown past the cap instead of reserving for tokens it may not have).
    let mut out = Vec::with_capacity((b.len() / 4).min(4096) + 1);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let class = CLASS[c as usize];
        if class & SPACE != 0 {
            i += 1;
            continue;
        }
        if class & IDENT_START != 0 && (class & PREFIX == 0 || !literal_prefix(b, i)) {
            // Most tokens: a keyword or a name.
            i += 1;
            while i < b.len() && is_ident_cont(b[i]) {
                i += 1;
            }
            out.push(Token { kind: TokKind::Word, span: start..i });
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i);
            continue;
        }
        let kind = if c == b'\'' {
            i = skip_quoted(b, i + 1, b'\'', false);
            TokKind::String
        } else if c == b'"' {
            i = skip_quoted(b, i + 1, b'"', false);
            TokKind::QuotedIdent
        } else if c == b'$' {
            if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                TokKind::Param
            } else if let Some(end) = dollar_quote(b, i) {
                i = end;
                TokKind::String
            } else {
                i += 1;
                TokKind::Op
            }
        } else if (c == b'u' || c == b'U') && b.get(i + 1) == Some(&b'&') && matches!(b.get(i + 2), Some(b'\'' | b'"'))
        {
            let q = b[i + 2];
            i = skip_quoted(b, i + 3, q, false);
            if q == b'"' { TokKind::QuotedIdent } else { TokKind::String }
        } else if matches!(c, b'e' | b'E') && b.get(i + 1) == Some(&b'\'') {
            i = skip_quoted(b, i + 2, b'\'', true);
            TokKind::String
        } else if matches!(c, b'b' | b'B' | b'x' | b'X' | b'n' | b'N') && b.get(i + 1) == Some(&b'\'') {
            i = skip_quoted(b, i + 2, b'\'', false);
            TokKind::String
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            i = skip_number(b, i);
            TokKind::Number
        } else if matches!(c, b'(' | b')' | b'[' | b']' | b',' | b';' | b'.') {
            i += 1;
            TokKind::Punct
        } else if is_op_char(c) {
            i += 1;
            while i < b.len()
                && is_op_char(b[i])
                && !(b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                && !(b[i] == b'/' && b.get(i + 1) == Some(&b'*'))
            {
                i += 1;
            }
            TokKind::Op
        } else {
            // Any other byte (a stray control character, `\`, …) stands alone.
            i += 1;
            while i < b.len() && !src.is_char_boundary(i) {
                i += 1;
            }
            TokKind::Op
        };
        out.push(Token { kind, span: start..i });
    }
    out
}

/// Skips a (nested) block comment starting at `i` (which points at `/*`); returns the end.
pub(super) fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Skips to just past the closing quote `q` (doubled quotes escape; backslashes too if `backslash`).
pub(super) fn skip_quoted(b: &[u8], mut i: usize, q: u8, backslash: bool) -> usize {
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// If a dollar-quote opener `$tag$` starts at `i`, returns the end of the whole quoted string.
pub(super) fn dollar_quote(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && is_ident_start(b[j]) {
        while j < b.len() && is_ident_cont(b[j]) && b[j] != b'$' {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let tag = &b[i..=j];
    let mut k = j + 1;
    while k + tag.len() <= b.len() {
        if &b[k..k + tag.len()] == tag {
            return Some(k + tag.len());
        }
        k += 1;
    }
    Some(b.len())
}

pub(super) fn skip_number(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' && b.get(i + 1) != Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    // Hex/octal/binary integers (`0x1F`) and junk suffixes stay one token.
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// One statement of a query string: its tokens and the byte range from its first to its last token.
#[derive(Debug, Clone)]
pub struct StatementSpan {
    /// Byte range of the statement text (first token start .. last token end), without the `;`.
    pub span: Range<usize>,
    /// The statement's tokens (spans are offsets into the whole text).
    pub tokens: Vec<Token>,
}

/// Whether `part` (ASCII) occurs in `text` in any letter case, without lowering a copy of it.
pub fn contains_ignore_ascii_case(text: &[u8], part: &[u8]) -> bool {
    text.windows(part.len()).any(|w| w.eq_ignore_ascii_case(part))
}

/// Splits `src` at `;` tokens into non-empty statements, as the Postgres server does.
pub fn split_statements(src: &str) -> Vec<StatementSpan> {
    let mut tokens = tokenize(src);
    if !src.contains(';') {
        // One statement (or none): nearly every text.
        return if tokens.is_empty() { Vec::new() } else { vec![finish(tokens)] };
    }
    // Cut from the end: each statement's tokens move once, and a text of one statement (the
    // common case) keeps the vector it was lexed into.
    let mut pieces = Vec::new();
    while let Some(semicolon) = tokens.iter().rposition(|t| t.is_punct(src, ';')) {
        let tail = tokens.split_off(semicolon + 1);
        tokens.truncate(semicolon);
        if !tail.is_empty() {
            pieces.push(tail);
        }
    }
    if !tokens.is_empty() {
        pieces.push(tokens);
    }
    pieces.into_iter().rev().map(finish).collect()
}

fn finish(tokens: Vec<Token>) -> StatementSpan {
    let span = tokens[0].span.start..tokens[tokens.len() - 1].span.end;
    StatementSpan { span, tokens }
}

/// An upper bound on how deep sqlparser's tree for these tokens can get: bracket nesting plus
/// the longest chain of binary operators or set operations within one list element (sqlparser
/// builds such chains as left-deep trees without counting them against its recursion limit, and
/// walking or dropping a tree thousands deep overflows a thread's stack).
pub fn depth_estimate(src: &str, toks: &[Token]) -> usize {
    const CHAIN_WORDS: &[&str] = &[
        "and",
        "or",
        "not",
        "is",
        "union",
        "intersect",
        "except",
        "like",
        "ilike",
        "similar",
        "between",
        "in",
        "collate",
        "at",
    ];
    let mut stack: Vec<usize> = Vec::new();
    let (mut base, mut chain, mut max) = (0usize, 0usize, 0usize);
    for t in toks {
        if t.is_punct(src, '(') || t.is_punct(src, '[') {
            stack.push(chain);
            base += chain + 1;
            chain = 0;
        } else if t.is_punct(src, ')') || t.is_punct(src, ']') {
            chain = stack.pop().unwrap_or(0);
            base = base.saturating_sub(chain + 1);
        } else if t.is_punct(src, ',') {
            chain = 0;
        } else if t.kind == TokKind::Op || (t.kind == TokKind::Word && CHAIN_WORDS.iter().any(|w| t.is_word(src, w))) {
            chain += 1;
        }
        max = max.max(base + chain);
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_counted_from_the_text() {
        assert_eq!(max_param("SELECT * FROM t WHERE a = $1 AND b = $3"), 3);
        assert_eq!(max_param("SELECT '$1', \"$2\", $$ $5 $$ FROM t -- $4"), 0);
        assert_eq!(max_param("SELECT 1"), 0);
    }

    fn kinds(s: &str) -> Vec<(TokKind, &str)> {
        tokenize(s).into_iter().map(|t| (t.kind, &s[t.span])).collect()
    }

    #[test]
    fn strings_comments_and_dollar_quotes_are_single_tokens() {
        let s = "SELECT 'a''b', E'x\\'y', $f$ ; $f$, $$;$$ /* c /* nested ; */ */ -- ; tail\n;";
        let k = kinds(s);
        assert_eq!(k[1], (TokKind::String, "'a''b'"));
        assert_eq!(k[3], (TokKind::String, "E'x\\'y'"));
        assert_eq!(k[5], (TokKind::String, "$f$ ; $f$"));
        assert_eq!(k[7], (TokKind::String, "$$;$$"));
        assert_eq!(k.len(), 9);
    }

    #[test]
    fn standard_strings_do_not_treat_backslash_as_escape() {
        // With standard_conforming_strings on (what this lexer and sqlparser assume) this is one
        // SELECT of one string; with it off Postgres would see `'x\''` end early and run a DROP.
        let s = "SELECT 'x\\'' ; DROP TABLE t; -- '";
        assert_eq!(split_statements(s).len(), 1);
    }

    #[test]
    fn params_numbers_and_operators() {
        let k = kinds("a::int <= $12 + 1.5e3 - .5");
        assert_eq!(k[1], (TokKind::Op, "::"));
        assert_eq!(k[3], (TokKind::Op, "<="));
        assert_eq!(k[4], (TokKind::Param, "$12"));
        assert_eq!(k[6], (TokKind::Number, "1.5e3"));
        assert_eq!(k[8], (TokKind::Number, ".5"));
    }

    #[test]
    fn depth_estimate_counts_operator_chains_and_nesting() {
        let d = |s: &str| depth_estimate(s, &tokenize(s));
        assert_eq!(d("SELECT a, b, c FROM t"), 0);
        assert_eq!(d("SELECT 1 + 2 + 3"), 2);
        assert_eq!(d("SELECT f(1 + 2, 3), 4"), 2);
        assert!(d(&format!("SELECT {}1", "1+".repeat(5000))) >= 5000);
        assert_eq!(d(&format!("INSERT INTO t VALUES {}", vec!["(1, 'a')"; 1000].join(", "))), 1);
    }

    #[test]
    fn unterminated_things_run_to_the_end_without_panicking() {
        for s in ["'abc", "\"abc", "/* abc", "$q$ abc", "E'\\", "U&'", "é'ü"] {
            let _ = split_statements(s);
        }
    }
}
