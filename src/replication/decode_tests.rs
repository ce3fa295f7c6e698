//! The pgoutput decoder on hand-built messages, byte for byte as pgoutput (protocol 1) writes
//! them.

use super::*;

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn text_tuple(out: &mut Vec<u8>, values: &[Option<&str>]) {
    out.extend_from_slice(&i16::try_from(values.len()).unwrap().to_be_bytes());
    for v in values {
        match v {
            None => out.push(b'n'),
            Some("<toast>") => out.push(b'u'),
            Some(s) => {
                out.push(b't');
                out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

#[test]
fn a_relation_message_names_the_table_its_columns_and_its_key() {
    let mut m = vec![b'R'];
    m.extend_from_slice(&16384u32.to_be_bytes());
    cstr(&mut m, "public");
    cstr(&mut m, "Acct");
    m.push(b'd');
    m.extend_from_slice(&2i16.to_be_bytes());
    m.push(1);
    cstr(&mut m, "id");
    m.extend_from_slice(&23u32.to_be_bytes());
    m.extend_from_slice(&(-1i32).to_be_bytes());
    m.push(0);
    cstr(&mut m, "owner");
    m.extend_from_slice(&25u32.to_be_bytes());
    m.extend_from_slice(&(-1i32).to_be_bytes());
    let Message::Relation(rel) = message(&m).unwrap() else { panic!("not a relation") };
    assert_eq!((rel.id, rel.schema.as_str(), rel.name.as_str(), rel.replica_identity), (16384, "public", "Acct", b'd'));
    assert_eq!(rel.columns[0], Column { name: "id".into(), type_oid: 23, key: true });
    assert_eq!(rel.columns[1], Column { name: "owner".into(), type_oid: 25, key: false });
    assert_eq!(message(&m[..m.len() - 3]), Err(DecodeError::Truncated("Relation")));
}

#[test]
fn inserts_updates_and_deletes_carry_the_rows_the_identity_allows() {
    let mut ins = vec![b'I'];
    ins.extend_from_slice(&7u32.to_be_bytes());
    ins.push(b'N');
    text_tuple(&mut ins, &[Some("1"), None, Some("<toast>")]);
    assert_eq!(
        message(&ins).unwrap(),
        Message::Insert { relation: 7, new: vec![Value::Text(b"1"), Value::Null, Value::Unchanged] }
    );

    let mut upd = vec![b'U'];
    upd.extend_from_slice(&7u32.to_be_bytes());
    upd.push(b'K');
    text_tuple(&mut upd, &[Some("1"), None]);
    upd.push(b'N');
    text_tuple(&mut upd, &[Some("2"), Some("x")]);
    assert_eq!(
        message(&upd).unwrap(),
        Message::Update {
            relation: 7,
            old: Some(OldRow::Key(vec![Value::Text(b"1"), Value::Null])),
            new: vec![Value::Text(b"2"), Value::Text(b"x")],
        }
    );

    let mut same_key = vec![b'U'];
    same_key.extend_from_slice(&7u32.to_be_bytes());
    same_key.push(b'N');
    text_tuple(&mut same_key, &[Some("2")]);
    assert_eq!(message(&same_key).unwrap(), Message::Update { relation: 7, old: None, new: vec![Value::Text(b"2")] });

    let mut del = vec![b'D'];
    del.extend_from_slice(&7u32.to_be_bytes());
    del.push(b'O');
    text_tuple(&mut del, &[Some("2"), Some("x")]);
    assert_eq!(
        message(&del).unwrap(),
        Message::Delete { relation: 7, old: OldRow::Full(vec![Value::Text(b"2"), Value::Text(b"x")]) }
    );
    del[5] = b'Z';
    assert_eq!(message(&del), Err(DecodeError::UnknownTuple('Z')));
}

#[test]
fn begin_commit_and_truncate_are_read_and_unknown_tags_refused() {
    let mut begin = vec![b'B'];
    begin.extend_from_slice(&0x10u64.to_be_bytes());
    begin.extend_from_slice(&[0; 12]);
    assert_eq!(message(&begin).unwrap(), Message::Begin { final_lsn: 0x10 });
    let mut commit = vec![b'C', 0];
    commit.extend_from_slice(&0x10u64.to_be_bytes());
    commit.extend_from_slice(&0x28u64.to_be_bytes());
    commit.extend_from_slice(&7i64.to_be_bytes());
    assert_eq!(message(&commit).unwrap(), Message::Commit { end_lsn: 0x28, commit_time: 7 });
    let mut trunc = vec![b'T'];
    trunc.extend_from_slice(&2u32.to_be_bytes());
    trunc.push(0);
    trunc.extend_from_slice(&5u32.to_be_bytes());
    trunc.extend_from_slice(&6u32.to_be_bytes());
    assert_eq!(message(&trunc).unwrap(), Message::Truncate { relations: vec![5, 6] });
    assert_eq!(message(&trunc[..9]), Err(DecodeError::Truncated("Truncate")));
    assert_eq!(message(b"Q"), Err(DecodeError::UnknownMessage('Q')));
    assert_eq!(message(b""), Err(DecodeError::Truncated("pgoutput")));
}

#[test]
fn the_envelope_and_the_status_update_round_trip() {
    let mut w = vec![b'w'];
    w.extend_from_slice(&1u64.to_be_bytes());
    w.extend_from_slice(&2u64.to_be_bytes());
    w.extend_from_slice(&3u64.to_be_bytes());
    w.extend_from_slice(b"Bxyz");
    assert_eq!(copy_message(&w).unwrap(), CopyMessage::XLogData { start: 1, data: b"Bxyz" });
    let mut k = vec![b'k'];
    k.extend_from_slice(&9u64.to_be_bytes());
    k.extend_from_slice(&0u64.to_be_bytes());
    k.push(1);
    assert_eq!(copy_message(&k).unwrap(), CopyMessage::Keepalive { end: 9, reply: true });
    assert_eq!(copy_message(&k[..10]), Err(DecodeError::Truncated("CopyData")));

    let mut out = BytesMut::new();
    status_update(&mut out, 0x1_0000_0020, true);
    assert_eq!(out.len(), 1 + 4 + 34);
    assert_eq!(&out[..6], &[b'd', 0, 0, 0, 38, b'r']);
    assert_eq!(&out[6..14], &0x1_0000_0020u64.to_be_bytes());
    assert_eq!(out[out.len() - 1], 1);
    assert_eq!(format_lsn(0x1_0000_0020), "1/20");
    assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
    assert_eq!(parse_lsn("nope"), None);
}
