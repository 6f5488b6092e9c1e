"""litepool.aio: the asyncio API (issue 7).

Each test runs its coroutine with plain ``asyncio.run``. ``GUARD`` only turns a hang into a
failure; no assertion depends on how long anything took.
"""

import asyncio
import os
import subprocess
import sys
import threading

import pytest

import litepool
import litepool.aio as aio
from fdcheck import fds_on

GUARD = 120
# A statement that runs until interrupted (10^12 rows).
ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000) "
           "SELECT max(x) FROM c")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, GUARD))


async def setup_table(db, rows=10):
    async with aio.connect(db) as c:
        await c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        await c.executemany("INSERT INTO t(v) VALUES (?)", [(f"v{i}",) for i in range(rows)])
        await c.commit()


def read(db, sql):
    """Rows of ``sql`` read through the sync API (closed after)."""
    check = litepool.connect(db)
    try:
        return check.execute(sql).fetchall()
    finally:
        check.close()


def aio_threads():
    """OS threads the earlier native executor ran asyncio calls on, from /proc: none now."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                n += f.read().strip() == "litepool-aio"
        except OSError:
            pass
    return n


def test_connect_is_awaitable_and_async_context(db):
    async def main():
        conn = await aio.connect(db)
        assert isinstance(conn, aio.Connection)
        await conn.execute("CREATE TABLE t(x)")
        await conn.close()
        await conn.close()  # idempotent
        async with aio.connect(db) as c:
            await c.execute("INSERT INTO t VALUES (1)")
            await c.commit()
        with pytest.raises(litepool.ProgrammingError, match="closed database"):
            await c.execute("SELECT 1")
        return conn
    run(main())
    assert read(db, "SELECT x FROM t") == [(1,)]


def test_execute_fetch_and_cursor_attributes(db):
    async def main():
        await setup_table(db, rows=3)
        async with aio.connect(db) as c:
            cur = await c.execute("INSERT INTO t(v) VALUES ('x')")
            assert cur.rowcount == 1 and cur.lastrowid == 4
            assert c.in_transaction and c.total_changes == 1
            await c.commit()
            assert not c.in_transaction
            async with c.execute("SELECT id, v FROM t WHERE id = ?", (2,)) as cur:
                assert cur.description[0][0] == "id" and cur.description[1][0] == "v"
                assert cur.rowcount == -1
                assert await cur.fetchone() == (2, "v1")
                assert await cur.fetchone() is None
            cur = await c.execute("SELECT id FROM t ORDER BY id")
            assert await cur.fetchmany(2) == [(1,), (2,)]
            cur.arraysize = 3
            assert await cur.fetchmany() == [(3,), (4,)]
            assert await cur.fetchall() == []
            cur = await c.cursor()
            await cur.execute("SELECT v FROM t WHERE id = :id", {"id": 4})
            assert await cur.fetchall() == [("x",)]
            assert cur.connection is c
            assert await c.execute_fetchall("SELECT count(*) FROM t") == [(4,)]
            assert await c.execute_insert("INSERT INTO t(v) VALUES ('y')") == (5,)
            await c.rollback()
            assert await c.execute_fetchall("SELECT count(*) FROM t") == [(4,)]
    run(main())


def test_async_for_reads_every_batch(db):
    async def main():
        await setup_table(db, rows=5000)
        async with aio.connect(db) as c:
            seen = [row[0] async for row in await c.execute("SELECT id FROM t ORDER BY id")]
            assert seen == list(range(1, 5001))
            cur = await c.execute("SELECT id FROM t ORDER BY id")
            assert await cur.fetchone() == (1,)
            assert len(await cur.fetchall()) == 4999
    run(main())


def test_unread_rows_hold_a_reader_until_closed(db):
    async def main():
        await setup_table(db, rows=5000)
        async with aio.open(db) as pool:
            async with pool.connect() as c:
                async with c.execute("SELECT id FROM t") as cur:
                    assert await cur.fetchone() == (1,)
                    assert (await pool.stats())["readers_in_use"] == 1
                assert (await pool.stats())["readers_in_use"] == 0
                with pytest.raises(litepool.ProgrammingError, match="closed cursor"):
                    await cur.fetchone()
    run(main())


def test_executescript_and_row_factories(db):
    async def main():
        async with aio.connect(db) as c:
            await c.executescript("CREATE TABLE a(x, y); INSERT INTO a VALUES (1, 'one');")
            await c.commit()
            c.row_factory = aio.Row
            row = (await c.execute_fetchall("SELECT x, y FROM a"))[0]
            assert row["X"] == 1 and row["y"] == "one" and row.keys() == ["x", "y"]
            c.row_factory = lambda cur, t: {d[0]: v for d, v in zip(cur.description, t)}
            assert await c.execute_fetchall("SELECT x, y FROM a") == [{"x": 1, "y": "one"}]
            cur = await c.cursor()
            cur.row_factory = None
            await cur.execute("SELECT x FROM a")
            assert await cur.fetchone() == (1,)
            c.row_factory = None
            c.text_factory = bytes
            assert await c.execute_fetchall("SELECT y FROM a") == [(b"one",)]
    run(main())


def test_errors_are_typed_and_lose_nothing(db):
    async def main():
        await setup_table(db, rows=1)
        async with aio.connect(db) as c:
            await c.execute("INSERT INTO t(v) VALUES ('kept')")
            with pytest.raises(litepool.OperationalError, match="syntax error"):
                await c.execute("SELEC 1")
            with pytest.raises(litepool.IntegrityError):
                await c.execute("INSERT INTO t(id, v) VALUES (1, 'dup')")
            with pytest.raises(litepool.ProgrammingError, match="bindings"):
                await c.execute("SELECT ?", (1, 2))
            with pytest.raises(litepool.ProgrammingError, match="null character"):
                await c.execute("SELECT 1\0")
            with pytest.raises(litepool.ProgrammingError, match="DML"):
                await c.executemany("SELECT ?", [(1,)])
            with pytest.raises(ValueError):
                await c.executescript(b"SELECT 1")
            # None of the failures above ended the transaction or lost its insert.
            assert c.in_transaction
            await c.commit()
            cur = await c.execute("SELECT v FROM t ORDER BY id")
            await cur.close()
            await cur.close()  # idempotent
            with pytest.raises(litepool.ProgrammingError, match="closed cursor"):
                await cur.fetchall()
        assert c._native.closed
        for call in (c.execute("SELECT 1"), c.commit(), c.rollback(), c.cursor(),
                     c.executemany("INSERT INTO t(v) VALUES (?)", [("x",)])):
            with pytest.raises(litepool.ProgrammingError, match="closed database"):
                await call
        with pytest.raises(litepool.ProgrammingError, match="closed database"):
            await cur.execute("SELECT 1")
    run(main())
    assert read(db, "SELECT v FROM t ORDER BY id") == [("v0",), ("kept",)]


def test_error_mid_iteration_is_raised_not_truncated(db):
    async def main():
        async with aio.connect(db) as c:
            # abs() of the smallest integer overflows on the 3rd row.
            sql = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) "
                   "SELECT CASE WHEN x = 3 THEN abs(-9223372036854775807 - 1) ELSE x END FROM c")
            cur = await c.execute(sql)
            got = []
            with pytest.raises(litepool.OperationalError, match="overflow"):
                async for row in cur:
                    got.append(row[0])
            assert got == [1, 2]
    run(main())


def test_cancel_interrupts_statement_and_leaves_connection_clean(db):
    async def main():
        await setup_table(db, rows=1)
        async with aio.open(db) as pool:
            async with pool.connect() as c:
                await c.execute("INSERT INTO t(v) VALUES ('uncommitted')")
                assert c.in_transaction
                task = asyncio.create_task(c.execute(ENDLESS))
                # The loop keeps running while the statement runs: it never blocks on SQLite.
                for _ in range(50):
                    await asyncio.sleep(0.01)
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # Queued behind the interrupted statement and the clean-up: this would hang
                # (GUARD) if the statement had not been interrupted. An interrupted read
                # leaves the transaction it did not open as SQLite does: open, with its write.
                assert await c.execute_fetchall("SELECT v FROM t ORDER BY id") == [
                    ("v0",), ("uncommitted",)]
                assert c.in_transaction
                await c.commit()
                stats = await pool.stats()
                assert stats["writer_in_use"] == 0 and stats["readers_in_use"] == 0
                # The connection goes on working.
                await c.execute("INSERT INTO t(v) VALUES ('after')")
                await c.commit()
                # A cancelled read outside a transaction gives its reader back too.
                task = asyncio.create_task(c.execute_fetchall(ENDLESS))
                await asyncio.sleep(0.2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await c.execute_fetchall("SELECT count(*) FROM t") == [(3,)]
                stats = await pool.stats()
                assert stats["readers_in_use"] == 0
    run(main())


# An INSERT that runs until interrupted.
ENDLESS_INSERT = ("INSERT INTO t(v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                  "FROM c WHERE x < 1000000000000) SELECT 'x' FROM c WHERE x < 0")


def test_cancelled_write_that_opened_the_transaction_leaves_nothing(db):
    async def main():
        await setup_table(db, rows=1)
        async with aio.connect(db) as c:
            task = asyncio.create_task(c.execute(ENDLESS_INSERT))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not c.in_transaction
            await c.commit()
            assert await c.execute_fetchall("SELECT v FROM t") == [("v0",)]
    run(main())


def test_commit_after_sqlite_rolled_back_a_cancelled_write_raises(db):
    # SQLite rolls the whole transaction back when it interrupts a write inside it: the
    # earlier INSERT is gone, and commit() says so instead of reporting success.
    async def main():
        await setup_table(db, rows=1)
        async with aio.connect(db) as c:
            await c.execute("INSERT INTO t(v) VALUES ('earlier')")
            task = asyncio.create_task(c.execute(ENDLESS_INSERT))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(litepool.OperationalError, match="rolled back"):
                await c.commit()
            # Said once: the connection goes on.
            await c.execute("INSERT INTO t(v) VALUES ('later')")
            await c.commit()
        assert read(db, "SELECT v FROM t ORDER BY id") == [("v0",), ("later",)]
    run(main())


def test_cancel_of_a_queued_call_drops_it(db):
    async def main():
        await setup_table(db, rows=1)
        async with aio.connect(db) as c:
            blocker = asyncio.create_task(c.execute(ENDLESS))
            await asyncio.sleep(0.1)
            queued = asyncio.create_task(c.execute("INSERT INTO t(v) VALUES ('never')"))
            await asyncio.sleep(0)
            queued.cancel()
            blocker.cancel()
            for t in (queued, blocker):
                with pytest.raises(asyncio.CancelledError):
                    await t
            assert await c.execute_fetchall("SELECT v FROM t") == [("v0",)]
            assert not c.in_transaction
    run(main())


def test_pool_connect_stats_checkpoint_close(db):
    async def main():
        pool = await aio.open(db, max_readers=2)
        assert "litepool.aio.Pool" in repr(pool) and not pool.closed
        async with pool.connect() as c:
            await c.execute("CREATE TABLE t(x)")
            await c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
            await c.commit()
            assert c.pool.path == pool.path
        stats = await pool.stats()
        assert stats["max_readers"] == 2 and stats["writer_open"]
        busy, log, done = await pool.checkpoint("TRUNCATE")
        assert busy == 0 and log == done
        with pytest.raises(ValueError):
            await pool.checkpoint("SOMETIMES")
        assert fds_on(os.path.realpath(db)) > 0
        await pool.close()
        await pool.close()  # idempotent
        assert pool.closed
        assert fds_on(os.path.realpath(db)) == 0
        with pytest.raises(litepool.ProgrammingError):
            async with pool.connect():
                pass
    run(main())


def os_threads():
    """OS threads of this process, from /proc."""
    return len(os.listdir("/proc/self/task"))


def test_calls_waiting_for_a_connection_hold_no_thread(db):
    async def main():
        await setup_table(db, rows=0)
        conns = [await aio.connect(db, isolation_level=None, timeout=60) for _ in range(100)]
        async with aio.connect(db) as holder:
            await holder.execute("INSERT INTO t(v) VALUES ('first')")  # holds the writer
            before = os_threads()
            tasks = [
                asyncio.create_task(c.execute("INSERT INTO t(v) VALUES (?)", (f"w{i}",)))
                for i, c in enumerate(conns)
            ]
            await asyncio.sleep(0.2)
            assert not any(t.done() for t in tasks)
            # A hundred calls queued for the writer, and not one thread more.
            assert os_threads() == before
            assert aio_threads() == 0
            await holder.commit()
            await asyncio.gather(*tasks)
            assert await holder.execute_fetchall("SELECT count(*) FROM t") == [(101,)]
        await asyncio.gather(*(c.close() for c in conns))
    run(main())


def test_writers_waiting_for_the_pool_never_starve_the_transaction_they_wait_for(db):
    async def main():
        await setup_table(db, rows=0)
        async with aio.connect(db) as holder:
            await holder.execute("INSERT INTO t(v) VALUES ('first')")  # holds the writer

            async def writer(i):
                async with aio.connect(db, timeout=60) as c:
                    await c.execute("INSERT INTO t(v) VALUES (?)", (f"w{i}",))
                    await c.commit()

            # A hundred writers, each waiting for the writer the holder has.
            tasks = [asyncio.create_task(writer(i)) for i in range(100)]
            await asyncio.sleep(0.2)
            assert not any(t.done() for t in tasks)
            await holder.commit()  # runs although a hundred calls wait before it
            await asyncio.gather(*tasks)
            assert await holder.execute_fetchall("SELECT count(*) FROM t") == [(101,)]
    run(main())


def test_thousand_concurrent_tasks_keep_fds_bounded(db):
    max_readers = 4
    limit = 2 * (1 + max_readers) + 1
    path = os.path.realpath(db)

    async def main():
        await setup_table(db, rows=100)
        worst = 0

        async def request(i):
            nonlocal worst
            async with aio.connect(db) as c:
                rows = await c.execute_fetchall("SELECT v FROM t WHERE id = ?", (i % 100 + 1,))
                assert rows == [(f"v{i % 100}",)]
                if i % 10 == 0:
                    await c.execute("INSERT INTO t(v) VALUES (?)", (f"n{i}",))
                    await c.commit()
                worst = max(worst, fds_on(path))

        await asyncio.gather(*(request(i) for i in range(1000)))
        async with aio.connect(db) as c:
            assert await c.execute_fetchall("SELECT count(*) FROM t") == [(200,)]
        return max(worst, fds_on(path))

    worst = run(main())
    assert 0 < worst <= limit, f"{worst} FDs on the database (limit {limit})"


# The same requests through aiosqlite (fewer of them: each is a Python thread there).
AIOSQLITE_FDS = """
import asyncio, os, sys
sys.path.insert(0, {tests!r})
import aiosqlite
from fdcheck import fds_on
path = {path!r}
async def main():
    async with aiosqlite.connect(path) as c:
        await c.execute("PRAGMA journal_mode=WAL")
        await c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        await c.executemany("INSERT INTO t(v) VALUES (?)", [(f"v{{i}}",) for i in range(100)])
        await c.commit()
    worst = 0
    async def request(i):
        nonlocal worst
        async with aiosqlite.connect(path) as c:
            cur = await c.execute("SELECT v FROM t WHERE id = ?", (i % 100 + 1,))
            assert await cur.fetchall() == [(f"v{{i % 100}}",)]
            if i % 10 == 0:
                await c.execute("INSERT INTO t(v) VALUES (?)", (f"n{{i}}",))
                await c.commit()
            worst = max(worst, fds_on(path))
    await asyncio.gather(*(request(i) for i in range(200)))
    print(worst)
asyncio.run(main())
"""


def test_the_same_fd_check_fails_with_aiosqlite(tmp_path):
    pytest.importorskip("aiosqlite")
    path = os.path.realpath(str(tmp_path / "peer.db"))
    script = AIOSQLITE_FDS.format(tests=os.path.dirname(__file__), path=path)
    # A separate process: aiosqlite uses the stdlib's SQLite, a second copy of the library.
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    worst = int(out.stdout.split()[-1])
    assert worst > 2 * (1 + 4) + 1, f"aiosqlite held only {worst} FDs"


EXIT_SCRIPT = """
import asyncio, sys
import litepool.aio as aio
path = sys.argv[1]
ENDLESS = {endless!r}

async def setup():
    c = await aio.connect(path)
    await c.execute("CREATE TABLE t(v TEXT)")
    await c.execute("INSERT INTO t VALUES ('committed')")
    await c.commit()
    await c.execute("INSERT INTO t VALUES ('uncommitted')")  # left open, never closed
    reader = await aio.connect(path)
    running = asyncio.ensure_future(reader.execute(ENDLESS))  # still running at exit
    cursor = await (await aio.connect(path)).execute("SELECT * FROM t")  # unread rows
    await asyncio.sleep(0.2)
    return c, reader, running, cursor

loop = asyncio.new_event_loop()
held = loop.run_until_complete(setup())
{ending}
print("exiting", flush=True)
"""


@pytest.mark.parametrize("ending", [
    "loop.close()",
    "pass",
    "import os; loop.close(); del held; import gc; gc.collect()",
])
def test_exit_with_open_connections_does_not_hang_nor_lose_commits(db, ending):
    script = EXIT_SCRIPT.format(endless=ENDLESS, ending=ending)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script, db],
                         capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 0, out.stderr
    assert "exiting" in out.stdout
    assert read(db, "SELECT v FROM t") == [("committed",)]


def test_loop_closed_with_calls_in_flight(db):
    async def start():
        await setup_table(db, rows=1)
        c = await aio.connect(db)
        asyncio.ensure_future(c.execute(ENDLESS))
        await asyncio.sleep(0.1)
        return c

    loop = asyncio.new_event_loop()
    c = loop.run_until_complete(start())
    loop.close()  # the job's result has nowhere to go: it is dropped, nothing hangs
    c._native.sync.interrupt()

    async def later():
        await c.close()
        async with aio.open(db) as pool:
            stats = await pool.stats()
            assert stats["readers_in_use"] == 0 and stats["writer_in_use"] == 0
    run(later())


def test_concurrent_tasks_on_one_connection_keep_order(db):
    async def main():
        async with aio.connect(db) as c:
            await c.execute("CREATE TABLE o(i)")
            await asyncio.gather(*(c.execute("INSERT INTO o VALUES (?)", (i,)) for i in range(500)))
            await c.commit()
            assert [r[0] for r in await c.execute_fetchall("SELECT i FROM o ORDER BY rowid")] \
                == list(range(500))
    run(main())


def test_memory_database(db):
    async def main():
        async with aio.connect(":memory:") as c:
            await c.execute("CREATE TABLE m(x)")
            await c.execute("INSERT INTO m VALUES (1)")
            assert await c.execute_fetchall("SELECT x FROM m") == [(1,)]
    run(main())


def test_detect_types_converters(db):
    litepool.register_converter("POINT", lambda b: tuple(map(int, b.split(b";"))))
    try:
        async def main():
            async with aio.connect(db, detect_types=litepool.PARSE_DECLTYPES
                                   | litepool.PARSE_COLNAMES) as c:
                await c.execute("CREATE TABLE p(at POINT, n INTEGER)")
                await c.execute("INSERT INTO p VALUES ('1;2', 3)")
                cur = await c.execute("SELECT at, n, '4;5' AS \"q [point]\" FROM p")
                assert await cur.fetchone() == ((1, 2), 3, (4, 5))
                assert [d[0] for d in cur.description] == ["at", "n", "q"]
        run(main())
    finally:
        del litepool.converters["POINT"]


def test_cursor_dropped_with_unread_rows_warns_and_gives_its_reader_back(db):
    import gc

    async def main():
        await setup_table(db, rows=5000)
        async with aio.open(db) as pool:
            async with pool.connect() as c:
                cur = await c.execute("SELECT id FROM t")
                assert await cur.fetchone() == (1,)
                assert (await pool.stats())["readers_in_use"] == 1
                with pytest.warns(ResourceWarning, match="unread rows"):
                    del cur
                    gc.collect()
                # Queued after the release the collected cursor left on the lane.
                assert await c.execute_fetchall("SELECT count(*) FROM t") == [(5000,)]
                assert (await pool.stats())["readers_in_use"] == 0
    run(main())


def test_each_loops_wakeup_socket_is_closed_with_the_loop(db):
    import gc

    async def once():
        async with aio.connect(db) as c:
            assert await c.execute_fetchall("SELECT 1") == [(1,)]

    asyncio.run(once())
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        asyncio.run(once())
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_wait_for_timeout_cancels_like_a_task_cancel(db):
    async def main():
        await setup_table(db, rows=1)
        async with aio.connect(db) as c:
            await c.execute("INSERT INTO t(v) VALUES ('pending')")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.execute_fetchall(ENDLESS), 0.2)
            assert await c.execute_fetchall("SELECT v FROM t") == [("v0",), ("pending",)]
            assert c.in_transaction
    run(main())


# A read that takes a while but ends (aiosqlite cannot interrupt, so it must end).
SLOW_READ = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
             "SELECT max(x) FROM c")


async def insert_timeout_commit(module, path):
    async with module.connect(path) as c:
        await c.execute("CREATE TABLE IF NOT EXISTS t(v)")
        await c.commit()
        await c.execute("INSERT INTO t VALUES ('kept')")
        try:
            await asyncio.wait_for(c.execute_fetchall(SLOW_READ), 0.01)
        except asyncio.TimeoutError:
            pass
        await c.commit()
    async with module.connect(path) as c:
        return await c.execute_fetchall("SELECT v FROM t")


def test_timed_out_read_keeps_the_transaction_like_aiosqlite(tmp_path):
    # A timeout on a read must not discard the connection's earlier write.
    import aiosqlite
    theirs = run(insert_timeout_commit(aiosqlite, str(tmp_path / "aiosqlite.db")))
    ours = run(insert_timeout_commit(aio, str(tmp_path / "litepool.db")))
    assert [tuple(r) for r in theirs] == [("kept",)]
    assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]


def test_isolation_level(db):
    async def main():
        await setup_table(db, rows=0)
        async with aio.connect(db) as c:
            assert c.isolation_level == ""
            await c.execute("INSERT INTO t(v) VALUES ('a')")
            with pytest.raises(litepool.ProgrammingError, match="commit or roll back"):
                c.isolation_level = None
            with pytest.raises(ValueError):
                c.isolation_level = "SOMETIMES"
            await c.commit()
            c.isolation_level = None  # autocommit: no implicit BEGIN
            await c.execute("INSERT INTO t(v) VALUES ('b')")
            assert not c.in_transaction
            c.isolation_level = "IMMEDIATE"
            await c.execute("INSERT INTO t(v) VALUES ('c')")
            assert c.in_transaction and c.isolation_level == "IMMEDIATE"
        assert read(db, "SELECT v FROM t ORDER BY id") == [("a",), ("b",)]
    run(main())


AFTER_SHUTDOWN = """
import asyncio, atexit, sys
path = sys.argv[1]

def late():  # registered first, so it runs after litepool.aio's shutdown hook
    async def use():
        try:
            await conn.execute("SELECT 1")
        except aio.OperationalError as e:
            print("refused:", e, flush=True)
        await conn.close()
        print("closed", conn._native.closed, flush=True)
    asyncio.run(use())

atexit.register(late)
import litepool.aio as aio

async def setup():
    c = await aio.connect(path)
    await c.execute("CREATE TABLE t(v)")
    await c.execute("INSERT INTO t VALUES ('committed')")
    await c.commit()
    await c.execute("INSERT INTO t VALUES ('rolled back')")
    return c

conn = asyncio.run(setup())
"""


def test_calls_after_shutdown_fail_instead_of_hanging_and_close_still_closes(db):
    out = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c",
                          AFTER_SHUTDOWN, db], capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 0, out.stderr
    assert "refused: interrupted" in out.stdout
    assert "closed True" in out.stdout
    assert read(db, "SELECT v FROM t") == [("committed",)]


def test_create_function_iterdump_backup(tmp_path):
    # The sync API's calls, run as jobs of the connection: results as the sync connection's.
    src = str(tmp_path / "src.db")

    async def main():
        async with aio.connect(src) as c:
            await c.create_function("double", 1, lambda x: 2 * x, deterministic=True)
            await c.execute("CREATE TABLE t(x)")
            await c.execute("INSERT INTO t VALUES (double(21))")
            await c.commit()
            dumped = [line async for line in c.iterdump()]
            steps = []
            async with aio.connect(":memory:") as dest:
                await c.backup(dest, progress=lambda *a: steps.append(a))
                copied = await dest.execute_fetchall("SELECT x FROM t")
            return dumped, copied, steps

    dumped, copied, steps = run(main())
    sync = litepool.connect(src)
    try:
        assert dumped == list(sync.iterdump())
    finally:
        sync.close()
    assert copied == [(42,)]
    assert steps and steps[-1][0] == litepool.SQLITE_DONE


def test_a_task_reading_a_big_cursor_lets_the_loops_other_tasks_run(db):
    async def main():
        await setup_table(db, rows=50_000)
        ticks = 0
        reading = True

        async def ticker():
            nonlocal ticks
            while reading:
                ticks += 1
                await asyncio.sleep(0)

        async def reader(c):
            nonlocal reading
            n = 0
            async with c.execute("SELECT v FROM t") as cursor:
                async for _ in cursor:
                    n += 1
            reading = False
            return n

        async with aio.connect(db) as c:
            other = asyncio.create_task(ticker())
            assert await reader(c) == 50_000
            await other
        # Each fetch of a batch yields to the loop (about 100 batches), whatever its speed.
        assert ticks >= 50, ticks

        # Short calls awaited one after another, each answered within the task's spin: every
        # await still yields to the loop once, as a call on a thread's future does.
        async with aio.connect(db) as c:
            ticks, reading = 0, True
            other = asyncio.create_task(ticker())
            for i in range(1, 2001):
                cursor = await c.execute("SELECT v FROM t WHERE id = ?", (i,))
                assert await cursor.fetchone() == (f"v{i - 1}",)
            reading = False
            await other
        assert ticks >= 1000, ticks
    run(main())
