"""Reads the PostgreSQL CSV log written during capture.sh and writes one corpus file per tool.

Statements are taken from `statement: ...` (simple query) and `execute <name>: ...` (extended
protocol) log lines, grouped by application_name (capture-psql, capture-pgjdbc, ...), with
leading/trailing whitespace trimmed and deduplicated: first by exact text, then by "shape"
(string and number literals masked) so that the same query issued for two tables is kept once.
Statements the capture programs send themselves carry a /* capture */ marker and are dropped."""
import argparse
import csv
import re
import sys

csv.field_size_limit(sys.maxsize)

SEP = "-- next"
TOOLS = {
    "capture-psql": "psql",
    "capture-pgjdbc": "pgjdbc",
    "capture-sqlalchemy": "sqlalchemy",
    "capture-superset": "superset",
}
MSG = re.compile(r"^(statement|execute [^:]*): (.*)$", re.S)


def shape(sql):
    s = re.sub(r"'(?:[^']|'')*'", "'?'", sql)
    s = re.sub(r"\b\d+\b", "0", s)
    return re.sub(r"\s+", " ", s).strip()


def read_log(path):
    by_tool = {t: [] for t in TOOLS.values()}
    errors = {t: [] for t in TOOLS.values()}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            severity, message, detail, app = row[11], row[13], row[14], row[22]
            tool = TOOLS.get(app)
            if tool is None:
                continue
            if severity == "ERROR":
                errors[tool].append((message, row[19]))
                continue
            m = MSG.match(message)
            if severity == "LOG" and m:
                by_tool[tool].append((m.group(2).strip(), detail))
    return by_tool, errors


HEADERS = {
    "psql": """-- psql tool queries: the hidden catalog queries of psql's backslash commands.
-- Tool: {psql_version}, talking to PostgreSQL 15 (server_version_num 150000+).
-- Captured by tests/data/tool_queries/capture/capture.sh: `psql -X -E -f psql_commands.txt`
-- (ECHO_HIDDEN) against a throw-away server with log_statement=all; statements read back from
-- the server's CSV log (simple-query protocol, so no bind parameters).  Commands run: \\d, \\d[+]
-- of a table / view / matview / partitioned table / partition / sequence / index / composite
-- type, \\dt \\di \\dv \\dm \\ds \\dE \\dP \\df[+] \\dn[+] \\du \\l[+] \\dx[+] \\dT[+] \\dD \\dp \\ddp \\dd
-- \\dC \\do \\dconfig \\db \\dc \\dL \\dA \\dF \\dy \\dRp+ \\dRs \\dX \\des \\sf \\sv.
-- Literal OIDs (e.g. '16412' = shop.orders) are those of the capture database.  Deduplicated by shape.""",
    "pgjdbc": """-- pgjdbc tool queries: statements the PostgreSQL JDBC driver sends for DatabaseMetaData,
-- ResultSetMetaData, ParameterMetaData, type lookups and Connection property calls.
-- Tool: pgjdbc {pgjdbc_version} (/usr/share/java/postgresql.jar, Debian libpostgresql-jdbc-java),
-- Java 17, PostgreSQL 15.  Captured by capture/capture.sh running capture/MetaDataCapture.java
-- (every zero-argument DatabaseMetaData method plus getTables/getColumns/getPrimaryKeys/
-- getImportedKeys/getExportedKeys/getCrossReference/getIndexInfo/getProcedures/
-- getProcedureColumns/getFunctions/getFunctionColumns/getUDTs/getTablePrivileges/
-- getColumnPrivileges/getBestRowIdentifier/getVersionColumns/getSuperTables/getSuperTypes/
-- getAttributes/getPseudoColumns/...) with log_statement=all; read back from the server's
-- CSV log (`execute <unnamed>:` / `execute S_n:` lines).  Bind parameters appear as $1..$n as
-- on the wire (extended protocol); getTables/getColumns etc. inline escaped literals themselves.""",
    "sqlalchemy": """-- SQLAlchemy tool queries: PostgreSQL dialect reflection (Inspector / MetaData.reflect).
-- Tool: {sqlalchemy_versions} (server-side binding: parameters reach the server as $1..$n;
-- psycopg 3 adds explicit casts such as $1::VARCHAR).  PostgreSQL 15.
-- Captured by capture/capture.sh running capture/sqlalchemy_capture.py (get_schema_names,
-- get_table_names, get_view_names, get_materialized_view_names, get_sequence_names,
-- get_multi_columns, get_multi_pk_constraint, get_multi_foreign_keys, get_multi_indexes,
-- get_multi_unique_constraints, get_multi_check_constraints, get_multi_table_comment,
-- get_enums, get_domains, has_table, ..., MetaData().reflect(engine)) with
-- log_statement=all; read back from the server's CSV log.  Includes the dialect's
-- connect-time probes and the BEGIN/ROLLBACK around each inspection.""",
    "superset": """-- Apache Superset tool queries (PostgresEngineSpec + SQLAlchemy inspector).
-- Superset runs on SQLAlchemy 1.4 + psycopg2; this file was captured by replaying Superset's
-- database code paths with that stack ({superset_versions}): capture/superset_capture.py,
-- driven by capture/capture.sh against PostgreSQL 15 with log_statement=all, read back from
-- the server's CSV log.  psycopg2 interpolates parameters client-side, so literals appear
-- inline (no $n).  Superset's own SQL strings are copied from apache/superset@007e4f5f4b4a
-- (superset/db_engine_specs/postgres.py: get_catalog_names, get_prequeries
-- `set search_path = "<schema>"`, get_cancel_query_id, cancel_query, estimate_statement_cost
-- `EXPLAIN <stmt>`; superset/db_engine_specs/base.py: select_star preview, compiled with
-- literal binds and pretty-printed by sqlglot as SQLScript.format does); the rest is the
-- SQLAlchemy 1.4 inspector (get_schema_names, get_table_names, get_foreign_table_names,
-- get_view_names, get_columns, get_pk_constraint, get_foreign_keys, get_indexes,
-- get_table_comment, get_unique_constraints, has_table) and the dialect's connect probes.""",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("out")
    ap.add_argument("--psql-version", default="psql")
    ap.add_argument("--pgjdbc-version", default="?")
    ap.add_argument("--sqlalchemy-versions", default="SQLAlchemy")
    ap.add_argument("--superset-versions", default="SQLAlchemy 1.4")
    a = ap.parse_args()
    fmt = dict(psql_version=a.psql_version, pgjdbc_version=a.pgjdbc_version,
               sqlalchemy_versions=a.sqlalchemy_versions, superset_versions=a.superset_versions)
    by_tool, errors = read_log(a.log)
    for tool, stmts in by_tool.items():
        seen_text, seen_shape, kept = set(), set(), []
        for sql, _detail in stmts:
            if "/* capture */" in sql or not sql:
                continue
            if sql in seen_text or shape(sql) in seen_shape:
                continue
            seen_text.add(sql)
            seen_shape.add(shape(sql))
            assert not any(line.strip() == SEP for line in sql.splitlines()), sql
            if re.match(r'(?i)(RELEASE|ROLLBACK TO)\b', sql):
                sql = "-- needs: the SAVEPOINT sent just before it in the same transaction\n" + sql
            kept.append(sql)
        with open(f"{a.out}/{tool}.sql", "w") as f:
            f.write(HEADERS[tool].format(**fmt).rstrip() + "\n")
            f.write(f"-- {len(kept)} statements, separated by lines containing only `{SEP}`.\n\n")
            f.write(f"\n{SEP}\n".join(kept) + "\n")
        print(f"{tool}: {len(stmts)} logged, {len(kept)} kept, {len(errors[tool])} server errors")
        for msg, q in errors[tool]:
            print(f"   ERROR {msg} :: {q[:120]!r}")


if __name__ == "__main__":
    main()
