//! Statement kinds, decided from the leading keywords of the statement text.
//!
//! The kind comes from the tokens rather than the AST so that a statement sqlparser cannot parse
//! still gets one (the cache and the policy both need it); the analysis refines it with the AST
//! where the keywords are not enough (`WITH … DELETE`, `SELECT … INTO`, `EXPLAIN ANALYZE`).

use super::lex::Token;
use serde::Serialize;

/// Transaction-control statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK`, `ABORT`.
    Rollback,
    /// `SAVEPOINT x`.
    Savepoint,
    /// `RELEASE [SAVEPOINT] x`.
    Release,
    /// `ROLLBACK TO [SAVEPOINT] x`.
    RollbackTo,
    /// `PREPARE TRANSACTION 'x'`.
    Prepare,
    /// `COMMIT PREPARED 'x'`.
    CommitPrepared,
    /// `ROLLBACK PREPARED 'x'`.
    RollbackPrepared,
    /// `SET TRANSACTION …`, `SET SESSION CHARACTERISTICS AS TRANSACTION …`.
    SetCharacteristics,
}

/// What a statement does, at the granularity the cache and the policies need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "tx")]
pub enum StatementKind {
    /// A query that only reads (`SELECT`, `VALUES`, `TABLE`, `WITH … SELECT`).
    Read,
    /// DML: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, `SELECT … INTO`, data-modifying CTEs,
    /// `EXPLAIN ANALYZE` of a write.
    Write,
    /// Schema changes and privileges: CREATE, ALTER, DROP, GRANT, REVOKE, COMMENT, …
    Ddl,
    /// Transaction control.
    Transaction(TxKind),
    /// `SET` / `RESET` of a session parameter (including ROLE and SESSION AUTHORIZATION).
    SessionSet,
    /// COPY, VACUUM, ANALYZE, LISTEN, NOTIFY, DISCARD, PREPARE/EXECUTE, cursors, CALL, DO,
    /// EXPLAIN, LOCK, SHOW (session state: never cached)…
    Utility,
    /// Anything else.
    Unknown,
}

impl StatementKind {
    /// The name used in config (`deny_statements`) and messages.
    pub fn config_name(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "ddl",
            StatementKind::Transaction(_) => "transaction",
            StatementKind::SessionSet => "set",
            StatementKind::Utility => "utility",
            StatementKind::Unknown => "unknown",
        }
    }
}

/// Classifies a statement by its leading keywords.
pub fn classify(src: &str, toks: &[Token]) -> StatementKind {
    let w = |i: usize| -> String {
        toks.get(i)
            .filter(|t| t.kind == super::lex::TokKind::Word)
            .map(|t| t.text(src).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let first = w(0);
    let second = w(1);
    if toks.first().is_some_and(|t| t.is_punct(src, '(')) {
        return StatementKind::Read;
    }
    match first.as_str() {
        "select" | "values" | "table" | "with" => StatementKind::Read,
        "insert" | "update" | "delete" | "merge" | "truncate" => StatementKind::Write,
        "create" | "alter" | "drop" | "grant" | "revoke" | "comment" | "security" | "import" | "reindex"
        | "cluster" | "refresh" | "reassign" => StatementKind::Ddl,
        "begin" | "start" => StatementKind::Transaction(TxKind::Begin),
        "commit" | "end" if second == "prepared" => StatementKind::Transaction(TxKind::CommitPrepared),
        "commit" | "end" => StatementKind::Transaction(TxKind::Commit),
        "rollback" | "abort" => match second.as_str() {
            "prepared" => StatementKind::Transaction(TxKind::RollbackPrepared),
            "to" => StatementKind::Transaction(TxKind::RollbackTo),
            "work" | "transaction" if w(2) == "to" => StatementKind::Transaction(TxKind::RollbackTo),
            _ => StatementKind::Transaction(TxKind::Rollback),
        },
        "savepoint" => StatementKind::Transaction(TxKind::Savepoint),
        "release" => StatementKind::Transaction(TxKind::Release),
        "prepare" if second == "transaction" => StatementKind::Transaction(TxKind::Prepare),
        "set" if second == "transaction" || (second == "session" && w(2) == "characteristics") => {
            StatementKind::Transaction(TxKind::SetCharacteristics)
        }
        "set" | "reset" => StatementKind::SessionSet,
        "copy" | "vacuum" | "analyze" | "analyse" | "listen" | "unlisten" | "notify" | "discard" | "prepare"
        | "execute" | "deallocate" | "declare" | "fetch" | "move" | "close" | "call" | "do" | "explain" | "lock"
        | "checkpoint" | "load" | "show" => StatementKind::Utility,
        _ => StatementKind::Unknown,
    }
}

/// The savepoint a `SAVEPOINT x`, `RELEASE [SAVEPOINT] x` or `ROLLBACK [WORK | TRANSACTION] TO
/// [SAVEPOINT] x` names, folded as Postgres folds identifiers (unquoted: lower case).
pub fn savepoint_name(src: &str, toks: &[Token]) -> Option<String> {
    let is = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is_word(src, w));
    let mut i = match classify(src, toks) {
        StatementKind::Transaction(TxKind::Savepoint | TxKind::Release) => 1,
        StatementKind::Transaction(TxKind::RollbackTo) => {
            let mut i = 1;
            if is(i, "work") || is(i, "transaction") {
                i += 1;
            }
            i + 1 // past TO
        }
        _ => return None,
    };
    if is(i, "savepoint") && toks.len() > i + 1 {
        i += 1;
    }
    toks.get(i)?.identifier(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn name(s: &str) -> Option<String> {
        savepoint_name(s, &tokenize(s))
    }

    #[test]
    fn savepoint_names_are_read_in_every_form() {
        assert_eq!(name("SAVEPOINT Sp1").as_deref(), Some("sp1"));
        assert_eq!(name("savepoint \"Mixed\"\"Q\"").as_deref(), Some("Mixed\"Q"));
        assert_eq!(name("RELEASE SAVEPOINT a").as_deref(), Some("a"));
        assert_eq!(name("RELEASE a").as_deref(), Some("a"));
        assert_eq!(name("ROLLBACK TO SAVEPOINT b").as_deref(), Some("b"));
        assert_eq!(name("ROLLBACK TO b").as_deref(), Some("b"));
        assert_eq!(name("rollback work to savepoint c").as_deref(), Some("c"));
        assert_eq!(name("ABORT TRANSACTION TO d").as_deref(), Some("d"));
        // A savepoint may itself be called "savepoint".
        assert_eq!(name("RELEASE savepoint").as_deref(), Some("savepoint"));
        assert_eq!(name("ROLLBACK"), None);
        assert_eq!(name("COMMIT"), None);
    }
}
