#!/usr/bin/env bash
# node-postgres's own integration tests (packages/pg/test/integration, 79 files) directly against
# PostgreSQL and through pgcached (transaction and session pooling, cache on), with the files
# that fail only through pgcached. Not part of CI (about 3 minutes a pass).
#
#   NODE_PG_SRC=/path/to/node-postgres bash integration/node_pg_suite.sh
#
# NODE_PG_SRC   a checkout of https://github.com/brianc/node-postgres (packages/pg is used)
# PGCACHED_BIN  the binary to run (default target/release/pgcached, built if missing)
# PASSES        which of "direct transaction session" to run (default all three)
# NODE_ARGS     extra arguments for every test file (e.g. "binary": results in binary format)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=integration/suites.sh
source "$ROOT/integration/suites.sh"
SRC=${NODE_PG_SRC:?set NODE_PG_SRC to a node-postgres checkout}
suite_setup node-pg

# packages/pg alone, with only the dev dependencies its integration tests load (the monorepo's
# workspace would pull in TypeScript, vitest and wrangler).
cp -r "$SRC/packages/pg" "$WORK/pg"
python3 - "$WORK/pg/package.json" <<'EOF'
import json, sys
path = sys.argv[1]
p = json.load(open(path))
p["devDependencies"] = {k: v for k, v in p["devDependencies"].items()
                        if k in ("async", "bluebird", "co", "pg-copy-streams")}
for k in ("optionalDependencies", "peerDependencies", "peerDependenciesMeta"):
    p.pop(k, None)
json.dump(p, open(path, "w"), indent=1)
EOF
(cd "$WORK/pg" && npm install -q --no-audit --no-fund >"$WORK/npm.log" 2>&1)

start_private_pg "$WORK/postgres"
declare -A SUITE_PORT=([direct]=$PGPORT_PRIV)
suite_proxies "$WORK" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/postgres" "$BIN" "$PASSES"

for pass in $PASSES; do
    mkdir -p "$WORK/$pass"
    : >"$WORK/$pass.rc"
    while read -r file; do
        rc=0
        (cd "$WORK/pg" && PGHOST=127.0.0.1 PGPORT=${SUITE_PORT[$pass]} PGUSER=postgres PGDATABASE=postgres \
            timeout 120 node "$file" ${NODE_ARGS:-} >"$WORK/$pass/${file//\//_}.log" 2>&1 </dev/null) || rc=$?
        echo "$file $rc" >>"$WORK/$pass.rc"
    done < <(cd "$WORK/pg" && find test/integration -name '*-tests.js' | sort)
    awk '$2 != 0 { print $1 }' "$WORK/$pass.rc" | sort >"$WORK/$pass.failed"
    echo "$pass: $(wc -l <"$WORK/$pass.failed") of $(wc -l <"$WORK/$pass.rc") files fail"
done
suite_report "$WORK" "$PASSES"
