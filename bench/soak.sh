#!/usr/bin/env bash
# Soak: a steady mixed load through pgcached for SOAK_MINUTES (default 30) while its private
# PostgreSQL is restarted every SOAK_RESTART_EVERY seconds (default 300, `pg_ctl restart -m
# fast`). Samples pgcached's RSS, throughput and errors every 5 s and writes, in SOAK_OUT
# (default bench/soak-out/): soak.csv, soak.png (RSS, operations/s and errors over time,
# restarts shaded) and summary.md; prints the summary and a verdict (exit 1 on FAIL: errors not
# explained by a restart, a recovery over 2 s, or RSS growing from the first third to the last).
#
#   bash bench/soak.sh
#   PGCACHED_BIN=target/release/pgcached SOAK_MINUTES=5 SOAK_RESTART_EVERY=60 bash bench/soak.sh
#
# The load (bench/soak.py, psycopg, autocommit connections that reconnect after an error):
# SOAK_WORKERS=16 clients offering SOAK_RATE=800 operations/s together — 60 % hot-key reads,
# 10 % range reads, 5 % one-off statement texts, 10 % updates, 7 % inserts/deletes, 8 %
# transactions (two reads and an update). Rate-limited, so the run measures behaviour over time,
# not peak speed, and leaves the machine usable. pgcached runs with its default configuration
# but for the cache (on, 30 s TTL, 32 MiB) and the admin HTTP listener; Python deps go into
# bench/.venv (psycopg, matplotlib).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"

MINUTES=${SOAK_MINUTES:-30}
OUT=${SOAK_OUT:-$ROOT/bench/soak-out}
mkdir -p "$OUT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-soak.XXXXXX")
chmod 755 "$WORK"
cleanup() {
    run_cleanup
    if [[ -n "${KEEP_WORK:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[soak] $(date -u +%H:%M:%S) $*" >&2; }

VENV="$ROOT/bench/.venv"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import psycopg, matplotlib' 2>/dev/null; then
    log "installing psycopg and matplotlib into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'psycopg[binary]==3.2.13' 'matplotlib==3.9.2'
fi

start_private_pg "$WORK/pg"
PGPORT=$PGPORT_PRIV
BINDIR=$(pg_bindir)
direct() { psql -X -Atq -h 127.0.0.1 -p "$PGPORT" -U postgres -d app "$@"; }
KEYS=${SOAK_KEYS:-10000}
direct -c "CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL DEFAULT 0, note text NOT NULL DEFAULT '')"
direct -c "INSERT INTO kv (k) SELECT generate_series(1, $KEYS)"
direct -c "CREATE TABLE events (id bigserial PRIMARY KEY, k int NOT NULL, note text, at timestamptz DEFAULT now())"
direct -c "CREATE INDEX ON events (k)"
direct -c "VACUUM ANALYZE"

BIN=${PGCACHED_BIN:-$(build_pgcached release)}
PORT=$(free_port)
ADMIN=$(free_port)
write_pgcached_config "$WORK/pgcached.yaml" "$PORT" "postgres://postgres@127.0.0.1:$PGPORT/app" transaction 8 "admin:
  http_listen: \"127.0.0.1:$ADMIN\"
cache:
  default_ttl: 30s
  max_memory: 32MiB"
sed -i 's/^  level: .*/  level: warn/' "$WORK/pgcached.yaml"
start_pgcached "$BIN" "$WORK/pgcached.yaml" "$PORT" "$WORK/pgcached.log"

AS_PG=""
[[ $(id -u) -eq 0 ]] && AS_PG="runuser -u postgres --"
log "load for $MINUTES min, Postgres restarted every ${SOAK_RESTART_EVERY:-300} s; output in $OUT"
set +e
SOAK_DSN="host=127.0.0.1 port=$PORT user=postgres dbname=app" \
    SOAK_PID=$PGCACHED_PID \
    SOAK_METRICS="http://127.0.0.1:$ADMIN/metrics" \
    SOAK_RESTART_CMD="$AS_PG '$BINDIR/pg_ctl' -D '$WORK/pg/data' -l '$WORK/pg/postgres.log' -m fast -w -t 60 restart" \
    SOAK_SECONDS=$((MINUTES * 60)) \
    SOAK_KEYS=$KEYS \
    SOAK_OUT=$OUT \
    "$VENV/bin/python" "$ROOT/bench/soak.py"
status=$?
set -e
if ! kill -0 "$PGCACHED_PID" 2>/dev/null; then
    log "pgcached is not running any more; its log:"
    tail -30 "$WORK/pgcached.log" >&2
    status=1
fi
log "pgcached log: $(grep -c ' ERROR ' "$WORK/pgcached.log" || true) ERROR lines, $(grep -c ' WARN ' "$WORK/pgcached.log" || true) WARN lines"
exit $status
