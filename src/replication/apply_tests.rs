//! A transaction's footprint against the cache's versions: which pinned reads each kind of
//! change leaves current.

use super::*;
use crate::cache::versions::{RowDeps, Versions};
use crate::config::CacheConfig;
use crate::replication::decode::Column;

fn acct(identity: u8) -> Relation {
    let col = |name: &str, type_oid: u32, key: bool| Column { name: name.into(), type_oid, key };
    Relation {
        id: 1,
        schema: "public".into(),
        name: "acct".into(),
        replica_identity: identity,
        columns: vec![col("id", 23, true), col("owner", 25, false), col("note", 1042, false)],
    }
}

struct Reads {
    cache: ResultCache,
}

impl Reads {
    fn new() -> Reads {
        Reads { cache: ResultCache::new(&CacheConfig::default()) }
    }
    fn pinned(&self, column: &str, value: &str) -> Versions {
        let kind = if column == "id" { ColumnKind::Int } else { ColumnKind::Text };
        let values = [key(kind, &PinValue::Str(value.into())).unwrap()];
        self.cache.versions().snapshot("app", [], Some(RowDeps { table: "acct", column, values: &values }))
    }
    fn whole(&self) -> Versions {
        self.cache.versions().snapshot("app", ["acct"], None)
    }
    fn current(&self, v: &Versions) -> bool {
        self.cache.versions().is_current(v)
    }
}

fn t(s: &str) -> Value<'_> {
    Value::Text(s.as_bytes())
}

#[test]
fn an_insert_reaches_reads_of_its_values_only() {
    let mut map = RelationMap::default();
    assert_eq!(map.learn(&acct(b'd')), Learned::New);
    let r = Reads::new();
    let (id1, id2, o1, whole) = (r.pinned("id", "1"), r.pinned("id", "2"), r.pinned("owner", "o1"), r.whole());
    let mut fp = Footprint::default();
    fp.insert(&map, 1, &[t("2"), t("o2"), t("x")]);
    fp.apply(&r.cache, "app");
    assert!(r.current(&id1) && r.current(&o1), "other rows' reads stay");
    assert!(!r.current(&id2) && !r.current(&whole));
}

#[test]
fn an_update_under_default_identity_bumps_old_non_key_columns_wide() {
    let mut map = RelationMap::default();
    map.learn(&acct(b'd'));
    let r = Reads::new();
    let (id1, id3, o9) = (r.pinned("id", "1"), r.pinned("id", "3"), r.pinned("owner", "o9"));
    let mut fp = Footprint::default();
    // UPDATE acct SET owner = 'o2' WHERE id = 1: no old row sent (the key did not change).
    fp.update(&map, 1, None, &[t("1"), t("o2"), t("x")]);
    fp.apply(&r.cache, "app");
    assert!(!r.current(&id1));
    assert!(r.current(&id3), "the key is exact");
    assert!(!r.current(&o9), "the old owner is not sent: every owner read goes");
}

#[test]
fn an_update_under_full_identity_is_exact_on_every_column() {
    let mut map = RelationMap::default();
    map.learn(&acct(b'f'));
    let r = Reads::new();
    let (o1, o2, o9, id1) =
        (r.pinned("owner", "o1"), r.pinned("owner", "o2"), r.pinned("owner", "o9"), r.pinned("id", "1"));
    let mut fp = Footprint::default();
    let old = OldRow::Full(vec![t("1"), t("o1"), t("x")]);
    fp.update(&map, 1, Some(&old), &[t("1"), t("o2"), Value::Unchanged]);
    fp.apply(&r.cache, "app");
    assert!(!r.current(&o1) && !r.current(&o2) && !r.current(&id1));
    assert!(r.current(&o9), "neither the old nor the new owner");
}

#[test]
fn a_key_change_reaches_old_and_new_key_and_unchanged_toast_goes_wide() {
    let mut map = RelationMap::default();
    map.learn(&acct(b'd'));
    let r = Reads::new();
    let (id1, id5, id7, o1) = (r.pinned("id", "1"), r.pinned("id", "5"), r.pinned("id", "7"), r.pinned("owner", "o1"));
    let mut fp = Footprint::default();
    let old = OldRow::Key(vec![t("1"), Value::Null, Value::Null]);
    fp.update(&map, 1, Some(&old), &[t("5"), Value::Unchanged, t("x")]);
    fp.apply(&r.cache, "app");
    assert!(!r.current(&id1) && !r.current(&id5), "old and new key");
    assert!(r.current(&id7));
    assert!(!r.current(&o1), "owner unchanged-TOAST and unknown in the old row");
}

#[test]
fn a_delete_by_key_a_truncate_and_an_unknown_relation() {
    let mut map = RelationMap::default();
    map.learn(&acct(b'd'));
    let r = Reads::new();
    let (id1, id2) = (r.pinned("id", "1"), r.pinned("id", "2"));
    let mut fp = Footprint::default();
    fp.delete(&map, 1, &OldRow::Key(vec![t("1"), Value::Null, Value::Null]));
    fp.apply(&r.cache, "app");
    assert!(!r.current(&id1) && r.current(&id2));

    let id2 = r.pinned("id", "2");
    let mut fp = Footprint::default();
    fp.truncate(&map, &[1]);
    assert!(!fp.is_empty());
    fp.apply(&r.cache, "app");
    assert!(!r.current(&id2), "truncate is table level");

    let other = r.cache.versions().snapshot("app", ["elsewhere"], None);
    let mut fp = Footprint::default();
    fp.insert(&map, 99, &[t("1")]);
    fp.apply(&r.cache, "app");
    assert!(!r.current(&other), "an undescribed relation flushes the database");
}

#[test]
fn a_relation_that_changes_shape_is_reported() {
    let mut map = RelationMap::default();
    assert_eq!(map.learn(&acct(b'd')), Learned::New);
    assert_eq!(map.learn(&acct(b'd')), Learned::Same, "described again, same shape");
    let mut altered = acct(b'd');
    altered.columns.pop();
    assert_eq!(map.learn(&altered), Learned::Changed);
    assert_eq!(map.table(1), Some("\"public\".\"acct\""));
}

#[test]
fn a_bulk_change_bumps_a_column_wide_past_its_bound() {
    let mut map = RelationMap::default();
    map.learn(&acct(b'd'));
    let r = Reads::new();
    let far = r.pinned("id", "999999");
    let mut fp = Footprint::default();
    for i in 0..=MAX_VALUES_PER_COLUMN {
        let id = i.to_string();
        fp.insert(&map, 1, &[t(&id), Value::Null, Value::Null]);
    }
    fp.apply(&r.cache, "app");
    assert!(!r.current(&far), "past the bound every id read goes");
}
