-- Metabase tool queries: the Postgres driver's own sync / connection SQL.  Metabase is a JVM
-- (Clojure) app and was not run here: extracted from source metabase/metabase@008fd6675457cdd62da2265628bed3b725a607ea,
-- src/metabase/driver/postgres.clj (enum-types, get-tables-sql, describe-fields-sql,
-- describe-fks-sql, current-user-table-privileges, set-role-statement, db-default-timezone,
-- set-timezone-sql, create-schema-if-needed!) and src/metabase/driver/sql_jdbc/sync/
-- {describe_database,describe_table}.clj (probe / fallback queries), plus
-- src/metabase/driver/sql_jdbc/execute.clj (set-timezone! formatting).  Literal strings are
-- copied; HoneySQL 2 forms (`:dialect :ansi`: double-quoted identifiers, upper-case function
-- names, non-inline values as JDBC `?` parameters, AND-ed clauses parenthesised) were rendered
-- by hand into one concrete variant each (see `-- variant:`), with `?` renumbered to $1..$n as
-- pgjdbc sends them.  The rendering conventions were cross-checked against a public wire capture
-- of a newer Metabase (v0.62) sync, whose get-tables / describe-fields / describe-fks text has the
-- same shape.  Metabase's remaining sync calls go through pgjdbc's DatabaseMetaData
-- (getSchemas, getTables, getColumns, getPrimaryKeys: see pgjdbc.sql).
-- 14 statements, separated by lines containing only `-- next`.

-- source: postgres.clj driver/db-default-timezone (prepareStatement)
show timezone;
-- next
-- source: sql_jdbc/execute.clj set-timezone! with postgres set-timezone-sql "SET SESSION TIMEZONE TO %s;"
-- variant: report timezone UTC; the value is formatted into the text
SET SESSION TIMEZONE TO 'UTC';
-- next
-- source: postgres.clj enum-types (jdbc/query)
SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)
-- next
-- source: postgres.clj sql-jdbc.sync/current-user-table-privileges (strings joined with \n)
with table_privileges as (
 select
   NULL as role,
   t.schemaname as schema,
   t.objectname as table,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
   pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
 from (
   select schemaname, tablename as objectname from pg_catalog.pg_tables
   union
   select schemaname, viewname as objectname from pg_catalog.pg_views
   union
   select schemaname, matviewname as objectname from pg_catalog.pg_matviews
 ) t
 where t.schemaname !~ '^pg_'
   and t.schemaname <> 'information_schema'
   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
)
select t.*
from table_privileges t
-- next
-- source: postgres.clj get-tables-sql (HoneySQL 2, :dialect :ansi) via describe-database*
-- variant: two syncable schemas (public, shop), no table-name filter; parameters: $1=0, $2='^pg_', $3='information_schema', $4/$5=schema names
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = $1) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ $2) AND ("n"."nspname" <> $3) AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ($4, $5)) ORDER BY "type" ASC, "schema" ASC, "name" ASC
-- next
-- source: postgres.clj sql-jdbc.sync/describe-fields-sql (HoneySQL 2, :dialect :ansi)
-- variant: schema-names [shop], table-names [orders, daily_totals]
SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required", (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment" FROM "information_schema"."columns" AS "c" LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ($1)) AND ("c"."table_name" IN ($2, $3)) UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", FALSE AS "database-is-auto-increment" FROM "pg_catalog"."pg_class" AS "pc" INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ($4)) AND ("pc"."relname" IN ($5, $6)) ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC
-- next
-- source: postgres.clj sql-jdbc.sync/describe-fks-sql (HoneySQL 2, :dialect :ansi)
-- variant: schema-names [shop]
SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND ("c"."contype" = 'f'::char) AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) AND ("fk_ns"."nspname" IN ($1)) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC
-- next
-- source: postgres.clj sql-jdbc.sync/describe-fks-sql (HoneySQL 2, :dialect :ansi)
-- variant: table-names [orders, order_lines], schema-names [shop]
SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND ("c"."contype" = 'f'::char) AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) AND ("fk_table"."relname" IN ($1, $2)) AND ("fk_ns"."nspname" IN ($3)) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC
-- next
-- source: describe_database.clj simple-select-probe-query (have-select-privilege?, used for foreign tables)
-- variant: HoneySQL {:select [[true :_]] :from [[table]] :where [:inline [:not= 1 1]]} + limit 0; LIMIT rendering assumed inline
SELECT TRUE AS "_" FROM "shop"."orders" WHERE 1 <> 1 LIMIT 0
-- next
-- source: describe_table.clj fallback-metadata-query
-- variant: HoneySQL {:select [:*] :from [[table]] :where [:not= 1 1]} + limit 0, numbers inlined
SELECT * FROM "shop"."orders" WHERE 1 <> 1 LIMIT 0
-- next
-- source: postgres.clj driver.sql/set-role-statement
-- variant: role name without special characters
SET ROLE corpus_reader;
-- next
-- source: postgres.clj driver.sql/set-role-statement
-- variant: role name with special characters is double-quoted
SET ROLE "reporting-role";
-- next
-- source: postgres.clj driver.sql/set-role-statement + default-database-role
SET ROLE NONE;
-- next
-- source: postgres.clj driver/create-schema-if-needed! (uploads)
CREATE SCHEMA IF NOT EXISTS "uploads";
