"""Soak load for bench/soak.sh: a steady mixed load through pgcached while Postgres is restarted
periodically; samples pgcached's RSS and every error, then writes a CSV, a PNG and a summary.

Run by bench/soak.sh (which starts the private Postgres and pgcached and passes everything by
environment); not meant to be run by hand.

Environment:
  SOAK_DSN           libpq DSN of pgcached
  SOAK_PID           pgcached's process id (RSS from /proc/PID/status)
  SOAK_METRICS       URL of pgcached's /metrics
  SOAK_RESTART_CMD   shell command that restarts Postgres (fast shutdown, waits for the start)
  SOAK_SECONDS       duration (default 1800)
  SOAK_RESTART_EVERY seconds between restarts (default 300)
  SOAK_WORKERS       client threads (default 16)
  SOAK_RATE          operations per second, all workers together (default 800)
  SOAK_KEYS          rows in kv (default 10000)
  SOAK_OUT           directory for soak.csv, soak.png, summary.md
"""

import csv
import os
import random
import re
import subprocess
import threading
import time
import urllib.request
from collections import Counter

import logging

import psycopg

DSN = os.environ["SOAK_DSN"]
PID = int(os.environ["SOAK_PID"])
METRICS = os.environ["SOAK_METRICS"]
RESTART_CMD = os.environ["SOAK_RESTART_CMD"]
SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
RESTART_EVERY = float(os.environ.get("SOAK_RESTART_EVERY", "300"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "16"))
RATE = float(os.environ.get("SOAK_RATE", "800"))
KEYS = int(os.environ.get("SOAK_KEYS", "10000"))
OUT = os.environ["SOAK_OUT"]
SAMPLE_EVERY = 5.0
# RSS is compared after the warm-up (cache and pools filled).
SETTLE = min(120.0, SECONDS / 4)
# An error within this many seconds after a restart began is counted as caused by it.
RESTART_WINDOW = 10.0

lock = threading.Lock()
ops = Counter()  # sample bucket -> operations completed
errors = []  # (time since start, sqlstate or class, message)
restarts = []  # (began, ended) since start
recoveries = []  # seconds from a restart's end to the first success after it
stop = threading.Event()
start = time.monotonic()


def now():
    return time.monotonic() - start


def hot_key():
    # Zipf-like: a few keys take most reads, so the cache has something to hit.
    return min(KEYS, int(random.paretovariate(1.2)))


def one_operation(conn, rng):
    """One operation of the mix; returns nothing, raises on error."""
    r = rng.random()
    k = hot_key()
    if r < 0.60:
        conn.execute("SELECT k, v, note FROM kv WHERE k = %s", (k,)).fetchall()
    elif r < 0.70:
        lo = rng.randint(1, KEYS - 50)
        conn.execute("SELECT count(*), sum(v) FROM kv WHERE k BETWEEN %s AND %s", (lo, lo + 50)).fetchall()
    elif r < 0.75:
        # A statement text seen once: keeps the analysis memo and the cache's churn busy.
        conn.execute(f"SELECT k, v FROM kv WHERE k = {rng.randint(1, KEYS)} AND v >= {rng.randint(-5, 0)}").fetchall()
    elif r < 0.85:
        conn.execute("UPDATE kv SET v = v + 1 WHERE k = %s", (rng.randint(1, KEYS),))
    elif r < 0.90:
        conn.execute("INSERT INTO events (k, note) VALUES (%s, %s)", (k, "soak"))
    elif r < 0.92:
        conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 5)")
    else:
        # An ORM-style transaction: reads, one write, commit.
        with conn.transaction():
            conn.execute("SELECT k, v FROM kv WHERE k = %s", (k,)).fetchall()
            conn.execute("SELECT count(*) FROM events WHERE k = %s", (k,)).fetchall()
            conn.execute("UPDATE kv SET note = %s WHERE k = %s", (f"t{rng.randint(0, 9)}", k))


def classify(exc):
    state = getattr(exc, "sqlstate", None)
    if state:
        return state
    return type(exc).__name__


def worker(seed):
    rng = random.Random(seed)
    interval = WORKERS / RATE
    conn = None
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()  # behind: do not burst to catch up
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
            one_operation(conn, rng)
            t = now()
            with lock:
                ops[int(t // SAMPLE_EVERY)] += 1
                if restarts and restarts[-1][1] is not None and len(recoveries) < len(restarts):
                    recoveries.append(t - restarts[-1][1])
        except psycopg.Error as e:
            with lock:
                errors.append((now(), classify(e), str(e).strip().splitlines()[0][:160]))
            if conn is not None and (conn.closed or conn.broken):
                conn = None
            time.sleep(0.05)
    if conn is not None:
        conn.close()


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(text, name):
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def sampler(rows):
    while not stop.wait(SAMPLE_EVERY):
        try:
            text = urllib.request.urlopen(METRICS, timeout=5).read().decode()
        except OSError:
            text = ""
        t = now()
        with lock:
            done = ops[int(t // SAMPLE_EVERY) - 1]
            errs = sum(1 for e in errors if t - SAMPLE_EVERY <= e[0] < t)
        rows.append(
            {
                "seconds": round(t, 1),
                "rss_mib": round(rss_kib() / 1024, 1),
                "ops_per_s": round(done / SAMPLE_EVERY, 1),
                "errors": errs,
                "cache_bytes": int(metric(text, "pgcached_cache_bytes")),
                "cache_hits": int(metric(text, "pgcached_cache_hits_total")),
                "cache_misses": int(metric(text, "pgcached_cache_misses_total")),
            }
        )


def restarter():
    while not stop.wait(RESTART_EVERY):
        began = now()
        with lock:
            restarts.append((began, None))
        subprocess.run(RESTART_CMD, shell=True, check=True, stdout=subprocess.DEVNULL)
        with lock:
            restarts[-1] = (began, now())


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["seconds"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(t, [r["rss_mib"] for r in rows], color="tab:blue")
    axes[0].set_ylabel("pgcached RSS (MiB)")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(t, [r["ops_per_s"] for r in rows], color="tab:green")
    axes[1].set_ylabel("operations/s")
    axes[1].set_ylim(bottom=0)
    axes[2].bar(t, [r["errors"] for r in rows], width=SAMPLE_EVERY / 60, color="tab:red")
    axes[2].set_ylabel("errors per 5 s")
    axes[2].set_xlabel("minutes")
    for began, ended in restarts:
        for ax in axes:
            ax.axvspan(began / 60, (ended or began) / 60 + 0.05, color="grey", alpha=0.3)
    fig.suptitle("pgcached soak: mixed load, Postgres restarted every %d s (grey)" % RESTART_EVERY)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "soak.png"), dpi=80)


def unexplained_errors():
    """Errors more than RESTART_WINDOW seconds after every restart's beginning."""
    return [e for e in errors if not any(b <= e[0] <= b + RESTART_WINDOW for b, _ in restarts)]


def rss_thirds(rows):
    """The largest RSS (MiB) in the first and in the last third of the run after the warm-up."""
    third = (SECONDS - SETTLE) / 3
    first = max((r["rss_mib"] for r in rows if SETTLE < r["seconds"] <= SETTLE + third), default=0)
    last = max((r["rss_mib"] for r in rows if r["seconds"] > SECONDS - third), default=0)
    return first, last


def summary(rows):
    total = sum(ops.values())
    by_state = Counter(e[1] for e in errors)
    outside = unexplained_errors()
    settled = [r["rss_mib"] for r in rows if r["seconds"] > SETTLE]
    first, last = rss_thirds(rows)
    lines = [
        f"- duration {SECONDS / 60:.0f} min, {WORKERS} clients at {RATE:.0f} ops/s offered, "
        f"{len(restarts)} Postgres restarts (every {RESTART_EVERY:.0f} s, `pg_ctl restart -m fast`)",
        f"- operations completed: {total} ({total / SECONDS:.0f}/s)",
        f"- errors: {len(errors)} ({', '.join(f'{k} x{v}' for k, v in by_state.most_common()) or 'none'}); "
        f"outside the {RESTART_WINDOW:.0f} s after a restart began: {len(outside)}",
        f"- recovery after each restart (restart done -> next success): "
        + (", ".join(f"{r:.2f} s" for r in recoveries) or "n/a")
        + (f"; max {max(recoveries):.2f} s" if recoveries else ""),
        "- restart durations (pg_ctl): " + ", ".join(f"{(e or b) - b:.1f} s" for b, e in restarts),
        f"- pgcached RSS: max {max(settled, default=0):.1f} MiB after the first {SETTLE:.0f} s; "
        f"first third max {first:.1f} MiB, last third max {last:.1f} MiB",
    ]
    if rows:
        hits, misses = rows[-1]["cache_hits"], rows[-1]["cache_misses"]
        if hits + misses:
            lines.append(f"- cache hit ratio over the run: {hits / (hits + misses):.3f}")
    for e in outside[:10]:
        lines.append(f"  - unexpected at {e[0]:.1f} s: {e[1]} {e[2]}")
    return "\n".join(lines)


def main():
    # psycopg logs the failed ROLLBACK of a transaction whose connection broke; counted already.
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    rows = []
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    threads.append(threading.Thread(target=sampler, args=(rows,), daemon=True))
    threads.append(threading.Thread(target=restarter, daemon=True))
    for th in threads:
        th.start()
    stop.wait(SECONDS)
    stop.set()
    for th in threads:
        th.join(timeout=30)
    with open(os.path.join(OUT, "soak.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["seconds"])
        w.writeheader()
        w.writerows(rows)
    plot(rows)
    text = summary(rows)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    # The verdict: errors only where a restart explains them, back within 2 s, RSS flat.
    first, last = rss_thirds(rows)
    unexplained = unexplained_errors()
    failed = []
    if unexplained:
        failed.append(f"{len(unexplained)} errors not explained by a restart")
    if recoveries and max(recoveries) > 2.0:
        failed.append(f"a recovery took {max(recoveries):.2f} s (> 2 s)")
    if last > first * 1.25 + 8:
        failed.append(f"RSS grew: last third {last:.1f} MiB vs first third {first:.1f} MiB")
    print("verdict: " + ("FAIL: " + "; ".join(failed) if failed else "PASS"))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
