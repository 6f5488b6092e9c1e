"""The Python point select alone, for a profiler: `profile_point.py MODULE N` creates a
database, runs N point selects on one connection with MODULE (sqlite3 or litepool), and exits.
bench/profile.sh runs it under callgrind at two counts and subtracts."""

import importlib
import os
import sys
import tempfile

module, n = sys.argv[1], int(sys.argv[2])
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "p.db")
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    c.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value-{i:08}") for i in range(10_000)))
    c.commit()
    c.close()
    mod = importlib.import_module(module)
    conn = mod.connect(path)
    q = "SELECT v FROM kv WHERE id = ?"
    for i in range(n):
        conn.execute(q, (i * 7919 % 10_000,)).fetchone()
    conn.close()
    if module == "litepool":
        mod.open(path).close()
