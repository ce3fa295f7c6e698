# Shared by the driver-suite scripts (integration/*_suite.sh): a driver's own test suite runs
# directly against PostgreSQL and through pgcached, and what fails only through pgcached is
# listed. Source after integration/lib.sh.
# Provides: suite_setup, suite_proxies, suite_trust_yaml, suite_pytest_failures, suite_report.

# suite_setup NAME — the common start of a suite script: PASSES (default all three), a work
# directory WORK (logs kept, named on exit; private servers stopped), and BIN (PGCACHED_BIN,
# default the release build, built if missing).
suite_setup() {
    PASSES=${PASSES:-direct transaction session}
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgcached-$1.XXXXXX")
    chmod 755 "$WORK"
    trap 'run_cleanup; echo "logs: $WORK"' EXIT
    BIN=${PGCACHED_BIN:-$ROOT/target/release/pgcached}
    [[ -x "$BIN" ]] || (cd "$ROOT" && cargo build -q --release)
}

# suite_proxies WORK UPSTREAM_URL BIN PASSES [EXTRA_YAML] — start a pgcached per pooling mode in
# PASSES ("transaction", "session"; cache on unless EXTRA_YAML says otherwise), pool of 20, on
# free ports, each also on a Unix socket in WORK/sock-<mode> (`unix_socket_dir`): sets
# SUITE_PORT[mode] (declare -A SUITE_PORT first; set SUITE_PORT[direct] too).
suite_proxies() {
    local work=$1 up=$2 bin=$3 passes=$4 extra=${5:-"cache:
  enabled: true"} mode
    for mode in transaction session; do
        [[ " $passes " == *" $mode "* ]] || continue
        SUITE_PORT[$mode]=$(free_port)
        mkdir -p "$work/sock-$mode"
        write_pgcached_config "$work/$mode.yaml" "${SUITE_PORT[$mode]}" "$up" "$mode" 20 "$extra
unix_socket_dir: $work/sock-$mode"
        start_pgcached "$bin" "$work/$mode.yaml" "${SUITE_PORT[$mode]}" "$work/pgcached-$mode.log"
    done
}

# suite_trust_yaml NAME:PASSWORD... — suite_proxies' EXTRA_YAML for a suite whose users log in
# upstream with passwords while its tests connect without one: cache on, pgcached trusts every
# client and logs in upstream as each NAME with its plaintext PASSWORD (so a suite's tests of
# wrong or missing passwords cannot fail through it).
suite_trust_yaml() {
    local pair
    printf 'cache:\n  enabled: true\nauth:\n  method: trust\n  users:\n'
    for pair in "$@"; do
        printf '    - {name: %s, password: %s}\n' "${pair%%:*}" "${pair#*:}"
    done
}

# suite_pytest_failures LOG OUT — the FAILED/ERROR test ids of a pytest -q log, sorted, into OUT.
suite_pytest_failures() {
    { grep -E '^(FAILED|ERROR) ' "$1" || true; } | sed 's/ - .*//' | sort -u >"$2"
}

# suite_report WORK PASSES — for each pooling mode run with "direct", the entries of
# WORK/<mode>.failed missing from WORK/direct.failed (both sorted).
suite_report() {
    local work=$1 passes=$2 mode
    for mode in transaction session; do
        [[ " $passes " == *" $mode "* && " $passes " == *" direct "* ]] || continue
        echo "--- failing only through pgcached ($mode pooling):"
        comm -13 "$work/direct.failed" "$work/$mode.failed"
    done
}
