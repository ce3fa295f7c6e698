-- Warm pass for the `orm` workload (see pk.warm.sql): every key once, each read in its own
-- transaction block as orm.sql sends it, so the fills happen inside blocks too.
\set aid :client_id + 1 + :n * :nclients
\set n :n + 1
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
COMMIT;
