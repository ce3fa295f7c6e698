"""Freshness across two pgcached instances in notify mode, with a writer around both of them.

Two pgcached instances (A and B, `cache.invalidation: notify`, the invalidation triggers installed
on the tables) share one Postgres. Writers update and insert rows by key through A (autocommit,
and transactions that commit or roll back) and delete parents whose children go with them; one
writer updates rows directly in Postgres, around both proxies. Readers read the same rows by key
through A and B on both protocols. A read through an instance must not be older than:

- any write acknowledged by that same instance before the read started (its own invalidation
  happens before it acknowledges the commit);
- any write acknowledged elsewhere (the other instance, Postgres directly) more than LAG seconds
  before the read started: those reach it as a NOTIFY, which the bound allows time to arrive.

FRESHNESS_SECONDS (default 8) sets the run time.
"""

import os
import random
import subprocess
import threading
import time

import psycopg
import pytest

from conftest import _dsn

KEYS = 30
LAG = 1.0
TABLES = ["nf_counter", "nf_items", "nf_parent", "nf_child"]


def _notify_setup():
    dsns = os.environ.get("PGCACHED_NOTIFY_DSNS", "")
    bin_, config = os.environ.get("PGCACHED_BIN"), os.environ.get("PGCACHED_NOTIFY_CONFIG")
    if not dsns or not bin_ or not config:
        pytest.skip("PGCACHED_NOTIFY_DSNS / PGCACHED_BIN / PGCACHED_NOTIFY_CONFIG not set (run through integration/run.sh)")
    with psycopg.connect(_dsn("DIRECT_DSN"), autocommit=True) as c:
        c.execute(
            """
            DROP TABLE IF EXISTS nf_counter, nf_items, nf_child, nf_parent CASCADE;
            CREATE TABLE nf_counter (id int PRIMARY KEY, v bigint NOT NULL);
            INSERT INTO nf_counter SELECT g, 0 FROM generate_series(1, %s) g;
            CREATE TABLE nf_items (id int PRIMARY KEY, v bigint NOT NULL);
            CREATE TABLE nf_parent (id int PRIMARY KEY);
            CREATE TABLE nf_child (id int PRIMARY KEY, pid int REFERENCES nf_parent ON DELETE CASCADE);
            """
            % KEYS
        )
    args = [bin_, "install-triggers", "--config", config, "--database", "app"]
    for t in TABLES:
        args += ["--table", t]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return dsns.split("|")


class Acks:
    """Per key: the acknowledged values, with when and through which instance."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acks = {}

    def add(self, key, value, via):
        with self.lock:
            self.acks.setdefault(key, []).append((time.monotonic(), via, value))

    def floor(self, key, reader_via, started):
        with self.lock:
            return max(
                (v for (t, via, v) in self.acks.get(key, []) if t <= (started if via == reader_via else started - LAG)),
                default=0,
            )


def _one(conn, sql, params=None, prepare=False):
    row = conn.execute(sql, params, prepare=prepare).fetchone()
    return row[0] if row else None


def _proxy_writer(dsn, acks, deadline, failures):
    """Through instance A: counters by key, items inserted by key, parents deleted with children."""
    rnd = random.Random(1)
    c = psycopg.connect(dsn, autocommit=True)
    next_item, next_child = 1, 1
    try:
        while time.monotonic() < deadline and not failures:
            step = rnd.random()
            if step < 0.5:
                key = rnd.randint(1, KEYS)
                committed = None
                with c.transaction():
                    v = _one(c, "UPDATE nf_counter SET v = v + 1 WHERE id = %s RETURNING v", (key,))
                    if rnd.random() < 0.3:
                        raise psycopg.Rollback()
                    committed = v
                if committed is not None:
                    acks.add(("counter", key), committed, "A")
            elif step < 0.8:
                c.execute("INSERT INTO nf_items (id, v) VALUES (%s, 1)", (next_item,))
                acks.add(("item", next_item), 1, "A")
                next_item += 1
            else:
                # A parent with one child, then deleted: the child goes with it (value 0 = gone).
                c.execute("INSERT INTO nf_parent (id) VALUES (%s)", (next_child,))
                c.execute("INSERT INTO nf_child (id, pid) VALUES (%s, %s)", (next_child, next_child))
                acks.add(("child", next_child), 1, "A")
                c.execute("DELETE FROM nf_parent WHERE id = %s", (next_child,))
                acks.add(("child", next_child), 2, "A")
                next_child += 1
    finally:
        c.close()
    return next_item, next_child


def _direct_writer(acks, deadline, failures):
    """Around both proxies: counters by key, straight in Postgres."""
    rnd = random.Random(2)
    with psycopg.connect(_dsn("DIRECT_DSN"), autocommit=True) as c:
        while time.monotonic() < deadline and not failures:
            key = rnd.randint(1, KEYS)
            v = _one(c, "UPDATE nf_counter SET v = v + 1 WHERE id = %s RETURNING v", (key,))
            acks.add(("counter", key), v, "direct")
            time.sleep(0.002)


def _reader(name, dsn, seed, acks, deadline, failures, reads):
    rnd = random.Random(seed)
    c = psycopg.connect(dsn, autocommit=True)
    try:
        while time.monotonic() < deadline and not failures:
            kind = rnd.choice(["counter", "item", "child"])
            key = rnd.randint(1, KEYS if kind == "counter" else 60)
            started = time.monotonic()
            floor = acks.floor((kind, key), name, started)
            prepared = rnd.random() < 0.5
            if kind == "counter":
                sql = "SELECT v FROM nf_counter WHERE id = %s"
            elif kind == "item":
                sql = "SELECT count(*) FROM nf_items WHERE id = %s"
            else:
                # 0 before the child exists, 1 while it does, 2 (shown as gone) after the cascade.
                sql = "SELECT count(*) FROM nf_child WHERE id = %s"
            if prepared:
                got = _one(c, sql, (key,), prepare=True)
            else:
                got = _one(c, sql.replace("%s", str(key)))
            if kind == "child":
                # Deleted (by the cascade) before the read: gone. (Created only: it may be
                # deleted while the read runs, so 0 and 1 are both right.)
                if floor == 2 and got != 0:
                    failures.append(f"reader {name}: child {key} count {got}, its cascade delete was acknowledged")
            elif (got or 0) < floor:
                failures.append(f"reader {name}: {kind} {key} read {got}, but {floor} was acknowledged (protocol "
                                f"{'prepared' if prepared else 'simple'})")
            reads[name] += 1
    finally:
        c.close()


def test_two_notify_instances_and_a_writer_around_them_serve_nothing_older_than_acknowledged():
    dsn_a, dsn_b = _notify_setup()
    seconds = float(os.environ.get("FRESHNESS_SECONDS", "8"))
    deadline = time.monotonic() + seconds
    acks, failures, reads = Acks(), [], {"A": 0, "B": 0}
    threads = [
        threading.Thread(target=_proxy_writer, args=(dsn_a, acks, deadline, failures)),
        threading.Thread(target=_direct_writer, args=(acks, deadline, failures)),
        threading.Thread(target=_reader, args=("A", dsn_a, 10, acks, deadline, failures, reads)),
        threading.Thread(target=_reader, args=("B", dsn_b, 11, acks, deadline, failures, reads)),
        threading.Thread(target=_reader, args=("B", dsn_b, 12, acks, deadline, failures, reads)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not failures, "\n".join(failures[:10])
    assert reads["A"] > 100 and reads["B"] > 100, f"the readers read too little to check anything: {reads}"
