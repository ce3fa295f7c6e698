"""Named prepared statements through pgcached's transaction pool, produced by psycopg 3 and by
libpq itself (psycopg's pgconn layer), compared with the same steps direct.

These run whatever PSYCOPG_PREPARE_THRESHOLD says for the main suite: they set
prepare=True / prepare_threshold=0 themselves where they need server-side statements.
"""

import os
import threading

import psycopg
import pytest
from psycopg import pq


def _err(e):
    return (type(e).__name__, e.sqlstate, e.diag.message_primary)


def test_two_connections_same_statement_interleaved(connect):
    """Two clients prepare the same text (one shared server statement) and interleave
    transactions, each holding its server connection while the other works."""

    def run(var):
        a = connect(var)
        b = connect(var)
        a.prepare_threshold = b.prepare_threshold = 0
        q = "SELECT %s::int * 10 + %s::int"
        out = []
        for i in range(6):
            out.append(a.execute(q, (i, 1)).fetchone())  # a opens a transaction
            out.append(b.execute(q, (i, 2)).fetchone())  # b opens one too: another server
            out.append(a.execute(q, (i, 3)).fetchone())
            (a if i % 2 else b).commit()
            out.append(b.execute(q, (i, 4)).fetchone())
            (b if i % 2 else a).rollback()
            out.append(a.execute(q, (i, 5)).fetchone())
            a.commit()
            b.commit()
        return out, a.info.transaction_status.name, b.info.transaction_status.name

    want = run("DIRECT_DSN")
    got = run("PGCACHED_DSN")
    assert got == want
    assert want[0][-1] == (55,)


def test_prepared_many_threads_autocommit(connect):
    """20 threads, prepare_threshold=0, autocommit: every execute is a transaction of its own
    on any of the 5 server connections."""
    errors, results = [], []

    def worker(n):
        try:
            c = connect("PGCACHED_DSN", autocommit=True)
            c.prepare_threshold = 0
            for i in range(25):
                row = c.execute("SELECT %s::int + %s::int, %s::text", (n, i, f"t{n}")).fetchone()
                results.append(row)
                c.execute("SELECT %s::bigint", (i,), prepare=True)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(results) == sorted((n + i, f"t{n}") for n in range(20) for i in range(25))


def test_pipeline_error_in_the_middle(both):
    """psycopg pipeline of prepared statements with an error in the middle: the error is raised
    (when depends on timing, so only its kind is compared), the later pipelines work and the
    statements stay usable; inside a transaction the error aborts it until rollback."""

    def run(conn):
        conn.autocommit = True
        conn.prepare_threshold = 0
        out = []
        try:
            with conn.pipeline() as p:
                conn.execute("SELECT %s::int AS a", (1,), prepare=True)
                conn.execute("SELECT 1 / %s::int AS b", (0,), prepare=True)
                conn.execute("SELECT %s::text AS c", ("never",), prepare=True)
                p.sync()
        except psycopg.Error as e:
            out.append(_err(e))
        with conn.pipeline():
            cs = [conn.execute("SELECT %s::int AS a", (i,), prepare=True) for i in range(5)]
            cs.append(conn.execute("SELECT %s::text AS c", ("after",), prepare=True))
            cs.append(conn.execute("SELECT 1 / %s::int AS b", (2,), prepare=True))
        out.extend(c.fetchone() for c in cs)
        conn.autocommit = False
        try:
            with conn.pipeline():
                conn.execute("SELECT %s::int AS a", (7,), prepare=True)
                conn.execute("SELECT 1 / %s::int AS b", (0,), prepare=True)
                conn.execute("SELECT %s::text AS c", ("skipped",), prepare=True)
        except psycopg.Error as e:
            out.append(_err(e))
        out.append(conn.info.transaction_status.name)
        conn.rollback()
        out.append(conn.execute("SELECT %s::text AS c", ("recovered",), prepare=True).fetchone())
        conn.rollback()
        return out

    out = both(run)
    assert out[0][1] == "22012" and out[-1] == ("recovered",)


def _pipeline_results(pg, expect):
    """Read a libpq pipeline's results: `expect` lists "q" (one command: results until None)
    and "s" (a sync point)."""
    out = []
    for kind in expect:
        if kind == "s":
            r = pg.get_result()
            out.append(pq.ExecStatus(r.status).name)
            continue
        while (r := pg.get_result()) is not None:
            err = r.error_field(pq.DiagnosticField.SQLSTATE)
            rows = [tuple(r.get_value(i, j) for j in range(r.nfields)) for i in range(r.ntuples)]
            out.append((pq.ExecStatus(r.status).name, err and err.decode(), rows))
    return out


def test_libpq_pipeline_error_in_the_middle(both):
    """Many Parse/Bind/Execute of named statements without a Sync between them, an error in the
    middle: everything up to the Sync is skipped (PIPELINE_ABORTED), exactly as Postgres does,
    including a Parse after the error (its name must stay free); the next segment works."""

    def run(conn):
        conn.autocommit = True
        pg = conn.pgconn
        pg.enter_pipeline_mode()
        expect = []
        pg.send_prepare(b"pa", b"SELECT $1::int * 2 AS v")
        expect.append("q")
        for i in range(3):
            pg.send_query_prepared(b"pa", [str(i).encode()])
            expect.append("q")
        pg.send_query_params(b"SELECT 1 / $1::int", [b"0"])  # the error
        expect.append("q")
        pg.send_prepare(b"pb", b"SELECT $1::text || '?' AS t")  # skipped: pb never exists
        pg.send_query_prepared(b"pa", [b"99"])  # skipped
        pg.send_query_prepared(b"pb", [b"x"])  # skipped
        expect += ["q", "q", "q"]
        pg.pipeline_sync()
        expect.append("s")
        pg.send_query_prepared(b"pb", [b"x"])  # pb does not exist: 26000
        expect.append("q")
        pg.pipeline_sync()
        expect.append("s")
        pg.send_prepare(b"pb", b"SELECT $1::text || '!' AS t")  # now it can be created
        pg.send_query_prepared(b"pb", [b"y"])
        pg.send_query_prepared(b"pa", [b"21"])
        expect += ["q", "q", "q"]
        pg.pipeline_sync()
        expect.append("s")
        out = _pipeline_results(pg, expect)
        pg.exit_pipeline_mode()
        return out

    out = both(run)
    assert ("FATAL_ERROR", "22012", []) in out and out[-2] == ("TUPLES_OK", None, [(b"42",)])


def test_pipeline_statement_rotation(both):
    """psycopg evicts its least recently used prepared statement beyond prepared_max by sending
    `DEALLOCATE _pg3_N`; in pipeline mode that goes as an extended-protocol query."""

    def run(conn):
        conn.autocommit = True
        conn.prepare_threshold = 0
        conn.prepared_max = 2
        out = []
        for rnd in range(3):
            try:
                with conn.pipeline():
                    cs = [conn.execute(f"SELECT %s::int + {k} AS v{k}", (rnd,)) for k in range(5)]
                out.append([c.fetchone() for c in cs])
            except psycopg.Error as e:
                out.append(_err(e))
        # and outside pipeline mode (simple-protocol DEALLOCATE)
        for k in range(5):
            out.append(conn.execute(f"SELECT %s::int - {k} AS w{k}", (k,)).fetchone())
        return out

    out = both(run)
    assert out[0] == [(0,), (1,), (2,), (3,), (4,)]


def test_client_deallocate_and_discard(both):
    """DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL sent by the client as SQL. psycopg does not
    notice them: its next execute of a statement it prepared fails (26000) exactly as direct;
    a DROP makes psycopg forget its statements (and send DEALLOCATE ALL itself), after which
    it prepares them again."""

    def run(conn):
        conn.autocommit = True
        conn.prepare_threshold = 0
        out = []
        q = "SELECT %s::int + 1"

        def attempt(*args):
            try:
                out.append(conn.execute(*args).fetchone())
            except psycopg.Error as e:
                out.append(_err(e))

        attempt(q, (1,))
        attempt("DEALLOCATE ALL")
        attempt(q, (2,))  # psycopg still thinks it is prepared: 26000
        attempt("DROP TABLE IF EXISTS py_never_there")  # psycopg forgets, sends DEALLOCATE ALL
        attempt(q, (3,))
        attempt(q, (4,))
        attempt("DISCARD ALL")
        attempt(q, (5,))  # 26000 again
        attempt("DROP TABLE IF EXISTS py_never_there")
        attempt(q, (6,))
        attempt("DEALLOCATE pgcached_no_such_stmt")  # never prepared: same error as Postgres
        attempt("DEALLOCATE _pg3_0")  # psycopg's own name, behind its back
        attempt(q, (7,))
        attempt("DROP TABLE IF EXISTS py_never_there")
        # DISCARD ALL inside a transaction block is refused by Postgres
        conn.autocommit = False
        attempt(q, (8,))
        attempt("DISCARD ALL")
        conn.rollback()
        attempt(q, (9,))
        conn.rollback()
        return out

    out = both(run)
    assert out[-1] == (10,) and ("ActiveSqlTransaction", "25001", "DISCARD ALL cannot run inside a transaction block") in out
    assert out[2][1] == "26000"


def _libpq_steps(conn):
    """Protocol-level steps through libpq (psycopg's pq layer), one result per step."""
    pg = conn.pgconn
    out = []

    def res(r):
        st = pq.ExecStatus(r.status).name
        err = r.error_field(pq.DiagnosticField.SQLSTATE)
        rows = [tuple(r.get_value(i, j) for j in range(r.nfields)) for i in range(r.ntuples)]
        return st, err and err.decode(), r.nfields, r.nparams, rows

    out.append(res(pg.prepare(b"s1", b"SELECT $1::int * 2 AS v")))
    out.append(res(pg.prepare(b"s1", b"SELECT $1::int * 2 AS v")))  # duplicate name: 42P05
    out.append(res(pg.prepare(b"s1", b"SELECT 'other text'")))  # duplicate, other text: 42P05
    out.append(res(pg.describe_prepared(b"s1")))
    out.append(res(pg.exec_prepared(b"s1", [b"21"])))
    out.append(res(pg.exec_prepared(b"nope", [b"1"])))  # unknown statement: 26000
    out.append(res(pg.describe_prepared(b"nope")))
    out.append(res(pg.prepare(b"s2", b"SELEC broken")))  # syntax error: name stays free
    out.append(res(pg.prepare(b"s2", b"SELECT $1::text || '!' AS t")))
    out.append(res(pg.exec_prepared(b"s2", [b"hi"])))
    out.append(res(pg.exec_params(b"BEGIN", [])))
    out.append(res(pg.exec_prepared(b"s2", [b"in tx"])))
    out.append(res(pg.exec_params(b"DECLARE cur CURSOR FOR SELECT generate_series(1, 3)", [])))
    out.append(res(pg.describe_portal(b"cur")))
    out.append(res(pg.exec_params(b"COMMIT", [])))
    out.append(res(pg.exec_(b"DEALLOCATE s1")))  # simple Query protocol
    out.append(res(pg.exec_prepared(b"s1", [b"1"])))  # gone now: 26000
    out.append(res(pg.prepare(b"s1", b"SELECT $1::int * 3 AS v")))  # the name is free again
    out.append(res(pg.exec_prepared(b"s1", [b"5"])))
    out.append(res(pg.exec_(b"DEALLOCATE PREPARE s2")))
    out.append(res(pg.exec_prepared(b"s2", [b"x"])))
    if pq.version() >= 170000:
        out.append(res(pg.close_prepared(b"s1")))
        out.append(res(pg.exec_prepared(b"s1", [b"1"])))
    out.append(res(pg.exec_params(b"SELECT 'alive'", [])))
    return out


def test_libpq_prepare_describe_duplicate_unknown_deallocate(both):
    out = both(_libpq_steps)
    assert out[1][:2] == ("FATAL_ERROR", "42P05") and out[5][:2] == ("FATAL_ERROR", "26000")
    assert out[-1][-1] == [(b"alive",)]


def test_libpq_deallocate_extended_protocol(both):
    def run(conn):
        pg = conn.pgconn
        out = []
        for step in (lambda: pg.prepare(b"d1", b"SELECT $1::int + 100"),
                     lambda: pg.exec_params(b"DEALLOCATE d1", []),
                     lambda: pg.exec_prepared(b"d1", [b"1"]),
                     lambda: pg.prepare(b"d1", b"SELECT $1::int + 200"),
                     lambda: pg.exec_prepared(b"d1", [b"1"]),
                     lambda: pg.exec_params(b"DEALLOCATE PREPARE d1", [])):
            r = step()
            err = r.error_field(pq.DiagnosticField.SQLSTATE)
            out.append((pq.ExecStatus(r.status).name, err and err.decode(),
                        r.get_value(0, 0) if r.ntuples else None))
        return out

    out = both(run)
    assert out[1] == ("COMMAND_OK", None, None)
