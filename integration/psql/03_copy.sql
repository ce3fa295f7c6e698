-- COPY FROM STDIN with inline data, \copy from a file, COPY TO STDOUT in several formats.
DROP TABLE IF EXISTS it_copy;
CREATE TABLE it_copy (id int, name text, data bytea, note text);
COPY it_copy FROM STDIN;
1	alpha	\\x00ff	first
2	beta	\\x	\N
3	gamma with\ttab	\\xdeadbeef	third
\.
COPY it_copy (id, name) FROM STDIN WITH (FORMAT csv, HEADER true);
id,name
4,"quoted, comma"
5,"multi
line"
\.
\copy it_copy (id, name, note) FROM 'data/rows.csv' WITH (FORMAT csv)
SELECT count(*) FROM it_copy;
COPY (SELECT * FROM it_copy ORDER BY id) TO STDOUT;
COPY (SELECT * FROM it_copy ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true);
\copy (SELECT id, name FROM it_copy ORDER BY id) TO STDOUT WITH (FORMAT text)
-- a bad row aborts the COPY with an error; the session recovers
COPY it_copy (id) FROM STDIN;
100
not-a-number
\.
SELECT count(*) FROM it_copy;
-- COPY inside a transaction, rolled back
BEGIN;
COPY it_copy (id, name) FROM STDIN;
200	rolled back
\.
SELECT count(*) FROM it_copy;
ROLLBACK;
SELECT count(*) FROM it_copy;
-- larger COPY out
COPY (SELECT g, md5(g::text) FROM generate_series(1, 3000) g) TO STDOUT;
DROP TABLE it_copy;
