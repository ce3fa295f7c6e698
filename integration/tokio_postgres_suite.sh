#!/usr/bin/env bash
# rust-postgres's tokio-postgres integration tests (tokio-postgres/tests/test, all features, one
# test per process) directly against PostgreSQL and through pgcached (transaction and session
# pooling, cache on), with the tests that fail only through pgcached. Not part of CI (about
# 3 minutes for the first build, then under a minute for all three passes).
#
#   RUST_POSTGRES_SRC=/path/to/rust-postgres bash integration/tokio_postgres_suite.sh
#
# RUST_POSTGRES_SRC  a checkout of https://github.com/sfackler/rust-postgres (a tokio-postgres tag)
# PGCACHED_BIN       the binary to run (default target/release/pgcached, built if missing)
# PASSES             which of "direct transaction session" to run (default all three)
# TOKIO_PG_TARGET    cargo target directory, kept between runs (default $TMPDIR/pgcached-tokio-postgres-target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${RUST_POSTGRES_SRC:?set RUST_POSTGRES_SRC to a rust-postgres checkout}
export CARGO_TARGET_DIR=${TOKIO_PG_TARGET:-${TMPDIR:-/tmp}/pgcached-tokio-postgres-target}
suite_setup tokio-postgres

# A copy whose tests we may edit: they hard-code port 5433, rewritten per pass to the port under
# test. The dependencies are built once (kept in CARGO_TARGET_DIR), each pass rebuilds the tests.
mkdir -p "$WORK/rust-postgres"
(cd "$SRC" && tar -c --exclude=./target --exclude=./.git .) | tar -x -C "$WORK/rust-postgres"
build_tests() {
    (cd "$WORK/rust-postgres" && cargo test -j 2 -p tokio-postgres --all-features --test test --no-run 2>&1) |
        tee -a "$WORK/build.log" | sed -n 's/^ *Executable .*(\(.*\))$/\1/p' ||
        { tail -30 "$WORK/build.log" >&2; return 1; }
}
build_tests >/dev/null

# The users and authentication methods of the project's docker/sql_setup.sh (not its TLS).
start_private_pg "$WORK/postgres"
hba="$WORK/postgres/data/pg_hba.conf"
{ printf 'host all %s 127.0.0.1/32 %s\n' pass_user password md5_user md5 scram_user scram-sha-256
  cat "$hba"; } >"$WORK/pg_hba.conf"
as_pg cp "$WORK/pg_hba.conf" "$hba"
psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK_PRIV" -p "$PGPORT_PRIV" -U postgres -d postgres >/dev/null <<'EOF'
CREATE ROLE pass_user PASSWORD 'password' LOGIN;
SET password_encryption TO 'md5';
CREATE ROLE md5_user PASSWORD 'password' LOGIN;
SET password_encryption TO 'scram-sha-256';
CREATE ROLE scram_user PASSWORD 'password' LOGIN;
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE EXTENSION ltree;
SELECT pg_reload_conf();
EOF

# Tests connect as postgres without a password (see suite_trust_yaml).
declare -A SUITE_PORT=([direct]=$PGPORT_PRIV)
suite_proxies "$WORK" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/postgres" "$BIN" "$PASSES" \
    "$(suite_trust_yaml pass_user:password md5_user:password scram_user:password)"

for pass in $PASSES; do
    rm -rf "$WORK/rust-postgres/tokio-postgres/tests"
    cp -r "$SRC/tokio-postgres/tests" "$WORK/rust-postgres/tokio-postgres/tests"
    sed -i "s/5433/${SUITE_PORT[$pass]}/g" $(grep -rl 5433 "$WORK/rust-postgres/tokio-postgres/tests")
    exe=$(build_tests)
    mkdir -p "$WORK/$pass"
    : >"$WORK/$pass.rc"
    while read -r name; do
        rc=0
        timeout 60 "$exe" --exact --test-threads=1 "$name" >"$WORK/$pass/$name.log" 2>&1 </dev/null || rc=$?
        echo "$name $rc" >>"$WORK/$pass.rc"
    done < <("$exe" --list --format terse | sed -n 's/: test$//p')
    awk '$2 != 0 { print $1 }' "$WORK/$pass.rc" | sort >"$WORK/$pass.failed"
    echo "$pass: $(wc -l <"$WORK/$pass.failed") of $(wc -l <"$WORK/$pass.rc") tests fail"
done
suite_report "$WORK" "$PASSES"
