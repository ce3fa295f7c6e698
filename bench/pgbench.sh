#!/usr/bin/env bash
# Benchmark: direct PostgreSQL vs pgcached (cache off, cache on from cold, cache on warm) vs PgBouncer
# vs pgpool-II (query cache on), in ONE run, on the same private PostgreSQL, printing a markdown table
# of tps, ratios and cache hit ratios, then the issue targets with PASS/FAIL.
#
#   bash bench/pgbench.sh                       # defaults below (about 8-9 minutes on 2 cores)
#   BENCH_SECONDS=30 BENCH_WORKLOADS=pk BENCH_MODES="simple prepared" bash bench/pgbench.sh
#
# Knobs (environment):
#   BENCH_SECONDS=10          duration of each measured run (-T)
#   BENCH_ROUNDS=1            measured runs per (target, protocol, workload), interleaved across targets
#                             (round 1 of every target, then round 2, …, each round's order rotated by
#                             one); the table shows the median and the range, so a burst of load on a
#                             shared machine hits every target
#   BENCH_SETTLE=1            VACUUM pgbench_accounts and CHECKPOINT before every measured run, so
#                             each target starts from a vacuumed table (0: off)
#   BENCH_WARMUP=2            seconds of unmeasured warm-up per (target, protocol, workload) — for
#                             cache-on targets a workload's <name>.warm.sql pass replaces it
#   BENCH_CLIENTS=8           pgbench clients (-c); threads (-j) = min(clients, 4)
#   BENCH_POOL=8              server connections for pgcached and PgBouncer (transaction pooling)
#   BENCH_SCALE=1             pgbench -i scale (100k accounts per unit)
#   BENCH_WORKLOADS="pk heavy mixed"   also: hot (the mix with Zipf keys), write (UPDATEs only),
#                             orm (each pk lookup in its own BEGIN … COMMIT)
#   BENCH_MODES               pgbench -M values for every workload; unset = per workload:
#                             pk "simple extended prepared", others "simple extended"
#                             (BENCH_MODES_<workload> overrides one workload)
#   BENCH_TARGETS="direct pgcached-nocache pgcached-plain pgcached-cold pgcached-cache pgbouncer pgpool"
#                             pgcached-plain: cache off, the plain `cargo build --release` binary
#                             (skipped when the other pgcached targets run that build too);
#                             also pgcached-nocache-nostats, pgcached-cache-nostats: stats.enabled
#                             false (the cost of per-query statistics and histograms);
#                             pgcached-nocache-socket, pgcached-cache-socket: upstream.url on
#                             Postgres's Unix-domain socket instead of 127.0.0.1 (pgbench still
#                             reaches every target by TCP)
#   BENCH_COLD_WORKLOADS="pk" workloads measured on pgcached-cold (a fresh pgcached, empty cache, no warm-up)
#   BENCH_CACHE_MEMORY=2GiB   cache.max_memory of the pgcached targets (a warm pass of scale 10
#                             holds a million answers per protocol)
#   BENCH_TTL=1h              cache.default_ttl of the pgcached targets (pgpool-II's entries never expire)
#   BENCH_BUILD=pgo           how the pgcached targets are built: pgo (bench/pgo-build.sh, a
#                             profile-guided release build; falls back to release, with a note,
#                             when no llvm-profdata is found) or release (cargo build --release)
#   PGCACHED_BIN=path         use this binary instead of building one (e.g. the output of
#                             bench/pgo-build.sh); pgcached-plain still gets the plain release build
#   BENCH_WORKERS=N           limits.worker_threads for the pgcached targets (unset: pgcached's default)
#   KEEP_WORK=1               keep logs in the temp dir
# PgBouncer (apt-get install -y pgbouncer) and pgpool-II (apt-get install -y pgpool2) are optional:
# when missing their rows are skipped with a note.
#
# Workloads: bench/<name>.sql (one pgbench script), or bench/<name>.mix (lines "script.sql weight"),
# plus optional bench/<name>.init.sql (psql, once, after pgbench -i) and bench/<name>.warm.sql (a full
# warm pass for the cache-on targets; see pk.warm.sql for the variables it gets).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

SECONDS_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-1}
# Entries must outlive the run, as pgpool-II's do (memqcache_expire = 0): the default 60s would
# expire a warm pass's entries in the middle of a run and measure refills instead of hits.
TTL=${BENCH_TTL:-1h}
CACHE_MEMORY=${BENCH_CACHE_MEMORY:-2GiB}
CLIENTS=${BENCH_CLIENTS:-8}
POOL=${BENCH_POOL:-8}
SCALE=${BENCH_SCALE:-1}
TARGETS=${BENCH_TARGETS:-direct pgcached-nocache pgcached-plain pgcached-cold pgcached-cache pgbouncer pgpool}
BUILD=${BENCH_BUILD:-pgo}
WORKLOADS=${BENCH_WORKLOADS:-pk heavy mixed}
COLD_WORKLOADS=${BENCH_COLD_WORKLOADS:-pk}
THREADS=$((CLIENTS < 4 ? CLIENTS : 4))
CACHE_ON="pgcached-cache pgcached-cache-nostats pgcached-cache-socket pgpool" # targets that get a workload's warm pass

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-bench.XXXXXX")
chmod 755 "$WORK"
cleanup() {
    run_cleanup
    if [[ -n "${KEEP_WORK:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[bench] $(date -u +%H:%M:%S) $*" >&2; }
has() { [[ " $1 " == *" $2 "* ]]; }

modes_for() { # workload -> pgbench -M values
    local v="BENCH_MODES_$1"
    if [[ -n "${!v:-}" ]]; then echo "${!v}"; return; fi
    if [[ -n "${BENCH_MODES:-}" ]]; then echo "$BENCH_MODES"; return; fi
    case $1 in
    pk) echo "simple extended prepared" ;;
    *) echo "simple extended" ;;
    esac
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')

# ------------------------------------------------------------------ setup
BIN=       # the binary of the pgcached targets
PLAIN_BIN= # the plain release build, for pgcached-plain when BIN is another one
BUILT=
if [[ -n "${PGCACHED_BIN:-}" ]]; then
    BIN=$PGCACHED_BIN
    BUILT="$PGCACHED_BIN (PGCACHED_BIN)"
elif [[ " $TARGETS " == *" pgcached"* ]]; then
    if [[ $BUILD == pgo ]]; then
        log "building pgcached (profile-guided, bench/pgo-build.sh)"
        rc=0
        BIN=$(bash "$BENCH/pgo-build.sh") || rc=$?
        if [[ $rc == 3 ]]; then
            log "no llvm-profdata: measuring the plain release build instead"
            BUILD=release
        elif [[ $rc != 0 ]]; then
            log "the PGO build failed"
            exit 1
        else
            BUILT="profile-guided release build (bench/pgo-build.sh)"
        fi
    fi
    if [[ $BUILD != pgo ]]; then
        log "building pgcached (release)"
        BIN=$(build_pgcached release)
        BUILT="plain release build (cargo build --release)"
    fi
fi
if [[ -n "$BIN" && $BUILD == pgo ]] && has "$TARGETS" pgcached-plain; then
    log "building pgcached (release, for pgcached-plain)"
    PLAIN_BIN=$(build_pgcached release)
fi

start_private_pg "$WORK/pg"
PGPORT_DIRECT=$PGPORT_PRIV
log "private PostgreSQL on 127.0.0.1:$PGPORT_DIRECT"
export PGUSER=postgres PGHOST=127.0.0.1
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS || true
pgbench -i -q -s "$SCALE" -p "$PGPORT_DIRECT" app >"$WORK/init.log" 2>&1
psql -X -q -p "$PGPORT_DIRECT" -d app -c "VACUUM ANALYZE" >/dev/null
for w in $WORKLOADS; do
    if [[ -f "$BENCH/$w.init.sql" ]]; then
        psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT_DIRECT" -d app -f "$BENCH/$w.init.sql" >/dev/null
    fi
done
UPSTREAM="postgres://postgres@127.0.0.1:$PGPORT_DIRECT/app"
# The same Postgres on its Unix-domain socket (the *-socket targets).
UPSTREAM_SOCKET="postgres://postgres@${PGSOCK_PRIV//\//%2F}:$PGPORT_DIRECT/app"

declare -A PORT NOTE ADMIN PID

# start_pgc NAME CACHE(true|false) [BIN] [STATS(true|false)]: a pgcached on free ports (proxy +
# /metrics); sets PORT, ADMIN, PID.
start_pgc() { # NAME CACHE [BIN] [STATS] [UPSTREAM_URL]
    local t=$1 cache=$2 bin=${3:-$BIN} stats=${4:-true} upstream=${5:-$UPSTREAM} p a
    p=$(free_port)
    a=$(free_port)
    local limits=""
    [[ -n "${BENCH_WORKERS:-}" ]] && limits="limits:
  worker_threads: $BENCH_WORKERS"
    write_pgcached_config "$WORK/$t.yaml" "$p" "$upstream" transaction "$POOL" "admin:
  http_listen: \"127.0.0.1:$a\"
cache:
  enabled: $cache
  default_ttl: $TTL
  max_memory: $CACHE_MEMORY
stats:
  enabled: $stats
$limits"
    sed -i 's/^  level: .*/  level: warn/' "$WORK/$t.yaml"
    start_pgcached "$bin" "$WORK/$t.yaml" "$p" "$WORK/$t.log"
    PORT[$t]=$p ADMIN[$t]=$a PID[$t]=$PGCACHED_PID
}
stop_pgc() { # NAME
    kill -TERM "${PID[$1]}" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do kill -0 "${PID[$1]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PID[$1]}" 2>/dev/null || true
    unset "PORT[$1]"
}

start_pgbouncer() {
    local t=pgbouncer p ver mps=""
    p=$(free_port)
    ver=$(pgbouncer --version | sed -n 's/^PgBouncer \([0-9.]*\).*/\1/p' | head -1)
    if [[ "$(printf '%s\n1.21.0\n' "$ver" | sort -V | head -1)" == 1.21.0 ]]; then
        mps="max_prepared_statements = 200"
    else
        NOTE[$t]="PgBouncer $ver (< 1.21: no max_prepared_statements, so named statements under transaction pooling fail: its prepared rows are errors)"
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
    NOTE[$t]=${NOTE[$t]:-PgBouncer $ver, max_prepared_statements = 200}
}

# pgpool-II in raw mode (one backend: the private PostgreSQL), its in-memory query cache in shared
# memory. pgpool pools per session (one backend connection per child process), so it gets as many
# children as there are clients (+2 for the counter queries).
start_pgpool() {
    local t=pgpool p pcp d=$WORK/pgpool ver
    ver=$(pgpool --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)
    p=$(free_port)
    pcp=$(free_port)
    mkdir -p "$d/oiddir" "$d/log"
    : >"$d/pcp.conf"
    echo "host all all 127.0.0.1/32 trust" >"$d/pool_hba.conf"
    cat >"$d/pgpool.conf" <<CONF
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $p
socket_dir = '$d'
pcp_listen_addresses = ''
pcp_port = $pcp
pcp_socket_dir = '$d'
backend_hostname0 = '127.0.0.1'
backend_port0 = $PGPORT_DIRECT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = off
pool_passwd = ''
num_init_children = $((CLIENTS + 2))
max_pool = 1
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
load_balance_mode = off
health_check_period = 0
sr_check_period = 0
failover_on_backend_error = off
use_watchdog = off
log_destination = 'stderr'
log_min_messages = warning
log_connections = off
log_statement = off
pid_file_name = '$d/pgpool.pid'
logdir = '$d/log'
memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = 128MB
memqcache_max_num_cache = 1000000
memqcache_expire = 0
memqcache_auto_cache_invalidation = on
memqcache_maxcache = 400kB
memqcache_cache_block_size = 1MB
memqcache_oiddir = '$d/oiddir'
CONF
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$d"
    as_pg pgpool -n -D -f "$d/pgpool.conf" -F "$d/pcp.conf" -a "$d/pool_hba.conf" >"$d/pgpool.log" 2>&1 </dev/null &
    register_cleanup "as_pg pgpool -f '$d/pgpool.conf' -F '$d/pcp.conf' -m immediate stop"
    if ! wait_port "$p" 20; then
        NOTE[$t]="pgpool-II $ver did not start: $(grep -m2 -iE 'fatal|error' "$d/pgpool.log" | tr '\n' ' ')"
        log "${NOTE[$t]}"
        return 0
    fi
    # pgpool accepts before its children are ready to talk to the backend: wait for a real query.
    local i
    for ((i = 0; i < 100; i++)); do
        psql -X -Atq -p "$p" -d app -c "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.2
    done
    PORT[$t]=$p
    NOTE[$t]="pgpool-II $ver, raw mode, memory_cache_enabled = on, memqcache_method = 'shmem', num_init_children = $((CLIENTS + 2)), max_pool = 1"
}

for t in $TARGETS; do
    case $t in
    direct) PORT[$t]=$PGPORT_DIRECT ;;
    pgcached-nocache)
        start_pgc "$t" false
        NOTE[$t]="$BUILT"
        ;;
    pgcached-plain)
        if [[ -n "$PLAIN_BIN" ]]; then
            start_pgc "$t" false "$PLAIN_BIN"
            NOTE[$t]="plain release build (cargo build --release), cache off"
        fi
        ;;
    pgcached-cache)
        start_pgc "$t" true
        NOTE[$t]="cache.default_ttl = $TTL (BENCH_TTL), limits.worker_threads = ${BENCH_WORKERS:-default}"
        ;;
    pgcached-nocache-nostats)
        start_pgc "$t" false "$BIN" false
        NOTE[$t]="cache off, stats.enabled: false (the cost of per-query statistics: compare with pgcached-nocache)"
        ;;
    pgcached-cache-nostats)
        start_pgc "$t" true "$BIN" false
        NOTE[$t]="cache on, stats.enabled: false (compare with pgcached-cache)"
        ;;
    pgcached-nocache-socket)
        start_pgc "$t" false "$BIN" true "$UPSTREAM_SOCKET"
        NOTE[$t]="cache off, upstream on Postgres's Unix-domain socket (compare with pgcached-nocache)"
        ;;
    pgcached-cache-socket)
        start_pgc "$t" true "$BIN" true "$UPSTREAM_SOCKET"
        NOTE[$t]="cache on, upstream on Postgres's Unix-domain socket (compare with pgcached-cache)"
        ;;
    pgcached-cold) ;; # started fresh for each measurement
    pgbouncer)
        if command -v pgbouncer >/dev/null; then start_pgbouncer; else
            NOTE[$t]="not installed (apt-get install -y pgbouncer)"
            log "PgBouncer not installed: skipped"
        fi
        ;;
    pgpool)
        if command -v pgpool >/dev/null; then start_pgpool; else
            NOTE[$t]="not installed (apt-get install -y pgpool2)"
            log "pgpool-II not installed: skipped"
        fi
        ;;
    *) log "unknown target $t (known: direct pgcached-nocache pgcached-plain pgcached-cold pgcached-cache pgcached-nocache-nostats pgcached-cache-nostats pgcached-nocache-socket pgcached-cache-socket pgbouncer pgpool)"; exit 2 ;;
    esac
done

# ------------------------------------------------------------------ runs
declare -A TPS HIT RUNS

# counters TARGET -> "hits misses" (cumulative), or nothing when the target has no cache counters
counters() {
    local t=$1
    case $t in
    pgcached-*)
        curl -fsS --max-time 5 "http://127.0.0.1:${ADMIN[$t]}/metrics" 2>/dev/null |
            awk '$1=="pgcached_cache_hits_total"{h=$2} $1=="pgcached_cache_misses_total"{m=$2}
                 END{if (h!="" && m!="") printf "%d %d\n", h, m}' || true
        ;;
    pgpool)
        # num_selects counts the SELECTs that were not answered from the cache
        psql -X -Atq -x -p "${PORT[$t]}" -d app -c "SHOW pool_cache" 2>/dev/null |
            awk -F'|' '$1=="num_cache_hits"{h=$2} $1=="num_selects"{m=$2}
                       END{if (h!="" && m!="") printf "%d %d\n", h, m}' || true
        ;;
    esac
}

hit_ratio() { # "h0 m0" "h1 m1" -> ratio of the hits in between, or "-"
    local a=($1) b=($2)
    if [[ ${#a[@]} -eq 2 && ${#b[@]} -eq 2 ]]; then
        awk -v h=$((b[0] - a[0])) -v m=$((b[1] - a[1])) 'BEGIN{ if (h + m > 0) printf "%.3f", h / (h + m); else print "-" }'
    else
        echo "-"
    fi
}

# pgb LABEL TARGET MODE WORKLOAD [pgbench args...] -> prints tps, or "error"
pgb() {
    local label=$1 t=$2 mode=$3 w=$4 out
    shift 4
    out="$WORK/run-$w-$mode-$t-$label.log"
    if ! timeout 300 pgbench -n -M "$mode" -c "$CLIENTS" -j "$THREADS" -D scale="$SCALE" \
        -p "${PORT[$t]}" "$@" app >"$out" 2>&1 </dev/null; then
        log "pgbench failed for $t -M $mode ($w, $label): $(grep -m3 -iE 'error|abort' "$out" | tr '\n' ' ')"
        echo error
        return
    fi
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    if [[ -n "$failed" && "$failed" != 0 ]]; then
        log "$t -M $mode ($w, $label): $failed failed transactions"
    fi
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out" | tail -1
}

median() { # numbers... -> the median (lower middle for an even count), or "error" if any failed
    local v
    for v in "$@"; do [[ "$v" =~ ^[0-9.]+$ ]] || { echo error; return; }; done
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR + 1) / 2)]}'
}

# rotated N WORDS... -> the words, starting at the Nth (mod their count): round r runs the targets
# in an order rotated by r - 1, so no target is always the one measured after the others' writes.
rotated() {
    local n=$1
    shift
    local words=("$@") i
    for ((i = 0; i < ${#words[@]}; i++)); do echo "${words[(i + n) % ${#words[@]}]}"; done
}


for w in $WORKLOADS; do
    mapfile -t WARGS < <(workload_args "$w")
    mapfile -t WARM < <(warm_args "$w" "$SCALE" "$CLIENTS")
    for mode in $(modes_for "$w"); do
        for ((round = 1; round <= ROUNDS; round++)); do
            for t in $(rotated $((round - 1)) $TARGETS); do
                if [[ $t == pgcached-cold ]]; then
                    has "$COLD_WORKLOADS" "$w" || continue
                    start_pgc "$t" true
                fi
                [[ -n "${PORT[$t]:-}" ]] || continue
                if [[ $t != pgcached-cold && $round == 1 ]]; then
                    if has "$CACHE_ON" "$t" && ((${#WARM[@]})); then
                        wt=$(pgb warm "$t" "$mode" "$w" "${WARM[@]}")
                        log "$w -M $mode $t: warm pass (${WARM[1]} transactions/client) at $wt tps"
                    elif [[ "$WARMUP" -gt 0 ]]; then
                        pgb warmup "$t" "$mode" "$w" -T "$WARMUP" "${WARGS[@]}" >/dev/null
                    fi
                fi
                settle "$PGPORT_DIRECT"
                c0=$(counters "$t")
                tps=$(pgb "run$round" "$t" "$mode" "$w" -T "$SECONDS_RUN" "${WARGS[@]}")
                c1=$(counters "$t")
                RUNS[$t,$mode,$w]="${RUNS[$t,$mode,$w]:-} ${tps:-error}"
                # The hit ratio of the first round (later rounds of a cache target only hit more).
                if [[ $round == 1 ]]; then
                    HIT[$t,$mode,$w]=-
                    [[ "${tps:-error}" != error ]] && HIT[$t,$mode,$w]=$(hit_ratio "$c0" "$c1")
                fi
                log "$w -M $mode $t (round $round/$ROUNDS): ${tps:-error} tps, hit ratio $(hit_ratio "$c0" "$c1")"
                if [[ $t == pgcached-cold ]]; then stop_pgc "$t"; fi
            done
        done
        for t in $TARGETS; do
            # shellcheck disable=SC2086 # word splitting of the run list is intended
            [[ -n "${RUNS[$t,$mode,$w]:-}" ]] && TPS[$t,$mode,$w]=$(median ${RUNS[$t,$mode,$w]})
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
echo "pgbench $(pgbench --version | awk '{print $3}'), $CLIENTS clients, $THREADS threads, ${SECONDS_RUN}s per run, $ROUNDS round(s) (tps: median, and range when several)," \
    "scale $SCALE, pool $POOL (transaction mode), $cores cores, 1-min load average before the run $LOAD_BEFORE," \
    "$(date -u +%Y-%m-%dT%H:%MZ); pgcached targets: ${BUILT:-none}"
echo
echo "| workload | protocol | target | tps | vs direct | pgcached / PgBouncer | pgcached / pgpool | cache hit ratio |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for w in $WORKLOADS; do
    for mode in $(modes_for "$w"); do
        for t in $TARGETS; do
            [[ -n "${TPS[$t,$mode,$w]:-}" ]] || continue
            tps=${TPS[$t,$mode,$w]}
            shown=$tps; [[ "$tps" =~ ^[0-9.]+$ ]] && shown=$(printf "%.0f" "$tps")
            if [[ $ROUNDS -gt 1 && "$tps" =~ ^[0-9.]+$ ]]; then
                # shellcheck disable=SC2086
                shown="$shown ($(printf '%s\n' ${RUNS[$t,$mode,$w]} | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.0f–%.0f", lo, hi}'))"
            fi
            vs_direct=$(ratio "$tps" "${TPS[direct,$mode,$w]:-}")
            vs_bouncer="-" vs_pgpool="-"
            # pgcached / PgBouncer for every pgcached row; pgcached / pgpool-II (whose query cache is
            # on) only for the pgcached rows with the cache on.
            [[ $t == pgcached-* ]] && vs_bouncer=$(ratio "$tps" "${TPS[pgbouncer,$mode,$w]:-}")
            [[ $t == pgcached-cache || $t == pgcached-cold ]] && vs_pgpool=$(ratio "$tps" "${TPS[pgpool,$mode,$w]:-}")
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$mode" "$t" "$shown" "$vs_direct" \
                "$vs_bouncer" "$vs_pgpool" "${HIT[$t,$mode,$w]:--}"
        done
    done
done
echo
for t in $TARGETS; do [[ -n "${NOTE[$t]:-}" ]] && echo "- $t: ${NOTE[$t]}"; done

# ------------------------------------------------------------------ targets (issues 2, 3, 5)
check() { # label value threshold
    local verdict
    if [[ "$2" =~ ^[0-9.]+$ ]]; then
        verdict=$(awk "BEGIN{print ($2 >= $3) ? \"PASS\" : \"FAIL\"}")
        echo "- $verdict $1: $2 (target ≥ $3)"
    else
        echo "- n/a $1: no figure (a target missing or in error)"
    fi
}
echo
echo "Targets (same run):"
echo
for w in $WORKLOADS; do
    for mode in $(modes_for "$w"); do
        c=${TPS[pgcached-cache,$mode,$w]:-}
        if [[ $w == pk ]] && has "$TARGETS" pgbouncer && command -v pgbouncer >/dev/null; then
            check "$w $mode: pgcached pass-through / PgBouncer" "$(ratio "${TPS[pgcached-nocache,$mode,$w]:-}" "${TPS[pgbouncer,$mode,$w]:-}")" 1.0
            if [[ -n "${TPS[pgcached-plain,$mode,$w]:-}" ]]; then
                echo "- info $w $mode: pgcached pass-through, plain release build / PgBouncer:" \
                    "$(ratio "${TPS[pgcached-plain,$mode,$w]}" "${TPS[pgbouncer,$mode,$w]:-}")"
            fi
        fi
        [[ $w == pk ]] && check "$w $mode: pgcached cache on (warm) / direct" "$(ratio "$c" "${TPS[direct,$mode,$w]:-}")" 1.0
        [[ $w == heavy ]] && check "$w $mode: pgcached cache on / direct" "$(ratio "$c" "${TPS[direct,$mode,$w]:-}")" 100
        if [[ $w == mixed || $w == hot ]]; then
            check "$w $mode: pgcached cache on, hit ratio" "${HIT[pgcached-cache,$mode,$w]:-}" 0.9
            check "$w $mode: pgcached cache on / direct" "$(ratio "$c" "${TPS[direct,$mode,$w]:-}")" 1.5
            check "$w $mode: pgcached cache on / cache off" "$(ratio "$c" "${TPS[pgcached-nocache,$mode,$w]:-}")" 2
        fi
        if [[ $w == orm ]]; then
            check "$w $mode: pgcached cache on, hit ratio" "${HIT[pgcached-cache,$mode,$w]:-}" 0.9
            check "$w $mode: pgcached cache on / direct" "$(ratio "$c" "${TPS[direct,$mode,$w]:-}")" 1.5
        fi
        [[ $w == write ]] && check "$w $mode: pgcached cache on / cache off" "$(ratio "$c" "${TPS[pgcached-nocache,$mode,$w]:-}")" 0.95
        if [[ $w == pk || $w == heavy ]] && [[ -n "${TPS[pgpool,$mode,$w]:-}" ]]; then
            case $mode in
            simple) check "$w $mode: pgcached cache on / pgpool-II" "$(ratio "$c" "${TPS[pgpool,$mode,$w]}")" 2 ;;
            extended) check "$w $mode: pgcached cache on / pgpool-II" "$(ratio "$c" "${TPS[pgpool,$mode,$w]}")" 8 ;;
            esac
        fi
    done
done
