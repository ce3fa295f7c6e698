-- Read side of the `hot` workload (weight 9): the pk lookup, keys Zipf-distributed.
\set aid random_zipfian(1, 100000 * :scale, 1.1)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
