#!/usr/bin/env bash
# asyncpg's own test suite (its repository's tests/, run against the asyncpg release of the same
# tag from PyPI) directly against PostgreSQL and through pgcached (transaction and session
# pooling, cache on), with the tests that fail only through pgcached. Not part of CI (about a
# minute a pass).
#
#   ASYNCPG_SRC=/path/to/asyncpg ASYNCPG_VERSION=0.31.0 bash integration/asyncpg_suite.sh
#
# ASYNCPG_SRC      a checkout of https://github.com/MagicStack/asyncpg at tag v$ASYNCPG_VERSION
# ASYNCPG_VERSION  the asyncpg release to install (default 0.31.0)
# PGCACHED_BIN     the binary to run (default target/release/pgcached, built if missing)
# PASSES           which of "direct transaction session" to run (default all three)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${ASYNCPG_SRC:?set ASYNCPG_SRC to an asyncpg checkout}
VERSION=${ASYNCPG_VERSION:-0.31.0}
suite_setup asyncpg

# The tests outside the checkout, so that `import asyncpg` finds the compiled release rather
# than the checkout's uncompiled sources; test__sourcecode.py lints the checkout (not ours).
cp -r "$SRC/tests" "$WORK/tests"
rm -f "$WORK/tests/test__sourcecode.py"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "asyncpg==$VERSION" pytest distro uvloop

start_private_pg "$WORK/postgres"
declare -A SUITE_PORT=([direct]=$PGPORT_PRIV)
suite_proxies "$WORK" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/postgres" "$BIN" "$PASSES"

# With PGHOST set, asyncpg's test base uses the running server instead of starting its own.
for pass in $PASSES; do
    (cd "$WORK" && PGHOST=127.0.0.1 PGPORT=${SUITE_PORT[$pass]} PGUSER=postgres PGDATABASE=postgres \
        timeout 1800 venv/bin/python -m pytest -q -p no:cacheprovider tests >"$WORK/$pass.log" 2>&1 </dev/null) || true
    suite_pytest_failures "$WORK/$pass.log" "$WORK/$pass.failed"
    echo "$pass: $(tail -1 "$WORK/$pass.log")"
done
suite_report "$WORK" "$PASSES"
