#!/usr/bin/env bash
# Policies as psql shows them: start a pgcached with a BI policy in front of the runner's
# PostgreSQL, run integration/psql/policy/bi.sql as user "bi" through it, and compare psql's
# output (refusals included, as psql prints them) with bi.expected. An unguarded user sees the
# rows the policy hides. Run by integration/run.sh (clients hook), or alone with DIRECT_DSN set:
#   DIRECT_DSN="host=127.0.0.1 port=5432 user=postgres dbname=app" bash integration/clients/policy_psql.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
trap run_cleanup EXIT

WORK=${INTEGRATION_WORK:-$(mktemp -d)}/policy_psql
mkdir -p "$WORK"
: "${DIRECT_DSN:?DIRECT_DSN is not set (run from integration/run.sh)}"
port_of() { sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$1"; }
PG_PORT=$(port_of "$DIRECT_DSN")

psql -X -q -v ON_ERROR_STOP=1 "$DIRECT_DSN" >/dev/null <<'SQL'
DROP SCHEMA IF EXISTS policy_demo CASCADE;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bi') THEN CREATE ROLE bi LOGIN; END IF;
END $$;
CREATE SCHEMA policy_demo;
SET search_path = policy_demo;
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
CREATE TABLE users (id int PRIMARY KEY, name text, ssn text);
INSERT INTO users VALUES (1, 'ann', '111-11'), (2, 'bob', '222-22');
CREATE TABLE secrets (k text);
INSERT INTO secrets VALUES ('s3cret');
ANALYZE items, users, secrets;
GRANT USAGE ON SCHEMA policy_demo TO bi;
GRANT SELECT ON ALL TABLES IN SCHEMA policy_demo TO bi;
ALTER ROLE bi IN DATABASE app SET search_path = policy_demo;
SQL

BIN=${PGCACHED_BIN:-$(build_pgcached "${PGCACHED_PROFILE:-debug}")}
PORT=$(free_port)
write_pgcached_config "$WORK/pgcached.yaml" "$PORT" "postgres://postgres@127.0.0.1:$PG_PORT/postgres" transaction 5 "
policies:
  - name: bi
    user: bi
    read_only: true
    deny_tables: [secrets]
    deny_columns: [users.ssn]
    max_statements: 3
    max_cost: 5000
    limit: {inject: 5, max: 10, notice: true}
"
start_pgcached "$BIN" "$WORK/pgcached.yaml" "$PORT" "$WORK/pgcached.log"

# psql prints NOTICEs and ERRORs on stderr, rows on stdout: interleave them in order.
PGOPTIONS= psql -X -a -h 127.0.0.1 -p "$PORT" -U bi -d app -f "$ROOT/integration/psql/policy/bi.sql" \
    >"$WORK/bi.out" 2>&1 || true
sed -i -e 's/^psql:[^:]*:[0-9]*: //' -e 's/estimated cost [0-9]* exceeds/estimated cost N exceeds/' "$WORK/bi.out"
if ! diff -u "$ROOT/integration/psql/policy/bi.expected" "$WORK/bi.out"; then
    echo "psql output differs from integration/psql/policy/bi.expected (got $WORK/bi.out)"
    exit 1
fi
# The same statements as the superuser (no policy) through the same proxy: not refused.
got=$(psql -X -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d app \
    -c "SELECT count(*) FROM policy_demo.items a, policy_demo.items b" -c "SELECT k FROM policy_demo.secrets")
[[ "$got" == $'10000\ns3cret' ]] || { echo "unguarded user got: $got"; exit 1; }
psql -X -q "$DIRECT_DSN" -c "DROP SCHEMA policy_demo CASCADE" -c "ALTER ROLE bi IN DATABASE app RESET search_path"
echo "policy_psql: psql output matches bi.expected"
