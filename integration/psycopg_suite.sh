#!/usr/bin/env bash
# psycopg 3's own test suite (its repository's tests/, ~5,000 tests) directly against PostgreSQL
# and through pgcached (session and transaction pooling, cache on), with the failure counts of
# each and the tests that fail only through pgcached. Not part of CI (about 10 minutes a pass).
#
#   PSYCOPG_SRC=/path/to/psycopg bash integration/psycopg_suite.sh
#
# PSYCOPG_SRC   a checkout of https://github.com/psycopg/psycopg (e.g. tag 3.2.13)
# PGCACHED_BIN  the binary to run (default target/debug/pgcached, built if missing)
# UPSTREAM_PORT a PostgreSQL with trust auth on 127.0.0.1 (default: a private one, started here)
# PASSES        which of "direct session transaction" to run (default all three)
# TEST_DB       the database the suite uses (default psycopg_test; dropped and created)
# TESTS         what pytest runs, relative to the checkout (default tests; e.g. a slice:
#               "tests/test_pipeline.py tests/test_copy.py tests/test_concurrency.py")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${PSYCOPG_SRC:?set PSYCOPG_SRC to a psycopg checkout}
PASSES=${PASSES:-direct session transaction}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-psycopg.XXXXXX")
chmod 755 "$WORK"
trap 'run_cleanup; echo "logs: $WORK"' EXIT

BIN=${PGCACHED_BIN:-$ROOT/target/debug/pgcached}
[[ -x "$BIN" ]] || (cd "$ROOT" && cargo build -q)

if [[ -z "${UPSTREAM_PORT:-}" ]]; then
    start_private_pg "$WORK/pg"
    UPSTREAM_PORT=$PGPORT_PRIV
fi
as_pg_psql() { psql -h 127.0.0.1 -p "$UPSTREAM_PORT" -U postgres -qAt "$@"; }
DB=${TEST_DB:-psycopg_test}
as_pg_psql -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"

VENV="$WORK/venv"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "$SRC/psycopg[test]" "$SRC/psycopg_pool"

UPSTREAM="postgres://postgres@127.0.0.1:$UPSTREAM_PORT/$DB"
declare -A SUITE_PORT=([direct]=$UPSTREAM_PORT)
suite_proxies "$WORK" "$UPSTREAM" "$BIN" "$PASSES"

for pass in $PASSES; do
    dsn="host=127.0.0.1 port=${SUITE_PORT[$pass]} user=postgres dbname=$DB"
    (cd "$SRC" && timeout 3600 "$VENV/bin/python" -m pytest -q -o cache_dir="$WORK/pytest_cache" \
        --test-dsn "$dsn" ${TESTS:-tests} -o addopts="" >"$WORK/$pass.log" 2>&1 </dev/null) || true
    suite_pytest_failures "$WORK/$pass.log" "$WORK/$pass.failed"
    echo "$pass: $(tail -1 "$WORK/$pass.log")"
done
suite_report "$WORK" "$PASSES"
