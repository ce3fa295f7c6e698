//! Whether a read inside a transaction block may be answered from (and recorded into) the
//! shared cache, and why not.
//!
//! In READ COMMITTED (Postgres's default) every statement takes a fresh snapshot of what is
//! committed, so a read sees exactly what an autocommit read at that moment would see — except
//! for what its own transaction wrote and has not committed, and for the settings it changed
//! since it began (`SET LOCAL`, or a `SET` the proxy only follows at commit). A cached answer
//! is committed data, kept fresh by invalidation at every commit, so it may stand for such a
//! read, and such a read may fill the cache. REPEATABLE READ and SERIALIZABLE keep one
//! snapshot for the whole transaction: their reads go to Postgres.
//!
//! The isolation of a block is what its `BEGIN` names, else the session's
//! `default_transaction_isolation`: the client's own value (startup `options`, `SET`) when it
//! set one, else the default of its role and database (`ALTER ROLE/DATABASE … SET`, then the
//! server's), read from the catalog. Unknown means "not READ COMMITTED".

use std::sync::Arc;

use super::Session;
use super::state::Writes;
use crate::cache::{Bypass, Catalog};

/// Transaction isolation levels (READ UNCOMMITTED behaves as READ COMMITTED in Postgres).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// A level as `default_transaction_isolation` or `ISOLATION LEVEL` spell it (any case,
    /// quoted or not, blanks collapsed).
    pub fn parse(value: &str) -> Option<Isolation> {
        // Without allocating: asked for every read in a block (see `tx_reads`).
        let mut words = value.trim_matches(|c| c == '\'' || c == '"').split_whitespace();
        let is = |w: Option<&str>, want: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(want));
        let (first, second, rest) = (words.next(), words.next(), words.next());
        if rest.is_some() {
            return None;
        }
        if is(first, "read") && (is(second, "committed") || is(second, "uncommitted")) {
            Some(Isolation::ReadCommitted)
        } else if is(first, "repeatable") && is(second, "read") {
            Some(Isolation::RepeatableRead)
        } else if is(first, "serializable") && second.is_none() {
            Some(Isolation::Serializable)
        } else {
            None
        }
    }
}

/// A session's default isolation as last worked out (see `known_default_isolation`).
pub(super) struct IsolationMemo {
    /// The session's settings generation it was worked out under.
    generation: u64,
    /// The catalog that answered (`None`: the client's own setting did), and its epoch then.
    catalog: Option<Arc<Catalog>>,
    epoch: u64,
    level: Option<Isolation>,
}

/// What a `BEGIN` / `START TRANSACTION` says, read from its words (a fingerprint: keywords as
/// written, no literals to mask in these statements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeginForm {
    /// The level it names (`None`: the session's default).
    pub isolation: Option<Isolation>,
    /// The proxy may answer it itself and send it to Postgres only with the first statement
    /// that needs a server (see `held`): nothing in it can fail there — no level other than
    /// READ COMMITTED, no `READ WRITE` (refused on a standby), no `DEFERRABLE` to wait on.
    pub holdable: bool,
    /// It names a characteristic other than `ISOLATION LEVEL READ COMMITTED` and `READ ONLY`
    /// (`READ UNCOMMITTED`, `READ WRITE`, `[NOT] DEFERRABLE`): its reads may see
    /// `transaction_isolation` or `transaction_deferrable` values that no cache key holds
    /// (psycopg's `set_deferrable` and co. send these). `READ ONLY` is not one: Spring's
    /// read-only blocks are what the cache pays on, so their reads are keyed apart instead
    /// ([`BeginForm::read_only`], DECISIONS 53).
    pub characteristics: bool,
    /// It names `READ ONLY` (and no `READ WRITE` after it).
    pub read_only: bool,
    /// Its command tag (`BEGIN` or `START TRANSACTION`).
    pub tag: &'static str,
}

/// The form of a transaction-starting statement, `None` if `text` is not one.
pub fn begin_form(text: &str) -> Option<BeginForm> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let (tag, mut rest) = match words.first().map(String::as_str) {
        Some("begin") => ("BEGIN", &words[1..]),
        Some("start") if words.get(1).map(String::as_str) == Some("transaction") => ("START TRANSACTION", &words[2..]),
        _ => return None,
    };
    if tag == "BEGIN" && matches!(rest.first().map(String::as_str), Some("work" | "transaction")) {
        rest = &rest[1..];
    }
    let mut form = BeginForm { isolation: None, holdable: true, characteristics: false, read_only: false, tag };
    let mut i = 0;
    let word = |i: usize| rest.get(i).map(String::as_str);
    while i < rest.len() {
        match (word(i), word(i + 1), word(i + 2), word(i + 3)) {
            (Some("isolation"), Some("level"), Some(a), b) => {
                let two = b.map(|b| format!("{a} {b}"));
                let (level, used) = match two.as_deref().and_then(Isolation::parse) {
                    Some(level) => (Some(level), 4),
                    None => (Isolation::parse(a), 3),
                };
                form.isolation = Some(level?);
                form.holdable &= level == Some(Isolation::ReadCommitted);
                form.characteristics |= used == 4 && b == Some("uncommitted");
                i += used;
            }
            (Some("read"), Some("only"), ..) => {
                form.read_only = true;
                i += 2;
            }
            (Some("read"), Some("write"), ..) => {
                form.read_only = false;
                form.holdable = false;
                form.characteristics = true;
                i += 2;
            }
            (Some("not"), Some("deferrable"), ..) => {
                form.characteristics = true;
                i += 2;
            }
            (Some("deferrable"), ..) => {
                form.holdable = false;
                form.characteristics = true;
                i += 1;
            }
            _ => return None,
        }
    }
    Some(form)
}

/// Whether reads may use the cache now, as far as the transaction is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxReads {
    /// No transaction block: autocommit reads.
    Autocommit,
    /// A READ COMMITTED block that has written nothing and changed no setting.
    Clean,
    /// A READ COMMITTED block that wrote: reads of what it wrote go to Postgres (see
    /// [`Session::tx_wrote_any`]).
    AfterWrites,
    /// Reads go to Postgres, for this reason.
    Uncached(Bypass),
    /// The block failed: statements are refused by Postgres until it ends.
    Failed,
}

impl TxReads {
    pub fn usable(self) -> bool {
        !matches!(self, TxReads::Uncached(_) | TxReads::Failed)
    }
}

impl Session {
    /// The transaction status is the last ReadyForQuery's; it is current only with none still
    /// to come (what was answered since — a `BEGIN`, an error in a block — may have changed it).
    pub(super) fn status_settled(&self) -> bool {
        self.queue.pending_ready() == 0
    }

    /// Where the transaction leaves reads (see the module doc).
    pub(super) fn tx_reads(&self) -> TxReads {
        match self.tx.status() {
            b'I' => TxReads::Autocommit,
            b'E' => TxReads::Failed,
            _ => match self.tx.block() {
                // Begun where the proxy could not follow: its level is not known.
                None => TxReads::Uncached(Bypass::TransactionIsolation),
                Some(block) if block.private_reads => TxReads::Uncached(Bypass::SettingsInTransaction),
                Some(block) => match block.isolation.or_else(|| self.default_isolation()) {
                    Some(Isolation::ReadCommitted) if self.tx.wrote() => TxReads::AfterWrites,
                    Some(Isolation::ReadCommitted) => TxReads::Clean,
                    Some(_) | None => TxReads::Uncached(Bypass::TransactionIsolation),
                },
            },
        }
    }

    /// The isolation a `BEGIN` that names none gets in this session, if known without waiting
    /// (the catalog's answer is asked for meanwhile, for the next time).
    pub(super) fn default_isolation(&self) -> Option<Isolation> {
        self.known_default_isolation().unwrap_or_else(|catalog| {
            let role = self.key.user.clone();
            tokio::spawn(async move {
                if let Err(e) = catalog.default_isolation(&role).await {
                    tracing::debug!(error = %e, "catalog look-up failed");
                }
            });
            None
        })
    }

    /// Like [`Session::default_isolation`], waiting for the catalog if it was not asked yet.
    pub(super) async fn default_isolation_now(&mut self) -> Option<Isolation> {
        let catalog = match self.known_default_isolation() {
            Ok(level) => return level,
            Err(catalog) => catalog,
        };
        let role = self.key.user.clone();
        // Boxed: a catalog query is a large state machine, asked once per role and database.
        match Box::pin(catalog.default_isolation(&role)).await {
            Ok(value) => Isolation::parse(value.as_deref()?),
            Err(e) => {
                tracing::debug!(error = %e, "catalog look-up failed");
                None
            }
        }
    }

    /// The default level from the client's own setting or the catalog's memo (`Ok(None)`: not
    /// known to be any); `Err(catalog)` when the catalog has not been asked yet. Asked several
    /// times per statement in a block: memoized until the session's settings or the catalog's
    /// answers change.
    fn known_default_isolation(&self) -> Result<Option<Isolation>, Arc<Catalog>> {
        let generation = self.wanted.generation();
        if let Some(memo) = &*self.isolation_memo.borrow()
            && memo.generation == generation
            && memo.catalog.as_ref().map_or(0, |c| c.epoch()) == memo.epoch
        {
            return Ok(memo.level);
        }
        let (level, catalog) = if let Some(value) = self.wanted.get("default_transaction_isolation") {
            (Isolation::parse(value), None)
        } else {
            let Some(catalog) = self.catalog() else { return Ok(None) };
            match catalog.default_isolation_known(&self.key.user) {
                Some(value) => (value.as_deref().and_then(Isolation::parse), Some(catalog)),
                None => return Err(catalog),
            }
        };
        let epoch = catalog.as_ref().map_or(0, |c| c.epoch());
        *self.isolation_memo.borrow_mut() = Some(IsolationMemo { generation, catalog, epoch, level });
        Ok(level)
    }

    /// Whether the transaction's writes so far may change a read tracked under `tables`
    /// (version keys): what it wrote, and what Postgres writes on its behalf. Unknown reach
    /// (a trigger that may write anything, a catalog answer not in yet) counts as yes.
    pub(super) fn tx_wrote_any(&self, tables: &[String]) -> bool {
        let writes: Writes = self.tx.writes();
        if writes.database || writes.all {
            return true;
        }
        let Some((_, closures)) = self.write_closures(&writes.tables) else { return true };
        // Closure tables are version keys already (see `WriteClosure::tables`).
        closures.iter().flat_map(|c| c.tables.iter()).any(|t| tables.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_postgres_spells_them() {
        assert_eq!(Isolation::parse("read committed"), Some(Isolation::ReadCommitted));
        assert_eq!(Isolation::parse("'READ  UNCOMMITTED'"), Some(Isolation::ReadCommitted));
        assert_eq!(Isolation::parse("Repeatable Read"), Some(Isolation::RepeatableRead));
        assert_eq!(Isolation::parse("serializable"), Some(Isolation::Serializable));
        assert_eq!(Isolation::parse("default"), None);
        assert_eq!(Isolation::parse(""), None);
    }

    #[test]
    fn begin_forms_and_which_may_be_held() {
        let f = |t| begin_form(t).map(|f| (f.isolation, f.holdable, f.tag));
        let rc = Some(Isolation::ReadCommitted);
        assert_eq!(f("BEGIN"), Some((None, true, "BEGIN")));
        assert_eq!(f("begin work;"), Some((None, true, "BEGIN")));
        assert_eq!(f("BEGIN TRANSACTION READ ONLY"), Some((None, true, "BEGIN")));
        assert_eq!(f("START TRANSACTION"), Some((None, true, "START TRANSACTION")));
        assert_eq!(f("begin isolation level read committed, read only"), Some((rc, true, "BEGIN")));
        assert_eq!(f("BEGIN ISOLATION LEVEL READ UNCOMMITTED NOT DEFERRABLE"), Some((rc, true, "BEGIN")));
        assert_eq!(f("BEGIN ISOLATION LEVEL REPEATABLE READ"), Some((Some(Isolation::RepeatableRead), false, "BEGIN")));
        assert_eq!(
            f("start transaction isolation level serializable, read only, deferrable"),
            Some((Some(Isolation::Serializable), false, "START TRANSACTION"))
        );
        assert_eq!(f("BEGIN READ WRITE"), Some((None, false, "BEGIN")));
        assert_eq!(f("BEGIN ISOLATION LEVEL bogus"), None, "Postgres refuses it: not held");
        assert_eq!(f("BEGIN; SELECT 1"), None);
        assert_eq!(f("COMMIT"), None);
    }

    #[test]
    fn what_a_begin_says_that_its_reads_can_see() {
        let f = |t| begin_form(t).map(|f| (f.read_only, f.characteristics));
        assert_eq!(f("BEGIN"), Some((false, false)));
        assert_eq!(f("BEGIN READ ONLY"), Some((true, false)));
        assert_eq!(f("start transaction isolation level read committed, read only"), Some((true, false)));
        assert_eq!(f("BEGIN READ ONLY, READ WRITE"), Some((false, true)), "the last one counts");
        assert_eq!(f("BEGIN READ WRITE, READ ONLY"), Some((true, true)));
        assert_eq!(f("BEGIN READ ONLY NOT DEFERRABLE"), Some((true, true)));
        assert_eq!(f("BEGIN ISOLATION LEVEL READ UNCOMMITTED"), Some((false, true)));
    }
}
