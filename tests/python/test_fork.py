"""fork(): a child process gets fresh pools on first use, connections it inherited reattach
to them, and the parent is unaffected. Every child runs under a deadline: a litepool call
that waited for a connection thread the fork did not copy would hang, and fail the test
instead."""

import multiprocessing
import os
import signal
import time

import pytest

import litepool

DEADLINE = 30


def wait_child(pid):
    """The child's exit status; kills it and fails if it outlives the deadline."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child hung")


def spawn_child(fn):
    """Runs fn() in a forked child, which exits 0 when fn returned; returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException as e:  # report, then leave without running the parent's cleanup
            os.write(2, f"child failed: {e!r}\n".encode())
        finally:
            os._exit(code)
    return pid


def fork_and_run(fn):
    """Runs fn() in a forked child; returns its exit code."""
    return wait_child(spawn_child(fn))


def count(conn):
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def test_os_fork_child_gets_fresh_pool_and_inherited_connection_reattaches(db):
    parent = litepool.connect(db)
    parent.execute("CREATE TABLE t(x)")
    parent.execute("INSERT INTO t VALUES ('parent')")
    parent.commit()
    assert count(parent) == 1  # a reader and the writer are open in the parent

    def child():
        # The inherited (idle) connection works on the child's fresh pool.
        parent.execute("INSERT INTO t VALUES ('inherited')")
        parent.commit()
        assert count(parent) == 2
        fresh = litepool.connect(db)
        fresh.execute("INSERT INTO t VALUES ('child')")
        fresh.commit()
        assert count(fresh) == 3
        fresh.close()

    assert fork_and_run(child) == 0
    # The parent is unaffected, and sees what the child committed.
    assert count(parent) == 3
    parent.execute("INSERT INTO t VALUES ('parent again')")
    parent.commit()
    assert parent.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    parent.close()


def test_a_connection_inside_a_transaction_at_fork_fails_then_recovers_in_the_child(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.execute("INSERT INTO t VALUES (1)")  # the stdlib's implicit BEGIN: the writer is held

    def child():
        # The transaction is the parent's: the child's first use fails, at once.
        with pytest.raises(litepool.Error):
            c.execute("INSERT INTO t VALUES (2)")
        try:
            c.rollback()
        except litepool.Error:
            pass
        # Reattached: it reads what is committed (the parent still holds its write lock).
        assert count(c) == 0

    assert fork_and_run(child) == 0
    c.commit()  # the parent's transaction was untouched
    c.execute("INSERT INTO t VALUES (3)")
    c.commit()
    assert sorted(r[0] for r in c.execute("SELECT x FROM t")) == [1, 3]
    c.close()


def _mp_insert(args):
    path, value = args
    c = litepool.connect(path)
    c.execute("INSERT INTO t VALUES (?)", (value,))
    c.commit()
    n = count(c)
    c.close()
    return n


def test_multiprocessing_fork_workers(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as workers:
        result = workers.map_async(_mp_insert, [(db, i) for i in range(8)])
        counts = result.get(timeout=DEADLINE)
    assert len(counts) == 8
    assert count(c) == 8
    c.close()


def test_preload_pattern(db):
    """gunicorn --preload: the parent opens the pool and a module-level connection, then forks
    workers that keep using both."""
    pool = litepool.open(db)
    shared = pool.connect()
    shared.execute("CREATE TABLE t(x)")
    shared.commit()
    assert count(shared) == 0

    def worker(i):
        def run():
            shared.execute("INSERT INTO t VALUES (?)", (i,))
            shared.commit()
            own = pool.connect()
            assert count(own) >= 1
            own.close()

        return run

    pids = [spawn_child(worker(i)) for i in range(3)]
    assert [wait_child(pid) for pid in pids] == [0, 0, 0]
    assert sorted(r[0] for r in shared.execute("SELECT x FROM t")) == [0, 1, 2]
    shared.close()
    pool.close()
