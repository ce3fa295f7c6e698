//! What the statements of a query string will do to the session, worked out when they are sent
//! (from the SQL analysis and, for the extended protocol, the Bind parameters): for each
//! statement its [`Effects`] — transaction control, the tables its commit invalidates, the
//! settings it changes, by value — and for the string as a whole the pins it adds, why it makes
//! the session's answers private, and the custom settings it defines.
//!
//! Effects are taken into account only when the server reports each statement complete (see
//! `state`); pins and privacy take effect at once, the safe direction.

use std::sync::Arc;

use super::params::{self, SetEffect};
use super::state::{Control, Effects, Pins, Private, RowsWritten, Writes};
use crate::cache::rowkey::{self, BindValues};
use crate::sql::{Analysis, SetVia, StatementAnalysis, StatementKind, TxKind};

/// The effects of one query string (or one extended-protocol statement).
#[derive(Debug, Default)]
pub struct Plan {
    /// One entry per statement, in order; `None` when no statement has anything to follow.
    pub statements: Option<Box<[Arc<Effects>]>>,
    /// Connection state the statements leave behind (transaction pooling keeps the server).
    pub pins: Pins,
    /// Reasons the session's answers become private to it.
    pub private: Private,
    /// Settings changed where the proxy cannot follow their values: the server connection must
    /// be reset before another client may use it.
    pub untracked_settings: bool,
    /// Custom (dotted) settings the statements define: once defined, a placeholder stays on
    /// its connection for good (see `Session::placeholders`).
    pub placeholders: Vec<String>,
    /// A setting whose name the proxy cannot see (computed): it may define a custom setting,
    /// and no reset undefines one (see `ServerConn::placeholders_unknown`).
    pub unknown_placeholders: bool,
}

/// The plan of `analysis`. `params`: the text of the Bind parameters (for `set_config($1, $2,
/// $3)`); `lexing_unreliable`: the server may split or read the text differently from the
/// analysis (then every statement may write anything in the database); `unknown_writer`:
/// whether a statement calls a function that may write what the proxy cannot name (see
/// `calls`).
pub fn plan(
    analysis: &Analysis,
    params: &[Option<String>],
    bind: &BindValues<'_>,
    lexing_unreliable: bool,
    unknown_writer: &dyn Fn(&StatementAnalysis) -> bool,
) -> Plan {
    let mut plan = Plan::default();
    if lexing_unreliable {
        plan.private.add(Private::OPAQUE);
    }
    let mut statements = Vec::with_capacity(analysis.statements.len());
    for s in &analysis.statements {
        // What a `BEGIN` says, read once.
        let begin = (s.kind == StatementKind::Transaction(TxKind::Begin))
            .then(|| super::isolation::begin_form(&s.fingerprint))
            .flatten();
        let mut effects = Effects {
            control: control(s, begin),
            writes: writes(s, bind, lexing_unreliable || unknown_writer(s)),
            sets: Vec::new(),
            drops_statements: drops_statements(s),
            resets_settings: s.keyword == "discard" && drops_statements(s),
            defines: Vec::new(),
            // In a block, a setting changed (or the block's characteristics) is not in the key
            // of what later reads there see.
            private_reads: !s.settings.is_empty()
                || s.kind == StatementKind::Transaction(TxKind::SetCharacteristics)
                || s.kind == StatementKind::SessionSet
                || begin.is_some_and(|f| f.characteristics),
            pins: Pins::default(),
        };
        let untracked_before = plan.untracked_settings;
        effects.pins = note_session_state(s, &mut plan);
        plan.pins.add(effects.pins);
        if plan.untracked_settings && !untracked_before {
            effects.pins.add(Pins::UNTRACKED_SETTINGS);
        }
        for change in &s.settings {
            match setting(change, params) {
                Setting::Session(effect) => effects.sets.push(effect),
                Setting::Local => {}
                Setting::Untracked => {
                    plan.untracked_settings = true;
                    effects.pins.add(Pins::UNTRACKED_SETTINGS);
                }
            }
            let name = change.name.clone().or_else(|| change.name_param.and_then(|n| param(params, n)));
            let value = || change.value.clone().or_else(|| change.value_param.and_then(|n| param(params, n)));
            if name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("search_path"))
                && value().is_some_and(|v| names_temp_schema(&v))
            {
                // The client is treated as one that made a temporary object.
                effects.pins.add(Pins::TEMP_OBJECTS);
                plan.pins.add(Pins::TEMP_OBJECTS);
                plan.private.add(Private::TEMP_OBJECTS);
            }
            match name {
                Some(name) if name.contains('.') => {
                    let name = name.to_ascii_lowercase();
                    effects.defines.push(name.clone());
                    plan.placeholders.push(name);
                }
                Some(_) => {}
                None if change.via == SetVia::SetConfig => plan.unknown_placeholders = true,
                None => {} // RESET ALL
            }
        }
        effects.resets_settings |= effects.sets.contains(&SetEffect::ResetAll);
        statements.push(Arc::new(effects));
    }
    if plan.untracked_settings {
        plan.private.add(Private::UNTRACKED_SETTINGS);
    }
    if statements.iter().any(|e| !e.is_empty()) {
        plan.statements = Some(statements.into_boxed_slice());
    }
    plan
}

/// Connection state a statement leaves behind (its pins, returned), and what makes its
/// session's answers private (into `plan`).
fn note_session_state(s: &StatementAnalysis, plan: &mut Plan) -> Pins {
    let mut pins = Pins::default();
    if !s.temp_tables_created.is_empty() {
        pins.add(Pins::TEMP_OBJECTS);
        plan.private.add(Private::TEMP_OBJECTS);
    }
    match s.keyword.as_str() {
        "listen" => pins.add(Pins::LISTEN),
        "prepare" if s.kind != StatementKind::Transaction(TxKind::Prepare) => pins.add(Pins::SQL_PREPARED),
        _ => {}
    }
    if s.hold_cursor {
        pins.add(Pins::HOLD_CURSOR);
    }
    if s.functions.iter().any(|f| crate::sql::functions::takes_session_lock(&f.name)) {
        pins.add(Pins::ADVISORY_LOCK);
    }
    if s.kind == StatementKind::Transaction(TxKind::SetCharacteristics)
        && s.settings.is_empty()
        && s.fingerprint.split_whitespace().nth(1).is_some_and(|w| w.eq_ignore_ascii_case("session"))
    {
        // `SET SESSION CHARACTERISTICS AS TRANSACTION …` whose modes were not understood (those
        // that are are followed as the `default_transaction_*` settings they are).
        plan.untracked_settings = true;
    }
    if s.opaque_session_state {
        // A DO block that may set settings, define custom ones, or leave temporary objects,
        // listeners or locks: the client keeps its connection, its answers are its own, and
        // the connection is closed when given back.
        plan.untracked_settings = true;
        plan.unknown_placeholders = true;
    }
    if s.settings.iter().any(|c| c.name.as_deref() == Some("session_authorization")) {
        // RESET ALL does not undo it, and the key holds the role, not this.
        plan.untracked_settings = true;
    }
    pins
}

/// Whether a `search_path` value names the temporary schema (`pg_temp, public`): a `CREATE
/// TABLE t` after it may make a temporary table that no statement names as one (when `pg_temp`
/// is the first schema on the path that exists).
fn names_temp_schema(path: &str) -> bool {
    crate::sql::lex::contains_ignore_ascii_case(path.as_bytes(), b"pg_temp")
}

/// `DISCARD ALL`, `DEALLOCATE ALL`, `DEALLOCATE PREPARE ALL`.
fn drops_statements(s: &StatementAnalysis) -> bool {
    if s.keyword != "discard" && s.keyword != "deallocate" {
        return false;
    }
    let mut words = s.fingerprint.split_whitespace().skip(1);
    let word = match words.next() {
        Some(w) if w.eq_ignore_ascii_case("prepare") && s.keyword == "deallocate" => words.next(),
        w => w,
    };
    word.is_some_and(|w| w.trim_end_matches(';').eq_ignore_ascii_case("all"))
}

/// The transaction control `s` performs (`begin`: its form, when it is a `BEGIN`).
fn control(s: &StatementAnalysis, begin: Option<super::isolation::BeginForm>) -> Option<Control> {
    let StatementKind::Transaction(kind) = s.kind else { return None };
    let name = || s.savepoint.clone();
    Some(match kind {
        TxKind::Begin => {
            Control::Begin { isolation: begin.and_then(|f| f.isolation), read_only: begin.is_some_and(|f| f.read_only) }
        }
        TxKind::Commit => Control::Commit,
        TxKind::Rollback => Control::Rollback,
        TxKind::Savepoint => Control::Savepoint(name()?),
        TxKind::Release => Control::Release(name()?),
        TxKind::RollbackTo => Control::RollbackTo(name()?),
        TxKind::Prepare => Control::PrepareTransaction,
        TxKind::CommitPrepared | TxKind::RollbackPrepared | TxKind::SetCharacteristics => return None,
    })
}

/// What committing `s` invalidates (`bind`: its parameters, for the rows it pins; `anything`:
/// it may write what the proxy cannot name — see `plan`).
fn writes(s: &StatementAnalysis, bind: &BindValues<'_>, anything: bool) -> Writes {
    let mut w = Writes::default();
    if s.kind == StatementKind::Ddl {
        if !s.temp_tables_created.is_empty() && s.keyword == "create" {
            // A temporary table is the session's own (it pins and privatizes it): nothing
            // shared changes.
            return w;
        }
        if let ("refresh", [view]) = (s.keyword.as_str(), s.tables_written.as_slice()) {
            // `REFRESH MATERIALIZED VIEW v`: v's rows change, in this database.
            w.tables = vec![view.name.clone()];
            return w;
        }
        if s.keyword == "alter" && starts_with_words(&s.fingerprint, &["alter", "default", "privileges"]) {
            // Privileges of objects created later: nothing that exists changes.
            return w;
        }
        // Schema, grants, roles, policies: rare, and their reach is wide.
        w.all = true;
        w.login_defaults = crate::sql::login_defaults::changes_login_defaults(&s.fingerprint);
        return w;
    }
    // A user function may write anything (volatile PL/pgSQL); the analysis may not see the
    // statements the server will run; `COMMIT PREPARED` lands writes nobody can name here.
    w.database = anything || s.kind == StatementKind::Transaction(TxKind::CommitPrepared);
    if s.keyword == "truncate" && s.fingerprint.to_ascii_lowercase().split_whitespace().any(|w| w == "cascade") {
        // Every table referencing the truncated ones, whatever their foreign keys' actions.
        w.database = true;
    }
    if s.may_write() {
        // `nextval('s')` names its sequence; a sequence named by an expression may be any.
        let sequence_calls = s.functions.iter().filter(|f| crate::sql::functions::writes_sequence(&f.name)).count();
        w.database |= sequence_calls > s.sequences_written.len();
        w.database |= if writes_through_functions_only(s) {
            // `pg_notify` and the like write no relation; anything else (large objects) may
            // write what the proxy cannot name.
            s.functions.iter().any(|f| {
                crate::sql::functions::writes(&f.name)
                    && !crate::sql::functions::writes_sequence(&f.name)
                    && !crate::sql::functions::writes_no_table(&f.name)
            })
        } else {
            s.tables_written.is_empty() || s.dynamic_sql || s.executes_prepared || s.parse_error.is_some()
        };
        w.tables = s.tables_written.iter().chain(&s.sequences_written).map(|t| t.name.clone()).collect();
        if let Some(rows) = &s.rows
            && s.kind == StatementKind::Write
            && s.tables_written.as_slice() == std::slice::from_ref(&rows.table)
        {
            let columns = rowkey::bind(&rows.columns, bind);
            if !columns.is_empty() {
                w.rows.push(RowsWritten { table: rows.table.clone(), columns });
            }
        }
    }
    w
}

/// Whether `fingerprint` starts with the keywords `words` (any case).
fn starts_with_words(fingerprint: &str, words: &[&str]) -> bool {
    let mut head = fingerprint.split_whitespace();
    words.iter().all(|w| head.next().is_some_and(|h| h.eq_ignore_ascii_case(w)))
}

/// A read (`SELECT …`) that writes only through the built-in functions it calls.
fn writes_through_functions_only(s: &StatementAnalysis) -> bool {
    s.kind == StatementKind::Read
        && !s.dynamic_sql
        && !s.executes_prepared
        && !s.data_modifying_cte
        && !s.select_into
        && s.parse_error.is_none()
}

/// What one setting change does, once its Bind parameters are known.
enum Setting {
    /// A session-level change the proxy follows by value.
    Session(SetEffect),
    /// Ends with the transaction: nothing to carry.
    Local,
    /// Its name or value cannot be known here.
    Untracked,
}

fn setting(change: &crate::sql::SettingChange, params: &[Option<String>]) -> Setting {
    let local = match change.local_param {
        Some(n) => param(params, n).is_some_and(|v| v == "\u{1}" || crate::sql::is_true(&v)),
        None => change.local,
    };
    if local {
        return Setting::Local;
    }
    let name = match (&change.name, change.name_param) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(n)) => param(params, n).map(|n| n.to_ascii_lowercase()),
        (None, None) => None,
    };
    let value = match (&change.value, change.value_param) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(n)) => param(params, n),
        (None, None) => None,
    };
    let via_set_config = change.via == SetVia::SetConfig;
    match (name, value, change.via) {
        (None, _, SetVia::Reset) => Setting::Session(SetEffect::ResetAll),
        (Some(name), _, SetVia::Reset) => Setting::Session(SetEffect::Reset { name }),
        // `SET x = DEFAULT` / `SET x TO DEFAULT`; set_config() takes 'default' literally.
        (Some(name), Some(v), _) if !via_set_config && v.eq_ignore_ascii_case("default") => {
            Setting::Session(SetEffect::Reset { name })
        }
        (Some(name), Some(v), _) if params::is_tracked(&name) => {
            let value = if via_set_config { v } else { params::set_value(&v) };
            Setting::Session(SetEffect::Set { name, value })
        }
        _ => Setting::Untracked,
    }
}

/// Bind parameter `n` (1-based) as text.
fn param(params: &[Option<String>], n: usize) -> Option<String> {
    params.get(n.checked_sub(1)?).cloned().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::analyze_uncached as analyze;

    fn one(sql: &str, params: &[Option<&str>]) -> Plan {
        let params: Vec<Option<String>> = params.iter().map(|p| p.map(str::to_string)).collect();
        // As without a catalog: a function the built-in list does not know may write.
        plan(&analyze(sql), &params, &BindValues::default(), false, &|s| s.unknown_functions().next().is_some())
    }

    fn effects(p: &Plan) -> &[Arc<Effects>] {
        p.statements.as_deref().expect("effects")
    }

    #[test]
    fn statements_that_drop_every_prepared_statement() {
        for sql in ["DISCARD ALL", "deallocate all", "DEALLOCATE PREPARE ALL;", "SELECT 1; DISCARD ALL"] {
            assert!(effects(&one(sql, &[])).iter().any(|e| e.drops_statements), "{sql}");
        }
        for sql in ["DEALLOCATE allocation", "DISCARD TEMP", "DEALLOCATE s1", "SELECT 'discard all'"] {
            let p = one(sql, &[]);
            assert!(!p.statements.as_deref().unwrap_or_default().iter().any(|e| e.drops_statements), "{sql}");
        }
    }

    #[test]
    fn flush_no_more_than_the_statement_writes() {
        let w = |sql: &str| one(sql, &[]).statements.map(|e| e[0].writes.clone()).unwrap_or_default();
        let seq = w("SELECT nextval('order_seq')");
        assert!(!seq.database && !seq.all && seq.tables == ["order_seq"], "{seq:?}");
        assert_eq!(w("SELECT setval('app.s'::regclass, 5)").tables, ["s"]);
        assert!(w("SELECT nextval($1)").database, "a sequence the proxy cannot name");
        assert!(w("SELECT pg_notify('ch', 'x')").is_empty());
        assert!(w("SELECT lo_create(0)").database);
        assert!(w("CREATE TEMP TABLE tmp (x int)").is_empty());
        let mv = w("REFRESH MATERIALIZED VIEW CONCURRENTLY app.totals");
        assert!(!mv.all && !mv.database && mv.tables == ["totals"], "{mv:?}");
        assert_eq!(w("refresh materialized view \"Sums\" with no data").tables, ["Sums"]);
        assert!(w("REFRESH MATERIALIZED VIEW a, b").all, "not understood: everything");
        assert!(w("ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO bi").is_empty());
        assert!(w("VACUUM (ANALYZE) t").is_empty());
        assert!(w("CREATE TABLE t (x int)").all);
    }

    #[test]
    fn a_begin_carries_its_level_and_settings_make_reads_private() {
        use crate::session::isolation::Isolation;
        let p = one("BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '1MB'", &[]);
        let e = effects(&p);
        assert_eq!(e[0].control, Some(Control::Begin { isolation: Some(Isolation::RepeatableRead), read_only: false }));
        assert!(e[1].private_reads && e[1].sets.is_empty(), "local: not followed, but private");
        let p = one("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[]);
        assert!(effects(&p)[0].private_reads);
        let p = one("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[]);
        assert!(!p.untracked_settings, "followed as default_transaction_isolation");
        assert_eq!(effects(&p)[0].sets.len(), 1);
    }

    #[test]
    fn plain_reads_have_nothing_to_follow() {
        let p = one("SELECT * FROM t WHERE id = 1", &[]);
        assert!(p.statements.is_none() && p.pins.is_empty() && p.private.is_empty());
    }

    #[test]
    fn each_statement_of_a_string_gets_its_own_effects() {
        let p = one("BEGIN; UPDATE t SET a = 1; SAVEPOINT \"S\"; SET search_path TO x; ROLLBACK TO s; COMMIT", &[]);
        let e = effects(&p);
        assert_eq!(e.len(), 6);
        assert_eq!(e[0].control, Some(Control::Begin { isolation: None, read_only: false }));
        assert_eq!(e[1].writes.tables, ["t"]);
        assert!(e[3].private_reads && !e[1].private_reads);
        assert_eq!(e[2].control, Some(Control::Savepoint("S".into())));
        assert_eq!(e[3].sets, [SetEffect::Set { name: "search_path".into(), value: "x".into() }]);
        assert_eq!(e[4].control, Some(Control::RollbackTo("s".into())));
        assert_eq!(e[5].control, Some(Control::Commit));
    }

    /// psycopg's `execute("select set_config(%s, %s, false)", …)`: name and value are Bind
    /// parameters, followed by value (a setting literally named `$1` broke every client).
    #[test]
    fn set_config_with_bound_arguments_is_followed_by_value() {
        let p = one("SELECT set_config($1, $2, false)", &[Some("Search_Path"), Some("a, b")]);
        assert_eq!(effects(&p)[0].sets, [SetEffect::Set { name: "search_path".into(), value: "a, b".into() }]);
        assert!(!p.untracked_settings);
        let p = one("SELECT set_config($1, $2, $3)", &[Some("app.tenant"), Some("7"), Some("true")]);
        assert!(effects(&p)[0].sets.is_empty(), "local: no value to carry");
        assert_eq!(effects(&p)[0].defines, ["app.tenant"], "but the placeholder stays defined");
        assert_eq!(p.placeholders, ["app.tenant"]);
        let p = one("SELECT set_config($1::text, $2::text, $3)", &[Some("timezone"), Some("UTC"), Some("\u{1}")]);
        assert!(effects(&p)[0].sets.is_empty() && effects(&p)[0].private_reads, "a binary true is local too");
        let p = one("SELECT set_config(current_user, 'x', false)", &[]);
        assert!(p.untracked_settings && p.private.contains(Private::UNTRACKED_SETTINGS));
        assert!(p.unknown_placeholders, "a computed name may be a custom setting's");
        let p = one("SELECT set_config($1, $2, false)", &[None, Some("x")]);
        assert!(p.untracked_settings, "a NULL name is no name");
        assert!(!one("RESET ALL", &[]).unknown_placeholders);
    }

    #[test]
    fn set_default_resets_and_set_config_default_is_a_value() {
        let p = one("SET search_path TO DEFAULT", &[]);
        assert_eq!(effects(&p)[0].sets, [SetEffect::Reset { name: "search_path".into() }]);
        let p = one("SELECT set_config('application_name', 'default', false)", &[]);
        assert_eq!(effects(&p)[0].sets, [SetEffect::Set { name: "application_name".into(), value: "default".into() }]);
        let p = one("RESET ALL", &[]);
        assert_eq!(effects(&p)[0].sets, [SetEffect::ResetAll]);
        let p = one("SET LOCAL search_path TO x", &[]);
        assert!(effects(&p)[0].sets.is_empty(), "ends with the transaction: not carried");
        assert!(effects(&p)[0].private_reads, "but the block's later reads are not shared");
    }

    #[test]
    fn session_state_pins_and_privacy() {
        let pins = |sql: &str| one(sql, &[]).pins;
        assert!(pins("CREATE TEMP TABLE x (a int)").contains(Pins::TEMP_OBJECTS));
        assert!(pins("SET search_path = pg_temp, public").contains(Pins::TEMP_OBJECTS));
        assert!(pins("SELECT set_config('search_path', 'x, PG_TEMP', false)").contains(Pins::TEMP_OBJECTS));
        assert!(!pins("SET search_path = public").contains(Pins::TEMP_OBJECTS));
        let by_param = one("SELECT set_config($1, $2, false)", &[Some("search_path"), Some("pg_temp")]);
        assert!(by_param.pins.contains(Pins::TEMP_OBJECTS), "name and value as Bind parameters");
        assert!(by_param.private.contains(Private::TEMP_OBJECTS));
        assert!(one("CREATE TEMP TABLE x (a int)", &[]).private.contains(Private::TEMP_OBJECTS));
        assert!(pins("LISTEN ch").contains(Pins::LISTEN));
        assert!(pins("PREPARE p AS SELECT 1").contains(Pins::SQL_PREPARED));
        assert!(pins("PREPARE TRANSACTION 'x'").is_empty());
        assert!(pins("SELECT pg_advisory_lock(1)").contains(Pins::ADVISORY_LOCK));
        assert!(pins("SELECT pg_try_advisory_lock_shared(1, 2)").contains(Pins::ADVISORY_LOCK));
        assert!(pins("SELECT pg_advisory_xact_lock(1)").is_empty(), "released with the transaction");
        assert!(pins("DECLARE c CURSOR WITH HOLD FOR SELECT 1").contains(Pins::HOLD_CURSOR));
        assert!(pins("DECLARE c CURSOR FOR SELECT 1").is_empty());
        assert!(one("SET SESSION AUTHORIZATION bob", &[]).untracked_settings);
        assert_eq!(one("SET app.x = '1'; SET LOCAL other.Y TO 2", &[]).placeholders, ["app.x", "other.y"]);
    }

    #[test]
    fn writes_are_named_or_widened() {
        let e = |sql: &str| effects(&one(sql, &[]))[0].writes.clone();
        assert_eq!(e("INSERT INTO s.t VALUES (1)").tables, ["t"]);
        assert!(e("CREATE TABLE t (a int)").all);
        assert!(e("SELECT my_function()").database);
        assert!(e("COMMIT PREPARED 'x'").database);
        assert!(e("DO $$ BEGIN END $$").database);
        let p = plan(&analyze("SELECT 1"), &[], &BindValues::default(), true, &|_| false);
        assert!(effects(&p)[0].writes.database && p.private.contains(Private::OPAQUE));
    }
}
