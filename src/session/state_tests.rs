//! The session's state machines, driven the way the server drives them.

use super::*;

fn write(table: &str) -> Arc<Effects> {
    Arc::new(Effects { writes: Writes { tables: vec![table.into()], ..Writes::default() }, ..Effects::default() })
}

fn set(name: &str, value: &str) -> Arc<Effects> {
    Arc::new(Effects { sets: vec![SetEffect::Set { name: name.into(), value: value.into() }], ..Effects::default() })
}

fn control(c: Control) -> Arc<Effects> {
    Arc::new(Effects { control: Some(c), ..Effects::default() })
}

fn tables(s: &Settled) -> Vec<&str> {
    s.writes.tables.iter().map(smol_str::SmolStr::as_str).collect()
}

/// `BEGIN; UPDATE t; SAVEPOINT s; <error>; ROLLBACK TO SAVEPOINT s; COMMIT`: the write before the
/// savepoint is committed (Postgres tags ROLLBACK TO as `ROLLBACK`).
#[test]
fn rollback_to_a_savepoint_keeps_what_came_before_it() {
    let mut tx = Transaction::default();
    assert_eq!(tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN"), None);
    tx.completed(&write("t"), b"UPDATE 1");
    tx.completed(&control(Control::Savepoint("s".into())), b"SAVEPOINT");
    tx.completed(&write("u"), b"UPDATE 1");
    tx.completed(&set("search_path", "x"), b"SET");
    tx.error();
    assert_eq!(tx.ready(b'E', true), None);
    tx.completed(&control(Control::RollbackTo("s".into())), b"ROLLBACK");
    assert_eq!(tx.ready(b'T', true), None);
    let settled = tx.completed(&control(Control::Commit), b"COMMIT").expect("the commit settles");
    assert_eq!(tables(&settled), ["t"], "the write inside the rolled-back savepoint is not owed");
    assert!(settled.sets.is_empty(), "the SET inside it is undone");
    assert_eq!(tx.ready(b'I', true), None, "nothing left to settle");
}

#[test]
fn release_keeps_the_savepoints_work_for_the_enclosing_level() {
    let mut tx = Transaction::default();
    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&control(Control::Savepoint("a".into())), b"SAVEPOINT");
    tx.completed(&set("timezone", "UTC"), b"SET");
    tx.completed(&control(Control::Savepoint("b".into())), b"SAVEPOINT");
    tx.completed(&write("t"), b"INSERT 0 1");
    tx.completed(&control(Control::Release("b".into())), b"RELEASE");
    tx.completed(&write("u"), b"INSERT 0 1");
    // Rolling back to `a` undoes everything after it, the released `b`'s work included.
    tx.completed(&control(Control::RollbackTo("a".into())), b"ROLLBACK");
    tx.completed(&write("v"), b"INSERT 0 1");
    let settled = tx.completed(&control(Control::Commit), b"COMMIT").unwrap();
    assert_eq!(tables(&settled), ["v"]);
    assert!(settled.sets.is_empty());
}

#[test]
fn the_most_recent_savepoint_of_a_name_is_the_one_rolled_back_to() {
    let mut tx = Transaction::default();
    tx.completed(&control(Control::Savepoint("s".into())), b"SAVEPOINT");
    tx.completed(&write("t"), b"UPDATE 1");
    tx.completed(&control(Control::Savepoint("s".into())), b"SAVEPOINT");
    tx.completed(&write("u"), b"UPDATE 1");
    tx.completed(&control(Control::RollbackTo("s".into())), b"ROLLBACK");
    let settled = tx.ready(b'I', true).unwrap();
    assert_eq!(tables(&settled), ["t"]);
}

/// A savepoint the log never saw was made before anything it holds: rolling back to it undoes
/// the whole log, releasing it keeps it.
#[test]
fn an_unknown_savepoint_predates_the_whole_log() {
    let mut tx = Transaction::default();
    tx.completed(&set("search_path", "x"), b"SET");
    tx.completed(&write("t"), b"DELETE 1");
    tx.completed(&control(Control::Release("older".into())), b"RELEASE");
    tx.completed(&control(Control::Savepoint("s".into())), b"SAVEPOINT");
    tx.completed(&control(Control::RollbackTo("older".into())), b"ROLLBACK");
    assert_eq!(tx.ready(b'I', true), None, "everything was rolled back");
}

#[test]
fn commit_of_a_failed_block_and_rollback_commit_nothing() {
    let mut tx = Transaction::default();
    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&write("t"), b"UPDATE 1");
    tx.error();
    tx.ready(b'E', true);
    assert_eq!(tx.completed(&control(Control::Commit), b"ROLLBACK"), None);
    assert_eq!(tx.ready(b'I', true), None);

    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&write("t"), b"UPDATE 1");
    tx.completed(&control(Control::Rollback), b"ROLLBACK");
    assert_eq!(tx.ready(b'I', true), None);
}

/// `COMMIT; SET …` in one Query on a failed block: the COMMIT is a rollback and ends the
/// failed block; the SET (and a write) run in an implicit transaction of its own and stay
/// (fuzzer seed 110384).
#[test]
fn what_follows_the_end_of_a_failed_block_in_one_query_settles() {
    for end in [Control::Commit, Control::Rollback] {
        let mut tx = Transaction::default();
        tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
        tx.error();
        tx.ready(b'E', true);
        assert_eq!(tx.completed(&control(end.clone()), b"ROLLBACK"), None);
        tx.completed(&set("search_path", "other"), b"SET");
        tx.completed(&write("t"), b"UPDATE 1");
        let settled = tx.ready(b'I', true).unwrap_or_else(|| panic!("{end:?}: the SET and UPDATE after it were lost"));
        assert_eq!(settled.sets.len(), 1, "{end:?}");
        assert_eq!(tables(&settled), ["t"], "{end:?}: the UPDATE's write is invalidated");
    }
}

/// A multi-statement Query (or the Executes before a Sync) is one implicit transaction: an error
/// anywhere in it undoes all of it, unless an explicit COMMIT ended a part of it before.
#[test]
fn an_error_undoes_the_implicit_transaction_up_to_its_last_commit() {
    let mut tx = Transaction::default();
    tx.completed(&set("timezone", "UTC"), b"SET");
    tx.completed(&write("t"), b"UPDATE 1");
    tx.error();
    assert_eq!(tx.ready(b'I', true), None);

    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&write("t"), b"UPDATE 1");
    let settled = tx.completed(&control(Control::Commit), b"COMMIT").unwrap();
    assert_eq!(tables(&settled), ["t"]);
    tx.completed(&write("u"), b"UPDATE 1");
    tx.error();
    assert_eq!(tx.ready(b'I', true), None, "the write after the COMMIT failed with its implicit transaction");
}

#[test]
fn autocommit_statements_settle_at_ready_for_query() {
    let mut tx = Transaction::default();
    tx.sent();
    assert!(tx.following());
    tx.completed(&write("t"), b"INSERT 0 1");
    tx.completed(&set("application_name", "a"), b"SELECT 1");
    let settled = tx.ready(b'I', false).unwrap();
    assert_eq!(tables(&settled), ["t"]);
    assert_eq!(settled.sets.len(), 1);
    assert!(tx.following(), "a request still in flight keeps the session followed");
    assert_eq!(tx.ready(b'I', true), None);
    assert!(!tx.following());
}

#[test]
fn prepare_transaction_settles_like_a_commit() {
    let mut tx = Transaction::default();
    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&write("t"), b"UPDATE 1");
    let settled = tx.completed(&control(Control::PrepareTransaction), b"PREPARE TRANSACTION").unwrap();
    assert_eq!(tables(&settled), ["t"]);
}

#[test]
fn an_abandoned_transaction_owes_its_log_and_whatever_was_in_flight() {
    let mut tx = Transaction::default();
    tx.completed(&control(Control::Begin { isolation: None, read_only: false }), b"BEGIN");
    tx.completed(&write("t"), b"UPDATE 1");
    tx.completed(&control(Control::Savepoint("s".into())), b"SAVEPOINT");
    let in_flight = [Effects { writes: Writes { database: true, ..Writes::default() }, ..Effects::default() }];
    let writes = tx.abandon(in_flight.iter());
    assert_eq!(writes.tables, ["t"]);
    assert!(writes.database);
    assert!(tx.is_idle() && !tx.following());
    assert_eq!(tx.ready(b'I', true), None);
}

#[test]
fn a_segment_hands_its_fill_to_the_sync_and_drops_it_when_skipped() {
    let mut seg = Segment::default();
    assert!(seg.is_synced());
    seg.open();
    assert!(matches!(seg, Segment::Open { fill: None }));
    assert!(seg.sync().is_none());
    assert!(seg.is_synced());
    seg.skip();
    assert!(seg.is_skipping());
    assert!(seg.sync().is_none());
    assert!(seg.is_synced());
}

#[test]
fn release_actions_follow_what_the_session_left_behind() {
    use ReleaseAction::*;
    let none = Pins::default();
    let mut temp = Pins::default();
    temp.add(Pins::TEMP_OBJECTS);
    let (nothing, values, names) = (Untracked::Nothing, Untracked::Values, Untracked::CustomNames);
    assert_eq!(ReleaseAction::decide(false, true, false, none, nothing), Close);
    assert_eq!(ReleaseAction::decide(true, false, false, none, nothing), Reuse);
    assert_eq!(ReleaseAction::decide(true, true, false, temp, nothing), Discard);
    assert_eq!(ReleaseAction::decide(true, true, true, none, nothing), Discard);
    assert_eq!(ReleaseAction::decide(true, false, false, none, values), ResetSettings);
    assert_eq!(ReleaseAction::decide(true, true, true, none, names), Close, "DISCARD ALL keeps placeholders");
    assert_eq!(ReleaseAction::decide(true, false, false, none, names), Close);
    assert_eq!(temp.names(), ["temporary objects"]);
}

#[test]
fn private_reasons_are_added_and_removed_one_by_one() {
    let mut p = Private::default();
    assert!(p.is_empty());
    p.add(Private::TEMP_OBJECTS);
    p.add(Private::UNTRACKED_SETTINGS);
    p.remove(Private::UNTRACKED_SETTINGS);
    assert!(p.contains(Private::TEMP_OBJECTS) && !p.contains(Private::UNTRACKED_SETTINGS));
}

fn rows(table: &str, columns: &[(&str, &[i64])]) -> Writes {
    use crate::cache::rowkey::PinValue;
    let table = crate::sql::TableRef::parse(table);
    Writes {
        tables: vec![table.name.clone()],
        rows: vec![RowsWritten {
            table,
            columns: columns
                .iter()
                .map(|(c, vs)| ((*c).into(), vs.iter().map(|v| PinValue::Number(v.to_string().into())).collect()))
                .collect(),
        }],
        ..Writes::default()
    }
}

#[test]
fn a_transactions_row_writes_merge_by_the_columns_all_pin() {
    let mut w = rows("t", &[("id", &[1]), ("k", &[5])]);
    w.merge(&rows("t", &[("id", &[2])]));
    assert_eq!(w, rows("t", &[("id", &[1, 2])]), "k is unknown for the second write's rows");
    let mut whole = w.clone();
    whole.merge(&Writes { tables: vec!["t".into()], ..Writes::default() });
    assert!(whole.rows.is_empty(), "a table-level write of the same table makes it table level");
    let mut other = Writes { tables: vec!["t".into()], ..Writes::default() };
    other.merge(&rows("t", &[("id", &[3])]));
    assert!(other.rows.is_empty(), "…in either order");
    let mut two = rows("t", &[("id", &[1])]);
    two.merge(&rows("u", &[("id", &[1])]));
    assert_eq!(two.rows.len(), 2);
    let mut schemas = rows("a.t", &[("id", &[1])]);
    schemas.merge(&rows("b.t", &[("id", &[1])]));
    assert!(schemas.rows.is_empty(), "two tables of one name: not merged by rows");
}
