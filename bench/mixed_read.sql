-- Read side of the `mixed` workload (weight 9): the pk lookup.
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
