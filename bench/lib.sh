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

# warm_pass PORT MODE WORKLOAD SCALE CLIENTS: the workload's <name>.warm.sql (every key once, in
# the protocol measured), when it has one; prints its tps.
warm_pass() {
    local port=$1 mode=$2 w=$3 scale=$4 clients=$5 per
    [[ -f "$BENCH/$w.warm.sql" ]] || return 0
    per=$(((100000 * scale + clients - 1) / clients))
    pgbench -n -M "$mode" -c "$clients" -j $((clients < 4 ? clients : 4)) -t "$per" -D n=0 \
        -D nclients="$clients" -f "$BENCH/$w.warm.sql" -p "$port" app 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}
