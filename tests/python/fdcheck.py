"""The seed pattern from the issue: connect per call with `with`, never close, GC off.

Run as a script: `python fdcheck.py MODULE PATH` exits 0 when the FDs on the database stay
bounded and 1 (AssertionError) when they do not, so the same check can be run with the
stdlib `sqlite3` in a subprocess (it must fail there).
"""

import gc
import importlib
import os
import sys
import warnings


def fds_on(path):
    names = {path, path + "-wal", path + "-shm"}
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(os.path.join("/proc/self/fd", fd))
        except OSError:
            continue
        if target.removesuffix(" (deleted)") in names:
            n += 1
    return n


def check(module, path, calls=2000, max_readers=4):
    path = os.path.realpath(path)
    setup = module.connect(path)
    setup.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    setup.execute("INSERT INTO t(v) VALUES ('a'), ('b')")
    setup.commit()
    setup.close()

    def query():
        with module.connect(path) as c:
            c.row_factory = module.Row
            return c.execute("SELECT id, v FROM t").fetchall()

    limit = 2 * (1 + max_readers) + 1
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            worst = 0
            for _ in range(calls):
                rows = query()
                assert rows[0]["v"] == "a"
                worst = max(worst, fds_on(path)) if _ % 50 == 0 else worst
            worst = max(worst, fds_on(path))
    finally:
        gc.enable()
    assert worst <= limit, f"{worst} FDs on the database (limit {limit})"
    return worst


if __name__ == "__main__":
    try:
        print(check(importlib.import_module(sys.argv[1]), sys.argv[2]))
    except Exception as e:  # an EMFILE from the stdlib counts as failing too
        print(f"{type(e).__name__}: {e}")
        sys.exit(1)
