#!/usr/bin/env bash
# pgjdbc (Debian libpostgresql-jdbc-java) with prepareThreshold=1 through pgcached's transaction
# pool, compared with direct: compiles integration/java/*.java (PgJdbcCheck, PgJdbcMetaCheck) into
# java/build/. When run.sh started real pgcached instances (PGCACHED_BIN exported), one more is
# started here with cache.catalogs: true, so that pgjdbc's DatabaseMetaData queries are also
# compared when they are answered from the cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../java"
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
[[ -f "$JAR" ]] || { echo "$JAR missing (apt-get install -y libpostgresql-jdbc-java)"; exit 1; }
command -v javac >/dev/null || { echo "javac missing (a JDK, e.g. openjdk-17-jdk-headless)"; exit 1; }
mkdir -p build
javac -d build -cp "$JAR" PgJdbcCheck.java PgJdbcMetaCheck.java
jdbc() { # postgres://user@host:port/db -> jdbc URL with the driver settings under test
    local rest=${1#postgres://} user host
    user=${rest%%@*}
    rest=${rest#*@}
    echo "jdbc:postgresql://$rest?user=$user&prepareThreshold=1&connectTimeout=10&socketTimeout=120&ApplicationName=pgjdbc-check"
}
echo "pgjdbc: $(readlink -f "$JAR")"

urls=("$(jdbc "$DIRECT_URL")" "$(jdbc "$PGCACHED_URL")")
if [[ -n "${PGCACHED_BIN:-}" && "$PGCACHED_URL" != "$DIRECT_URL" ]]; then
    ROOT=$(cd .. && cd .. && pwd)
    # shellcheck source=integration/lib.sh
    source ../lib.sh
    trap run_cleanup EXIT
    work=${INTEGRATION_WORK:-$(mktemp -d)}
    port=$(free_port)
    admin=$(free_port)
    upstream=${DIRECT_URL%/*}/postgres
    write_pgcached_config "$work/pgcached-catalogs.yaml" "$port" "$upstream" transaction 4 "cache:
  catalogs: true
admin:
  http_listen: 127.0.0.1:$admin"
    start_pgcached "$PGCACHED_BIN" "$work/pgcached-catalogs.yaml" "$port" "$work/pgcached-catalogs.log"
    echo "pgcached with cache.catalogs: true on 127.0.0.1:$port (log: $work/pgcached-catalogs.log)"
    catalogs_url=${PGCACHED_URL%%@*}@127.0.0.1:$port/${PGCACHED_URL##*/}
    urls+=("$(jdbc "$catalogs_url")")
fi
rc=0
java -cp "build:$JAR" PgJdbcCheck "${urls[@]}" || rc=$?
if [[ -n "${admin:-}" ]] && command -v curl >/dev/null; then
    # How much of the metadata the catalog-caching instance answered from its cache.
    echo "pgcached cache.catalogs=true:" $(curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" |
        grep -E '^pgcached_cache_(hits|misses|fills)_total ' | tr '\n' ' ' || true)
fi
exit $rc
