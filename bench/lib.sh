# Helpers shared by the bench scripts (sourced; needs BENCH, the bench/ directory).

# workload_args WORKLOAD -> its pgbench -f arguments, one per line: `pk` is pk_lookup.sql,
# <name>.mix lists "script.sql weight" lines, <name>.sql is one script.
workload_args() {
    local w=$1 f wt
    if [[ $w == pk ]]; then
        printf '%s\n' -f "$BENCH/pk_lookup.sql"
    elif [[ -f "$BENCH/$w.mix" ]]; then
        while read -r f wt; do
            [[ -z "$f" || "$f" == \#* ]] && continue
            printf '%s\n' -f "$BENCH/$f@${wt:-1}"
        done <"$BENCH/$w.mix"
    elif [[ -f "$BENCH/$w.sql" ]]; then
        printf '%s\n' -f "$BENCH/$w.sql"
    else
        echo "unknown workload $w (no bench/$w.sql or bench/$w.mix)" >&2
        exit 2
    fi
}

# warm_args WORKLOAD SCALE CLIENTS -> the pgbench arguments of the workload's warm pass (its
# <name>.warm.sql: every key once, ceil(100000 × scale / clients) transactions per client), one
# per line; nothing when it has none. The transaction count is the second line.
warm_args() {
    local w=$1 scale=$2 clients=$3
    [[ -f "$BENCH/$w.warm.sql" ]] || return 0
    printf '%s\n' -t $(((100000 * scale + clients - 1) / clients)) -D n=0 -D nclients="$clients" \
        -f "$BENCH/$w.warm.sql"
}

# settle PORT: before every measured run, the dead rows of earlier runs'
# writes vacuumed away and flushed by a checkpoint — so a run does not pay for the runs before it
# (BENCH_SETTLE=0: off).
settle() {
    [[ "${BENCH_SETTLE:-1}" == 1 ]] || return 0
    psql -X -q -p "$1" -d app -c "VACUUM pgbench_accounts" -c "CHECKPOINT" >/dev/null
}
