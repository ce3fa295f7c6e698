"""psycopg 3 through pgcached, compared with the same operations direct to PostgreSQL."""

import datetime as dt
import decimal
import threading
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb, Json

TYPES_QUERY = """
SELECT
  (-32768)::int2 AS i2, 2147483647::int4 AS i4, (-9223372036854775808)::int8 AS i8,
  12345678901234567890.0123456789::numeric AS num, 'NaN'::numeric AS nan,
  1.5::float4 AS f4, -1e300::float8 AS f8, 'Infinity'::float8 AS inf,
  'héllo ü€𝄞'::text AS t, ''::text AS empty, NULL::text AS null_text,
  '\\x00ff80c328'::bytea AS b, ''::bytea AS empty_b,
  true AS yes, false AS no,
  '2024-02-29'::date AS d, 'infinity'::date::text AS d_inf,
  '2024-02-29 23:59:59.123456'::timestamp AS ts,
  '2024-02-29 23:59:59.123456+05:30'::timestamptz AS tstz,
  '1 year 2 mons 3 days 04:05:06.789'::interval AS iv,
  '12:34:56.5'::time AS tm,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
  '{"a": [1, 2, {"b": null}]}'::json AS j, '{"z": 1, "a": "x"}'::jsonb AS jb,
  '{1,2,NULL,4}'::int4[] AS ai, '{"with space","quote\\"d",NULL,""}'::text[] AS at,
  '{{1.5,2},{3,4}}'::float8[] AS af, ARRAY['{"k":1}'::jsonb] AS aj,
  '192.168.1.0/24'::cidr AS net, '10.1.2.3'::inet AS addr,
  NULL::int AS n
"""


def _types(conn, binary):
    with conn.cursor(binary=binary) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(TYPES_QUERY)
        desc = [(c.name, c.type_code) for c in cur.description]
        row = cur.fetchone()
        fmt = cur.pgresult.fformat(0)
    conn.rollback()
    return desc, row, fmt


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_types_all_formats(both, binary):
    desc, row, fmt = both(lambda c: _types(c, binary))
    assert fmt == (1 if binary else 0)
    assert row[0] == -32768 and row[11] == b"\x00\xff\x80\xc3\x28" and row[-1] is None


PARAMS = [
    0, -1, 2**31, -(2**63), 3.25, decimal.Decimal("-123456789.000000001"),
    "text with 'quotes' and \\ and ü€𝄞", "", None, True, False,
    b"\x00\xff\xfe\x80binary", dt.date(2000, 1, 1),
    dt.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=dt.timezone.utc),
    dt.timedelta(days=3, seconds=5, microseconds=7),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    Jsonb({"a": [1, None, "x"]}), Json([1, 2]), [1, 2, None], ["a", "b"],
]


@pytest.mark.parametrize("kind", ["server_binding-text", "server_binding-binary", "client_binding-text"])
def test_parameters_round_trip(both, kind):
    def run(conn):
        cls = psycopg.ClientCursor if kind.startswith("client") else psycopg.Cursor
        out = []
        with cls(conn) as cur:
            for p in PARAMS:
                cur.execute("SELECT %s AS v", (p,), binary=kind.endswith("binary"))
                out.append((cur.fetchone()[0], cur.description[0].type_code))
        conn.rollback()
        return out

    got = both(run)
    assert got[0][0] == 0 and got[11][0] == b"\x00\xff\xfe\x80binary"


def test_server_side_params_with_table(both):
    def run(conn):
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS py_params")
            cur.execute("CREATE TABLE py_params (id int PRIMARY KEY, name text, data bytea, at timestamptz)")
            cur.executemany(
                "INSERT INTO py_params VALUES (%s, %s, %s, %s)",
                [(i, f"name {i}", bytes([i % 256, 255 - i % 256]), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i))
                 for i in range(200)],
            )
            cur.execute("SELECT * FROM py_params WHERE id = ANY(%s) ORDER BY id", ([3, 5, 150],))
            rows = cur.fetchall()
            cur.execute("SELECT count(*), sum(id) FROM py_params WHERE name LIKE %(p)s", {"p": "name 1%"})
            agg = cur.fetchone()
            cur.execute("DROP TABLE py_params")
        conn.commit()
        return rows, agg

    rows, agg = both(run)
    assert len(rows) == 3 and agg[0] == 111


def test_pipeline_mode(both):
    def run(conn):
        out = []
        with conn.pipeline():
            curs = []
            for i in range(20):
                cur = conn.cursor()
                cur.execute("SELECT %s::int * 2, %s::text", (i, f"v{i}"))
                curs.append(cur)
        for cur in curs:
            out.append(cur.fetchone())
        conn.rollback()
        return out

    got = both(run)
    assert got[19] == (38, "v19")


def test_server_parameters(both):
    def run(conn):
        conn.autocommit = True
        conn.execute("SET TimeZone = 'America/Sao_Paulo'")
        conn.execute("SET DateStyle = 'German, DMY'")
        conn.execute("SET application_name = 'py-test'")
        info = conn.info
        params = {k: info.parameter_status(k) for k in ("TimeZone", "DateStyle", "application_name",
                                                         "server_encoding", "client_encoding",
                                                         "integer_datetimes", "standard_conforming_strings")}
        row = conn.execute("SELECT '2024-06-01 12:00:00+00'::timestamptz::text, current_setting('application_name')").fetchone()
        # Several transactions later (possibly on another pooled server connection) it still holds.
        for _ in range(10):
            conn.execute("SELECT 1")
        row2 = conn.execute("SELECT '2024-06-01 12:00:00+00'::timestamptz::text, now() IS NOT NULL").fetchone()
        return params, row, row2, info.server_version

    params, row, _, _ = both(run)
    assert params["TimeZone"] == "America/Sao_Paulo"
    assert row[0] == "01.06.2024 09:00:00 -03"


def _copy_round_trip(conn, binary):
    fmt = "(FORMAT BINARY)" if binary else ""
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS py_copy")
        cur.execute("CREATE TABLE py_copy (id int, name text, data bytea, note text)")
        with cur.copy(f"COPY py_copy FROM STDIN {fmt}") as copy:
            if binary:
                copy.set_types(["int4", "text", "bytea", "text"])
            for i in range(2000):
                copy.write_row((i, f"name\t{i}\n", bytes([i % 256, 0, 255]), None if i % 7 == 0 else "ü€"))
        cur.execute("SELECT count(*), count(note), sum(length(data)) FROM py_copy")
        counts = cur.fetchone()
        rows = []
        with cur.copy(f"COPY (SELECT * FROM py_copy ORDER BY id) TO STDOUT {fmt}") as copy:
            if binary:
                copy.set_types(["int4", "text", "bytea", "text"])
            for row in copy.rows():
                rows.append(row)
        raw = b""
        with cur.copy("COPY (SELECT id, name FROM py_copy WHERE id < 50 ORDER BY id) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                raw += bytes(block)
        cur.execute("DROP TABLE py_copy")
    conn.commit()
    return counts, rows, raw


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_copy_both_ways(both, binary):
    counts, rows, raw = both(lambda c: _copy_round_trip(c, binary))
    assert counts == (2000, 2000 - 286, 6000)
    assert len(rows) == 2000 and raw.startswith(b"0,")


def test_copy_error_then_recovery(both):
    def run(conn):
        conn.autocommit = True
        conn.execute("DROP TABLE IF EXISTS py_copy_err")
        conn.execute("CREATE TABLE py_copy_err (id int)")
        err = None
        try:
            with conn.cursor().copy("COPY py_copy_err FROM STDIN") as copy:
                copy.write(b"1\nnot-a-number\n")
        except psycopg.Error as e:
            err = (type(e).__name__, e.sqlstate)
        n = conn.execute("SELECT count(*) FROM py_copy_err").fetchone()
        conn.execute("DROP TABLE py_copy_err")
        return err, n

    err, n = both(run)
    assert err == ("InvalidTextRepresentation", "22P02") and n == (0,)


def test_notices(both):
    def run(conn):
        seen = []
        conn.add_notice_handler(lambda d: seen.append((d.severity_nonlocalized, d.sqlstate, d.message_primary, d.context)))
        conn.autocommit = True
        conn.execute("""DO $$ BEGIN
            RAISE NOTICE 'notice %', 1; RAISE WARNING 'warn'; RAISE INFO 'info';
        END $$""")
        conn.execute("SET client_min_messages = warning")
        conn.execute("DO $$ BEGIN RAISE NOTICE 'hidden'; RAISE WARNING 'shown'; END $$")
        conn.execute("RESET client_min_messages")
        conn.execute("DROP TABLE IF EXISTS py_never_existed")  # NOTICE from the server itself
        return seen

    seen = both(run)
    assert [s[2] for s in seen] == ["notice 1", "warn", "info", "shown",
                                    'table "py_never_existed" does not exist, skipping']


def test_transactions_commit_rollback(both):
    def run(conn):
        conn.autocommit = True
        conn.execute("DROP TABLE IF EXISTS py_tx")
        conn.execute("CREATE TABLE py_tx (id int PRIMARY KEY)")
        conn.autocommit = False
        conn.execute("INSERT INTO py_tx VALUES (1)")
        states = [conn.info.transaction_status.name]
        conn.commit()
        states.append(conn.info.transaction_status.name)
        conn.execute("INSERT INTO py_tx VALUES (2)")
        conn.rollback()
        with conn.transaction():
            conn.execute("INSERT INTO py_tx VALUES (3)")
            try:
                with conn.transaction():  # savepoint
                    conn.execute("INSERT INTO py_tx VALUES (4)")
                    conn.execute("INSERT INTO py_tx VALUES (1)")
            except psycopg.errors.UniqueViolation as e:
                states.append(e.sqlstate)
            conn.execute("INSERT INTO py_tx VALUES (5)")
        rows = conn.execute("SELECT id FROM py_tx ORDER BY id").fetchall()
        conn.commit()
        conn.autocommit = True
        conn.execute("DROP TABLE py_tx")
        return states, rows

    states, rows = both(run)
    assert states == ["INTRANS", "IDLE", "23505"] and rows == [(1,), (3,), (5,)]


def test_error_then_recovery(both):
    def run(conn):
        out = []
        for q, args in [("SELECT 1/%s", (0,)), ("SELECT * FROM py_no_such_table", None),
                        ("SELEC syntax", None), ("SELECT %s::int", ("x",))]:
            try:
                conn.execute(q, args)
            except psycopg.Error as e:
                d = e.diag
                out.append((type(e).__name__, e.sqlstate, d.message_primary, d.statement_position))
            out.append(conn.info.transaction_status.name)
            try:
                conn.execute("SELECT 'in failed tx'")
            except psycopg.errors.InFailedSqlTransaction as e:
                out.append(e.sqlstate)
            conn.rollback()
            out.append(conn.execute("SELECT 'recovered'").fetchone())
            conn.rollback()
        return out

    out = both(run)
    assert out[0][1] == "22012" and "25P02" in out


def test_large_result_and_named_cursor(both):
    def run(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
            rows = cur.fetchall()
        with conn.cursor(name="py_named") as cur:  # DECLARE ... inside the transaction
            cur.itersize = 500
            cur.execute("SELECT g FROM generate_series(1, 5000) g")
            total = sum(r[0] for r in cur)
        conn.commit()
        return len(rows), rows[-1], total

    assert both(run) == (50000, (50000, "1017bfd4673955ffee4641ad3d481b1c"), 12502500)


def test_many_connections_over_small_pool(connect):
    """20 concurrent connections through a pool of 5, each doing a few transactions."""
    errors, results = [], []

    def worker(n):
        try:
            c = connect("PGCACHED_DSN", autocommit=False)
            for i in range(10):
                results.append(c.execute("SELECT %s::int + %s::int", (n, i)).fetchone()[0])
                c.commit()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results) == sorted(n + i for n in range(20) for i in range(10))


def test_listen_notify_session_mode(connect):
    def run(var):
        listener = connect(var, autocommit=True)
        sender = connect(var, autocommit=True)
        listener.execute("LISTEN py_chan")
        sender.execute("NOTIFY py_chan, 'hello'")
        sender.execute("SELECT pg_notify('py_chan', %s)", ("ü€ payload",))
        got = []
        for n in listener.notifies(timeout=5, stop_after=2):
            got.append((n.channel, n.payload, n.pid != 0))
        listener.execute("UNLISTEN *")
        return got

    want = run("DIRECT_DSN")
    got = run("PGCACHED_SESSION_DSN")
    assert got == want == [("py_chan", "hello", True), ("py_chan", "ü€ payload", True)]


def test_session_mode_basics(connect):
    c = connect("PGCACHED_SESSION_DSN", autocommit=True)
    c.execute("CREATE TEMP TABLE py_temp (x int)")
    c.execute("INSERT INTO py_temp VALUES (1), (2)")
    c.execute("SET search_path = pg_temp, public")
    assert c.execute("SELECT sum(x) FROM py_temp").fetchone() == (3,)
    c.execute("PREPARE py_stmt(int) AS SELECT $1 * 3")
    assert c.execute("EXECUTE py_stmt(5)").fetchone() == (15,)


def test_sql_composition_and_identifiers(both):
    def run(conn):
        q = sql.SQL("SELECT {} AS {}, {}").format(sql.Literal("lit'eral"), sql.Identifier("Weird \"Name\""),
                                                  sql.Placeholder())
        with conn.cursor() as cur:
            cur.execute(q, (42,))
            out = ([c.name for c in cur.description], cur.fetchone())
        conn.rollback()
        return out

    assert both(run) == (['Weird "Name"', "?column?"], ("lit'eral", 42))


def test_cancel(connect):
    """Cancel a running pg_sleep through pgcached: QueryCanceled, and the connection still works."""
    c = connect("PGCACHED_DSN", autocommit=True)
    timer = threading.Timer(0.5, c.cancel)
    timer.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        c.execute("SELECT pg_sleep(20)")
    timer.join()
    assert c.execute("SELECT 'alive'").fetchone() == ("alive",)
