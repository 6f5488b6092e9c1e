"""One side of one `make demo` scenario, in its own process.

    python demo/worker.py SCENARIO --impl stdlib|litepool --db PATH --secs N [options]

`--impl stdlib` runs the code with `import sqlite3`; `--impl litepool` runs the very same code
with `import litepool as sqlite3`. The two never share a process (two SQLite copies on one file
in one process can corrupt it). The process prints JSON lines on stdout: `{"kind": "sample",
...}` about once a second with its counters, then one `{"kind": "summary", ...}`. File
descriptors and the -wal size are measured from outside by run.py (/proc/PID/fd, stat).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import threading
import time
from types import ModuleType
from typing import Any, Callable


def load(impl: str) -> ModuleType:
    """The module the scenario code calls `sqlite3`."""
    if impl == "stdlib":
        import sqlite3

        return sqlite3
    import litepool

    return litepool


def emit(kind: str, **fields: Any) -> None:
    print(json.dumps({"kind": kind, **fields}), flush=True)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_count_or_none() -> int | None:
    """None when the process is out of FDs (listing /proc/self/fd takes one)."""
    try:
        return fd_count()
    except OSError:
        return None


class Every:
    """Calls `report` at most once per `period` seconds."""

    def __init__(self, report: Callable[[], None], period: float = 1.0) -> None:
        self.report = report
        self.period = period
        self.next = time.monotonic() + period

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.period
            self.report()


class Failures:
    """Counts errors and keeps the first message (the one a user would see in the log)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def add(self, e: BaseException) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{type(e).__name__}: {e}"


def fd_leak(sqlite3: ModuleType, args: argparse.Namespace) -> None:
    """A polling service: every tick `with sqlite3.connect(p) as c:` looks for due jobs.
    `with` commits but does not close the connection (stdlib semantics). run.py counts FDs
    from outside: at the limit this process cannot even list /proc/self/fd."""
    if args.gc == "off":
        gc.disable()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.nofile:
        soft = min(args.nofile, hard) if hard != resource.RLIM_INFINITY else args.nofile
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    setup = sqlite3.connect(args.db)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, due REAL NOT NULL)")
    setup.executemany("INSERT INTO jobs (due) VALUES (?)", [(i,) for i in range(100)])
    setup.commit()
    setup.close()

    ticks = 0
    failures = Failures()
    every = Every(lambda: emit("sample", ticks=ticks, errors=failures.count))
    deadline = time.monotonic() + args.secs
    while time.monotonic() < deadline and not (args.ticks and ticks >= args.ticks):
        try:
            with sqlite3.connect(args.db) as c:
                c.execute("SELECT id FROM jobs WHERE due < ? LIMIT 10", (time.time(),)).fetchall()
        except sqlite3.Error as e:
            failures.add(e)
        ticks += 1
        every.tick()
        time.sleep(args.interval)
    emit(
        "summary",
        ticks=ticks,
        errors=failures.count,
        first_error=failures.first,
        fds_at_end=fd_count_or_none(),
        nofile=soft,
        gc=args.gc,
    )


def wal_growth(sqlite3: ModuleType, args: argparse.Namespace) -> None:
    """A writer committing small batches at a steady rate while reader threads stream a large
    query each, slowly, one after another, so that some read is always in progress. Each
    thread has its own connection (check_same_thread stays on). SQLite's defaults otherwise:
    automatic checkpoints (PASSIVE, every 1000 pages) by the stdlib; litepool's own timed
    checkpointing with the litepool module."""
    writer = sqlite3.connect(args.db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA synchronous=NORMAL")
    writer.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    # Enough rows that a reader's query spans several of litepool's row batches (it holds its
    # pooled reader, and its snapshot, until the last one is fetched), small so setup is quick.
    writer.executemany("INSERT INTO log (body) VALUES (?)", [(os.urandom(100),) for _ in range(5000)])
    writer.commit()

    stop = threading.Event()
    reads = [0] * args.readers
    failures = Failures()

    def reader(n: int) -> None:
        conn = sqlite3.connect(args.db)
        try:
            # Staggered starts, so the readers' snapshots overlap rather than line up.
            time.sleep(n * args.read_secs / args.readers)
            while not stop.is_set():
                cur = conn.execute("SELECT id, length(body) FROM log ORDER BY id DESC LIMIT 4000")
                while cur.fetchmany(400):
                    time.sleep(args.read_secs / 10)
                cur.close()
                reads[n] += 1
        except sqlite3.Error as e:
            failures.add(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(args.readers)]
    for t in threads:
        t.start()
    commits = 0
    every = Every(lambda: emit("sample", commits=commits, reads=sum(reads), errors=failures.count))
    rows = [(os.urandom(args.row_bytes),) for _ in range(args.rows_per_commit)]
    period = 1.0 / args.commits_per_sec
    start = time.monotonic()
    deadline = start + args.secs
    try:
        while (now := time.monotonic()) < deadline:
            due = start + commits * period
            if now < due:
                time.sleep(due - now)
            try:
                with writer:
                    writer.executemany("INSERT INTO log (body) VALUES (?)", rows)
                commits += 1
            except sqlite3.Error as e:
                failures.add(e)
            every.tick()
    finally:
        stop.set()
        for t in threads:
            t.join()
    wal = args.db + "-wal"
    wal_bytes = os.stat(wal).st_size if os.path.exists(wal) else 0
    emit(
        "summary",
        commits=commits,
        written_bytes=commits * args.rows_per_commit * args.row_bytes,
        reads=sum(reads),
        errors=failures.count,
        first_error=failures.first,
        wal_bytes_before_close=wal_bytes,
    )
    writer.close()


def reconnect(sqlite3: ModuleType, args: argparse.Namespace) -> None:
    """A dispatcher that, every tick, opens the database, takes the 10 jobs due first,
    reschedules them, commits and closes: careful code (it closes), back to back."""
    setup = sqlite3.connect(args.db)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, due INTEGER NOT NULL, runs INTEGER NOT NULL)"
    )
    setup.execute("CREATE INDEX jobs_due ON jobs (due)")
    setup.executemany("INSERT INTO jobs (due, runs) VALUES (?, 0)", [(i,) for i in range(1000)])
    setup.commit()
    setup.close()

    ticks = 0
    failures = Failures()
    durations: list[int] = []
    peak_fds = 0
    every = Every(lambda: emit("sample", ticks=ticks, errors=failures.count))
    cpu0 = time.process_time()
    deadline = time.monotonic() + args.secs
    while time.monotonic() < deadline:
        t0 = time.perf_counter_ns()
        try:
            conn = sqlite3.connect(args.db)
            try:
                # litepool's default; set on both sides so that neither fsyncs every commit.
                conn.execute("PRAGMA synchronous=NORMAL")
                ids = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY due LIMIT 10")]
                conn.executemany(
                    "UPDATE jobs SET due = due + 1000, runs = runs + 1 WHERE id = ?",
                    [(i,) for i in ids],
                )
                conn.commit()
                if ticks % 64 == 0:
                    peak_fds = max(peak_fds, fd_count())
            finally:
                conn.close()
        except sqlite3.Error as e:
            failures.add(e)
        durations.append(time.perf_counter_ns() - t0)
        ticks += 1
        every.tick()
    cpu = time.process_time() - cpu0
    durations.sort()
    emit(
        "summary",
        ticks=ticks,
        errors=failures.count,
        first_error=failures.first,
        median_us=statistics.median(durations) / 1000 if durations else None,
        p99_us=durations[int(len(durations) * 0.99)] / 1000 if durations else None,
        cpu_us_per_tick=cpu * 1e6 / ticks if ticks else None,
        peak_fds_in_tick=peak_fds,
        fds_at_end=fd_count(),
    )


SCENARIOS = {"fd": fd_leak, "wal": wal_growth, "tick": reconnect}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--impl", choices=["stdlib", "litepool"], required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--secs", type=float, default=10.0)
    p.add_argument("--gc", choices=["on", "off"], default="on", help="fd: gc.disable() if off")
    p.add_argument("--nofile", type=int, default=0, help="fd: lower RLIMIT_NOFILE to this")
    p.add_argument("--interval", type=float, default=0.002, help="fd: seconds between ticks")
    p.add_argument("--ticks", type=int, default=0, help="fd: stop after this many ticks")
    p.add_argument("--readers", type=int, default=4, help="wal: reader threads")
    p.add_argument("--read-secs", type=float, default=0.2, help="wal: how long one read lasts")
    p.add_argument("--commits-per-sec", type=float, default=10, help="wal: writer's pace")
    p.add_argument("--rows-per-commit", type=int, default=160, help="wal")
    p.add_argument("--row-bytes", type=int, default=3000, help="wal")
    args = p.parse_args()
    SCENARIOS[args.scenario](load(args.impl), args)


if __name__ == "__main__":
    main()
