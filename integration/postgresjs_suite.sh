#!/usr/bin/env bash
# postgres.js's own test suite (tests/index.js, about 250 tests in one node process) directly
# against PostgreSQL and through pgcached (transaction and session pooling, cache on), with the
# tests that fail only through pgcached. Not part of CI (about 5 minutes for all three passes,
# most of it rerunning failed tests alone).
#
#   POSTGRESJS_SRC=/path/to/postgres.js bash integration/postgresjs_suite.sh
#
# POSTGRESJS_SRC  a checkout of https://github.com/porsager/postgres (a v3 tag)
# PGCACHED_BIN    the binary to run (default target/release/pgcached, built if missing)
# PASSES          which of "direct transaction session" to run (default all three)
#
# The suite's runner stops running tests after the first failure; the copy run here runs them all
# and prints a line per test. A failed test leaves its tables behind and fails the later tests that
# create the same ones: each test failing in the full run is run again alone in a fresh database,
# and counts as failing only if it fails again (the others are listed as failing only in the full
# run). Its TLS tests fail in every pass (no TLS here). Its Unix-socket test reaches each pgcached
# on the socket `suite_proxies` gives it (`unix_socket_dir`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${POSTGRESJS_SRC:?set POSTGRESJS_SRC to a postgres.js checkout}
suite_setup postgresjs

# The server settings of the project's CI (.github/workflows/test.yml): logical decoding for its
# subscribe tests (with synchronous_commit back on: a walsender sends only flushed WAL, and they
# wait 10 ms for it), two-phase commit for its prepared-transaction test.
PG_EXTRA_CONF="wal_level = logical
synchronous_commit = on
max_prepared_transactions = 100"
# Its "Multiple hosts" test wants a second server (port 5433 in CI).
start_private_pg "$WORK/postgres2"
PG2_PORT=$PGPORT_PRIV
start_private_pg "$WORK/postgres"

# The users and authentication methods of tests/bootstrap.js and tests/pg_hba.conf (not its TLS).
hba="$WORK/postgres/data/pg_hba.conf"
{ printf 'host all %s 127.0.0.1/32 %s\n' postgres_js_test_md5 md5 postgres_js_test_scram scram-sha-256
  cat "$hba"; } >"$WORK/pg_hba.conf"
as_pg cp "$WORK/pg_hba.conf" "$hba"
psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK_PRIV" -p "$PGPORT_PRIV" -U postgres -d postgres >/dev/null <<'EOF'
CREATE USER postgres_js_test;
SET password_encryption TO 'md5';
CREATE USER postgres_js_test_md5 PASSWORD 'postgres_js_test_md5';
SET password_encryption TO 'scram-sha-256';
CREATE USER postgres_js_test_scram PASSWORD 'postgres_js_test_scram';
SELECT pg_reload_conf();
EOF

declare -A SUITE_PORT=([direct]=$PGPORT_PRIV)
suite_proxies "$WORK" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/postgres" "$BIN" "$PASSES" \
    "$(suite_trust_yaml postgres_js_test_md5:postgres_js_test_md5 postgres_js_test_scram:postgres_js_test_scram)"

# A copy whose tests we may edit: tests/bootstrap.js's setup (done above, and by fresh_db) is
# dropped; the runner runs every test and prints a line per test registered, passed and failed.
mkdir -p "$WORK/postgres.js"
(cd "$SRC" && tar -c --exclude=./node_modules --exclude=./.git src tests package.json) |
    tar -x -C "$WORK/postgres.js"
python3 - "$WORK/postgres.js/tests" <<'EOF'
import sys
d = sys.argv[1]
def edit(name, pairs):
    path = f"{d}/{name}"
    s = open(path).read()
    for old, new in pairs:
        assert s.count(old) == 1, (name, old)
        s = s.replace(old, new)
    open(path, "w").write(s)
boot = open(f"{d}/bootstrap.js").read()
open(f"{d}/bootstrap.js", "w").write(
    "\n".join(l for l in boot.split("\n") if not l.startswith("exec(")))
edit("test.js", [
    # Through pgcached the subscribe tests' replication connection is refused, and postgres.js
    # leaves that rejection unhandled (node would exit, leaving the later tests unrun) and retries
    # for ever (node would not exit when all tests are done).
    ("let done = 0",
     "let unhandled = 0\n"
     "process.on('unhandledRejection', err => ++unhandled <= 3 &&\n"
     "  console.log('\\nPGCACHED-SUITE UNHANDLED ' + util.inspect(err)))\n\nlet done = 0"),
    ("  !process.exitCode && (!success || only || ignored) && (process.exitCode = 1)",
     "  !process.exitCode && (!success || only || ignored) && (process.exitCode = 1)\n"
     "  setTimeout(() => process.exit(), 2000)"),
    ("    failed\n      ? (ignored++, ignore)\n      : fn()", "    fn()"),
    ("  tests[line] = { fn, line, name }",
     "  tests[line] = { fn, line, name }\n"
     "  console.log('\\nPGCACHED-SUITE TEST ' + line + ' ' + JSON.stringify(name))"),
    ("      tests[line].succeeded = true",
     "      tests[line].succeeded = true\n"
     "      console.log('\\nPGCACHED-SUITE PASS ' + line + ' ' + JSON.stringify(name))"),
    ("      tests[line].failed = failed = true",
     "      tests[line].failed = failed = true\n"
     "      console.log('\\nPGCACHED-SUITE FAIL ' + line + ' ' + JSON.stringify(name) + ' ' + util.inspect(err))"),
])
EOF
cp -r "$WORK/postgres.js/tests" "$WORK/tests.orig"

# fresh_db — an empty database postgres_js_test and the server configuration of the start (the TLS
# tests run ALTER SYSTEM).
fresh_db() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK_PRIV" -p "$PGPORT_PRIV" -U postgres -d postgres >/dev/null <<'EOF'
SET client_min_messages TO warning;
ALTER SYSTEM RESET ALL;
SELECT pg_reload_conf();
DROP DATABASE IF EXISTS postgres_js_test WITH (FORCE);
CREATE DATABASE postgres_js_test OWNER postgres_js_test;
GRANT ALL ON DATABASE postgres_js_test TO postgres_js_test;
EOF
}

# run_tests PASS LOG [LINE] — in a fresh database, the suite (or only the test at LINE of
# tests/index.js) through PASS's port.
run_tests() {
    local pass=$1 log=$2 line=${3:-} sock=$PGSOCK_PRIV
    fresh_db
    # The tests hard-code 5432 (the server under test) and 5433 (a second server).
    rm -rf "$WORK/postgres.js/tests"
    cp -r "$WORK/tests.orig" "$WORK/postgres.js/tests"
    sed -i -e "s/\b5432\b/${SUITE_PORT[$pass]}/g" -e "s/\b5433\b/$PG2_PORT/g" "$WORK/postgres.js/tests/index.js"
    [[ -z $line ]] || sed -i "${line}s/^t(/ot(/" "$WORK/postgres.js/tests/index.js"
    [[ $pass == direct ]] || sock=$WORK/sock-$pass
    (cd "$WORK/postgres.js/tests" && PGHOST=127.0.0.1 PGPORT=${SUITE_PORT[$pass]} PGUSER=postgres \
        PGSOCKET=$sock timeout 900 node index.js >"$log" 2>&1 </dev/null) || true
}

# <line> TAB <test name>, of the tests a log says are registered (TEST) or passed (PASS).
tests_of() { sed -n "s/^PGCACHED-SUITE $1 \([0-9]*\) \"\(.*\)\"\$/\1\t\2/p" "$2"; }

for pass in $PASSES; do
    mkdir -p "$WORK/$pass"
    run_tests "$pass" "$WORK/$pass.log"
    tests_of TEST "$WORK/$pass.log" | sort >"$WORK/$pass.tests"
    tests_of PASS "$WORK/$pass.log" | sort | comm -23 "$WORK/$pass.tests" - >"$WORK/$pass.failed-in-run"
    : >"$WORK/$pass.failed"
    while IFS=$'\t' read -r line name; do
        run_tests "$pass" "$WORK/$pass/$line.log" "$line"
        [[ -n $(tests_of PASS "$WORK/$pass/$line.log") ]] || echo "$name" >>"$WORK/$pass.failed"
    done <"$WORK/$pass.failed-in-run"
    sort -o "$WORK/$pass.failed" "$WORK/$pass.failed"
    cut -f2 "$WORK/$pass.failed-in-run" | sort | comm -23 - "$WORK/$pass.failed" >"$WORK/$pass.failed-in-run-only"
    echo "$pass: $(wc -l <"$WORK/$pass.failed") of $(wc -l <"$WORK/$pass.tests") tests fail" \
        "(and $(wc -l <"$WORK/$pass.failed-in-run-only") more in the full run only)"
done
for pass in $PASSES; do
    echo "--- failing in the full run only, not alone ($pass):"
    cat "$WORK/$pass.failed-in-run-only"
done
suite_report "$WORK" "$PASSES"
