-- Warm pass for the `pk` workload (cache-on targets only, before the measured run): every key
-- 1..100000*scale once, client c taking c+1, c+1+nclients, ... (pgbench keeps :n per client;
-- the script runs ceil(100000*scale/nclients) transactions per client). The statement text is
-- the one pk_lookup.sql sends, so the measured run finds every key cached.
\set aid :client_id + 1 + :n * :nclients
\set n :n + 1
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
