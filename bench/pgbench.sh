#!/usr/bin/env bash
# Benchmark: direct PostgreSQL vs pgcached (cache off, cache on) vs PgBouncer, in ONE run,
# on the same private PostgreSQL, printing a markdown table of tps and ratios.
#
#   bash bench/pgbench.sh                       # defaults below
#   BENCH_SECONDS=30 BENCH_MODES="simple prepared" bash bench/pgbench.sh
#
# Knobs (environment):
#   BENCH_SECONDS=15          duration of each measured run (-T)
#   BENCH_WARMUP=2            seconds of unmeasured warm-up per (target, protocol)
#   BENCH_CLIENTS=8           pgbench clients (-c); threads (-j) = min(clients, 4)
#   BENCH_POOL=8              server connections for pgcached and PgBouncer (transaction pooling)
#   BENCH_SCALE=1             pgbench -i scale (100k accounts per unit)
#   BENCH_MODES="simple extended prepared"     pgbench -M values
#   BENCH_TARGETS="direct pgcached-nocache pgcached-cache pgbouncer"
#   BENCH_WORKLOADS="pk"      bench/<name>.sql scripts (pk = pk_lookup.sql)
#   PGCACHED_BIN=path         skip the release build and use this binary
#   KEEP_WORK=1               keep logs in the temp dir
# PgBouncer is skipped (with a note) when not installed: apt-get install -y pgbouncer.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"

SECONDS_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-2}
CLIENTS=${BENCH_CLIENTS:-8}
POOL=${BENCH_POOL:-8}
SCALE=${BENCH_SCALE:-1}
MODES=${BENCH_MODES:-simple extended prepared}
TARGETS=${BENCH_TARGETS:-direct pgcached-nocache pgcached-cache pgbouncer}
WORKLOADS=${BENCH_WORKLOADS:-pk}
THREADS=$((CLIENTS < 4 ? CLIENTS : 4))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-bench.XXXXXX")
chmod 755 "$WORK"
cleanup() {
    run_cleanup
    if [[ -n "${KEEP_WORK:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[bench] $*" >&2; }

workload_file() { # name -> script path
    case $1 in
    pk) echo "$BENCH/pk_lookup.sql" ;;
    *) echo "$BENCH/$1.sql" ;;
    esac
}

# ------------------------------------------------------------------ setup
if [[ -n "${PGCACHED_BIN:-}" ]]; then
    BIN=$PGCACHED_BIN
elif [[ " $TARGETS " == *" pgcached"* ]]; then
    log "building pgcached (release)"
    BIN=$(build_pgcached release)
fi

start_private_pg "$WORK/pg"
PGPORT_DIRECT=$PGPORT_PRIV
log "private PostgreSQL on 127.0.0.1:$PGPORT_DIRECT"
export PGUSER=postgres PGHOST=127.0.0.1
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS || true
pgbench -i -q -s "$SCALE" -p "$PGPORT_DIRECT" app >"$WORK/init.log" 2>&1
psql -X -q -p "$PGPORT_DIRECT" -d app -c "VACUUM ANALYZE" >/dev/null
# Hook for workloads that need more data (e.g. a heavy aggregate): bench/<name>.init.sql
for w in $WORKLOADS; do
    if [[ -f "$BENCH/$w.init.sql" ]]; then
        psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT_DIRECT" -d app -f "$BENCH/$w.init.sql" >/dev/null
    fi
done
UPSTREAM="postgres://postgres@127.0.0.1:$PGPORT_DIRECT/app"

declare -A PORT NOTE
for t in $TARGETS; do
    case $t in
    direct) PORT[$t]=$PGPORT_DIRECT ;;
    pgcached-nocache | pgcached-cache)
        p=$(free_port)
        extra="cache:
  enabled: $([[ $t == pgcached-cache ]] && echo true || echo false)"
        write_pgcached_config "$WORK/$t.yaml" "$p" "$UPSTREAM" transaction "$POOL" "$extra"
        sed -i 's/^  level: .*/  level: warn/' "$WORK/$t.yaml"
        start_pgcached "$BIN" "$WORK/$t.yaml" "$p" "$WORK/$t.log"
        PORT[$t]=$p
        ;;
    pgbouncer)
        if ! command -v pgbouncer >/dev/null; then
            NOTE[$t]="not installed (apt-get install -y pgbouncer)"
            log "PgBouncer not installed: skipped"
            continue
        fi
        p=$(free_port)
        ver=$(pgbouncer --version | sed -n 's/^PgBouncer \([0-9.]*\).*/\1/p' | head -1)
        mps=""
        if [[ "$(printf '%s\n1.21.0\n' "$ver" | sort -V | head -1)" == 1.21.0 ]]; then
            mps="max_prepared_statements = 200"
        else
            NOTE[$t]="PgBouncer $ver (< 1.21: no max_prepared_statements)"
        fi
        mkdir -p "$WORK/pgbouncer"
        echo '"postgres" ""' >"$WORK/pgbouncer/userlist.txt"
        cat >"$WORK/pgbouncer/pgbouncer.ini" <<INI
[databases]
app = host=127.0.0.1 port=$PGPORT_DIRECT dbname=app user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $p
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = $WORK/pgbouncer/pgbouncer.log
pidfile = $WORK/pgbouncer/pgbouncer.pid
log_connections = 0
log_disconnections = 0
$mps
INI
        [[ $(id -u) -eq 0 ]] && chown -R postgres: "$WORK/pgbouncer"
        as_pg pgbouncer -d "$WORK/pgbouncer/pgbouncer.ini"
        register_cleanup "kill \$(cat '$WORK/pgbouncer/pgbouncer.pid')"
        wait_port "$p" 20 || { log "PgBouncer did not start"; cat "$WORK/pgbouncer/pgbouncer.log" >&2; exit 1; }
        PORT[$t]=$p
        NOTE[$t]=${NOTE[$t]:-PgBouncer $ver}
        ;;
    *) log "unknown target $t (known: direct pgcached-nocache pgcached-cache pgbouncer)"; exit 2 ;;
    esac
done

# ------------------------------------------------------------------ runs
declare -A TPS
run_one() { # target mode workload seconds -> prints tps or "error"
    local t=$1 mode=$2 w=$3 secs=$4 out
    out="$WORK/run-$t-$mode-$w-$secs.log"
    if ! timeout $((secs + 60)) pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" -T "$secs" \
        -f "$(workload_file "$w")" -D scale="$SCALE" -p "${PORT[$t]}" app >"$out" 2>&1 </dev/null; then
        log "pgbench failed for $t -M $mode ($w): $(grep -m3 -iE 'error|abort' "$out" | tr '\n' ' ')"
        echo error
        return
    fi
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    if [[ -n "$failed" && "$failed" != 0 ]]; then
        log "$t -M $mode ($w): $failed failed transactions"
    fi
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out" | tail -1
}

for w in $WORKLOADS; do
    for mode in $MODES; do
        for t in $TARGETS; do
            [[ -n "${PORT[$t]:-}" ]] || continue
            if [[ "$WARMUP" -gt 0 ]]; then run_one "$t" "$mode" "$w" "$WARMUP" >/dev/null; fi
            tps=$(run_one "$t" "$mode" "$w" "$SECONDS_RUN")
            TPS[$t,$mode,$w]=${tps:-error}
            log "$w -M $mode $t: ${TPS[$t,$mode,$w]} tps"
        done
    done
done

# ------------------------------------------------------------------ table
ratio() { # a b -> a/b with 2 decimals, or "-"
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($2 > 0)}"; then
        awk "BEGIN{printf \"%.2f\", $1 / $2}"
    else
        echo "-"
    fi
}

cores=$(nproc 2>/dev/null || echo '?')
echo
echo "pgbench $(pgbench --version | awk '{print $3}'), $CLIENTS clients, $THREADS threads, ${SECONDS_RUN}s per run," \
    "scale $SCALE, pool $POOL (transaction mode), $cores cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| workload | target | protocol | tps | vs direct | pgcached / PgBouncer |"
echo "|---|---|---|---:|---:|---:|"
for w in $WORKLOADS; do
    for mode in $MODES; do
        for t in $TARGETS; do
            [[ -n "${PORT[$t]:-}" ]] || continue
            tps=${TPS[$t,$mode,$w]}
            shown=$tps; [[ "$tps" =~ ^[0-9.]+$ ]] && shown=$(printf "%.0f" "$tps")
            vs_direct=$(ratio "$tps" "${TPS[direct,$mode,$w]:-}")
            vs_bouncer="-"
            [[ $t == pgcached-* ]] && vs_bouncer=$(ratio "$tps" "${TPS[pgbouncer,$mode,$w]:-}")
            printf '| %s | %s | %s | %s | %s | %s |\n' "$w" "$t" "$mode" "$shown" "$vs_direct" "$vs_bouncer"
        done
    done
done
for t in "${!NOTE[@]}"; do echo; echo "note: $t: ${NOTE[$t]}"; done
