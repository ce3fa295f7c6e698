#!/usr/bin/env bash
# Where a transaction's CPU goes: for each (workload, protocol, target), pgbench runs against a
# private PostgreSQL directly or through pgcached, and the CPU time that Postgres (every
# `postgres` process), pgcached and pgbench used — utime + stime from /proc/<pid>/stat, sampled
# from 2 s into the run to 2 s before its end — is divided by the transactions in between, with
# the whole machine's busy, softirq and idle time (/proc/stat) likewise. Units: microseconds of
# CPU per transaction, summed over all cores, so busy + idle = cores × wall time per transaction.
# It splits a tps difference into the proxy's own work, Postgres's, the load generator's and the
# time nobody ran (DECISIONS 22 and 48).
#
#   bash bench/cpusplit.sh                                  # builds the plain release binary
#   PGCACHED_BIN=target/release/pgcached SPLIT_WORKLOADS="pk mixed write" bash bench/cpusplit.sh
#
# Knobs: SPLIT_WORKLOADS (default "pk mixed write"; any bench/ workload), SPLIT_MODES (pgbench -M,
# default simple), SPLIT_TARGETS (default "direct pgcached-nocache pgcached-cache"), SPLIT_SCALE
# (default 10), SPLIT_SECONDS (default 10, at least 6), SPLIT_ROUNDS (default 1), SPLIT_CLIENTS
# (default 8, pool the same). Cache-on targets get the workload's warm pass first; the table is
# vacuumed and checkpointed before every run, as in pgbench.sh (BENCH_SETTLE=0: not). A process that
# exits inside the window (an autovacuum worker) loses its time from the sum: a negative or low
# figure in one row says so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

WORKLOADS=${SPLIT_WORKLOADS:-pk mixed write}
MODES=${SPLIT_MODES:-simple}
TARGETS=${SPLIT_TARGETS:-direct pgcached-nocache pgcached-cache}
SCALE=${SPLIT_SCALE:-10}
SECS=${SPLIT_SECONDS:-10}
ROUNDS=${SPLIT_ROUNDS:-1}
CLIENTS=${SPLIT_CLIENTS:-8}
THREADS=$((CLIENTS < 4 ? CLIENTS : 4))
((SECS >= 6)) || { echo "SPLIT_SECONDS must be at least 6" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-cpusplit.XXXXXX")
chmod 755 "$WORK"
trap 'run_cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

BIN=${PGCACHED_BIN:-$(build_pgcached release)}
start_private_pg "$WORK/pg"
export PGUSER=postgres PGHOST=127.0.0.1
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS || true
pgbench -i -q -s "$SCALE" -p "$PGPORT_PRIV" app >"$WORK/init.log" 2>&1
psql -X -q -p "$PGPORT_PRIV" -d app -c "VACUUM ANALYZE" >/dev/null
UPSTREAM="postgres://postgres@127.0.0.1:$PGPORT_PRIV/app"

declare -A PORT
PORT[direct]=$PGPORT_PRIV
for t in $TARGETS; do
    [[ $t == direct ]] && continue
    case $t in
    pgcached-nocache) cache=false ;;
    pgcached-cache) cache=true ;;
    *) echo "unknown target $t (direct, pgcached-nocache, pgcached-cache)" >&2; exit 2 ;;
    esac
    p=$(free_port)
    write_pgcached_config "$WORK/$t.yaml" "$p" "$UPSTREAM" transaction "$CLIENTS" "cache:
  enabled: $cache
  default_ttl: 1h
  max_memory: 2GiB"
    sed -i 's/^  level: .*/  level: warn/' "$WORK/$t.yaml"
    start_pgcached "$BIN" "$WORK/$t.yaml" "$p" "$WORK/$t.log"
    PORT[$t]=$p
done

# snapshot FILE: CPU ticks per process group and the machine's, as JSON.
snapshot() {
    python3 - "$1" <<'EOF'
import json, os, sys
groups = {"postgres": 0, "pgcached": 0, "pgbench": 0}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    if comm in groups:
        groups[comm] += int(fields[11]) + int(fields[12])
cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
groups["busy"] = sum(cpu) - cpu[3] - cpu[4]
groups["softirq"] = cpu[6]
groups["idle"] = cpu[3] + cpu[4]
json.dump(groups, open(sys.argv[1], "w"))
EOF
}

echo "| workload | protocol | target | tps | postgres | pgcached | pgbench | softirq | busy | idle |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for w in $WORKLOADS; do
    mapfile -t ARGS < <(workload_args "$w")
    mapfile -t WARM < <(warm_args "$w" "$SCALE" "$CLIENTS")
    for mode in $MODES; do
        if [[ " $TARGETS " == *" pgcached-cache "* ]] && ((${#WARM[@]})); then
            pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" "${WARM[@]}" -p "${PORT[pgcached-cache]}" app >/dev/null
        fi
        for ((round = 1; round <= ROUNDS; round++)); do
            for t in $TARGETS; do
                settle "$PGPORT_PRIV"
                pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" -T "$SECS" \
                    -D scale="$SCALE" "${ARGS[@]}" -p "${PORT[$t]}" app >"$WORK/out" 2>&1 &
                run=$!
                sleep 2
                snapshot "$WORK/a.json"
                sleep $((SECS - 4))
                snapshot "$WORK/b.json"
                wait "$run" || { echo "pgbench failed for $t ($w, $mode):" >&2; tail -5 "$WORK/out" >&2; exit 1; }
                tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/out")
                python3 - "$WORK/a.json" "$WORK/b.json" "$tps" "$((SECS - 4))" "$w" "$mode" "$t" <<'EOF'
import json, os, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
tps, secs = float(sys.argv[3]), float(sys.argv[4])
us_per_tick = 1e6 / os.sysconf("SC_CLK_TCK")
per_tx = lambda k: (b[k] - a[k]) * us_per_tick / (tps * secs)
cols = " | ".join(f"{per_tx(k):.1f}" for k in ("postgres", "pgcached", "pgbench", "softirq", "busy", "idle"))
print(f"| {sys.argv[5]} | {sys.argv[6]} | {sys.argv[7]} | {tps:.0f} | {cols} |")
EOF
            done
        done
    done
done
echo
echo "µs of CPU per transaction (all cores), $(nproc) cores, scale $SCALE, $CLIENTS clients, ${SECS}s runs (middle $((SECS - 4))s sampled), $(date -u '+%Y-%m-%d %H:%M UTC'); pgcached: $BIN"
