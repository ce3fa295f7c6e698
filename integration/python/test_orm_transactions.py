"""Reads inside READ COMMITTED transaction blocks, as ORMs and drivers send them, use the cache.

A SQLAlchemy Session and a default psycopg connection wrap every read in BEGIN … COMMIT. Through
pgcached (transaction pooling) such reads are answered from / recorded into the result cache, a
plain BEGIN is held by the proxy, so a block whose reads all hit takes no server connection.

A hit is observed from the outside: the row is changed directly in Postgres, behind the proxy
(which cannot see that write, and the default TTL is 60 s); a read through pgcached that still
returns the old value was answered from the cache. REPEATABLE READ / SERIALIZABLE blocks, and
reads of a table the block itself wrote, must return what Postgres holds.

Tables are (re)created through pgcached: its DDL flushes the cache, so nothing cached by an
earlier run of a test survives into the next.
"""

import contextlib
import threading
import time

import psycopg
import pytest
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from conftest import _dsn


@pytest.fixture(autouse=True)
def _through_pgcached():
    if _dsn("PGCACHED_DSN") == _dsn("DIRECT_DSN"):
        pytest.skip("INTEGRATION_PROXY=direct: there is no cache to observe")


def _direct(sql, params=None):
    """Run one statement directly in Postgres, behind pgcached's back."""
    with psycopg.connect(_dsn("DIRECT_DSN"), autocommit=True) as c:
        c.execute(sql, params)


# ---------------------------------------------------------------- SQLAlchemy ORM


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "orm_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    qty: Mapped[int]


def _engine(var, prepare_threshold):
    dsn = _dsn(var)

    def creator():
        conn = psycopg.connect(dsn, connect_timeout=10)
        conn.prepare_threshold = prepare_threshold
        return conn

    return create_engine("postgresql+psycopg://", creator=creator)


@pytest.fixture(params=[None, 0], ids=["unprepared", "prepared"])
def orm(request):
    """(engine through pgcached, engine direct), orm_item holding 3 rows inserted by the ORM.

    "prepared": psycopg's prepare_threshold=0, every ORM statement a named prepared statement.
    """
    proxy, direct = _engine("PGCACHED_DSN", request.param), _engine("DIRECT_DSN", request.param)
    Base.metadata.drop_all(proxy)
    Base.metadata.create_all(proxy)
    with Session(proxy) as s:
        s.add_all([Item(id=1, name="alpha", qty=10), Item(id=2, name="beta", qty=20), Item(id=3, name="gamma", qty=30)])
        s.commit()
    yield proxy, direct
    proxy.dispose()
    direct.dispose()


def _get(engine, pk):
    """One ORM unit of work: Session.get by primary key, then commit (BEGIN; SELECT; COMMIT)."""
    with Session(engine) as s:
        item = s.get(Item, pk)
        # psycopg opened a transaction block for the SELECT: the read ran inside BEGIN … COMMIT.
        assert s.connection().connection.driver_connection.info.transaction_status == TransactionStatus.INTRANS
        row = (item.id, item.name, item.qty)
        s.commit()
    return row


def _all(engine):
    with Session(engine) as s:
        rows = [(i.id, i.name, i.qty) for i in s.scalars(select(Item).order_by(Item.id))]
        s.commit()
    return rows


def test_orm_session_reads_are_cached_and_orm_writes_invalidate(orm):
    """Session reads by primary key (each in its own BEGIN … COMMIT) are served from the cache;
    a Session.commit() that wrote the row invalidates it; results equal the same ORM code direct."""
    proxy, direct = orm
    want = _get(direct, 1)
    assert want == (1, "alpha", 10)
    for _ in range(3):  # several sessions: the first records the answer, the others hit
        assert _get(proxy, 1) == want
    assert _all(proxy) == _all(direct)

    _direct("UPDATE orm_item SET name = 'changed behind' WHERE id = 1")
    assert _get(direct, 1) == (1, "changed behind", 10)
    assert _get(proxy, 1) == want, "a read in a READ COMMITTED block was not answered from the cache"

    with Session(proxy) as s:  # an ORM write through pgcached
        s.get(Item, 1).qty = 11
        s.commit()
    assert _get(proxy, 1) == _get(direct, 1) == (1, "changed behind", 11)
    assert _all(proxy) == _all(direct)


@contextlib.contextmanager
def _all_server_connections_held():
    """Open transactions through pgcached, each holding a server connection, until the next one
    waits for the pool (pgcached's acquire_timeout is 5 s); release them all on exit."""
    holders, pids, waiting = [], set(), None
    try:
        for _ in range(64):
            conn = psycopg.connect(_dsn("PGCACHED_DSN"), connect_timeout=10)
            holders.append(conn)
            got = []
            t = threading.Thread(target=lambda c=conn, g=got: g.append(_try_pid(c)), daemon=True)
            t.start()
            t.join(1.5)
            if t.is_alive():
                waiting = t
                break
            pids.add(got[0])
        assert waiting, "64 open transactions never exhausted pgcached's server pool"
        assert None not in pids and len(pids) == len(holders) - 1, f"holders share servers: {pids}"
        yield
    finally:
        for conn in holders[:-1] if waiting else holders:
            conn.rollback()
        if waiting:
            waiting.join(15)
        for conn in holders:
            conn.close()


def _try_pid(conn):
    try:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # never cached: needs a server
    except psycopg.Error:
        return None


def test_orm_transaction_of_cache_hits_needs_no_server_connection(orm):
    """With every pooled server connection held by other open transactions, an ORM unit of work
    (BEGIN; SELECT by primary key; COMMIT) whose read is a hit still completes at once."""
    proxy, direct = orm
    want = _get(direct, 2)
    assert _get(proxy, 2) == want  # recorded
    with _all_server_connections_held():
        started = time.monotonic()
        assert _get(proxy, 2) == want
        assert time.monotonic() - started < 2, "the cached ORM block waited for a server connection"


# ---------------------------------------------------------------- psycopg 3, default connection


@pytest.fixture
def kv():
    """Tables tx_kv and tx_other, (1, 'old') in each, created through pgcached."""
    with psycopg.connect(_dsn("PGCACHED_DSN"), autocommit=True) as c:
        for t in ("tx_kv", "tx_other"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
            c.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, v text NOT NULL)")
            c.execute(f"INSERT INTO {t} VALUES (1, 'old'), (2, 'two')")


KV = "SELECT v FROM tx_kv WHERE id = 1"
OTHER = "SELECT v FROM tx_other WHERE id = 1"


def _in_block(conn, sql):
    """conn.execute(sql) on a non-autocommit connection: asserts it ran in a transaction block."""
    row = conn.execute(sql).fetchone()
    assert conn.info.transaction_status == TransactionStatus.INTRANS
    return row[0]


def test_psycopg_default_transactions_are_cached_repeatable_read_is_not(kv, connect):
    """conn.execute(SELECT) + conn.commit() on a default (autocommit False) connection hits the
    cache; REPEATABLE READ and SERIALIZABLE connections read from Postgres and leave the cached
    answer of READ COMMITTED blocks alone."""
    conn = connect("PGCACHED_DSN")
    for _ in range(3):
        assert _in_block(conn, KV) == "old"
        conn.commit()

    _direct("UPDATE tx_kv SET v = 'changed behind' WHERE id = 1")
    assert _in_block(conn, KV) == "old", "a read in a READ COMMITTED block was not answered from the cache"
    conn.commit()

    for level in (IsolationLevel.REPEATABLE_READ, IsolationLevel.SERIALIZABLE):
        strict = connect("PGCACHED_DSN")
        strict.isolation_level = level  # psycopg then opens blocks with BEGIN ISOLATION LEVEL …
        for _ in range(2):
            assert _in_block(strict, KV) == "changed behind", f"{level.name} block answered from the cache"
            strict.commit()
    assert _in_block(conn, KV) == "old"
    conn.commit()


def test_block_that_writes_a_table_reads_it_from_postgres(kv, connect):
    """A block that updated tx_kv reads its own write (not the cached row), while its reads of
    tables it did not write still come from the cache; after ROLLBACK the old value, after COMMIT
    the new one, as directly."""
    conn = connect("PGCACHED_DSN")
    for sql in (KV, OTHER, KV, OTHER):
        assert _in_block(conn, sql) == "old"
        conn.commit()
    _direct("UPDATE tx_other SET v = 'changed behind' WHERE id = 1")

    conn.execute("UPDATE tx_kv SET v = 'mine' WHERE id = 1")
    assert _in_block(conn, KV) == "mine"
    assert _in_block(conn, OTHER) == "old"  # not written by this block: still a hit
    conn.rollback()
    assert _in_block(conn, KV) == "old"
    conn.commit()

    conn.execute("UPDATE tx_kv SET v = 'mine' WHERE id = 1")
    assert _in_block(conn, KV) == "mine"
    conn.commit()
    other = connect("PGCACHED_DSN")
    assert _in_block(other, KV) == _in_block(connect("DIRECT_DSN"), KV) == "mine"
