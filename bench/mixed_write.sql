-- Write side of the `mixed` workload (weight 1): an autocommit UPDATE of the table the reads use.
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
