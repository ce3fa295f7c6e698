-- ORM-style read (SQLAlchemy session, psycopg's default non-autocommit connection, Spring's
-- read-only @Transactional): each primary-key lookup inside its own BEGIN … COMMIT.
\set aid random(1, 100000 * :scale)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
COMMIT;
