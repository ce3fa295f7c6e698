//! Row keys: the values that pin a statement's rows (`sql::rows`), compared as Postgres compares
//! them for the column's type — or not at all.
//!
//! A value pins rows only when the proxy is sure which column values equal it: integer columns
//! (`int2`/`int4`/`int8`, compared with an integer literal, an integer string, or a parameter
//! declared unspecified, integer or numeric), `text`/`varchar` columns with a deterministic
//! collation (byte equality; compared with a plain string or a parameter declared unspecified,
//! `text` or `varchar`) and `uuid` columns. A literal like `5.0` or `'1e3'`, a cast, a `bpchar`,
//! `float` or unknown parameter type, a nondeterministic collation, a generated column: no key,
//! and the caller falls back to the whole table. A key is a 64-bit hash of the canonical form,
//! tagged by kind, so `'01'` and `1` meet on an integer column and never on a text one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use smol_str::SmolStr;

use crate::sql::{ColumnPin, Operand, TableRef};
use crate::wire::frontend::{BindValue, bind_values};

/// How a column's values compare, for the types row keys support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Text,
    Uuid,
}

/// What the catalog says about a table that may be tracked by rows: its pinnable columns, and
/// its primary key (the preferred pin).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowColumns {
    /// By name; looked up per pinned column of every write (a fast hasher: names are the catalog's).
    pub columns: HashMap<String, ColumnKind, foldhash::fast::RandomState>,
    pub primary: Vec<String>,
}

/// A pin's value with its parameters bound: what a key is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinValue {
    Number(SmolStr),
    Str(SmolStr),
    /// A Bind parameter: its bytes (`None`: NULL), format and declared type (0: unspecified).
    Param {
        value: Option<Box<[u8]>>,
        binary: bool,
        declared: u32,
    },
}

/// The keys of the values of each pinned column.
pub type ColumnKeys = Vec<(SmolStr, Vec<u64>)>;

/// A Bind message's parameters, as read from its body after the names.
#[derive(Debug, Default)]
pub struct BindValues<'a> {
    values: Vec<BindValue<'a>>,
    types: &'a [u32],
}

impl<'a> BindValues<'a> {
    /// `params_and_formats`: the Bind body after the portal and statement names; `types`: the
    /// parameter types of the statement's Parse. Malformed input gives no values.
    pub fn parse(params_and_formats: &'a [u8], types: &'a [u32]) -> BindValues<'a> {
        BindValues { values: bind_values(params_and_formats).unwrap_or_default(), types }
    }

    fn get(&self, n: usize) -> Option<PinValue> {
        let BindValue { binary, value } = *self.values.get(n.checked_sub(1)?)?;
        let declared = self.types.get(n - 1).copied().unwrap_or(0);
        Some(PinValue::Param { value: value.map(Into::into), binary, declared })
    }
}

/// The values of each pinned column, parameters bound (a column with a missing parameter is
/// dropped: its rows are not known).
pub fn bind(pins: &[ColumnPin], params: &BindValues<'_>) -> Vec<(SmolStr, Vec<PinValue>)> {
    let mut out = Vec::with_capacity(pins.len());
    for p in pins {
        let values: Option<Vec<PinValue>> = p
            .values
            .iter()
            .map(|v| match v {
                Operand::Number(n) => Some(PinValue::Number(n.clone())),
                Operand::Str(s) => Some(PinValue::Str(s.clone())),
                Operand::Param(n) => params.get(*n),
            })
            .collect();
        if let Some(values) = values {
            out.push((p.column.clone(), values));
        }
    }
    out
}

/// The keys of each column whose every value has one (others dropped: a write whose rows'
/// values there are unknown).
pub fn keys(columns: &[(SmolStr, Vec<PinValue>)], table: &RowColumns) -> ColumnKeys {
    let mut out = Vec::with_capacity(columns.len());
    for (column, values) in columns {
        let Some(kind) = table.columns.get(column.as_str()) else { continue };
        if let Some(keys) = values.iter().map(|v| key(*kind, v)).collect::<Option<Vec<u64>>>() {
            out.push((column.clone(), keys));
        }
    }
    out
}

/// The column a read is best tracked by (the primary key's first, when pinned) and its keys.
pub fn read_keys(columns: &[(SmolStr, Vec<PinValue>)], table: &RowColumns) -> Option<(SmolStr, Vec<u64>)> {
    let mut all = keys(columns, table);
    let best = all.iter().position(|(c, _)| table.primary.iter().any(|p| p == c)).unwrap_or(0);
    (!all.is_empty()).then(|| all.swap_remove(best))
}

/// How values are hashed into keys: one fixed seed, so that a read's and a write's key of the
/// same value meet (two values sharing a key only over-invalidate); foldhash, as the analysis
/// memo's maps: a write computes a key per pinned value.
const KEYS: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7067_6361_6368_6564);

/// The key of `value` in a column of `kind`, when it compares there exactly as its canonical form.
pub fn key(kind: ColumnKind, value: &PinValue) -> Option<u64> {
    let mut h = KEYS.build_hasher();
    (kind as u8).hash(&mut h);
    match (kind, value) {
        (ColumnKind::Int, PinValue::Number(n) | PinValue::Str(n)) => int(n.as_bytes())?.hash(&mut h),
        (ColumnKind::Int, PinValue::Param { value: Some(v), binary: false, declared: 0 | 20 | 21 | 23 | 1700 }) => {
            int(v)?.hash(&mut h)
        }
        (ColumnKind::Int, PinValue::Param { value: Some(v), binary: true, declared: 0 | 20 | 21 | 23 }) => {
            binary_int(v)?.hash(&mut h)
        }
        (ColumnKind::Text, PinValue::Str(s)) => s.as_bytes().hash(&mut h),
        (ColumnKind::Text, PinValue::Param { value: Some(v), declared: 0 | 25 | 1043, .. }) => {
            std::str::from_utf8(v).ok()?.as_bytes().hash(&mut h)
        }
        (ColumnKind::Uuid, PinValue::Str(s)) => uuid(s.as_bytes())?.hash(&mut h),
        (ColumnKind::Uuid, PinValue::Param { value: Some(v), binary: false, declared: 0 | 2950 }) => {
            uuid(v)?.hash(&mut h)
        }
        (ColumnKind::Uuid, PinValue::Param { value: Some(v), binary: true, declared: 0 | 2950 }) if v.len() == 16 => {
            v.iter().map(|b| format!("{b:02x}")).collect::<String>().hash(&mut h)
        }
        _ => return None,
    }
    Some(h.finish())
}

/// An integer as `int8in` reads it (surrounding whitespace allowed), or `None`.
fn int(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negative, so that i64::MIN is read too.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(n) } else { n.checked_neg() }
}

/// A binary integer parameter (`int2`, `int4` or `int8`, by its length).
fn binary_int(v: &[u8]) -> Option<i64> {
    Some(match v.len() {
        2 => i64::from(i16::from_be_bytes(v.try_into().ok()?)),
        4 => i64::from(i32::from_be_bytes(v.try_into().ok()?)),
        8 => i64::from_be_bytes(v.try_into().ok()?),
        _ => return None,
    })
}

/// A uuid's 32 hex digits, lower case (braces and hyphens as `uuid_in` allows them dropped).
fn uuid(text: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(text).ok()?;
    let s = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// `t` as a relation name the catalog reads back exactly (each part quoted: `TableRef` holds
/// names already folded).
pub fn relation(t: &TableRef) -> Cow<'_, str> {
    if t.schema.is_none() && super::names::is_plain(&t.name) {
        return Cow::Borrowed(&t.name);
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    Cow::Owned(match &t.schema {
        Some(s) => format!("{}.{}", quote(s), quote(&t.name)),
        None => quote(&t.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, declared: u32) -> PinValue {
        PinValue::Param { value: Some(text.as_bytes().into()), binary: false, declared }
    }

    #[test]
    fn integers_meet_whatever_their_spelling() {
        let five = key(ColumnKind::Int, &PinValue::Number("5".into()));
        assert!(five.is_some());
        assert_eq!(key(ColumnKind::Int, &PinValue::Str(" 05 ".into())), five);
        assert_eq!(key(ColumnKind::Int, &p("+5", 0)), five);
        assert_eq!(key(ColumnKind::Int, &p("5", 1700)), five);
        let bin = PinValue::Param { value: Some(5i32.to_be_bytes().as_slice().into()), binary: true, declared: 0 };
        assert_eq!(key(ColumnKind::Int, &bin), five);
        assert_ne!(key(ColumnKind::Int, &PinValue::Number("-5".into())), five);
        assert_eq!(int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(int(b" 9223372036854775807\n"), Some(i64::MAX));
    }

    #[test]
    fn values_not_certain_to_compare_as_written_have_no_key() {
        assert_eq!(key(ColumnKind::Int, &PinValue::Number("5.0".into())), None);
        assert_eq!(key(ColumnKind::Int, &PinValue::Str("1e3".into())), None);
        assert_eq!(key(ColumnKind::Int, &p("5", 701)), None, "float8 rounds big integers");
        assert_eq!(key(ColumnKind::Int, &p("5", 25)), None);
        assert_eq!(key(ColumnKind::Int, &PinValue::Number("99999999999999999999".into())), None);
        for not_int in ["9223372036854775808", "+-5", "-", "", " ", "5 5", "0x10"] {
            assert_eq!(int(not_int.as_bytes()), None, "{not_int:?}");
        }
        assert_eq!(key(ColumnKind::Text, &PinValue::Number("5".into())), None);
        assert_eq!(key(ColumnKind::Text, &p("a", 1042)), None, "bpchar ignores trailing blanks");
        assert_eq!(key(ColumnKind::Int, &PinValue::Param { value: None, binary: false, declared: 0 }), None);
    }

    #[test]
    fn text_is_exact_and_never_meets_an_integer() {
        let a = key(ColumnKind::Text, &PinValue::Str("a".into()));
        assert_eq!(key(ColumnKind::Text, &p("a", 0)), a);
        assert_ne!(key(ColumnKind::Text, &PinValue::Str("A".into())), a);
        assert_ne!(key(ColumnKind::Text, &PinValue::Str("a ".into())), a);
        assert_ne!(
            key(ColumnKind::Text, &PinValue::Str("1".into())),
            key(ColumnKind::Int, &PinValue::Number("1".into()))
        );
    }

    #[test]
    fn uuids_meet_in_every_spelling() {
        let u = key(ColumnKind::Uuid, &PinValue::Str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()));
        assert!(u.is_some());
        assert_eq!(key(ColumnKind::Uuid, &PinValue::Str("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}".into())), u);
        assert_eq!(key(ColumnKind::Uuid, &PinValue::Str("zz".into())), None);
    }

    #[test]
    fn bind_values_are_read_per_format() {
        // 2 format codes (text, binary), 2 values ("7", int4 7), 1 result format.
        let mut body = vec![0, 2, 0, 0, 0, 1, 0, 2];
        body.extend_from_slice(&1i32.to_be_bytes());
        body.push(b'7');
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(&[0, 1, 0, 0]);
        let types = [0, 23];
        let params = BindValues::parse(&body, &types);
        let pins = [ColumnPin { column: "id".into(), values: vec![Operand::Param(1), Operand::Param(2)] }];
        let table =
            RowColumns { columns: [("id".to_string(), ColumnKind::Int)].into_iter().collect(), primary: vec![] };
        let (column, keys) = read_keys(&bind(&pins, &params), &table).expect("pinned");
        assert_eq!(column, "id");
        assert_eq!(keys[0], keys[1]);
        let missing = [ColumnPin { column: "id".into(), values: vec![Operand::Param(3)] }];
        assert!(bind(&missing, &params).is_empty());
    }
}
