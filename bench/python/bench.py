"""litepool vs the stdlib sqlite3 and apsw, side by side in one run.

Each (module, case) runs in its own process, so two SQLite copies never open one file in one
process and no module's caches warm another's. Every database is WAL with synchronous=NORMAL
on every side (litepool's default; set on the stdlib's and apsw's connections that write), so
commits are equally durable. Prints wall and process CPU time per operation (CPU counts every
thread of the process, litepool's connection threads included) and the peer/litepool ratios:
above 1.0 means litepool is faster or uses less CPU.

    python bench/python/bench.py [--quick] [--out DIR] [--only TEXT]

Writes DIR/python.json (raw figures) and DIR/python.md (the table); DIR defaults to the
repository's target/bench.

`--quick` divides every operation count by 10 (a smoke run). `--only TEXT` runs only the cases
whose name contains TEXT (and writes no files). LITEPOOL_BENCH_SCALE (a positive
number) multiplies every count but the FD case's 100,000 ticks.
"""

import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROWS = 100_000
POINT_KEYS = 10_000
POINT_SQL = "SELECT v FROM kv WHERE id = ?"
SCAN_SQL = "SELECT id, a, b, c FROM big"
INSERT_SQL = "INSERT INTO sink(a, b) VALUES (?, ?)"
MODULES = ("sqlite3", "apsw", "litepool")


def setup(path):
    """Creates the benchmark database with the stdlib (before any worker process opens it)."""
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    c.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value-{i:08}") for i in range(POINT_KEYS)))
    c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL)")
    c.executemany(
        "INSERT INTO big VALUES (?, ?, ?, ?)",
        ((i, i * 7, f"row {i}", i / 3) for i in range(ROWS)),
    )
    c.execute("CREATE TABLE sink(a INTEGER, b TEXT)")
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def key(i):
    return i * 7919 % POINT_KEYS


class DbApi:
    """The stdlib and litepool: the same DB-API code runs on both."""

    def __init__(self, mod):
        self.mod = mod
        self.stdlib = mod.__name__ == "sqlite3"

    def connect(self, path, write=False, autocommit=False):
        c = self.mod.connect(path, isolation_level=None) if autocommit else self.mod.connect(path)
        if write and self.stdlib:
            c.execute("PRAGMA synchronous=NORMAL")  # litepool's default; the stdlib's is FULL
        return c

    def point(self, c, k):
        return c.execute(POINT_SQL, (k,)).fetchone()

    def fetchall(self, c):
        return c.execute(SCAN_SQL).fetchall()

    def executemany(self, c, data):
        c.executemany(INSERT_SQL, data)
        c.commit()

    def insert_commit(self, c, i):
        c.execute(INSERT_SQL, (i, "x"))
        c.commit()

    def insert_autocommit(self, c, i):
        c.execute(INSERT_SQL, (i, "x"))

    def clear(self, c):
        c.execute("DELETE FROM sink")
        c.commit()


class Apsw:
    """apsw: autocommit by default, so batches are wrapped in a transaction explicitly."""

    def __init__(self, mod):
        self.mod = mod

    def connect(self, path, write=False, autocommit=False):
        c = self.mod.Connection(path)
        c.setbusytimeout(5000)
        if write:
            c.execute("PRAGMA synchronous=NORMAL")
        return c

    def point(self, c, k):
        return c.execute(POINT_SQL, (k,)).fetchone()

    def fetchall(self, c):
        return c.execute(SCAN_SQL).fetchall()

    def executemany(self, c, data):
        with c:
            c.executemany(INSERT_SQL, data)

    def insert_commit(self, c, i):
        c.execute(INSERT_SQL, (i, "x"))

    def insert_autocommit(self, c, i):
        c.execute(INSERT_SQL, (i, "x"))

    def clear(self, c):
        c.execute("DELETE FROM sink")


def in_threads(threads, n, work):
    """Runs `work(thread_index, count)` in `threads` threads, `n` operations in all."""
    per = max(1, n // threads)
    ts = [threading.Thread(target=work, args=(t, per)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads


def case_point(db, path, n):
    c = db.connect(path)
    for i in range(n):
        db.point(c, key(i))
    c.close()
    return n


def case_connect(db, path, n):
    for i in range(n):
        c = db.connect(path)
        db.point(c, key(i))
        c.close()
    return n


def case_fetchall(db, path, n):
    c = db.connect(path)
    for _ in range(n):
        assert len(db.fetchall(c)) == ROWS
    c.close()
    return n


def case_executemany(db, path, n):
    c = db.connect(path, write=True)
    data = [(i, f"x{i}") for i in range(ROWS)]
    for _ in range(n):
        db.executemany(c, data)
        db.clear(c)
    c.close()
    return n


def case_insert(db, path, n):
    c = db.connect(path, write=True)
    for i in range(n):
        db.insert_commit(c, i)
    c.close()
    return n


def readers(threads):
    def case(db, path, n):
        def work(t, count):
            c = db.connect(path)
            for i in range(count):
                db.point(c, key(t * count + i))
            c.close()

        return in_threads(threads, n, work)

    return case


def case_writers(db, path, n):
    def work(t, count):
        c = db.connect(path, write=True)
        for i in range(count):
            db.insert_commit(c, t * count + i)
        c.close()

    return in_threads(8, n, work)


def case_autocommit_writers(db, path, n):
    """8 threads, each inserting single rows in autocommit (`isolation_level=None`; apsw is
    autocommit already): every INSERT is its own transaction, which group commit may batch
    with other sessions' (an explicit transaction, as `insert + commit` runs, never is)."""

    def work(t, count):
        c = db.connect(path, write=True, autocommit=True)
        for i in range(count):
            db.insert_autocommit(c, t * count + i)
        c.close()

    return in_threads(8, n, work)


def fd_count():
    return len(os.listdir("/proc/self/fd")) - 1  # minus the directory being listed


def case_ticks(db, path, n):
    """The per-tick pattern of services: `with connect(p) as c:` (commits, never closes), the
    garbage collector left at its defaults. Reports the FDs held after the last tick and the
    most seen (sampled every 100 ticks)."""
    base = fd_count()
    most = 0
    for i in range(n):
        with db.mod.connect(path) as c:
            c.execute(POINT_SQL, (key(i),)).fetchone()
        if i % 100 == 0:
            most = max(most, fd_count() - base)
    return n, {"fds_end": fd_count() - base, "fds_max": max(most, fd_count() - base)}


# name -> (function, operations, warm up?, modules)
CASES = {
    "point select, reused connection": (case_point, 100_000, True, MODULES),
    "connect + query + close": (case_connect, 10_000, True, MODULES),
    "fetchall 100k rows": (case_fetchall, 5, True, MODULES),
    "executemany 100k rows (+ commit)": (case_executemany, 3, True, MODULES),
    "insert one row + commit": (case_insert, 10_000, True, MODULES),
    "point select, 4 threads": (readers(4), 100_000, True, MODULES),
    "point select, 16 threads": (readers(16), 100_000, True, MODULES),
    "8 threads, each insert + commit": (case_writers, 10_000, True, MODULES),
    "8 threads, autocommit inserts": (case_autocommit_writers, 10_000, True, MODULES),
    "per-tick `with connect()` (no close), 100k ticks": (case_ticks, 100_000, False, ("sqlite3", "litepool")),
}
TICKS = "per-tick `with connect()` (no close), 100k ticks"


def worker(module, case, path, n):
    import importlib

    mod = importlib.import_module(module)
    db = Apsw(mod) if module == "apsw" else DbApi(mod)
    fn, _, warm, _ = CASES[case]
    if warm:
        fn(db, path, max(1, n // 20))
    gc.collect()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(db, path, n)
    w1, c1 = time.perf_counter(), time.process_time()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    ops, extra = out if isinstance(out, tuple) else (out, {})
    if module == "litepool":
        mod.open(path).close()
    # Context switches of all the process's threads per operation (voluntary: a thread
    # parked; involuntary: it was preempted).
    switches = {"vcsw": (r1.ru_nvcsw - r0.ru_nvcsw) / ops, "ivcsw": (r1.ru_nivcsw - r0.ru_nivcsw) / ops}
    print(json.dumps({"wall": (w1 - w0) / ops, "cpu": (c1 - c0) / ops, "ops": ops, **switches, **extra}))


def versions():
    out = {"python": platform.python_version()}
    for module in MODULES:
        code = (
            "import sys, importlib, importlib.metadata as md; m = importlib.import_module(sys.argv[1]);"
            "print(md.version(sys.argv[1]) if sys.argv[1] != 'sqlite3' else '', "
            "m.sqlite_version if hasattr(m, 'sqlite_version') else m.sqlite_lib_version())"
        )
        r = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True)
        out[module] = r.stdout.strip() or "unavailable: " + r.stderr.strip().splitlines()[-1]
    return out


def fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"


def scale_factor(quick):
    s = float(os.environ.get("LITEPOOL_BENCH_SCALE", "1"))
    if s <= 0:
        raise SystemExit("LITEPOOL_BENCH_SCALE must be a positive number")
    return s / 10 if quick else s


def markdown(results, info):
    lines = [
        f"Python {info['python']}; stdlib sqlite3 (the system's SQLite {info['sqlite3'].split()[-1]}), "
        f"apsw {info['apsw'].replace(' ', ' (SQLite ')}), litepool {info['litepool'].replace(' ', ' (SQLite ')}). "
        "WAL, synchronous=NORMAL on every side. Per operation; × = peer / litepool "
        "(above 1.0: litepool faster / less CPU).",
        "",
        "| case | sqlite3 wall | apsw wall | litepool wall | × sqlite3 | × apsw "
        "| sqlite3 CPU | apsw CPU | litepool CPU | CPU × sqlite3 | CPU × apsw |",
        "| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    fds = []
    for case, row in results:
        lp = row["litepool"]

        def cell(m, k):
            return fmt(row[m][k]) if m in row else "—"

        def ratio(m, k):
            return f"{row[m][k] / lp[k]:.2f}" if m in row else "—"

        lines.append(
            f"| {case} | {cell('sqlite3', 'wall')} | {cell('apsw', 'wall')} | {fmt(lp['wall'])} "
            f"| {ratio('sqlite3', 'wall')} | {ratio('apsw', 'wall')} "
            f"| {cell('sqlite3', 'cpu')} | {cell('apsw', 'cpu')} | {fmt(lp['cpu'])} "
            f"| {ratio('sqlite3', 'cpu')} | {ratio('apsw', 'cpu')} |"
        )
        for m, r in row.items():
            if "fds_end" in r:
                fds.append(f"| {m} | {r['ops']:,} | {r['fds_end']} | {r['fds_max']} | {fmt(r['wall'])} |")
    if fds:
        lines += [
            "",
            "Per-tick pattern (`with connect(p) as c:` never closes; GC at its defaults): FDs the "
            "process holds beyond its start, from /proc/self/fd.",
            "",
            "| module | ticks | FDs at the end | most FDs seen | wall per tick |",
            "| :-- | --: | --: | --: | --: |",
            *fds,
        ]
    return "\n".join(lines)


def main():
    quick = "--quick" in sys.argv
    scale = scale_factor(quick)
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv[:-1] else None
    info = versions()
    results = []
    with tempfile.TemporaryDirectory() as d:
        for case, (_, n, _, modules) in CASES.items():
            if only is not None and only not in case:
                continue
            # The FD pattern is defined by its tick count: LITEPOOL_BENCH_SCALE leaves it alone.
            n = max(1, int(n * (scale if case != TICKS else (0.1 if quick else 1))))
            row = {}
            for module in modules:
                if info[module].startswith("unavailable"):
                    continue
                path = os.path.join(d, f"{module}-{len(results)}.db")
                setup(path)
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", module, case, path, str(n)],
                    capture_output=True, text=True,
                )
                if out.returncode != 0:
                    raise SystemExit(f"{module} / {case} failed:\n{out.stderr}")
                row[module] = json.loads(out.stdout.strip().splitlines()[-1])
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(path + suffix):
                        os.remove(path + suffix)
            results.append((case, row))
            print(f"  done: {case}", file=sys.stderr, flush=True)
    table = markdown(results, info)
    print(table)
    if only is not None:
        return
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "bench")
    if "--out" in sys.argv[:-1]:
        out = sys.argv[sys.argv.index("--out") + 1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "python.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "python.json"), "w") as f:
        json.dump({"info": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
