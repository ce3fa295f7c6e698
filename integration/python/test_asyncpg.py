"""asyncpg through pgcached (transaction pooling, pool of 5), compared with the same run direct.

asyncpg's statement cache is on (its default): every query is a *named* prepared statement
(`__asyncpg_stmt_N__`), prepared once per client connection and reused in later transactions,
which under transaction pooling land on other server connections. Plain asyncio.run, no plugin.
"""

import asyncio
import datetime as dt
import decimal
import json
import os
import uuid

import asyncpg
import pytest

TASKS = 20
ROUNDS = 8


def _kw(var):
    dsn = os.environ.get(var)
    if not dsn:
        pytest.skip(f"{var} not set (run through integration/run.sh)")
    kw = dict(part.split("=", 1) for part in dsn.split())
    return dict(host=kw["host"], port=int(kw["port"]), user=kw["user"], database=kw["dbname"])


async def _connect(var, **extra):
    conn = await asyncpg.connect(**_kw(var), timeout=10, **extra)
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


def _rows(records):
    return [tuple(r.items()) for r in records]


async def _setup(var):
    conn = await _connect(var)
    try:
        await conn.execute("DROP TABLE IF EXISTS apg_items")
        await conn.execute(
            "CREATE TABLE apg_items (task int, n int, name text, price numeric, at timestamptz,"
            " tags text[], blob bytea, PRIMARY KEY (task, n))"
        )
    finally:
        await conn.close()


async def _task(var, t, barrier):
    """One client's workload; returns everything it observed, in order."""
    out = []
    conn = await _connect(var)
    try:
        await barrier.wait()  # all 20 connected before anyone starts: 20 clients, 5 servers
        base = dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone.utc)
        for r in range(ROUNDS):
            # fetch with parameters of several types (the same statements every round: cached)
            rows = await conn.fetch(
                "SELECT $1::int4 + g AS i, $2::text || g AS t, $3::numeric * g AS num, $4::date + g AS d,"
                " $5::timestamptz + make_interval(hours => g) AS ts, $6::bytea AS b, $7::uuid AS u,"
                " $8::jsonb AS j, $9::int8[] AS a, $10::bool AS yes, $11::float8 AS f"
                " FROM generate_series(1, 3) g",
                t * 100 + r, f"task{t}-", decimal.Decimal("1.25"), dt.date(2000, 1, 1), base,
                bytes([t, r, 0, 255]), uuid.UUID(int=t * 1000 + r), {"t": t, "r": [r, None]},
                [t, r, -(2**63)], r % 2 == 0, 0.5 * r,
            )
            out.append(_rows(rows))
            out.append(tuple((await conn.fetchrow("SELECT $1::text AS a, $2::int AS b, NULL::text AS c", f"r{r}", r)).items()))
            out.append(await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = $1", "apg_items"))
            # executemany: one Parse, many Bind/Execute in one batch
            await conn.executemany(
                "INSERT INTO apg_items VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(t, r * 10 + i, f"item {t}/{r}/{i}", decimal.Decimal(i) / 3, base + dt.timedelta(minutes=i),
                  [f"x{i}", None], bytes([i])) for i in range(5)],
            )
            # an explicit transaction with a savepoint that fails and is rolled back
            async with conn.transaction():
                await conn.execute("UPDATE apg_items SET price = price + $1 WHERE task = $2 AND n = $3",
                                   decimal.Decimal("0.5"), t, r * 10)
                try:
                    async with conn.transaction():
                        await conn.execute("INSERT INTO apg_items (task, n) VALUES ($1, $2)", t, r * 10)
                except asyncpg.UniqueViolationError as e:
                    out.append(("unique", e.sqlstate))
                out.append(await conn.fetchval("SELECT price FROM apg_items WHERE task = $1 AND n = $2", t, r * 10))
            # an error outside a transaction, then recovery on the same connection
            try:
                await conn.fetchval("SELECT 1 / $1::int", 0)
            except asyncpg.DivisionByZeroError as e:
                out.append(("div0", e.sqlstate, str(e)))
            try:
                await conn.fetch("SELECT * FROM apg_no_such_table WHERE x = $1", 1)
            except asyncpg.UndefinedTableError as e:
                out.append(("undef", e.sqlstate, str(e)))
            out.append(await conn.fetchval("SELECT $1::text", "recovered"))
            # an explicit prepared statement object reused across transactions
            stmt = await conn.prepare("SELECT n, name, tags FROM apg_items WHERE task = $1 AND n < $2 ORDER BY n")
            out.append(_rows(await stmt.fetch(t, r * 10 + 3)))
            out.append(tuple((await stmt.fetchrow(t, 2)) or ()))
            await asyncio.sleep(0)
        out.append(await conn.fetchval("SELECT count(*) FROM apg_items WHERE task = $1", t))
    finally:
        await conn.close()
    return out


async def _workload(var):
    await _setup(var)
    barrier = asyncio.Barrier(TASKS)
    results = await asyncio.wait_for(
        asyncio.gather(*(_task(var, t, barrier) for t in range(TASKS)), return_exceptions=True), 120
    )
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return errors, results


def test_asyncpg_20_tasks_statement_cache():
    want_err, want = asyncio.run(_workload("DIRECT_DSN"))
    assert want_err == []
    got_err, got = asyncio.run(_workload("PGCACHED_DSN"))
    assert got_err == []
    for t in range(TASKS):
        assert got[t] == want[t], f"task {t} differs through pgcached"
    assert want[0][-1] == ROUNDS * 5


async def _pool_run(var):
    """asyncpg.Pool (20 connections) + concurrent acquire/release (its reset query) + prepare."""
    pool = await asyncpg.create_pool(**_kw(var), min_size=20, max_size=20, timeout=10)
    try:
        async def one(i):
            async with pool.acquire() as c:
                async with c.transaction():
                    a = await c.fetchval("SELECT $1::int * 2", i)
                    b = await c.fetchrow("SELECT $1::text AS s, $2::int[] AS arr", str(i), [i, i + 1])
            return a, tuple(b.items())
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(400))), 120)
    finally:
        await pool.close()


def test_asyncpg_pool():
    want = asyncio.run(_pool_run("DIRECT_DSN"))
    got = asyncio.run(_pool_run("PGCACHED_DSN"))
    assert got == want and want[7] == (14, (("s", "7"), ("arr", [7, 8])))


async def _schema_change(var):
    """A cached statement whose result type changes under it (a migration): asyncpg gets
    'cached plan must not change result type' (0A000) and re-prepares; outside a transaction it
    retries by itself, inside one it raises InvalidCachedStatementError."""
    out = []
    conn = await _connect(var)
    try:
        await conn.execute("DROP TABLE IF EXISTS apg_schema")
        await conn.execute("CREATE TABLE apg_schema (id int, v int)")
        await conn.execute("INSERT INTO apg_schema VALUES (1, 10)")
        out.append(_rows(await conn.fetch("SELECT * FROM apg_schema WHERE id = $1", 1)))
        await conn.execute("ALTER TABLE apg_schema ADD COLUMN w text DEFAULT 'x'")
        out.append(_rows(await conn.fetch("SELECT * FROM apg_schema WHERE id = $1", 1)))
        await conn.execute("ALTER TABLE apg_schema ALTER COLUMN v TYPE bigint")
        try:
            async with conn.transaction():
                out.append(_rows(await conn.fetch("SELECT * FROM apg_schema WHERE id = $1", 1)))
        except asyncpg.InvalidCachedStatementError as e:
            out.append(("invalid-cached", e.sqlstate))
        out.append(_rows(await conn.fetch("SELECT * FROM apg_schema WHERE id = $1", 1)))
        await conn.execute("DROP TABLE apg_schema")
    finally:
        await conn.close()
    return out


def test_asyncpg_cached_statement_after_schema_change():
    want = asyncio.run(_schema_change("DIRECT_DSN"))
    got = asyncio.run(_schema_change("PGCACHED_DSN"))
    assert got == want
    assert want[-1] == [(("id", 1), ("v", 10), ("w", "x"))]
