"""litepool.aio vs aiosqlite, side by side: one process per (module, case), since aiosqlite
uses the stdlib's SQLite, a second copy of the library. Prints wall and CPU time per query,
throughput, and the aiosqlite/litepool ratios (> 1.0 means litepool is faster / uses less
CPU). CPU time is the whole process's (every thread's), so a design that burns a core to
go faster shows here.

    python bench/python/bench_aio.py [--quick]
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

KEYS = 1000
QUERY = "SELECT v FROM kv WHERE id = ?"


def setup(path):
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)")
    c.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value-{i}") for i in range(KEYS)))
    c.commit()
    c.close()


async def point(db, i):
    cur = await db.execute(QUERY, (i % KEYS,))
    row = await cur.fetchone()
    await cur.close()
    return row


async def case_gather(db, n):
    rows = await asyncio.gather(*(point(db, i) for i in range(n)))
    assert rows[1] == ("value-1",)


async def case_sequential(db, n):
    for i in range(n):
        row = await point(db, i)
        assert row == (f"value-{i % KEYS}",)


CASES = {
    "gather: 10,000 concurrent point queries": (case_gather, 10_000),
    "sequential awaited point queries": (case_sequential, 10_000),
}


def worker(module, case, path, n):
    import importlib

    mod = importlib.import_module(module)
    fn, _ = CASES[case]

    async def main():
        async with mod.connect(path) as db:
            await fn(db, max(1, n // 10))  # warm up
            w0, c0 = time.perf_counter(), time.process_time()
            await fn(db, n)
            w1, c1 = time.perf_counter(), time.process_time()
        return {"wall": (w1 - w0) / n, "cpu": (c1 - c0) / n}

    result = asyncio.run(main())
    if module == "litepool.aio":
        import litepool

        litepool.open(path).close()
    print(json.dumps(result))


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
            for module in ("aiosqlite", "litepool.aio"):
                path = os.path.join(d, f"{module}-{len(results)}.db")
                setup(path)
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", module, case, path, str(n)],
                    capture_output=True, text=True, check=True,
                ).stdout
                row[module] = json.loads(out.strip().splitlines()[-1])
            results.append((case, n, row))
    print(f"{'case':40} {'aiosqlite wall':>14} {'litepool wall':>14} {'wall ×':>7} "
          f"{'aiosqlite q/s':>13} {'litepool q/s':>13} "
          f"{'aiosqlite CPU':>13} {'litepool CPU':>13} {'CPU ×':>6}")
    for case, n, row in results:
        a, l = row["aiosqlite"], row["litepool.aio"]
        print(f"{case:40} {fmt(a['wall']):>14} {fmt(l['wall']):>14} {a['wall'] / l['wall']:7.2f} "
              f"{1 / a['wall']:13,.0f} {1 / l['wall']:13,.0f} "
              f"{fmt(a['cpu']):>13} {fmt(l['cpu']):>13} {a['cpu'] / l['cpu']:6.2f}")
    print("(per query: execute + fetchone + cursor close; × = aiosqlite / litepool, above 1.0 "
          "is litepool ahead; CPU is every thread of the process)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
