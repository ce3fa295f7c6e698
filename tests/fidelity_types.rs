//! Every common type comes back through pgcached exactly as Postgres sends it directly: the
//! text format (simple protocol) and the binary format (extended protocol), compared byte for
//! byte.

mod common;

use common::values::Raw;
use common::{PgCluster, Proxy, connect};
use tokio_postgres::types::Type;

const SETUP: &str = "
CREATE TABLE all_types (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8, t text,
  b bytea, flag bool, d date, ts timestamptz, iv interval, u uuid, j json, jb jsonb,
  ai int4[], at text[], n text);
INSERT INTO all_types VALUES
 (1, -32768, 2147483647, -9223372036854775808, 12345678901234567890.000123, 1.5, -2.25e-300, 'héllo ✓',
  '\\xdeadbeef00ff80'::bytea, true, '2024-02-29', '2024-02-29 12:34:56.789+05:30', '1 year 2 mons 3 days 04:05:06.7',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2.5, null]}', '{\"b\": {\"c\": \"d\"}}',
  '{1,NULL,3}', '{\"x y\",\"\\\"q\\\"\"}', NULL),
 (2, 0, 0, 0, 'NaN', 'Infinity', '-Infinity', '', ''::bytea, false, 'infinity', '-infinity', '-1 day',
  '00000000-0000-0000-0000-000000000000', 'null', '[]', '{}', '{}', 'not null');";

const QUERY: &str = "SELECT * FROM all_types ORDER BY id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_results_are_identical_to_direct() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let direct = connect(&pg.url("postgres", "app")).await;
    let through = connect(&proxy.url("postgres", "app")).await;

    let a = text_rows(&direct).await;
    let b = text_rows(&through).await;
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    assert!(a[0].iter().any(|v| v.as_deref() == Some("\\xdeadbeef00ff80")), "bytea hex survives: {a:?}");
    assert_eq!(a[0].last().unwrap(), &None, "NULL stays NULL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_format_results_are_identical_to_direct() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let direct = connect(&pg.url("postgres", "app")).await;
    let through = connect(&proxy.url("postgres", "app")).await;

    let a = binary_rows(&direct).await;
    let b = binary_rows(&through).await;
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    // bytea with non-UTF-8 bytes, in binary format, is exactly the bytes stored.
    assert!(a[0].contains(&Some(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x80])));

    // Column types as described by the server are the same too.
    let sa = direct.prepare(QUERY).await.unwrap();
    let sb = through.prepare(QUERY).await.unwrap();
    let ta: Vec<_> = sa.columns().iter().map(|c| (c.name().to_string(), c.type_().clone())).collect();
    let tb: Vec<_> = sb.columns().iter().map(|c| (c.name().to_string(), c.type_().clone())).collect();
    assert_eq!(ta, tb);
    assert_eq!(ta[8].1, Type::BYTEA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_parameters_round_trip_in_binary() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let bytes: Vec<u8> = vec![0, 255, 128, 10, 13];
    let row = c
        .query_one(
            "SELECT $1::int8, $2::text, $3::bytea, $4::bool, $5::float8",
            &[&-7i64, &"ünï", &bytes, &true, &0.1f64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), -7);
    assert_eq!(row.get::<_, String>(1), "ünï");
    assert_eq!(row.get::<_, Vec<u8>>(2), bytes);
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, f64>(4), 0.1);
}

async fn text_rows(c: &tokio_postgres::Client) -> Vec<Vec<Option<String>>> {
    c.simple_query(QUERY)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn binary_rows(c: &tokio_postgres::Client) -> Vec<Vec<Option<Vec<u8>>>> {
    c.query(QUERY, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Option<Raw>>(i).map(|x| x.0)).collect())
        .collect()
}
