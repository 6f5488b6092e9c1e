"""Concurrency soak for the Python host (make soak): N threads of mixed reads, writes,
transactions and cancellations against one litepool database for S seconds.

Asserts: no deadlock (every thread keeps finishing operations; a watchdog fails the run if
none finishes for 30 s), no lost write (every id a thread saw committed is in the table at
the end, no id of a rolled-back transaction is), FDs on the database bounded by the pool
(counted from /proc/self/fd), RSS flat (last quarter's peak within 25% + 16 MiB of the second
quarter's), stats consistent (no connection in use, no waiter once all threads are done).
Prints a table of per-second samples.

usage: python tests/soak/soak.py [--threads 64] [--seconds 60]
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time

import litepool


def fds_on(path: str) -> int:
    """FDs this process holds on the database, its -wal and its -shm."""
    names = {path, path + "-wal", path + "-shm"}
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") in names
        except OSError:
            pass
    return n


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Worker(threading.Thread):
    def __init__(self, idx: int, path: str, stop: threading.Event, seconds: float):
        super().__init__(name=f"soak-{idx}", daemon=True)
        self.idx, self.path, self.stop, self.seconds = idx, path, stop, seconds
        self.committed: list[int] = []
        self.rolled_back: list[int] = []
        self.ops = 0
        self.interrupted = 0
        self.busy = 0
        self.error: BaseException | None = None
        self.rng = random.Random(idx)
        self.next_id = idx * 10_000_000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.one()
                self.ops += 1
        except BaseException as e:  # reported by the main thread
            self.error = e

    def one(self) -> None:
        r = self.rng.random()
        conn = litepool.connect(self.path, check_same_thread=False, timeout=30)
        try:
            if r < 0.35:
                conn.execute("SELECT count(*), max(id) FROM t").fetchone()
            elif r < 0.6:
                i = self.new_id()
                conn.execute("INSERT INTO t(id, who) VALUES (?, ?)", (i, self.idx))
                conn.commit()
                self.committed.append(i)
            elif r < 0.8:
                ids = [self.new_id() for _ in range(self.rng.randint(1, 5))]
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO t(id, who) VALUES (?, ?)", [(i, self.idx) for i in ids])
                if self.rng.random() < 0.25:
                    conn.rollback()
                    self.rolled_back.extend(ids)
                else:
                    conn.commit()
                    self.committed.extend(ids)
            elif r < 0.9:
                # A long read cancelled from another thread.
                timer = threading.Timer(0.002, conn.interrupt)
                timer.start()
                try:
                    conn.execute(
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
                        "SELECT sum(x) FROM c"
                    ).fetchone()
                except litepool.OperationalError as e:
                    if "interrupt" not in str(e):
                        raise
                    self.interrupted += 1
                finally:
                    timer.cancel()
            else:
                # A cursor abandoned half-read: its reader must come back.
                cur = conn.execute("SELECT id FROM t")
                cur.fetchmany(3)
        except litepool.OperationalError as e:
            if "busy" not in str(e):
                raise
            self.busy += 1
            if conn.in_transaction:
                conn.rollback()
        finally:
            conn.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="litepool-soak-")
    path = os.path.join(os.path.realpath(tmp), "soak.db")
    max_readers = 4
    pool = litepool.open(path, max_readers=max_readers, acquire_timeout=30)
    setup = pool.connect()
    setup.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, who INT)")
    setup.commit()
    setup.close()

    stop = threading.Event()
    workers = [Worker(i, path, stop, args.seconds) for i in range(args.threads)]
    for w in workers:
        w.start()

    samples = []
    start = time.monotonic()
    last_ops, last_progress = 0, start
    while time.monotonic() - start < args.seconds:
        time.sleep(1)
        ops = sum(w.ops for w in workers)
        now = time.monotonic()
        if ops > last_ops:
            last_ops, last_progress = ops, now
        elif now - last_progress > 30:
            print("DEADLOCK: no operation finished for 30 s", file=sys.stderr)
            return 1
        if any(w.error for w in workers):
            break
        st = pool.stats()
        samples.append((round(now - start), ops, fds_on(path), rss_kib(), st["connections_open"], st["waiters"]))
    stop.set()
    for w in workers:
        w.join(60)
        if w.is_alive():
            print(f"DEADLOCK: {w.name} did not finish", file=sys.stderr)
            return 1
    errors = [(w.name, w.error) for w in workers if w.error]
    if errors:
        for name, e in errors:
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    print(f"{'t(s)':>5} {'ops':>9} {'db fds':>6} {'rss KiB':>9} {'conns':>6} {'waiters':>8}")
    for s in samples:
        print(f"{s[0]:>5} {s[1]:>9} {s[2]:>6} {s[3]:>9} {str(s[4]):>6} {str(s[5]):>8}")

    failures = []
    conn = pool.connect()
    present = {row[0] for row in conn.execute("SELECT id FROM t")}
    conn.close()
    committed = [i for w in workers for i in w.committed]
    rolled_back = [i for w in workers for i in w.rolled_back]
    lost = [i for i in committed if i not in present]
    ghosts = [i for i in rolled_back if i in present]
    if lost:
        failures.append(f"{len(lost)} committed writes lost, e.g. {lost[:5]}")
    if ghosts:
        failures.append(f"{len(ghosts)} rolled-back writes present, e.g. {ghosts[:5]}")
    fd_bound = 2 * (1 + max_readers) + 1
    peak_fds = max(s[2] for s in samples)
    if peak_fds > fd_bound:
        failures.append(f"FDs peaked at {peak_fds}, over the bound {fd_bound}")
    q = max(1, len(samples) // 4)
    rss_early = max(s[3] for s in samples[q : 2 * q] or samples)
    rss_late = max(s[3] for s in samples[-q:])
    if rss_late > rss_early * 1.25 + 16 * 1024:
        failures.append(f"RSS grew from {rss_early} KiB to {rss_late} KiB")
    st = pool.stats()
    total_ops = sum(w.ops for w in workers)
    print(
        f"{args.threads} threads, {args.seconds:.0f} s: {total_ops} operations, {len(committed)} committed "
        f"rows, {len(rolled_back)} rolled back, {sum(w.interrupted for w in workers)} interrupts, "
        f"{sum(w.busy for w in workers)} busy timeouts; peak FDs {peak_fds} (bound {fd_bound}); "
        f"RSS {rss_early} -> {rss_late} KiB"
    )
    for key in ("writer_in_use", "readers_in_use", "waiters"):
        if st[key] != 0:
            failures.append(f"stats: {key} = {st[key]} with every thread done")
    if st["readers_open"] > max_readers or st["acquires"] < total_ops:
        failures.append(f"stats inconsistent: {st}")
    pool.close()
    if any(f for f in os.listdir(tmp) if f.endswith(("-wal", "-shm"))):
        failures.append("-wal/-shm left after close")
    if fds_on(path):
        failures.append(f"{fds_on(path)} FDs still open on the database after close")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
