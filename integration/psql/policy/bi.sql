-- Run by integration/clients/policy_psql.sh as user "bi" through a pgcached with the policy
-- below; the output (stdout + stderr) must match bi.expected. ON_ERROR_STOP is off: every
-- refusal is printed as psql prints errors, and the session goes on.
\set VERBOSITY default
SELECT id FROM items ORDER BY id;
SELECT id FROM items ORDER BY id LIMIT 50;
SELECT count(*) FROM items;
SELECT name FROM users ORDER BY id;
SELECT * FROM secrets;
SELECT * FROM users;
SELECT row_to_json(u) FROM users u;
SELECT pg_read_file('/etc/passwd');
DELETE FROM items WHERE id = 1;
SELECT count(*) FROM items a, items b, items c;
SET standard_conforming_strings = off;
SELECT 1 \; SELECT 2 \; SELECT 3 \; SELECT 4;
BEGIN;
SELECT * FROM secrets;
SELECT 1;
ROLLBACK;
SELECT 'still usable' AS status;
