-- Transactions, errors mid-transaction and recovery, savepoints.
DROP TABLE IF EXISTS it_tx;
CREATE TABLE it_tx (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO it_tx VALUES (1, 'one');
SELECT * FROM it_tx;
COMMIT;
BEGIN;
INSERT INTO it_tx VALUES (2, 'two');
ROLLBACK;
SELECT * FROM it_tx ORDER BY id;
-- error inside a transaction: the rest fails until ROLLBACK
BEGIN;
INSERT INTO it_tx VALUES (3, 'three');
INSERT INTO it_tx VALUES (1, 'duplicate');
SELECT 'after error';
COMMIT;
SELECT * FROM it_tx ORDER BY id;
-- errors outside a transaction
SELECT 1/0;
SELECT * FROM no_such_table;
SELEC broken syntax;
SELECT 'recovered' AS status;
-- savepoints
BEGIN;
INSERT INTO it_tx VALUES (10, 'ten');
SAVEPOINT s1;
INSERT INTO it_tx VALUES (11, 'eleven');
SAVEPOINT s2;
INSERT INTO it_tx VALUES (10, 'dup');
ROLLBACK TO SAVEPOINT s2;
INSERT INTO it_tx VALUES (12, 'twelve');
RELEASE SAVEPOINT s1;
SELECT * FROM it_tx ORDER BY id;
SAVEPOINT s3;
DELETE FROM it_tx;
ROLLBACK TO SAVEPOINT s3;
COMMIT;
SELECT * FROM it_tx ORDER BY id;
-- transaction modes and blocks
BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY;
SHOW transaction_isolation;
INSERT INTO it_tx VALUES (99, 'read only');
ROLLBACK;
START TRANSACTION;
UPDATE it_tx SET v = upper(v) RETURNING *;
END;
COMMIT;
ROLLBACK;
-- multi-statement string (one simple Query with several statements)
SELECT 1 AS a\; SELECT 2 AS b\; INSERT INTO it_tx VALUES (20, 'multi')\; SELECT count(*) FROM it_tx;
-- an error in a multi-statement string aborts the rest of it (implicit transaction)
INSERT INTO it_tx VALUES (21, 'x')\; SELECT 1/0\; INSERT INTO it_tx VALUES (22, 'y');
SELECT id FROM it_tx WHERE id >= 20 ORDER BY id;
-- empty queries and comments
;
/* only a comment */ ;
SELECT count(*) FROM it_tx;
DROP TABLE it_tx;
