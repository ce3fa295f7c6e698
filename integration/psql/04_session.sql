-- Session settings must hold for this client across transactions (and pooled connections).
SET TimeZone = 'Asia/Kathmandu';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'postgres_verbose';
SET search_path = it_schema, public;
SET application_name = 'it_psql';
SET extra_float_digits = 0;
DROP SCHEMA IF EXISTS it_schema CASCADE;
CREATE SCHEMA it_schema;
CREATE TABLE it_schema.it_s (id int, ts timestamptz);
INSERT INTO it_s VALUES (1, '2024-06-01 12:00:00+00');
SELECT id, ts FROM it_s;
SHOW TimeZone;
SHOW DateStyle;
SELECT current_setting('application_name'), current_setting('search_path');
SELECT '2024-06-01'::date, '1 day 02:03:04'::interval, 1.0::float8 / 3;
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT ts FROM it_s;
COMMIT;
SELECT ts FROM it_s;
SHOW TimeZone;
RESET TimeZone;
SHOW TimeZone;
SET TimeZone = 'UTC';
SELECT ts FROM it_s;
-- \gset and variables
SELECT 40 + 2 AS answer, 'it_s' AS tbl \gset
\echo answer is :answer
SELECT :answer * 2 AS doubled, count(*) FROM :tbl;
SELECT :'tbl' AS quoted_var;
-- notices from a DO block and from functions
DO $$
BEGIN
  RAISE NOTICE 'notice with value %', 42;
  RAISE WARNING 'a warning';
  RAISE INFO 'an info';
END $$;
SET client_min_messages = warning;
DO $$ BEGIN RAISE NOTICE 'hidden notice'; RAISE WARNING 'visible warning'; END $$;
RESET client_min_messages;
CREATE FUNCTION it_schema.noisy(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'noisy(%)', n; RETURN n * 10; END $$;
SELECT noisy(g) FROM generate_series(1, 3) g;
DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'P0001', DETAIL = 'some detail', HINT = 'a hint'; END $$;
SELECT 'still alive';
-- parameter reports
SET standard_conforming_strings = off;
SELECT 'a\\b' AS escaped;
RESET standard_conforming_strings;
SELECT 'a\b' AS plain;
SET client_encoding = 'LATIN1';
SELECT 'caf' || chr(233) AS latin1;
RESET client_encoding;
SELECT 'caf' || chr(233) AS utf8;
DROP SCHEMA it_schema CASCADE;
