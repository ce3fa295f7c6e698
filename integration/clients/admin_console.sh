#!/usr/bin/env bash
# The admin console through psql (and psycopg, when the integration venv has it): start a
# pgcached with `admin.users: [postgres]` in front of the runner's PostgreSQL, make a known
# number of hits, and check what SHOW CACHE / POOLS / CLIENTS / QUERIES / STATS, INVALIDATE,
# EXPLAIN CACHE, RELOAD (and SIGHUP), PAUSE / RESUME say and do, with psql's aligned, unaligned
# and \x output.
# Run by integration/run.sh (clients hook), or alone with DIRECT_DSN set:
#   DIRECT_DSN="host=127.0.0.1 port=5432 user=postgres dbname=app" bash integration/clients/admin_console.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
trap run_cleanup EXIT

WORK=${INTEGRATION_WORK:-$(mktemp -d)}/admin_console
mkdir -p "$WORK"
: "${DIRECT_DSN:?DIRECT_DSN is not set (run from integration/run.sh)}"
PG_PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$DIRECT_DSN")

psql -X -q -v ON_ERROR_STOP=1 "$DIRECT_DSN" >/dev/null <<'SQL'
DROP TABLE IF EXISTS admin_demo;
CREATE TABLE admin_demo (k int PRIMARY KEY, v text);
INSERT INTO admin_demo VALUES (1, 'one');
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'not_admin') THEN CREATE ROLE not_admin LOGIN; END IF;
END $$;
SQL

BIN=${PGCACHED_BIN:-$(build_pgcached "${PGCACHED_PROFILE:-debug}")}
PORT=$(free_port)
write_pgcached_config "$WORK/pgcached.yaml" "$PORT" "postgres://postgres@127.0.0.1:$PG_PORT/postgres" transaction 5 "
admin:
  users: [postgres]
"
start_pgcached "$BIN" "$WORK/pgcached.yaml" "$PORT" "$WORK/pgcached.log"

app() { psql -X -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d app "$@"; }
console() { psql -X -A -t -F '|' -h 127.0.0.1 -p "$PORT" -U postgres -d pgcached "$@"; }
fail() { echo "admin_console: $*"; exit 1; }

for _ in 1 2 3; do
    [[ $(app -c "SELECT v FROM admin_demo WHERE k = 1") == one ]] || fail "the read through pgcached"
done
# One miss, two hits (nothing else was read through this pgcached).
hits=$(console -c "SHOW CACHE" | cut -d'|' -f5,6)
[[ "$hits" == "2|1" ]] || fail "SHOW CACHE hits|misses: got '$hits', want '2|1'"
# \x and the aligned format, as a person reads it.
expanded=$(psql -X -h 127.0.0.1 -p "$PORT" -U postgres -d pgcached -c '\x on' -c 'SHOW CACHE')
grep -Eq '^hit_ratio +\| 0\.667$' <<<"$expanded" || fail "\\x SHOW CACHE: $expanded"
pool=$(console -c "SHOW POOLS" | grep '^app|postgres|' || true)
[[ -n "$pool" ]] || fail "SHOW POOLS has no app/postgres pool: $(console -c 'SHOW POOLS')"
clients=$(console -c "SHOW CLIENTS" | cut -d'|' -f3 | sort | uniq -c | tr -s ' ')
grep -q "pgcached" <<<"$clients" || fail "SHOW CLIENTS does not list the console: $clients"
# Behind pgcached's back, then INVALIDATE TABLE: the next read is Postgres's.
psql -X -q "$DIRECT_DSN" -c "UPDATE admin_demo SET v = 'behind' WHERE k = 1"
[[ $(app -c "SELECT v FROM admin_demo WHERE k = 1") == one ]] || fail "expected the cached answer"
[[ $(console -c "INVALIDATE TABLE admin_demo") == INVALIDATE ]] || fail "INVALIDATE TABLE did not complete"
[[ $(app -c "SELECT v FROM admin_demo WHERE k = 1") == behind ]] || fail "INVALIDATE TABLE did not drop the answer"
explain=$(console -c "EXPLAIN CACHE SELECT v FROM admin_demo WHERE k = 1")
grep -qx 'cacheable|yes' <<<"$explain" || fail "EXPLAIN CACHE: $explain"
grep -qx 'depends_on|admin_demo pinned by k' <<<"$explain" || fail "EXPLAIN CACHE: $explain"
# Not an admin: refused with 42501.
refused=$(psql -X -h 127.0.0.1 -p "$PORT" -U not_admin -d pgcached -c 'SHOW VERSION' 2>&1 || true)
grep -q "may not use the admin console" <<<"$refused" || fail "a non-admin user got in: $refused"
# SHOW QUERIES: the read's fingerprint (literals masked) with its calls, hits and misses.
queries=$(console -c "SHOW QUERIES" | grep '|select v from admin_demo where k = ?|' || true)
[[ $(cut -d'|' -f5-7 <<<"$queries") == "5|3|2" ]] || fail "SHOW QUERIES calls|hits|misses: '$queries'"
console -c "SHOW STATS" | grep -q '^app|' || fail "SHOW STATS has no app row: $(console -c 'SHOW STATS')"

# RELOAD: a policy added to the file refuses the next statement; the session stays.
cp "$WORK/pgcached.yaml" "$WORK/pgcached.yaml.orig"
printf 'policies:\n  - name: locked\n    deny_tables: [admin_demo]\n' >>"$WORK/pgcached.yaml"
[[ $(console -c "RELOAD") == RELOAD ]] || fail "RELOAD did not complete"
refused=$(app -c "SELECT v FROM admin_demo WHERE k = 1" 2>&1 || true)
grep -q 'denied by policy "locked"' <<<"$refused" || fail "the reloaded policy did not refuse: $refused"
console -c "SHOW POLICIES" | grep -q '^locked|||deny_tables|1$' || fail "SHOW POLICIES: $(console -c 'SHOW POLICIES')"
# An invalid file: refused, nothing changes.
printf 'policies: [{name: x, deny_statements: [dll]}]\n' >>"$WORK/pgcached.yaml"
bad=$(console -c "RELOAD" 2>&1 || true)
grep -q "not reloaded" <<<"$bad" || fail "an invalid file was not refused: $bad"
# SIGHUP reloads too: back to the original file.
cp "$WORK/pgcached.yaml.orig" "$WORK/pgcached.yaml"
kill -HUP "$PGCACHED_PID"
for _ in $(seq 50); do
    [[ $(app -c "SELECT v FROM admin_demo WHERE k = 1" 2>/dev/null) == behind ]] && break
    sleep 0.1
done
[[ $(app -c "SELECT v FROM admin_demo WHERE k = 1") == behind ]] || fail "SIGHUP did not reload"

# PAUSE holds a new transaction until RESUME.
[[ $(console -c "PAUSE app") == PAUSE ]] || fail "PAUSE did not complete"
console -c "SHOW DATABASES" | grep -q '^app|.*|true$' || fail "SHOW DATABASES paused: $(console -c 'SHOW DATABASES')"
app -c "SELECT v FROM admin_demo WHERE k = 1 FOR UPDATE" >"$WORK/held.out" 2>&1 &
held=$!
sleep 0.5
kill -0 "$held" 2>/dev/null || fail "a paused database did not hold the transaction: $(cat "$WORK/held.out")"
[[ $(console -c "RESUME app") == RESUME ]] || fail "RESUME did not complete"
wait "$held" || fail "the held transaction failed: $(cat "$WORK/held.out")"
[[ $(cat "$WORK/held.out") == behind ]] || fail "the held transaction's answer: $(cat "$WORK/held.out")"

# A driver: psycopg (simple protocol through ClientCursor) reads SHOW QUERIES as typed rows.
PY="$ROOT/integration/.venv/bin/python"
if [[ -x "$PY" ]] && "$PY" -c "import psycopg" 2>/dev/null; then
    "$PY" - "$PORT" <<'PYEOF' || fail "psycopg on the console"
import sys, psycopg
with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=postgres dbname=pgcached", autocommit=True,
                     cursor_factory=psycopg.ClientCursor) as conn:
    rows = conn.execute("SHOW QUERIES").fetchall()
    names = [d.name for d in conn.execute("SHOW QUERIES").description]
    row = next(dict(zip(names, r)) for r in rows if r[names.index("query")] == "select v from admin_demo where k = ?")
    assert isinstance(row["calls"], int) and row["calls"] >= 5, row
    assert isinstance(row["p99_ms"], float), row
print("admin_console: psycopg reads SHOW QUERIES as typed rows")
PYEOF
fi

psql -X -q "$DIRECT_DSN" -c "DROP TABLE admin_demo"
echo "admin_console: SHOW CACHE/POOLS/CLIENTS/QUERIES/STATS/POLICIES, INVALIDATE, EXPLAIN CACHE, RELOAD, SIGHUP, PAUSE/RESUME as expected"
