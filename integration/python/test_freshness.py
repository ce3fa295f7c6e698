"""Concurrent freshness checker: no read through pgcached is older than a write it acknowledged.

Writers update rows by key through pgcached (autocommit, and transactions that commit or roll
back), delete parents whose children go with them (ON DELETE CASCADE) and insert rows a trigger
audits; readers keep reading the same rows through pgcached on both protocols (simple Query and
prepared statements), so cache fills race the writes. Two checks:

- monotonic counters: a value read is never below the last value a writer had acknowledged
  before the read started (a stale cached answer would be);
- each writer owns some keys and, right after each acknowledged write, reads what it changed
  through other pgcached connections (simple and prepared) and must see exactly that state —
  including the rows Postgres changed on its behalf (the cascade, the trigger's audit rows).

FRESHNESS_SECONDS (default 8) sets the run time.
"""

import os
import random
import threading
import time

import psycopg

from conftest import _dsn

KEYS = 40
WRITERS = 3
READERS = 3


def _setup(direct_dsn):
    with psycopg.connect(direct_dsn, autocommit=True) as c:
        c.execute(
            """
            DROP TABLE IF EXISTS fr_counter, fr_child, fr_parent, fr_audit, fr_owned CASCADE;
            DROP FUNCTION IF EXISTS fr_audit_it();
            CREATE TABLE fr_counter (id int PRIMARY KEY, v bigint NOT NULL);
            INSERT INTO fr_counter SELECT g, 0 FROM generate_series(1, %s) g;
            CREATE TABLE fr_parent (id int PRIMARY KEY);
            CREATE TABLE fr_child (id serial PRIMARY KEY, pid int REFERENCES fr_parent ON DELETE CASCADE);
            CREATE TABLE fr_owned (id int PRIMARY KEY, v bigint NOT NULL);
            CREATE TABLE fr_audit (owner int, v bigint);
            CREATE FUNCTION fr_audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN INSERT INTO fr_audit VALUES (NEW.id, NEW.v); RETURN NEW; END $$;
            CREATE TRIGGER fr_owned_audit AFTER UPDATE ON fr_owned FOR EACH ROW EXECUTE FUNCTION fr_audit_it();
            """
            % KEYS
        )
        for w in range(WRITERS):
            c.execute("INSERT INTO fr_parent VALUES (%s)", (w,))
            c.execute("INSERT INTO fr_owned VALUES (%s, 0)", (w,))


class Acked:
    """The highest value acknowledged per counter key."""

    def __init__(self):
        self.lock = threading.Lock()
        self.value = [0] * (KEYS + 1)

    def raise_to(self, key, v):
        with self.lock:
            self.value[key] = max(self.value[key], v)

    def get(self, key):
        with self.lock:
            return self.value[key]


def _one(conn, sql, params=None, prepare=False):
    row = conn.execute(sql, params, prepare=prepare).fetchone()
    return row[0] if row else None


def _writer(w, dsn, acked, deadline, failures):
    rnd = random.Random(w)
    main = psycopg.connect(dsn, autocommit=True)
    # Two checking connections: one simple protocol (no parameters), one prepared.
    simple = psycopg.connect(dsn, autocommit=True)
    prepared = psycopg.connect(dsn, autocommit=True)
    children = 0
    owned = 0
    try:
        while time.monotonic() < deadline and not failures:
            step = rnd.random()
            if step < 0.5:
                key = rnd.randint(1, KEYS)
                if rnd.random() < 0.5:
                    v = _one(main, "UPDATE fr_counter SET v = v + 1 WHERE id = %s RETURNING v", (key,))
                    acked.raise_to(key, v)
                else:
                    committed = None
                    with main.transaction():
                        v = _one(main, "UPDATE fr_counter SET v = v + 1 WHERE id = %s RETURNING v", (key,))
                        if rnd.random() < 0.3:
                            raise psycopg.Rollback()  # rolled back: nothing acknowledged
                        committed = v
                    if committed is not None:
                        acked.raise_to(key, committed)
            elif step < 0.7:
                main.execute("INSERT INTO fr_child (pid) VALUES (%s)", (w,))
                children += 1
                _expect(w, simple, prepared, f"SELECT count(*) FROM fr_child WHERE pid = {w}",
                        "SELECT count(*) FROM fr_child WHERE pid = %s", (w,), children, failures, "child insert")
            elif step < 0.8:
                # The cascade: the parent's children go with it.
                with main.transaction():
                    main.execute("DELETE FROM fr_parent WHERE id = %s", (w,))
                    main.execute("INSERT INTO fr_parent VALUES (%s)", (w,))
                children = 0
                _expect(w, simple, prepared, f"SELECT count(*) FROM fr_child WHERE pid = {w}",
                        "SELECT count(*) FROM fr_child WHERE pid = %s", (w,), 0, failures, "cascade")
            else:
                owned = _one(main, "UPDATE fr_owned SET v = v + 1 WHERE id = %s RETURNING v", (w,))
                _expect(w, simple, prepared, f"SELECT v FROM fr_owned WHERE id = {w}",
                        "SELECT v FROM fr_owned WHERE id = %s", (w,), owned, failures, "owned row")
                # The trigger's audit row, written by Postgres on the writer's behalf.
                _expect(w, simple, prepared, f"SELECT max(v) FROM fr_audit WHERE owner = {w}",
                        "SELECT max(v) FROM fr_audit WHERE owner = %s", (w,), owned, failures, "trigger")
    finally:
        for c in (main, simple, prepared):
            c.close()


def _expect(w, simple, prepared, simple_sql, sql, params, want, failures, what):
    got_simple = _one(simple, simple_sql)
    got_prepared = _one(prepared, sql, params, prepare=True)
    if got_simple != want or got_prepared != want:
        failures.append(f"writer {w}, {what}: want {want}, simple read {got_simple}, prepared read {got_prepared}")


def _reader(r, dsn, acked, deadline, failures, reads):
    rnd = random.Random(100 + r)
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        while time.monotonic() < deadline and not failures:
            key = rnd.randint(1, KEYS)
            floor = acked.get(key)
            if rnd.random() < 0.5:
                got = _one(conn, f"SELECT v FROM fr_counter WHERE id = {key}")
            else:
                got = _one(conn, "SELECT v FROM fr_counter WHERE id = %s", (key,), prepare=True)
            reads[r] += 1
            if got < floor:
                failures.append(f"reader {r}: key {key} read {got}, but {floor} was acknowledged before the read")
    finally:
        conn.close()


def _run(dsn):
    _setup(_dsn("DIRECT_DSN"))
    seconds = float(os.environ.get("FRESHNESS_SECONDS", "8"))
    deadline = time.monotonic() + seconds
    acked, failures, reads = Acked(), [], [0] * READERS
    threads = [threading.Thread(target=_writer, args=(w, dsn, acked, deadline, failures)) for w in range(WRITERS)]
    threads += [threading.Thread(target=_reader, args=(r, dsn, acked, deadline, failures, reads)) for r in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not failures, "\n".join(failures[:10])
    assert sum(reads) > 100, f"the readers read too little to check anything: {reads}"


def test_no_read_is_older_than_an_acknowledged_write():
    _run(_dsn("PGCACHED_DSN"))


def test_no_read_is_older_than_an_acknowledged_write_in_session_mode():
    _run(_dsn("PGCACHED_SESSION_DSN"))
