"""Runs every statement of the six corpus files against a PostgreSQL database (connection from
the usual PG* environment variables; capture.sh points it at the capture database) and reports
how many ran without error.

File format: chunks separated by lines containing only `-- next`; in each chunk, the leading
lines that are blank or start with `--` are annotations (the file header, `-- needs:` / `-- note:` lines),
the rest is the statement.  A statement with bind parameters $1..$n is run as
PREPARE v AS <stmt>; EXECUTE v(NULL, ...), everything inside BEGIN ... ROLLBACK.
Exit status 0 when every statement without a `-- needs:` annotation succeeded."""
import os
import re
import subprocess
import sys

FILES = ["psql", "pgjdbc", "sqlalchemy", "metabase", "superset", "dbeaver"]


def parse(path):
    text = open(path).read()
    out = []
    for chunk in re.split(r"^-- next$\n?", text, flags=re.M):
        lines = chunk.split("\n")
        notes = []
        while lines and (lines[0].startswith("--") or not lines[0].strip()):
            line = lines.pop(0)
            if line.strip():
                notes.append(line)
        stmt = "\n".join(lines).strip()
        if stmt:
            out.append((notes, stmt))
    return out


def nparams(sql):
    s = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return max([int(n) for n in re.findall(r"\$(\d+)", s)] or [0])


def run(stmt):
    n = nparams(stmt)
    if n:
        body = f"PREPARE corpus_v AS {stmt}\n;\nEXECUTE corpus_v({', '.join(['NULL'] * n)})"
    else:
        body = stmt
    script = f"BEGIN;\n{body}\n;\nROLLBACK"
    p = subprocess.run(["psql", "-X", "-q", "-At", "-c", script], capture_output=True, text=True)
    err = "\n".join(l for l in p.stderr.splitlines() if "ERROR" in l)
    return p.returncode == 0 and not err, err


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad_total = 0
    for name in FILES:
        path = os.path.join(d, name + ".sql")
        if not os.path.exists(path):
            print(f"{name}: missing")
            continue
        stmts = parse(path)
        ok = needs = 0
        for i, (notes, stmt) in enumerate(stmts, 1):
            good, err = run(stmt)
            needs_note = any(n.startswith("-- needs:") for n in notes)
            if good:
                ok += 1
            elif needs_note:
                needs += 1
                print(f"  {name}#{i} failed as expected ({'; '.join(notes)}): {err}")
            else:
                bad_total += 1
                print(f"  {name}#{i} FAILED: {err}\n      {stmt[:160]!r}")
        with_params = sum(1 for _, s in stmts if nparams(s))
        print(f"{name}: {len(stmts)} statements ({with_params} with $n), {ok} ran without error, "
              f"{needs} failed with a `-- needs:` note, {len(stmts) - ok - needs} failed")
    sys.exit(1 if bad_total else 0)


if __name__ == "__main__":
    main()
