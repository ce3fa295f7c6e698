-- Heavy read: one aggregate over all of pgbench_accounts (100k rows per scale unit), the same
-- statement every time (a report / dashboard query): about 25 tps direct with 8 clients on 2 shared
-- cores at scale 1 (the md5 term is the ballast that makes it so). Immutable functions only, so it
-- is cacheable. No min()/max(): pgpool-II 4.3 does not cache statements that call them, and the
-- comparison with its query cache must be on a statement it caches.
SELECT bid, count(*), sum(abalance), avg(abalance), sum(length(md5(aid::text))) AS key_chars FROM pgbench_accounts GROUP BY bid ORDER BY bid;
