#!/usr/bin/env bash
# pgjdbc (Debian libpostgresql-jdbc-java) with prepareThreshold=1 through pgcached's transaction
# pool, compared with direct: compiles integration/java/PgJdbcCheck.java into java/build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../java"
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
[[ -f "$JAR" ]] || { echo "$JAR missing (apt-get install -y libpostgresql-jdbc-java)"; exit 1; }
command -v javac >/dev/null || { echo "javac missing (a JDK, e.g. openjdk-17-jdk-headless)"; exit 1; }
mkdir -p build
javac -d build -cp "$JAR" PgJdbcCheck.java
jdbc() { # postgres://user@host:port/db -> jdbc URL with the driver settings under test
    local rest=${1#postgres://} user host
    user=${rest%%@*}
    rest=${rest#*@}
    echo "jdbc:postgresql://$rest?user=$user&prepareThreshold=1&connectTimeout=10&socketTimeout=120&ApplicationName=pgjdbc-check"
}
echo "pgjdbc: $(readlink -f "$JAR")"
exec java -cp "build:$JAR" PgJdbcCheck "$(jdbc "$DIRECT_URL")" "$(jdbc "$PGCACHED_URL")"
