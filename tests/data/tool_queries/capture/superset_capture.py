"""Replays the database calls Apache Superset makes for a Postgres database (test connection,
catalog/schema/table browsing in SQL Lab, table metadata, dataset sync, data preview, cost
estimate, query cancel id), using Superset's own stack: SQLAlchemy 1.4.54 + psycopg2 (which
interpolates parameters client-side, so the server sees literals) and sqlglot for formatting.
The literal SQL strings below are copied from superset/db_engine_specs/{postgres,base}.py
(apache/superset@007e4f5f4b4a4b08b24b1f2fc14bcf5abb16237d).
Usage: python superset_capture.py PORT APPNAME"""
import sys
from contextlib import closing

import sqlglot
from sqlalchemy import create_engine, inspect, select, text

port, app = sys.argv[1], sys.argv[2]
engine = create_engine(
    f"postgresql+psycopg2://postgres@127.0.0.1:{port}/corpus",
    connect_args={"application_name": app},
)


def step(name, fn):
    try:
        fn()
        print("ok  ", name)
    except Exception as e:
        print("fail", name, e)


# "Test connection": Superset pings through the dialect (SELECT 1 for psycopg2).
def ping():
    with engine.connect() as conn:
        engine.dialect.do_ping(conn.connection.dbapi_connection)
step("do_ping", ping)

insp = inspect(engine)
# PostgresEngineSpec.get_catalog_names: literal SQL run through inspector.bind.execute.
step("get_catalog_names", lambda: sorted(c for (c,) in insp.bind.execute(
    """
SELECT datname FROM pg_database
WHERE datistemplate = false;
            """
)))
step("get_schema_names", lambda: sorted(insp.get_schema_names()))
for schema in ("shop", "public"):
    # PostgresEngineSpec.get_table_names: tables plus foreign tables.
    step("get_table_names " + schema, lambda: set(insp.get_table_names(schema)) | set(insp.get_foreign_table_names(schema)))
    step("get_view_names " + schema, lambda: set(insp.get_view_names(schema)))

# databases/utils.get_table_metadata for each table / view Superset shows.
for table in ("orders", "order_lines", "customers", "order_totals", "daily_totals", "events"):
    insp = inspect(engine)  # Superset builds a fresh inspector per request
    step("get_columns " + table, lambda: insp.get_columns(table, "shop"))
    step("get_pk_constraint " + table, lambda: insp.get_pk_constraint(table, "shop"))
    step("get_foreign_keys " + table, lambda: insp.get_foreign_keys(table, "shop"))
    step("get_indexes " + table, lambda: insp.get_indexes(table, "shop"))
    step("get_table_comment " + table, lambda: insp.get_table_comment(table, "shop"))
    step("get_unique_constraints " + table, lambda: insp.get_unique_constraints(table, "shop"))
    step("has_table " + table, lambda: insp.has_table(table, "shop"))


def select_star(table, schema, cols=None, limit=100):
    """BaseEngineSpec.select_star: select(fields).select_from(text(quoted name)).limit(limit),
    compiled with literal binds (Database.compile_sqla_query) and pretty-printed (SQLScript.format)."""
    from sqlalchemy import column, literal_column
    quote = engine.dialect.identifier_preparer.quote
    quote_schema = engine.dialect.identifier_preparer.quote_schema
    full = quote_schema(schema) + "." + quote(table)
    fields = [column(c) for c in cols] if cols else [literal_column("*")]
    qry = select(fields).select_from(text(full)).limit(limit)
    sql = str(qry.compile(engine, compile_kwargs={"literal_binds": True}))
    return sqlglot.transpile(sql, read="postgres", write="postgres", pretty=True)[0]


def run(sql, prequeries=()):
    with closing(engine.raw_connection()) as conn:  # Database.get_raw_connection + get_prequeries
        cur = conn.cursor()
        for p in prequeries:
            cur.execute(p)
        cur.execute(sql)
        if cur.description:
            cur.fetchall()
        conn.rollback()


preview = select_star("orders", "shop")
preview_cols = select_star("orders", "shop", cols=["id", "status", "total"])
# SQL Lab: PostgresEngineSpec.get_prequeries sets the search path to the chosen schema, then
# get_cancel_query_id asks for the backend pid, then the (previewed) statement runs.
step("sqllab preview", lambda: run(preview, [f'set search_path = "shop"', "SELECT pg_backend_pid()"]))
step("preview with columns", lambda: run(preview_cols))
# PostgresEngineSpec.estimate_statement_cost
step("estimate cost", lambda: run(f"EXPLAIN {preview}"))
# PostgresEngineSpec.cancel_query (pid of a session that does not exist: harmless)
step("cancel_query", lambda: run(
    "SELECT pg_terminate_backend(pid) "
    "FROM pg_stat_activity "
    f"WHERE pid='{999999}'"
))
