"""SQLAlchemy 2.0 reflection through psycopg 3 (server-side binding, so parameters reach the
server as $1..$n).  Usage: python sqlalchemy_capture.py PORT APPNAME"""
import sys

from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.engine.reflection import ObjectKind

port, app = sys.argv[1], sys.argv[2]
engine = create_engine(
    f"postgresql+psycopg://postgres@127.0.0.1:{port}/corpus",
    connect_args={"application_name": app},
)
insp = inspect(engine)
s = "shop"
calls = [
    ("default_schema_name", lambda: insp.default_schema_name),
    ("get_schema_names", lambda: insp.get_schema_names()),
    ("get_table_names", lambda: insp.get_table_names(schema=s)),
    ("get_table_names(public)", lambda: insp.get_table_names()),
    ("get_view_names", lambda: insp.get_view_names(schema=s)),
    ("get_materialized_view_names", lambda: insp.get_materialized_view_names(schema=s)),
    ("get_foreign_table_names", lambda: insp.get_foreign_table_names(schema=s)),
    ("get_temp_table_names", lambda: insp.get_temp_table_names()),
    ("get_sequence_names", lambda: insp.get_sequence_names(schema=s)),
    ("get_view_definition", lambda: insp.get_view_definition("order_totals", schema=s)),
    ("get_multi_columns", lambda: insp.get_multi_columns(schema=s, kind=ObjectKind.ANY)),
    ("get_multi_pk_constraint", lambda: insp.get_multi_pk_constraint(schema=s)),
    ("get_multi_foreign_keys", lambda: insp.get_multi_foreign_keys(schema=s)),
    ("get_multi_indexes", lambda: insp.get_multi_indexes(schema=s, kind=ObjectKind.ANY)),
    ("get_multi_unique_constraints", lambda: insp.get_multi_unique_constraints(schema=s)),
    ("get_multi_check_constraints", lambda: insp.get_multi_check_constraints(schema=s)),
    ("get_multi_table_comment", lambda: insp.get_multi_table_comment(schema=s, kind=ObjectKind.ANY)),
    ("get_columns(one table)", lambda: insp.get_columns("orders", schema=s)),
    ("get_pk_constraint(one table)", lambda: insp.get_pk_constraint("order_lines", schema=s)),
    ("get_foreign_keys(one table)", lambda: insp.get_foreign_keys("orders", schema=s)),
    ("get_indexes(one table)", lambda: insp.get_indexes("orders", schema=s)),
    ("get_table_comment(one table)", lambda: insp.get_table_comment("orders", schema=s)),
    ("get_enums", lambda: insp.get_enums(schema="*")),
    ("get_domains", lambda: insp.get_domains(schema="*")),
    ("has_table", lambda: insp.has_table("orders", schema=s)),
    ("has_table(public)", lambda: insp.has_table("notes")),
    ("has_schema", lambda: insp.has_schema(s)),
    ("has_sequence", lambda: insp.has_sequence("invoice_no", schema=s)),
    ("has_type", lambda: engine.dialect.has_type(engine.connect(), "order_status", schema=s)),
    ("has_index", lambda: insp.has_index("orders", "orders_customer_idx", schema=s)),
]
for name, fn in calls:
    insp.clear_cache()
    try:
        fn()
        print("ok  ", name)
    except Exception as e:  # keep going: the point is the statements sent
        print("fail", name, e)

for schema in (s, None):
    try:
        MetaData().reflect(engine, schema=schema, views=True)
        print("ok   MetaData.reflect", schema)
    except Exception as e:
        print("fail MetaData.reflect", schema, e)
