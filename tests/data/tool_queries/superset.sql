-- Apache Superset tool queries (PostgresEngineSpec + SQLAlchemy inspector).
-- Superset runs on SQLAlchemy 1.4 + psycopg2; this file was captured by replaying Superset's
-- database code paths with that stack (SQLAlchemy 1.4.54 + psycopg2 2.9.10 + sqlglot 27.15.2): capture/superset_capture.py,
-- driven by capture/capture.sh against PostgreSQL 15 with log_statement=all, read back from
-- the server's CSV log.  psycopg2 interpolates parameters client-side, so literals appear
-- inline (no $n).  Superset's own SQL strings are copied from apache/superset@007e4f5f4b4a
-- (superset/db_engine_specs/postgres.py: get_catalog_names, get_prequeries
-- `set search_path = "<schema>"`, get_cancel_query_id, cancel_query, estimate_statement_cost
-- `EXPLAIN <stmt>`; superset/db_engine_specs/base.py: select_star preview, compiled with
-- literal binds and pretty-printed by sqlglot as SQLScript.format does); the rest is the
-- SQLAlchemy 1.4 inspector (get_schema_names, get_table_names, get_foreign_table_names,
-- get_view_names, get_columns, get_pk_constraint, get_foreign_keys, get_indexes,
-- get_table_comment, get_unique_constraints, has_table) and the dialect's connect probes.
-- 30 statements, separated by lines containing only `-- next`.

BEGIN
-- next
SELECT t.oid, typarray
FROM pg_type t JOIN pg_namespace ns
    ON typnamespace = ns.oid
WHERE typname = 'hstore';
-- next
ROLLBACK
-- next
select pg_catalog.version()
-- next
select current_schema()
-- next
show transaction isolation level
-- next
show standard_conforming_strings
-- next
SELECT 1
-- next
SELECT datname FROM pg_database
WHERE datistemplate = false;
-- next
SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY nspname
-- next
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shop' AND c.relkind in ('r', 'p')
-- next
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shop' AND c.relkind = 'f'
-- next
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shop' AND c.relkind IN ('v', 'm')
-- next
SELECT c.oid
            FROM pg_catalog.pg_class c
            LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'shop')
            AND c.relname = 'orders' AND c.relkind in
            ('r', 'v', 'm', 'f', 'p')
-- next
SELECT a.attname,
              pg_catalog.format_type(a.atttypid, a.atttypmod),
              (
                SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                FROM pg_catalog.pg_attrdef d
                WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
                AND a.atthasdef
              ) AS DEFAULT,
              a.attnotnull,
              a.attrelid as table_oid,
              pgd.description as comment,
              a.attgenerated as generated,
                              (SELECT json_build_object(
                    'always', a.attidentity = 'a',
                    'start', s.seqstart,
                    'increment', s.seqincrement,
                    'minvalue', s.seqmin,
                    'maxvalue', s.seqmax,
                    'cache', s.seqcache,
                    'cycle', s.seqcycle)
                FROM pg_catalog.pg_sequence s
                JOIN pg_catalog.pg_class c on s.seqrelid = c."oid"
                WHERE c.relkind = 'S'
                AND a.attidentity != ''
                AND s.seqrelid = pg_catalog.pg_get_serial_sequence(
                    a.attrelid::regclass::text, a.attname
                )::regclass::oid
                ) as identity_options                
            FROM pg_catalog.pg_attribute a
            LEFT JOIN pg_catalog.pg_description pgd ON (
                pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum)
            WHERE a.attrelid = 16412
            AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
-- next
SELECT t.typname as "name",
               pg_catalog.format_type(t.typbasetype, t.typtypmod) as "attype",
               not t.typnotnull as "nullable",
               t.typdefault as "default",
               pg_catalog.pg_type_is_visible(t.oid) as "visible",
               n.nspname as "schema"
            FROM pg_catalog.pg_type t
               LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'd'
-- next
SELECT t.typname as "name",
               -- no enum defaults in 8.4 at least
               -- t.typdefault as "default",
               pg_catalog.pg_type_is_visible(t.oid) as "visible",
               n.nspname as "schema",
               e.enumlabel as "label"
            FROM pg_catalog.pg_type t
                 LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                 LEFT JOIN pg_catalog.pg_enum e ON t.oid = e.enumtypid
            WHERE t.typtype = 'e'
        ORDER BY "schema", "name", e.oid
-- next
SELECT a.attname
                FROM pg_attribute a JOIN (
                    SELECT unnest(ix.indkey) attnum,
                           generate_subscripts(ix.indkey, 1) ord
                    FROM pg_index ix
                    WHERE ix.indrelid = 16412 AND ix.indisprimary
                    ) k ON a.attnum=k.attnum
                WHERE a.attrelid = 16412
                ORDER BY k.ord
-- next
SELECT conname
           FROM  pg_catalog.pg_constraint r
           WHERE r.conrelid = 16412 AND r.contype = 'p'
           ORDER BY 1
-- next
SELECT r.conname,
                pg_catalog.pg_get_constraintdef(r.oid, true) as condef,
                n.nspname as conschema
          FROM  pg_catalog.pg_constraint r,
                pg_namespace n,
                pg_class c

          WHERE r.conrelid = 16412 AND
                r.contype = 'f' AND
                c.oid = confrelid AND
                n.oid = c.relnamespace
          ORDER BY 1
-- next
SELECT
                  i.relname as relname,
                  ix.indisunique, ix.indexprs,
                  a.attname, a.attnum, c.conrelid, ix.indkey::varchar,
                  ix.indoption::varchar, i.reloptions, am.amname,
                  pg_get_expr(ix.indpred, ix.indrelid),
                  ix.indnkeyatts as indnkeyatts
              FROM
                  pg_class t
                        join pg_index ix on t.oid = ix.indrelid
                        join pg_class i on i.oid = ix.indexrelid
                        left outer join
                            pg_attribute a
                            on t.oid = a.attrelid and a.attnum = ANY(ix.indkey)
                        left outer join
                            pg_constraint c
                            on (ix.indrelid = c.conrelid and
                                ix.indexrelid = c.conindid and
                                c.contype in ('p', 'u', 'x'))
                        left outer join
                            pg_am am
                            on i.relam = am.oid
              WHERE
                  t.relkind IN ('r', 'v', 'f', 'm', 'p')
                  and t.oid = 16412
                  and ix.indisprimary = 'f'
              ORDER BY
                  t.relname,
                  i.relname
-- next
SELECT
                pgd.description as table_comment
            FROM
                pg_catalog.pg_description pgd
            WHERE
                pgd.objsubid = 0 AND
                pgd.objoid = 16412
-- next
SELECT
                cons.conname as name,
                cons.conkey as key,
                a.attnum as col_num,
                a.attname as col_name
            FROM
                pg_catalog.pg_constraint cons
                join pg_attribute a
                  on cons.conrelid = a.attrelid AND
                    a.attnum = ANY(cons.conkey)
            WHERE
                cons.conrelid = 16412 AND
                cons.contype = 'u'
-- next
select relname from pg_class c join pg_namespace n on n.oid=c.relnamespace where n.nspname='shop' and relname='orders'
-- next
set search_path = "shop"
-- next
SELECT pg_backend_pid()
-- next
SELECT
  *
FROM shop.orders
LIMIT 100
-- next
SELECT
  id,
  status,
  total
FROM shop.orders
LIMIT 100
-- next
EXPLAIN SELECT
  *
FROM shop.orders
LIMIT 100
-- next
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid='999999'
