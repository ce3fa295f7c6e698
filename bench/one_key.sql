-- One key, read again and again: every read after the first is a cache hit (bench/callgrind.sh, the hit path).
SELECT abalance FROM pgbench_accounts WHERE aid = 1;
