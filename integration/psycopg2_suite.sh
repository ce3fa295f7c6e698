#!/usr/bin/env bash
# psycopg2's own test suite (its repository's tests/, ~770 tests, run against the
# psycopg2-binary release of the same tag from PyPI) directly against PostgreSQL and through
# pgcached (transaction and session pooling, cache on), with the tests that fail only through
# pgcached. Not part of CI (under a minute a pass).
#
#   PSYCOPG2_SRC=/path/to/psycopg2 PSYCOPG2_VERSION=2.9.12 bash integration/psycopg2_suite.sh
#
# PSYCOPG2_SRC      a checkout of https://github.com/psycopg/psycopg2 at tag $PSYCOPG2_VERSION
# PSYCOPG2_VERSION  the psycopg2-binary release to install (default 2.9.12)
# PGCACHED_BIN      the binary to run (default target/release/pgcached, built if missing)
# PASSES            which of "direct transaction session" to run (default all three)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${PSYCOPG2_SRC:?set PSYCOPG2_SRC to a psycopg2 checkout}
VERSION=${PSYCOPG2_VERSION:-2.9.12}
suite_setup psycopg2

cp -r "$SRC/tests" "$WORK/tests"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "psycopg2-binary==$VERSION" pytest

start_private_pg "$WORK/postgres"
psql -X -q -h 127.0.0.1 -p "$PGPORT_PRIV" -U postgres -c "CREATE DATABASE psycopg2_test"
declare -A SUITE_PORT=([direct]=$PGPORT_PRIV)
suite_proxies "$WORK" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/psycopg2_test" "$BIN" "$PASSES"

for pass in $PASSES; do
    (cd "$WORK" && PSYCOPG2_TESTDB_HOST=127.0.0.1 PSYCOPG2_TESTDB_PORT=${SUITE_PORT[$pass]} \
        PSYCOPG2_TESTDB_USER=postgres timeout 1800 venv/bin/python -m pytest -q -p no:cacheprovider tests \
        >"$WORK/$pass.log" 2>&1 </dev/null) || true
    suite_pytest_failures "$WORK/$pass.log" "$WORK/$pass.failed"
    echo "$pass: $(tail -1 "$WORK/$pass.log")"
done
suite_report "$WORK" "$PASSES"
