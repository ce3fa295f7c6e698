//! Cache keys: a 128-bit keyed hash of everything that can change the bytes of an answer.
//!
//! **What goes in (contract, DESIGN.md "The hot path")**: database, effective role (and the
//! login user when `SET ROLE` made them differ: login defaults follow it), the
//! output-affecting settings (order-independent), the protocol (simple vs extended: the
//! framing of the recorded answer differs), the statement text bytes, and for the extended
//! protocol the Bind parameter formats, values and result formats — and, for a named prepared
//! statement whose result shape the client knows, that shape.
//!
//! **Why 128 bits, keyed**: a collision would serve one statement's rows for another — maybe
//! to another role — so it must be negligible and must not be constructible. The key is
//! SipHash-1-3 with its 128-bit output (the `siphasher` crate) under a per-process random key:
//! 2^-64 collision odds at 2^32 live entries, and an attacker who does not know the key cannot
//! search for collisions offline (pgpool's CVE-2024-45624 was a key that left the role out; this
//! one cannot be made to collide on purpose). One pass over the input gives all 128 bits (two
//! 64-bit SipHash instances, as before, hashed everything twice), and nothing is allocated:
//! fields stream into the hasher.
//!
//! **Unambiguous**: every field is written with a tag byte and a length prefix, so no two
//! different field sequences hash the same input bytes.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// A cache key. Cheap to copy and compare; carries no text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub u128);

/// Hashes a [`CacheKey`] for a hash table by taking 64 of its bits: the key already is a keyed
/// hash, uniformly spread and not steerable from outside, so hashing it again (moka's default
/// SipHash) would only cost time on every lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheKeyHasher(u64);

impl Hasher for CacheKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `CacheKey` (it writes one u128); kept correct for any other input.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::hash::BuildHasher for CacheKeyHasher {
    type Hasher = CacheKeyHasher;

    fn build_hasher(&self) -> CacheKeyHasher {
        CacheKeyHasher(0)
    }
}

/// Which protocol asked: the recorded frames differ (simple: `T`,`D`…,`C`; extended: the
/// Describe answer and Execute answer as the session records them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Simple,
    Extended,
}

/// Settings that change no result's bytes unless read by name, left out of the key so that e.g.
/// two applications with different `application_name`s share entries. A statement that may read
/// settings by name is keyed with them too ([`may_read_settings`]). Everything else the caller
/// passes is keyed — including custom `app.*` settings, which row-level-security policies read
/// through `current_setting()`. Over-keying costs a miss; under-keying leaks rows.
pub const IGNORED_SETTINGS: &[&str] = &[
    "application_name",
    "in_hot_standby",
    "integer_datetimes",
    "scram_iterations",
    "server_encoding",
    "server_version",
    "server_version_num",
];

/// Whether `text` may read settings by name — `current_setting()`, `pg_settings`,
/// `pg_show_all_settings()`: each has the word `setting`, in any case — so that its answers
/// are keyed with the [`IGNORED_SETTINGS`] too ([`KeyBuilder::ignored_settings`]):
/// `current_setting('application_name')` is each client's own. From the text alone, as every
/// part of a key (a hit is looked up before the statement is analysed).
pub fn may_read_settings(text: &[u8]) -> bool {
    const WORD: &[u8] = b"setting";
    memchr::memchr2_iter(b's', b'S', text)
        .any(|at| text.get(at..at + WORD.len()).is_some_and(|w| w.eq_ignore_ascii_case(WORD)))
}

/// The settings the key must see, at least (DESIGN.md). The session must track `search_path`
/// itself: servers before PostgreSQL 18 do not report it in ParameterStatus.
pub const OUTPUT_SETTINGS: &[&str] = &[
    "search_path",
    "timezone",
    "datestyle",
    "intervalstyle",
    "client_encoding",
    "extra_float_digits",
    "bytea_output",
    "standard_conforming_strings",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "xmlbinary",
    "xmloption",
    "row_security",
    "session_authorization",
    "role",
];

/// The per-process random hash key. One per [`super::ResultCache`]; keys built from different
/// seeds never match.
#[derive(Clone, Debug)]
pub struct KeySeed {
    k0: u64,
    k1: u64,
}

impl Default for KeySeed {
    fn default() -> Self {
        KeySeed::new()
    }
}

impl KeySeed {
    pub fn new() -> KeySeed {
        KeySeed { k0: rand::random(), k1: rand::random() }
    }

    fn hasher(&self) -> KeyHasher {
        KeyHasher(SipHasher13::new_with_keys(self.k0, self.k1))
    }
}

/// A digest of a session's settings, order-independent. Sessions compute it when a setting
/// changes (ParameterStatus, SET) and reuse it for every key, so the hot path does not rehash
/// the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SettingsDigest(u128);

impl SettingsDigest {
    /// Digest `(name, value)` pairs; names are case-insensitive, [`IGNORED_SETTINGS`] are
    /// skipped, the order does not matter. Give each setting once.
    pub fn new<'a>(seed: &KeySeed, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::of(seed, settings, false)
    }

    /// The digest of the [`IGNORED_SETTINGS`] among `settings` only (see [`may_read_settings`]).
    pub fn ignored<'a>(seed: &KeySeed, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::of(seed, settings, true)
    }

    fn of<'a>(seed: &KeySeed, settings: impl IntoIterator<Item = (&'a str, &'a str)>, ignored: bool) -> Self {
        let mut sum = 0u128;
        for (name, value) in settings {
            if IGNORED_SETTINGS.iter().any(|i| i.eq_ignore_ascii_case(name)) != ignored {
                continue;
            }
            let mut h = seed.hasher();
            h.0.write_usize(name.len());
            for b in name.bytes() {
                h.0.write_u8(b.to_ascii_lowercase());
            }
            h.field(b'v', value.as_bytes());
            // Addition commutes: the digest does not depend on the order of the pairs.
            sum = sum.wrapping_add(h.finish());
        }
        SettingsDigest(sum)
    }
}

/// Builds a [`CacheKey`] field by field without allocating.
///
/// ```
/// use pgcached::cache::{KeyBuilder, KeySeed, Protocol, SettingsDigest};
/// let seed = KeySeed::new();
/// let settings = SettingsDigest::new(&seed, [("TimeZone", "UTC"), ("search_path", "public")]);
/// let key = KeyBuilder::new(&seed, "app", "alice", Protocol::Simple, settings)
///     .statement(b"SELECT 1")
///     .finish();
/// # let _ = key;
/// ```
///
/// Cloneable: a caller can keep the state after the fields a statement repeats (context and
/// text) and finish copies of it with each execution's own fields.
#[derive(Clone)]
pub struct KeyBuilder {
    h: KeyHasher,
}

impl KeyBuilder {
    /// Start a key with the context every key has: database, effective role (after SET ROLE /
    /// SET SESSION AUTHORIZATION), protocol and the session's settings digest.
    pub fn new(seed: &KeySeed, database: &str, role: &str, protocol: Protocol, settings: SettingsDigest) -> KeyBuilder {
        let mut h = seed.hasher();
        h.field(b'd', database.as_bytes());
        h.field(b'r', role.as_bytes());
        let mut context = [0u8; 17];
        context[0] = protocol as u8;
        context[1..].copy_from_slice(&settings.0.to_le_bytes());
        h.0.write(&context);
        KeyBuilder { h }
    }

    /// The login user, when the effective role is another (after `SET ROLE`): the settings a
    /// session starts with follow the login user (`ALTER ROLE … SET`), not the role it took.
    pub fn login_user(mut self, user: &str) -> KeyBuilder {
        self.h.field(b'u', user.as_bytes());
        self
    }

    /// The digest of the settings left out of every key ([`SettingsDigest::ignored`]), for a
    /// statement that may read them by name ([`may_read_settings`]).
    pub fn ignored_settings(mut self, digest: SettingsDigest) -> KeyBuilder {
        self.h.field(b'i', &digest.0.to_le_bytes());
        self
    }

    /// The statement text, exactly as sent (after any rewrite the proxy applied).
    pub fn statement(mut self, text: &[u8]) -> KeyBuilder {
        self.h.field(b's', text);
        self
    }

    /// The Bind message body **after** the portal and statement names: parameter format codes,
    /// parameter values (with their lengths, -1 for NULL) and result format codes, as sent.
    /// Names are left out: the same text under another statement name is the same query.
    pub fn bind_tail(mut self, tail: &[u8]) -> KeyBuilder {
        self.h.field(b'b', tail);
        self
    }

    /// The parameter types the statement was prepared with: they decide how the Bind values
    /// are read and what type `$1` (and so a result column) has — `SELECT $1` prepared as
    /// int4 and as text answer the same Bind bytes differently.
    pub fn param_types(mut self, types: &[u32]) -> KeyBuilder {
        self.h.head(b't', types.len() * 4);
        for t in types {
            self.h.0.write(&t.to_be_bytes());
        }
        self
    }

    /// The result shape the client knows its prepared statement by (see
    /// `session::shapes`): a client that prepared before a change of result type and one that
    /// prepared after it decode rows differently, so they must not share answers.
    pub fn result_shape(mut self, shape: u64) -> KeyBuilder {
        self.h.field(b'h', &shape.to_be_bytes());
        self
    }

    /// Parameter format codes, values and result format codes given separately (for callers
    /// that already split the Bind message). Equivalent inputs give the same key as each other
    /// but not the same key as [`Self::bind_tail`].
    pub fn bind_parts<'a>(
        mut self,
        param_formats: &[i16],
        params: impl IntoIterator<Item = Option<&'a [u8]>>,
        result_formats: &[i16],
    ) -> KeyBuilder {
        self.h.formats(b'p', param_formats);
        for p in params {
            match p {
                Some(v) => self.h.field(b'v', v),
                None => self.h.field(b'n', b""),
            }
        }
        self.h.formats(b'f', result_formats);
        self
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(self.h.finish())
    }
}

/// The key state after a statement's context and text ([`KeyBuilder::new`] then
/// [`KeyBuilder::statement`]), remembered for the last statement of a session: clients repeat
/// statements, and hashing a long text is most of what a cache hit costs.
///
/// It holds for the same text, protocol and settings generation (a [`SettingsGeneration`]
/// identifies the session's setting values, the role included, and the custom settings it
/// defined); the caller guarantees that nothing else its `build` reads can change under one
/// generation.
#[derive(Default)]
pub struct StatementKeyMemo {
    last: Option<(SettingsGeneration, Protocol, Vec<u8>, KeyBuilder)>,
}

/// What a session's settings are at, for memos of what is computed from them: the generation
/// of its setting values, how many custom settings it has defined (they are never undefined,
/// so the count only grows), and whether it is in a `READ ONLY` block (its reads see
/// `transaction_read_only` on).
pub type SettingsGeneration = (u64, usize, bool);

/// Longest statement text a [`StatementKeyMemo`] keeps.
const MEMO_MAX_TEXT: usize = 8 * 1024;

impl StatementKeyMemo {
    /// The remembered state if it is for (`generation`, `protocol`, `text`), else `build()`'s,
    /// which is then remembered.
    pub fn get_or_build(
        &mut self,
        generation: SettingsGeneration,
        protocol: Protocol,
        text: &[u8],
        build: impl FnOnce() -> KeyBuilder,
    ) -> KeyBuilder {
        if let Some((g, p, t, state)) = &self.last
            && *g == generation
            && *p == protocol
            && t.as_slice() == text
        {
            return state.clone();
        }
        let state = build();
        if text.len() <= MEMO_MAX_TEXT {
            // The text buffer is reused: no allocation once it has grown.
            let mut buf = self.last.take().map(|(_, _, t, _)| t).unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(text);
            self.last = Some((generation, protocol, buf, state.clone()));
        } else {
            self.last = None;
        }
        state
    }
}

/// The keyed 128-bit hasher, with the framing every field gets.
#[derive(Clone)]
struct KeyHasher(SipHasher13);

impl KeyHasher {
    /// A field's tag and length, in one write (each write has a fixed cost).
    fn head(&mut self, tag: u8, len: usize) {
        let mut head = [0u8; 9];
        head[0] = tag;
        head[1..].copy_from_slice(&(len as u64).to_le_bytes());
        self.0.write(&head);
    }

    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.head(tag, bytes.len());
        self.0.write(bytes);
    }

    fn formats(&mut self, tag: u8, codes: &[i16]) {
        self.head(tag, codes.len());
        for c in codes {
            self.0.write(&c.to_le_bytes());
        }
    }

    fn finish(&self) -> u128 {
        self.0.finish128().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: &KeySeed, db: &str, role: &str, p: Protocol, s: SettingsDigest, sql: &str) -> CacheKey {
        KeyBuilder::new(seed, db, role, p, s).statement(sql.as_bytes()).finish()
    }

    #[test]
    fn a_key_hashes_to_its_own_low_bits() {
        use std::hash::BuildHasher;
        let k = CacheKey((7u128 << 64) | 42);
        assert_eq!(CacheKeyHasher::default().hash_one(k), 42);
        assert_ne!(CacheKeyHasher::default().hash_one([1u8; 9]), CacheKeyHasher::default().hash_one([2u8; 9]));
    }

    #[test]
    fn same_inputs_give_the_same_key() {
        let seed = KeySeed::new();
        let s = SettingsDigest::new(&seed, [("TimeZone", "UTC")]);
        assert_eq!(
            key(&seed, "app", "u", Protocol::Simple, s, "SELECT 1"),
            key(&seed, "app", "u", Protocol::Simple, s, "SELECT 1")
        );
    }

    #[test]
    fn every_context_field_changes_the_key() {
        let seed = KeySeed::new();
        let s = SettingsDigest::new(&seed, [("TimeZone", "UTC")]);
        let base = key(&seed, "app", "u", Protocol::Simple, s, "SELECT 1");
        let other_tz = SettingsDigest::new(&seed, [("TimeZone", "Europe/Paris")]);
        for k in [
            key(&seed, "app2", "u", Protocol::Simple, s, "SELECT 1"),
            key(&seed, "app", "v", Protocol::Simple, s, "SELECT 1"),
            key(&seed, "app", "u", Protocol::Extended, s, "SELECT 1"),
            key(&seed, "app", "u", Protocol::Simple, other_tz, "SELECT 1"),
            key(&seed, "app", "u", Protocol::Simple, s, "SELECT 2"),
            key(&KeySeed::new(), "app", "u", Protocol::Simple, s, "SELECT 1"),
        ] {
            assert_ne!(k, base);
        }
    }

    #[test]
    fn parameter_types_split_answers_of_the_same_text_and_bind() {
        let seed = KeySeed::new();
        let s = SettingsDigest::default();
        let k = |types: &[u32]| {
            KeyBuilder::new(&seed, "app", "u", Protocol::Extended, s)
                .statement(b"SELECT $1")
                .bind_tail(b"\0\0\0\x01\0\0\0\x011\0\0")
                .param_types(types)
                .finish()
        };
        assert_ne!(k(&[23]), k(&[25]));
        assert_ne!(k(&[]), k(&[0]));
        assert_eq!(k(&[23]), k(&[23]));
    }

    #[test]
    fn a_result_shape_splits_answers_of_the_same_statement() {
        let seed = KeySeed::new();
        let s = SettingsDigest::default();
        let k = |shape: Option<u64>| {
            let b = KeyBuilder::new(&seed, "app", "u", Protocol::Extended, s).statement(b"SELECT v FROM t");
            let b = b.bind_tail(b"\0\0\0\0\0\0");
            match shape {
                Some(h) => b.result_shape(h).finish(),
                None => b.finish(),
            }
        };
        assert_ne!(k(None), k(Some(1)));
        assert_ne!(k(Some(1)), k(Some(2)));
        assert_eq!(k(Some(2)), k(Some(2)));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let seed = KeySeed::new();
        let s = SettingsDigest::default();
        assert_ne!(key(&seed, "ab", "c", Protocol::Simple, s, "x"), key(&seed, "a", "bc", Protocol::Simple, s, "x"));
    }

    #[test]
    fn settings_are_order_independent_and_case_insensitive_by_name() {
        let seed = KeySeed::new();
        let a = SettingsDigest::new(&seed, [("TimeZone", "UTC"), ("search_path", "a, public")]);
        let b = SettingsDigest::new(&seed, [("search_path", "a, public"), ("timezone", "UTC")]);
        assert_eq!(a, b);
        let c = SettingsDigest::new(&seed, [("search_path", "b, public"), ("timezone", "UTC")]);
        assert_ne!(a, c);
    }

    #[test]
    fn ignored_settings_do_not_split_entries_but_custom_ones_do() {
        let seed = KeySeed::new();
        let a = SettingsDigest::new(&seed, [("TimeZone", "UTC"), ("application_name", "x")]);
        let b = SettingsDigest::new(&seed, [("TimeZone", "UTC"), ("application_name", "y")]);
        assert_eq!(a, b);
        let t1 = SettingsDigest::new(&seed, [("app.tenant", "1")]);
        let t2 = SettingsDigest::new(&seed, [("app.tenant", "2")]);
        assert_ne!(t1, t2);
        // Read by name, they are keyed (and only they: the others are in `new`'s digest).
        let x = SettingsDigest::ignored(&seed, [("TimeZone", "UTC"), ("application_name", "x")]);
        let y = SettingsDigest::ignored(&seed, [("TimeZone", "UTC"), ("application_name", "y")]);
        assert_ne!(x, y);
        assert_eq!(x, SettingsDigest::ignored(&seed, [("TimeZone", "PST8PDT"), ("application_name", "x")]));
        let k = |d| KeyBuilder::new(&seed, "d", "r", Protocol::Simple, a).ignored_settings(d).statement(b"s").finish();
        assert_ne!(k(x), k(y));
    }

    #[test]
    fn what_may_read_settings_by_name() {
        for text in [
            "SELECT current_setting('application_name')",
            "select CURRENT_SETTING($1)",
            "SELECT setting FROM pg_settings WHERE name = $1",
            "SELECT * FROM pg_catalog.Pg_Show_All_Settings()",
        ] {
            assert!(may_read_settings(text.as_bytes()), "{text}");
        }
        for text in ["SELECT v FROM kv WHERE k = $1", "SELECT set_config('a.b', 'c', false)", "SETTIN", ""] {
            assert!(!may_read_settings(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn bind_parameters_and_formats_change_the_key() {
        let seed = KeySeed::new();
        let s = SettingsDigest::default();
        let k = |pf: &[i16], v: Option<&[u8]>, rf: &[i16]| {
            KeyBuilder::new(&seed, "d", "r", Protocol::Extended, s)
                .statement(b"SELECT $1")
                .bind_parts(pf, [v], rf)
                .finish()
        };
        let base = k(&[0], Some(b"1"), &[0]);
        assert_ne!(base, k(&[0], Some(b"2"), &[0]));
        assert_ne!(base, k(&[1], Some(b"1"), &[0]));
        assert_ne!(base, k(&[0], Some(b"1"), &[1]));
        assert_ne!(base, k(&[0], None, &[0]));
        assert_ne!(k(&[0], Some(b""), &[0]), k(&[0], None, &[0]));
        let tail = |t: &[u8]| {
            KeyBuilder::new(&seed, "d", "r", Protocol::Extended, s).statement(b"SELECT $1").bind_tail(t).finish()
        };
        assert_ne!(tail(b"\0\0\0\x01\0\0\0\x011\0\0"), tail(b"\0\0\0\x01\0\0\0\x012\0\0"));
    }

    #[test]
    fn the_statement_memo_holds_only_for_the_same_text_protocol_and_generation() {
        let seed = KeySeed::new();
        let utc = SettingsDigest::new(&seed, [("TimeZone", "UTC")]);
        let tokyo = SettingsDigest::new(&seed, [("TimeZone", "Asia/Tokyo")]);
        let fresh = |p: Protocol, s: SettingsDigest, sql: &[u8]| KeyBuilder::new(&seed, "d", "r", p, s).statement(sql);
        let mut memo = StatementKeyMemo::default();
        let mut built = 0;
        let mut get = |memo: &mut StatementKeyMemo, g: u64, p: Protocol, s: SettingsDigest, sql: &[u8]| {
            memo.get_or_build((g, 0, false), p, sql, || {
                built += 1;
                fresh(p, s, sql)
            })
            .finish()
        };
        let a = get(&mut memo, 1, Protocol::Simple, utc, b"SELECT 1");
        assert_eq!(a, fresh(Protocol::Simple, utc, b"SELECT 1").finish());
        assert_eq!(get(&mut memo, 1, Protocol::Simple, utc, b"SELECT 1"), a, "remembered");
        // Another generation (e.g. after SET TimeZone) is another key, never the remembered one.
        let b = get(&mut memo, 2, Protocol::Simple, tokyo, b"SELECT 1");
        assert_eq!(b, fresh(Protocol::Simple, tokyo, b"SELECT 1").finish());
        assert_ne!(a, b);
        let c = get(&mut memo, 2, Protocol::Extended, tokyo, b"SELECT 1");
        assert_eq!(c, fresh(Protocol::Extended, tokyo, b"SELECT 1").finish(), "another protocol");
        let d = get(&mut memo, 2, Protocol::Extended, tokyo, b"SELECT 2");
        assert_eq!(d, fresh(Protocol::Extended, tokyo, b"SELECT 2").finish(), "another text");
        let long = vec![b'x'; MEMO_MAX_TEXT + 1];
        get(&mut memo, 2, Protocol::Extended, tokyo, &long);
        get(&mut memo, 2, Protocol::Extended, tokyo, &long);
        assert_eq!(built, 6, "a text over the cap is not kept");
        // The memo's state continues like a fresh one: execution fields after it agree.
        let mut memo = StatementKeyMemo::default();
        let _ = memo.get_or_build((3, 0, false), Protocol::Extended, b"SELECT $1", || {
            fresh(Protocol::Extended, utc, b"SELECT $1")
        });
        let again = memo.get_or_build((3, 0, false), Protocol::Extended, b"SELECT $1", || unreachable!("remembered"));
        assert_eq!(
            again.bind_tail(b"tail").finish(),
            fresh(Protocol::Extended, utc, b"SELECT $1").bind_tail(b"tail").finish()
        );
    }
}
