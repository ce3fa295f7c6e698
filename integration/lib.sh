# Shared bash helpers for integration/run.sh and bench/pgbench.sh. Source it; do not run it.
#
# Provides: pg_bindir, as_pg, free_port, wait_port, start_private_pg, stop_private_pg,
#           write_pgcached_config, start_pgcached, build_pgcached, register_cleanup, run_cleanup.
# Everything it starts is recorded and torn down by run_cleanup (call it from an EXIT trap).

: "${ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

_CLEANUP=()
register_cleanup() { _CLEANUP+=("$1"); }
run_cleanup() {
    local i
    for ((i = ${#_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${_CLEANUP[$i]}" >/dev/null 2>&1 || true
    done
    _CLEANUP=()
}

pg_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then echo "$PG_BINDIR"; return; fi
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [[ -x "$d/initdb" ]]; then echo "$d"; return; fi
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [[ -x "$d/initdb" ]]; then echo "$d"; return; fi
    echo "no PostgreSQL server binaries found (set PG_BINDIR)" >&2
    return 1
}

# Run a server-side command as the postgres OS user when we are root.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS] — wait until something accepts TCP on 127.0.0.1:PORT.
wait_port() {
    local port=$1 secs=${2:-20} i
    for ((i = 0; i < secs * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# start_private_pg DIR — initdb into DIR/data, start on a free port; sets PGPORT_PRIV and
# PGSOCK_PRIV. Superuser `postgres`, trust auth, database `app`. Extra postgresql.conf lines
# may be given in $PG_EXTRA_CONF.
start_private_pg() {
    local dir=$1 bindir
    bindir=$(pg_bindir)
    mkdir -p "$dir"
    chmod 755 "$dir"
    mkdir -p "$dir/sock"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir" "$dir/sock"; fi
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --nosync --no-instructions >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    local try
    for try in 1 2 3 4 5; do
        PGPORT_PRIV=$(free_port)
        as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT_PRIV
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
${PG_EXTRA_CONF:-}
EOF
        if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null; then
            register_cleanup "as_pg '$bindir/pg_ctl' -D '$dir/data' -m immediate stop"
            PGSOCK_PRIV="$dir/sock"
            psql -X -q -h "$dir/sock" -p "$PGPORT_PRIV" -U postgres -d postgres \
                -c "CREATE DATABASE app OWNER postgres" >/dev/null
            return 0
        fi
        # Port taken by someone else between free_port and bind: try another.
        tail -5 "$dir/postgres.log" >&2 || true
    done
    echo "could not start private PostgreSQL" >&2
    return 1
}

# build_pgcached PROFILE — cargo build; prints the binary path.
build_pgcached() {
    local profile=$1 flag=()
    [[ "$profile" == release ]] && flag=(--release)
    (cd "$ROOT" && cargo build "${flag[@]}" --bin pgcached >&2)
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    echo "$target/$profile/pgcached"
}

# write_pgcached_config FILE LISTEN_PORT UPSTREAM_URL MODE MAX_SIZE [EXTRA_YAML]
write_pgcached_config() {
    local file=$1 port=$2 up=$3 mode=$4 size=$5 extra=${6:-}
    cat >"$file" <<EOF
listen: 127.0.0.1:$port
upstream:
  url: $up
pool:
  mode: $mode
  max_size: $size
log:
  level: ${PGCACHED_LOG_LEVEL:-info}
$extra
EOF
}

# start_pgcached BIN CONFIG PORT LOG — start in the background, wait until it listens.
# Sets PGCACHED_PID.
start_pgcached() {
    local bin=$1 cfg=$2 port=$3 log=$4
    "$bin" --config "$cfg" >"$log" 2>&1 </dev/null &
    PGCACHED_PID=$!
    register_cleanup "kill -TERM $PGCACHED_PID; sleep 0.2; kill -KILL $PGCACHED_PID"
    if ! wait_port "$port" 20; then
        echo "pgcached did not start listening on $port; log:" >&2
        tail -50 "$log" >&2 || true
        return 1
    fi
}
