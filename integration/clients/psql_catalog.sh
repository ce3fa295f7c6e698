#!/usr/bin/env bash
# psql's \d family under a guarded policy, on a big catalog (issue 17 item 5): a schema with
# 1,200 tables (> 1,000 tables and a 1,200-column table: > 1,000 rows in most listings), indexes,
# views, a materialized view, functions, a procedure, sequences and types. psql runs the \d
# family and information_schema / pg_catalog reads as user bi_catalog, whose policy is read_only
# with limit {inject: 1000, max: 1000, notice: true}: directly against PostgreSQL, then twice
# through a pgcached with that policy (catalog reads not cached, the default) and twice through
# one that also caches catalog reads (cache.catalogs: true). Every output must be identical to
# the direct one: same rows, nothing cut at 1,000, no NOTICE about a limit. A control read of a
# user table shows the policy is in force (cut at 1,000 rows, with the NOTICE).
# Run by integration/run.sh (clients hook), or alone with DIRECT_DSN set:
#   DIRECT_DSN="host=127.0.0.1 port=5432 user=postgres dbname=app" bash integration/clients/psql_catalog.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"

WORK=${INTEGRATION_WORK:-$(mktemp -d)}/psql_catalog
rm -rf "$WORK"
mkdir -p "$WORK"
: "${DIRECT_DSN:?DIRECT_DSN is not set (run from integration/run.sh)}"
port_of() { sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$1"; }
PG_PORT=$(port_of "$DIRECT_DSN")
SCHEMA=catalog_demo
ROLE=bi_catalog
NTABLES=1200
NWIDE=1200

drop_all() {
    psql -X -q "$DIRECT_DSN" >/dev/null 2>&1 <<SQL || true
DROP SCHEMA IF EXISTS $SCHEMA CASCADE;
DROP ROLE IF EXISTS $ROLE;
SQL
}
cleanup() { run_cleanup; drop_all; }
trap cleanup EXIT

started=$SECONDS
drop_all
# Created in batches of 200 tables per transaction (each table takes several locks).
psql -X -q -v ON_ERROR_STOP=1 "$DIRECT_DSN" >/dev/null <<SQL
CREATE ROLE $ROLE LOGIN;
CREATE SCHEMA $SCHEMA;
COMMENT ON SCHEMA $SCHEMA IS 'psql_catalog.sh: 1,200 tables';
DO \$\$
BEGIN
  FOR i IN 1..$NTABLES LOOP
    EXECUTE format('CREATE TABLE $SCHEMA.t%s (id int PRIMARY KEY, name text NOT NULL,
                    amount numeric(10,2) DEFAULT 0, created timestamptz DEFAULT now())', i);
    IF i % 10 = 0 THEN
      EXECUTE format('CREATE INDEX t%s_name_idx ON $SCHEMA.t%s (name)', i, i);
    END IF;
    IF i % 100 = 0 THEN
      EXECUTE format('CREATE UNIQUE INDEX t%s_name_created_idx ON $SCHEMA.t%s (name, created) WHERE amount > 0', i, i);
      EXECUTE format('COMMENT ON TABLE $SCHEMA.t%s IS %L', i, 'table number ' || i);
      EXECUTE format('ALTER TABLE $SCHEMA.t%s ADD CONSTRAINT t%s_amount_check CHECK (amount >= 0)', i, i);
    END IF;
    IF i % 200 = 0 THEN COMMIT; END IF;
  END LOOP;
END
\$\$;
SET search_path = $SCHEMA;
SELECT format('CREATE TABLE wide (%s)', string_agg(format('c%s int', g), ', ' ORDER BY g))
FROM generate_series(1, $NWIDE) g \gexec
ALTER TABLE t2 ADD CONSTRAINT t2_t1_fk FOREIGN KEY (id) REFERENCES t1 (id);
CREATE TABLE big (id int PRIMARY KEY, v text);
INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 1500) g;
CREATE SEQUENCE order_seq START 1000;
CREATE SEQUENCE audit_seq;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE VIEW v_small AS SELECT id, name FROM t1 WHERE id < 10;
CREATE VIEW v_join AS SELECT a.id, a.name, b.amount FROM t1 a JOIN t2 b USING (id);
CREATE VIEW v_big AS SELECT * FROM big;
CREATE MATERIALIZED VIEW mv_big AS SELECT id % 10 AS k, count(*) AS n FROM big GROUP BY 1;
CREATE FUNCTION add_one(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1';
CREATE FUNCTION greet(who text, mood mood DEFAULT 'ok') RETURNS text LANGUAGE plpgsql STABLE
  AS \$f\$ BEGIN RETURN 'hello ' || who || ' (' || mood || ')'; END \$f\$;
CREATE FUNCTION big_rows() RETURNS SETOF big LANGUAGE sql STABLE AS 'SELECT * FROM big';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS \$f\$ BEGIN NEW.created = now(); RETURN NEW; END \$f\$;
CREATE TRIGGER t3_touch BEFORE UPDATE ON t3 FOR EACH ROW EXECUTE FUNCTION touch();
CREATE PROCEDURE noop(n int) LANGUAGE plpgsql AS \$f\$ BEGIN PERFORM n; END \$f\$;
CREATE AGGREGATE sum_pos(positive) (SFUNC = int4pl, STYPE = int);
GRANT USAGE ON SCHEMA $SCHEMA TO $ROLE;
GRANT SELECT ON ALL TABLES IN SCHEMA $SCHEMA TO $ROLE;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA $SCHEMA TO $ROLE;
-- Only this schema on the path: listings without a pattern then show nothing that other checks (or
-- autovacuum, for sizes) may change between the direct and the proxied runs.
ALTER ROLE $ROLE IN DATABASE app SET search_path = $SCHEMA;
VACUUM ANALYZE big, mv_big;
SQL
echo "schema $SCHEMA: $NTABLES tables + wide table of $NWIDE columns created in $((SECONDS - started))s"

# What psql shows: the \d family, then information_schema / pg_catalog reads as tools send them.
cat >"$WORK/catalog.sql" <<SQL
\\pset pager off
\\dt
\\dt $SCHEMA.*
\\dt+ $SCHEMA.t10*
\\d $SCHEMA.t1
\\d+ $SCHEMA.t1
\\d $SCHEMA.t100
\\d+ $SCHEMA.t2
\\d $SCHEMA.wide
\\d+ $SCHEMA.big
\\d $SCHEMA.v_join
\\d+ $SCHEMA.mv_big
\\d $SCHEMA.order_seq
\\di
\\di+ $SCHEMA.t1*
\\dv
\\dm
\\ds
\\df
\\df+ $SCHEMA.*
\\dn
\\dn+
\\du
\\l
\\dx
\\dT
\\dT+ $SCHEMA.*
\\dD
\\dp
\\dp $SCHEMA.t11*
\\dd $SCHEMA.*
\\d
\\d+
SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default
  FROM information_schema.columns WHERE table_schema = '$SCHEMA' ORDER BY table_name, ordinal_position;
SELECT table_schema, table_name, table_type FROM information_schema.tables
  WHERE table_schema = '$SCHEMA' ORDER BY table_name;
SELECT count(*) FROM information_schema.columns WHERE table_schema = '$SCHEMA';
SELECT table_name, constraint_name, constraint_type FROM information_schema.table_constraints
  WHERE table_schema = '$SCHEMA' AND constraint_type <> 'CHECK' ORDER BY 1, 2;
SELECT c.relname, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
  WHERE n.nspname = '$SCHEMA' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2;
SELECT indexrelid::regclass, indrelid::regclass FROM pg_index
  WHERE indrelid::regclass::text LIKE 't1%' ORDER BY 1::text;
SQL

# run_psql PORT OUT — the script as $ROLE, NOTICEs and ERRORs (stderr) interleaved with rows.
run_psql() {
    PGOPTIONS= timeout 120 psql -X -a -v ON_ERROR_STOP=0 -h 127.0.0.1 -p "$1" -U "$ROLE" -d app \
        -f "$WORK/catalog.sql" >"$2" 2>&1 </dev/null || echo "[psql exit status $?]" >>"$2"
}

t=$SECONDS
run_psql "$PG_PORT" "$WORK/direct.out"
echo "direct: $(wc -l <"$WORK/direct.out") lines in $((SECONDS - t))s"
if grep -qE '^\[psql exit status|ERROR|NOTICE' "$WORK/direct.out"; then
    echo "FAIL: psql failed or complained even directly ($WORK/direct.out):"
    grep -nE '^\[psql exit status|ERROR|NOTICE' "$WORK/direct.out" | head -20
    exit 1
fi
# The comparison is only worth something if the listings are longer than the limit.
big=$(grep -cE '^\(([0-9]{4,}) rows\)$' "$WORK/direct.out" || true)
if [[ $big -lt 8 ]] || ! grep -qE "^ c$NWIDE +\| integer" "$WORK/direct.out"; then
    echo "FAIL: only $big results of >= 1000 rows directly (expected the big listings), or no c$NWIDE in \\d wide"
    grep -E '^\([0-9]+ rows?\)$' "$WORK/direct.out" | sort | uniq -c
    exit 1
fi
echo "direct: $big results of >= 1000 rows: $(grep -E '^\(([0-9]{4,}) rows\)$' "$WORK/direct.out" | tr -d '()' | cut -d' ' -f1 | sort -n | uniq | paste -sd' ')"

BIN=${PGCACHED_BIN:-$(build_pgcached "${PGCACHED_PROFILE:-debug}")}
POLICY="
policies:
  - name: bi
    user: $ROLE
    read_only: true
    limit: {inject: 1000, max: 1000, notice: true}
"
failures=()
for variant in default catalogs_cached; do
    extra=$POLICY
    [[ $variant == catalogs_cached ]] && extra="cache:
  catalogs: true
$POLICY"
    port=$(free_port)
    write_pgcached_config "$WORK/pgcached-$variant.yaml" "$port" "postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
        transaction 5 "$extra"
    start_pgcached "$BIN" "$WORK/pgcached-$variant.yaml" "$port" "$WORK/pgcached-$variant.log"

    # Control: the policy applies to this user (a user-table read is cut at 1,000, with a NOTICE).
    got=$(PGOPTIONS= psql -X -A -t -h 127.0.0.1 -p "$port" -U "$ROLE" -d app -c "SELECT id FROM $SCHEMA.big" 2>&1)
    if [[ $(grep -cE '^[0-9]+$' <<<"$got") -ne 1000 ]] || ! grep -q NOTICE <<<"$got"; then
        failures+=("FAIL ($variant): the policy is not in force: SELECT id FROM $SCHEMA.big gave $(grep -cE '^[0-9]+$' <<<"$got") rows; $(grep -v -E '^[0-9]+$' <<<"$got" | head -3)")
        echo "${failures[-1]}"
    fi

    for pass in 1 2; do
        out="$WORK/pgcached-$variant-$pass.out"
        t=$SECONDS
        run_psql "$port" "$out"
        if d=$(diff -u "$WORK/direct.out" "$out"); then
            echo "ok ($variant, pass $pass): identical to direct ($(wc -l <"$out") lines, $((SECONDS - t))s)"
        else
            failures+=("FAIL ($variant, pass $pass): psql output through pgcached differs from direct ($(grep -c '^[-+][^-+]' <<<"$d") lines differ; $WORK/direct.out vs $out)")
            echo "${failures[-1]}:"
            head -80 <<<"$d"
            if [[ $pass == 2 ]] && ! diff -q "$WORK/pgcached-$variant-1.out" "$out" >/dev/null; then
                echo "(and pass 2 differs from pass 1:)"
                diff -u "$WORK/pgcached-$variant-1.out" "$out" | head -40 || true
            fi
        fi
    done
done
if [[ ${#failures[@]} -gt 0 ]]; then
    printf '%s\n' "${failures[@]}"
    echo "psql_catalog: FAILED"
    exit 1
fi
echo "psql_catalog: \\d family and information_schema identical through pgcached (guarded policy) in $((SECONDS - started))s"
