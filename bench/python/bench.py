"""litepool vs the stdlib sqlite3, side by side: one process per (module, case), since two
SQLite copies must not open one file in one process. Prints wall and CPU time per operation
and the stdlib/litepool ratios (> 1.0 means litepool is faster / uses less CPU).

    python bench/python/bench.py [--quick]
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROWS = 100_000
POINT_KEYS = 1000


def setup(path):
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)")
    c.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value-{i}") for i in range(POINT_KEYS)))
    c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL)")
    c.executemany(
        "INSERT INTO big VALUES (?, ?, ?, ?)",
        ((i, i * 7, f"row {i}", i / 3) for i in range(ROWS)),
    )
    c.execute("CREATE TABLE sink(a INTEGER, b TEXT)")
    c.commit()
    c.close()


def case_point(mod, path, n):
    c = mod.connect(path)
    q = "SELECT v FROM kv WHERE id = ?"
    for i in range(n):
        c.execute(q, (i % POINT_KEYS,)).fetchone()
    c.close()
    return n


def case_connect(mod, path, n):
    q = "SELECT v FROM kv WHERE id = ?"
    for i in range(n):
        c = mod.connect(path)
        c.execute(q, (i % POINT_KEYS,)).fetchone()
        c.close()
    return n


def case_fetchall(mod, path, n):
    c = mod.connect(path)
    for _ in range(n):
        rows = c.execute("SELECT id, a, b, c FROM big").fetchall()
        assert len(rows) == ROWS
    c.close()
    return n


def case_executemany(mod, path, n):
    c = mod.connect(path)
    data = [(i, f"x{i}") for i in range(ROWS)]
    for _ in range(n):
        c.executemany("INSERT INTO sink VALUES (?, ?)", data)
        c.commit()
        c.execute("DELETE FROM sink")
        c.commit()
    c.close()
    return n


def case_threads(mod, path, n):
    q = "SELECT v FROM kv WHERE id = ?"
    per = n // 4

    def work():
        c = mod.connect(path)
        for i in range(per):
            c.execute(q, (i % POINT_KEYS,)).fetchone()
        c.close()

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * 4


CASES = {
    "point select, reused connection": (case_point, 50_000),
    "connect + query + close": (case_connect, 5_000),
    "fetchall 100k rows": (case_fetchall, 5),
    "executemany 100k rows": (case_executemany, 3),
    "point select, 4 threads": (case_threads, 40_000),
}


def worker(module, case, path, n):
    import importlib

    mod = importlib.import_module(module)
    fn, _ = CASES[case]
    fn(mod, path, max(1, n // 20))  # warm up
    w0, c0 = time.perf_counter(), time.process_time()
    ops = fn(mod, path, n)
    w1, c1 = time.perf_counter(), time.process_time()
    if module == "litepool":
        mod.open(path).close()
    print(json.dumps({"wall": (w1 - w0) / ops, "cpu": (c1 - c0) / ops}))


def fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.2f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def main():
    quick = "--quick" in sys.argv
    results = []
    with tempfile.TemporaryDirectory() as d:
        for case, (_, n) in CASES.items():
            if quick:
                n = max(1, n // 10)
            row = {}
            for module in ("sqlite3", "litepool"):
                path = os.path.join(d, f"{module}-{len(results)}.db")
                setup(path)
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", module, case, path, str(n)],
                    capture_output=True, text=True, check=True,
                ).stdout
                row[module] = json.loads(out.strip().splitlines()[-1])
            results.append((case, row))
    print(f"{'case':34} {'stdlib wall':>12} {'litepool wall':>14} {'wall ×':>7} "
          f"{'stdlib CPU':>12} {'litepool CPU':>13} {'CPU ×':>6}")
    for case, row in results:
        s, l = row["sqlite3"], row["litepool"]
        print(f"{case:34} {fmt(s['wall']):>12} {fmt(l['wall']):>14} {s['wall'] / l['wall']:7.2f} "
              f"{fmt(s['cpu']):>12} {fmt(l['cpu']):>13} {s['cpu'] / l['cpu']:6.2f}")
    print("(per operation; × = stdlib / litepool, above 1.0 is litepool ahead)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
