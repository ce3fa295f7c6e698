-- Miscellany: DDL, sequences, cursors in a transaction, RETURNING, large results, \gexec.
DROP TABLE IF EXISTS it_misc;
CREATE TABLE it_misc (id serial PRIMARY KEY, v text NOT NULL CHECK (v <> ''));
INSERT INTO it_misc (v) SELECT 'row ' || g FROM generate_series(1, 100) g RETURNING id, v \g /dev/null
INSERT INTO it_misc (v) VALUES ('') ;
INSERT INTO it_misc (v) VALUES (NULL);
UPDATE it_misc SET v = v || '!' WHERE id % 10 = 0;
DELETE FROM it_misc WHERE id > 95;
SELECT count(*), min(v), max(v) FROM it_misc;
BEGIN;
DECLARE c CURSOR FOR SELECT id, v FROM it_misc ORDER BY id;
FETCH 3 FROM c;
FETCH 2 FROM c;
MOVE 50 IN c;
FETCH 1 FROM c;
CLOSE c;
COMMIT;
SELECT format('SELECT %s AS gexec_%s', g, g) FROM generate_series(1, 3) g \gexec
EXPLAIN (COSTS OFF) SELECT * FROM it_misc WHERE id = 1;
SELECT pg_sleep(0.05);
VALUES (1, 'a'), (2, 'b');
TABLE it_misc LIMIT 3;
CREATE INDEX ON it_misc (v);
ALTER TABLE it_misc ADD COLUMN extra int DEFAULT 7;
SELECT * FROM it_misc ORDER BY id LIMIT 2;
TRUNCATE it_misc;
SELECT count(*) FROM it_misc;
\set ON_ERROR_STOP 0
SELECT * FROM it_misc WHERE nocolumn = 1;
SELECT 'done';
DROP TABLE it_misc;
