#!/usr/bin/env bash
# Instructions per forwarded transaction (the hot path's cost), counted by callgrind: pgcached
# runs under valgrind in pure pass-through (cache off, no policy) in front of a private
# PostgreSQL; pgbench sends PK lookups; the counters are zeroed after a warm-up and dumped after
# the measured run. Instruction counts repeat to within ~1% for the same binary and load,
# whatever else the machine does, which tps on a shared machine does not (docs/DECISIONS.md 19).
#
#   bash bench/callgrind.sh                          # builds the plain release binary
#   PGCACHED_BIN=path/to/pgcached bash bench/callgrind.sh
#   CALLGRIND_MODES="simple extended" CALLGRIND_TX=1000 CALLGRIND_CACHE=false bash bench/callgrind.sh
#   CALLGRIND_SCRIPT=bench/write.sql CALLGRIND_CACHE=true bash bench/callgrind.sh   # the write path
#
# Knobs: CALLGRIND_MODES (pgbench -M values, default "simple extended"), CALLGRIND_TX
# (transactions per client in the measured run, default 1000; 8 clients), CALLGRIND_CACHE
# (cache.enabled, default false: forwarded transactions), CALLGRIND_STATS (stats.enabled, default
# true: what per-query statistics cost is the difference), CALLGRIND_SCRIPT (a pgbench script
# instead of the built-in `-S` lookups), KEEP_WORK=1 (keep the dumps).
# Prints one line per mode: "<mode> <Ir per transaction>".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"

MODES=${CALLGRIND_MODES:-simple extended}
TX=${CALLGRIND_TX:-1000}
CACHE=${CALLGRIND_CACHE:-false}
STATS=${CALLGRIND_STATS:-true}
WORKLOAD=(-S)
[[ -n "${CALLGRIND_SCRIPT:-}" ]] && WORKLOAD=(-f "$(cd "$(dirname "$CALLGRIND_SCRIPT")" && pwd)/$(basename "$CALLGRIND_SCRIPT")")
CLIENTS=8
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-callgrind.XXXXXX")
chmod 755 "$WORK"
cleanup() {
    run_cleanup
    if [[ -n "${KEEP_WORK:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=${PGCACHED_BIN:-$(build_pgcached release)}
start_private_pg "$WORK/pg"
export PGUSER=postgres PGHOST=127.0.0.1
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS || true
pgbench -i -q -s 1 -p "$PGPORT_PRIV" app >"$WORK/init.log" 2>&1
UPSTREAM="postgres://postgres@127.0.0.1:$PGPORT_PRIV/app"

# pgcached under callgrind, started like any binary by start_pgcached.
cat >"$WORK/under-callgrind" <<EOF
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$BIN" "\$@"
EOF
chmod +x "$WORK/under-callgrind"

for mode in $MODES; do
    port=$(free_port)
    write_pgcached_config "$WORK/$mode.yaml" "$port" "$UPSTREAM" transaction "$CLIENTS" "cache:
  enabled: $CACHE
stats:
  enabled: $STATS"
    # The private PostgreSQL has no TLS: say so rather than measure a failed negotiation.
    sed -i 's/^upstream:$/upstream:\n  tls: disable/' "$WORK/$mode.yaml"
    sed -i 's/^  level: .*/  level: warn/' "$WORK/$mode.yaml"
    start_pgcached "$WORK/under-callgrind" "$WORK/$mode.yaml" "$port" "$WORK/$mode.log"
    pid=$PGCACHED_PID
    pgbench -n "${WORKLOAD[@]}" -M "$mode" -c "$CLIENTS" -j 4 -t 200 -p "$port" app >"$WORK/$mode.warm.log" 2>&1
    callgrind_control -z "$pid" >/dev/null
    pgbench -n "${WORKLOAD[@]}" -M "$mode" -c "$CLIENTS" -j 4 -t "$TX" -p "$port" app >"$WORK/$mode.run.log" 2>&1
    callgrind_control -d "$pid" >/dev/null
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # The dump of the measured run: the newest file with "-<n>" after the pid.
    dump=$(ls -t "$WORK"/callgrind.out."$pid".* 2>/dev/null | head -1)
    ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$dump" | head -1)
    [[ -n "$ir" ]] || ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$dump" | head -1)
    echo "$mode $((ir / (CLIENTS * TX)))"
done
