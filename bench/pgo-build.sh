#!/usr/bin/env bash
# Profile-guided release build of pgcached: build an instrumented binary, run it under a training
# load against a private PostgreSQL, merge the profile, rebuild with it. Prints the binary's path
# on stdout (logs go to stderr), like integration/lib.sh's build_pgcached.
#
#   bash bench/pgo-build.sh            # → target/pgo-use/release/pgcached (about 2 release builds)
#
# Why (docs/DECISIONS.md 25): the profile lays the hot path out together and inlines by measured
# frequency — a forwarded PK lookup went from ~6.4k to ~5.0k instructions and from ~60 to ~1
# instruction-cache misses (callgrind), ~7% more tps than the plain `cargo build --release`.
# The training load is pgbench's built-in scripts (select-only and TPC-B-like, simple, extended and
# prepared protocol) through pgcached with the cache off and on: pass-through, hits, misses,
# invalidating writes, transactions.
#
# Needs llvm-profdata of rustc's LLVM version: taken from $LLVM_PROFDATA, rustup's llvm-tools
# component (added when rustup is there), or llvm-profdata-N / /usr/lib/llvm-N (apt-get install
# llvm-N). Exits 3 when none is found, so callers can fall back to a plain build.
# Knobs: PGO_TRAIN_SECONDS=4 (per training run), CARGO_TARGET_DIR, RUSTFLAGS (kept, extended).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
log() { echo "[pgo] $(date -u +%H:%M:%S) $*" >&2; }

TRAIN_SECONDS=${PGO_TRAIN_SECONDS:-4}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILES=$TARGET/pgo-profiles
RUSTC_VV=$(rustc -vV)
LLVM_VERSION=$(sed -n 's/^LLVM version: //p' <<<"$RUSTC_VV")

find_profdata() {
    if [[ -n "${LLVM_PROFDATA:-}" ]]; then
        [[ -x "$LLVM_PROFDATA" ]] || { echo "LLVM_PROFDATA=$LLVM_PROFDATA is not executable" >&2; return 1; }
        echo "$LLVM_PROFDATA"
        return
    fi
    local host sysroot p
    host=$(sed -n 's/^host: //p' <<<"$RUSTC_VV")
    sysroot=$(rustc --print sysroot)
    p="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
    if [[ ! -x "$p" ]] && command -v rustup >/dev/null; then
        rustup component add llvm-tools >&2 || true
    fi
    if [[ -x "$p" ]]; then echo "$p"; return; fi
    local major=${LLVM_VERSION%%.*}
    for p in "$(command -v "llvm-profdata-$major" || true)" "/usr/lib/llvm-$major/bin/llvm-profdata"; do
        if [[ -n "$p" && -x "$p" ]]; then echo "$p"; return; fi
    done
    return 1
}

if ! PROFDATA=$(find_profdata); then
    log "no llvm-profdata for rustc's LLVM $LLVM_VERSION:" \
        "rustup component add llvm-tools, or apt-get install llvm-N (N = that major version)"
    exit 3
fi
log "llvm-profdata: $PROFDATA"

cargo_release() { # TARGET_SUBDIR RUSTFLAG -> builds the binary there
    (cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} $2" CARGO_TARGET_DIR="$TARGET/$1" \
        cargo build --release --locked --bin pgcached >&2)
}

log "instrumented build (target/pgo-gen)"
rm -rf "$PROFILES"
mkdir -p "$PROFILES"
cargo_release pgo-gen "-Cprofile-generate=$PROFILES"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-pgo.XXXXXX")
chmod 755 "$WORK"
trap 'run_cleanup; rm -rf "$WORK"' EXIT
start_private_pg "$WORK/pg"
export PGUSER=postgres PGHOST=127.0.0.1
unset PGPASSWORD PGSERVICE PGDATABASE PGPORT PGOPTIONS || true
pgbench -i -q -s 1 -p "$PGPORT_PRIV" app >"$WORK/init.log" 2>&1

# train CACHE(true|false): one instrumented pgcached, every protocol, read-only and read-write.
train() {
    local cache=$1 port log=$WORK/pgcached-$1.log mode script
    port=$(free_port)
    write_pgcached_config "$WORK/$cache.yaml" "$port" "postgres://postgres@127.0.0.1:$PGPORT_PRIV/app" \
        transaction 8 "cache:
  enabled: $cache"
    sed -i 's/^  level: .*/  level: warn/' "$WORK/$cache.yaml"
    start_pgcached "$TARGET/pgo-gen/release/pgcached" "$WORK/$cache.yaml" "$port" "$log"
    for script in select-only tpcb-like; do
        for mode in simple extended prepared; do
            if ! pgbench -n -b "$script" -M "$mode" -c 8 -j 4 -T "$TRAIN_SECONDS" -p "$port" app \
                >"$WORK/train.log" 2>&1; then
                log "training run failed ($script, $mode, cache $cache):"
                tail -5 "$WORK/train.log" >&2
                exit 1
            fi
            log "trained: $script -M $mode, cache $cache, $(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$WORK/train.log") tps"
        done
    done
    # A clean exit writes the profile (a killed process writes none).
    kill -TERM "$PGCACHED_PID"
    wait "$PGCACHED_PID" || { log "instrumented pgcached did not exit cleanly"; tail -5 "$log" >&2; exit 1; }
}
# %p: one file per process; %m: per binary signature (a rebuilt binary does not merge into it).
export LLVM_PROFILE_FILE="$PROFILES/pgcached-%p-%m.profraw"
train false
train true
unset LLVM_PROFILE_FILE

shopt -s nullglob
raw=("$PROFILES"/pgcached-*.profraw)
[[ ${#raw[@]} -gt 0 ]] || { log "no profile written to $PROFILES"; exit 1; }
"$PROFDATA" merge -o "$PROFILES/merged.profdata" "${raw[@]}"

log "optimized build (target/pgo-use)"
cargo_release pgo-use "-Cprofile-use=$PROFILES/merged.profdata"
echo "$TARGET/pgo-use/release/pgcached"
