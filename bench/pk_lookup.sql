-- Primary-key lookup on pgbench_accounts (what `pgbench -S` runs), one statement per transaction.
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
