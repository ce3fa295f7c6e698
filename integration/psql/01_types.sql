-- Every common type, text format, through psql's simple protocol.
DROP TABLE IF EXISTS it_types;
CREATE TABLE it_types (
    id      int4 PRIMARY KEY,
    i2      int2, i4 int4, i8 int8,
    num     numeric(30,10), f4 float4, f8 float8,
    t       text, vc varchar(20), ch char(5),
    b       bytea, ok bool,
    d       date, ts timestamp, tstz timestamptz, iv interval,
    u       uuid, j json, jb jsonb,
    ai      int4[], at text[], aj jsonb[]
);
SET TimeZone = 'UTC';
INSERT INTO it_types VALUES
 (1, -32768, -2147483648, -9223372036854775808, -12345678901234567890.0123456789, -1.5, -1e300,
  'hello', 'varchar', 'ab', '\x00ff80c3286162'::bytea, true,
  '2024-02-29', '2024-02-29 23:59:59.999999', '2024-02-29 23:59:59.123456+05:30', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "ü€𝄞"}',
  '{1,2,NULL,4}', '{"with space","quote\"d",NULL,""}', ARRAY['{"k":1}'::jsonb, '[]']),
 (2, 32767, 2147483647, 9223372036854775807, 0.0000000001, 'NaN', 'Infinity',
  E'multi\nline\ttab \\ backslash', '', '', '\x'::bytea, false,
  'infinity', '-infinity', '1970-01-01 00:00:00+00', '-1 days -00:00:01',
  '00000000-0000-0000-0000-000000000000', 'null', '[]', '{}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT * FROM it_types ORDER BY id;
\x on
SELECT * FROM it_types WHERE id = 1;
\x off
SELECT id, b, length(b), encode(b, 'hex'), CASE WHEN length(b) > 1 THEN get_byte(b, 1) END FROM it_types ORDER BY id;
SELECT id, pg_typeof(num), num * 2, f8 / 3, round(num, 3) FROM it_types ORDER BY id;
SELECT jb -> 'a', jb ->> 'z', j #> '{a,2}', jsonb_pretty(jb) FROM it_types WHERE id = 1;
SELECT ai[2], array_length(at, 1), cardinality(aj), unnest(ai) FROM it_types WHERE id = 1;
SELECT tstz, tstz AT TIME ZONE 'America/New_York', extract(epoch FROM iv) FROM it_types ORDER BY id;
SELECT NULL::int AS n1, NULL::text AS n2, '' AS empty, ' ' AS space;
SELECT 'NaN'::numeric, '-0'::float8, 1e-320::float8, 123456789.123456789::float4;
SELECT '{{1,2},{3,4}}'::int[][] AS matrix, '[1:2]={7,8}'::int[] AS bounds;
SELECT (1, 'x', NULL)::record AS rec, row(1, 2) = row(1, 2) AS eq;
SELECT '11:22:33+02'::timetz, '1 2'::int2vector, 'a & b'::tsquery, '192.168.1.0/24'::cidr, '08:00:2b:01:02:03'::macaddr;
SELECT x, x::text FROM generate_series(1, 5) x;
SELECT repeat('x', 100000) = repeat('x', 100000) AS big_eq, length(repeat('€', 50000)) AS big_len;
SELECT md5(string_agg(repeat(i::text, 50), ',')) FROM generate_series(1, 20000) i;
DROP TABLE it_types;
