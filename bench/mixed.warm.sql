-- Warm pass for the `mixed` workload (cache-on targets only): every key once, as pk.warm.sql does,
-- with the statement text mixed_read.sql sends.
\set aid :client_id + 1 + :n * :nclients
\set n :n + 1
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
