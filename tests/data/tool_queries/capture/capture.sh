#!/usr/bin/env bash
# Regenerates psql.sql, pgjdbc.sql, sqlalchemy.sql and superset.sql in the parent directory by
# running the real tools against a throw-away PostgreSQL 15 with log_statement=all and reading
# the statements back from the server's CSV log.  metabase.sql and dbeaver.sql are extracted
# from the tools' source by hand (see their headers); validate.py re-checks all six files.
#
# Needs (Debian): postgresql-15, postgresql-client-15, openjdk-17-jdk-headless,
# libpostgresql-jdbc-java, python3-venv; PyPI: SQLAlchemy==2.0.44 psycopg[binary]==3.2.13
# (venv $SA_VENV) and SQLAlchemy==1.4.54 psycopg2-binary==2.9.10 sqlglot==27.15.2 (venv $SS_VENV).
# Run as root (initdb/postgres run as the postgres user).  Not run by CI.  KEEP=1 keeps the
# temporary directory (server CSV log, tool outputs) for inspection.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(dirname "$HERE")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
SA_VENV=${SA_VENV:-/tmp/sa-venv}
SS_VENV=${SS_VENV:-/tmp/ss-venv}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}

if [[ ! -x $SA_VENV/bin/python ]]; then
  python3 -m venv "$SA_VENV"
  "$SA_VENV/bin/pip" install -q SQLAlchemy==2.0.44 'psycopg[binary]==3.2.13'
fi
if [[ ! -x $SS_VENV/bin/python ]]; then
  python3 -m venv "$SS_VENV"
  "$SS_VENV/bin/pip" install -q SQLAlchemy==1.4.54 psycopg2-binary==2.9.10 sqlglot==27.15.2
fi

WORK=$(mktemp -d /tmp/toolq.XXXXXX)
chown postgres "$WORK"
PG=(runuser -u postgres --)
cleanup() {
  "${PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m fast stop >/dev/null 2>&1 || true
  if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "kept $WORK (server log in log/pg.csv, tool output in *.out)"; fi
}
trap cleanup EXIT

"${PG[@]}" "$PGBIN/initdb" -D "$WORK/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start -o "\
 -c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK\
 -c logging_collector=on -c log_destination=csvlog -c log_directory=$WORK/log\
 -c log_filename=pg.log -c log_statement=all -c fsync=off" >/dev/null

export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
PGAPPNAME=capture-setup "${PSQL[@]}" -d postgres -c 'CREATE DATABASE corpus'
PGAPPNAME=capture-setup "${PSQL[@]}" -d corpus -f "$HERE/schema.sql" >/dev/null

echo "== psql $(psql --version)"
PGAPPNAME=capture-psql psql -X -E -d corpus -f "$HERE/psql_commands.txt" >"$WORK/psql.out" 2>&1 || true

echo "== pgjdbc"
mkdir -p "$WORK/build"
javac -d "$WORK/build" -cp "$JDBC_JAR" "$HERE/MetaDataCapture.java"
java -cp "$WORK/build:$JDBC_JAR" MetaDataCapture \
  "jdbc:postgresql://127.0.0.1:$PORT/corpus?user=postgres&ApplicationName=capture-pgjdbc" >"$WORK/pgjdbc.out"
grep -c '^ok' "$WORK/pgjdbc.out" | sed 's/^/   calls ok: /'

echo "== sqlalchemy"
"$SA_VENV/bin/python" "$HERE/sqlalchemy_capture.py" "$PORT" capture-sqlalchemy >"$WORK/sqlalchemy.out"
grep -c '^ok' "$WORK/sqlalchemy.out" | sed 's/^/   calls ok: /'

echo "== superset"
"$SS_VENV/bin/python" "$HERE/superset_capture.py" "$PORT" capture-superset >"$WORK/superset.out"
grep -c '^ok' "$WORK/superset.out" | sed 's/^/   calls ok: /'

sleep 1
python3 "$HERE/extract.py" "$WORK/log/pg.csv" "$OUT" \
  --psql-version "$(psql --version)" \
  --sqlalchemy-versions "$("$SA_VENV/bin/python" -c 'import sqlalchemy, psycopg; print("SQLAlchemy", sqlalchemy.__version__, "+ psycopg", psycopg.__version__)')" \
  --superset-versions "$("$SS_VENV/bin/python" -c 'import sqlalchemy, psycopg2, sqlglot; print("SQLAlchemy", sqlalchemy.__version__, "+ psycopg2", psycopg2.__version__.split()[0], "+ sqlglot", sqlglot.__version__)')" \
  --pgjdbc-version "$(unzip -p "$JDBC_JAR" META-INF/MANIFEST.MF | sed -n 's/^Implementation-Version: //p' | tr -d '\r')"

echo "== validate"
PGDATABASE=corpus python3 "$HERE/validate.py" "$OUT"
