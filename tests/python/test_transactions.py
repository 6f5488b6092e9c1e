import subprocess
import sys

import pytest

import litepool


def test_legacy_implicit_begin_and_commit(db):
    a = litepool.connect(db)
    b = litepool.connect(db)
    a.execute("CREATE TABLE t(x)")
    assert not a.in_transaction
    a.execute("INSERT INTO t VALUES (1)")
    assert a.in_transaction
    assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)
    a.commit()
    assert not a.in_transaction
    assert b.execute("SELECT count(*) FROM t").fetchone() == (1,)
    a.execute("INSERT INTO t VALUES (2)")
    a.rollback()
    assert b.execute("SELECT count(*) FROM t").fetchone() == (1,)
    a.close()
    b.close()


def test_with_commits_and_does_not_close(db):
    c = litepool.connect(db)
    with c:
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
    assert not c.in_transaction
    with pytest.raises(ZeroDivisionError):
        with c:
            c.execute("INSERT INTO t VALUES (2)")
            1 / 0
    # still usable after `with`
    assert c.execute("SELECT x FROM t").fetchall() == [(1,)]
    c.close()


def test_close_rolls_back(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    c.close()
    c = litepool.connect(db)
    assert c.execute("SELECT count(*) FROM t").fetchone() == (0,)
    c.close()


def test_isolation_level_none_is_autocommit(db):
    c = litepool.connect(db, isolation_level=None)
    assert c.isolation_level is None
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    assert not c.in_transaction
    c.execute("BEGIN")
    assert c.in_transaction
    c.execute("ROLLBACK")
    c.isolation_level = "IMMEDIATE"
    assert c.isolation_level == "IMMEDIATE"
    with pytest.raises(ValueError):
        c.isolation_level = "SOMETIMES"
    c.execute("INSERT INTO t VALUES (2)")
    assert c.in_transaction
    c.isolation_level = None  # commits, as the stdlib does
    assert not c.in_transaction
    c.close()


def test_autocommit_false(db):
    c = litepool.connect(db, autocommit=False)
    assert c.autocommit is False
    assert c.in_transaction
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    c.rollback()
    assert c.in_transaction
    with pytest.raises(litepool.OperationalError, match="no such table"):
        c.execute("SELECT * FROM t")
    c.execute("CREATE TABLE t(x)")
    c.commit()
    assert c.in_transaction
    c.autocommit = True
    assert not c.in_transaction
    c.execute("INSERT INTO t VALUES (5)")
    other = litepool.connect(db)
    assert other.execute("SELECT x FROM t").fetchall() == [(5,)]
    other.close()
    c.close()


def test_autocommit_true(db):
    c = litepool.connect(db, autocommit=True)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    assert not c.in_transaction
    c.commit()  # no-op
    with pytest.raises(ValueError):
        litepool.connect(db, autocommit="yes")
    c.close()


def test_executescript_commits_first(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    assert c.in_transaction
    c.executescript("INSERT INTO t VALUES (2);")
    assert not c.in_transaction
    c.close()


def trace_of_transactions(module, path, isolation_level):
    """What the trace callback sees of an implicit and an explicit transaction."""
    c = module.connect(path, isolation_level=isolation_level)
    c.execute("CREATE TABLE IF NOT EXISTS t(x)")
    c.commit()
    traced = []
    c.set_trace_callback(traced.append)
    c.execute("INSERT INTO t VALUES (1)")
    c.commit()
    c.isolation_level = None
    for begin in ("BEGIN", "begin deferred", "BEGIN IMMEDIATE"):
        c.execute(begin)
        c.execute("INSERT INTO t VALUES (2)")
        c.execute("COMMIT")
    c.set_trace_callback(None)
    c.close()
    return traced


@pytest.mark.parametrize("isolation_level", ["", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"])
@pytest.mark.parametrize("where", [":memory:", "file"])
def test_begin_runs_as_written_as_in_the_stdlib(tmp_path, isolation_level, where):
    """The stdlib's implicit `"BEGIN " + isolation_level` and an explicit BEGIN reach SQLite
    as written (the pool's writer runs them unchanged; its lease keeps this process's other
    writers out), so the trace shows the same statements as the stdlib's."""
    import sqlite3

    def path(name):
        return ":memory:" if where == ":memory:" else str(tmp_path / name)

    want = trace_of_transactions(sqlite3, path("stdlib.db"), isolation_level)
    got = trace_of_transactions(litepool, path("litepool.db"), isolation_level)
    assert got == want
    assert want[0] == f"BEGIN {isolation_level}"
    if where == "file":
        litepool.open(path("litepool.db")).close()


WRITE_FROM_ANOTHER_PROCESS = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    c.execute("INSERT INTO t VALUES ('other process')")
    print("wrote")
except sqlite3.OperationalError as e:
    print(e)
"""


def write_from_another_process(path):
    out = subprocess.run([sys.executable, "-c", WRITE_FROM_ANOTHER_PROCESS, path],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_deferred_begin_takes_the_write_lock_at_the_first_write(db):
    """As with the stdlib: after a plain BEGIN another process may still write, after the
    transaction's first write it cannot (before, litepool made it BEGIN IMMEDIATE). Another
    litepool connection of this process waits for the pool's writer from the BEGIN on."""
    a = litepool.connect(db, isolation_level=None)
    a.execute("CREATE TABLE t(x)")
    a.execute("BEGIN")
    other = litepool.connect(db, timeout=0.2)
    with pytest.raises(litepool.OperationalError, match="writer busy"):
        other.execute("INSERT INTO t VALUES ('other')")
    assert write_from_another_process(db) == "wrote"
    a.execute("INSERT INTO t VALUES ('a')")
    assert write_from_another_process(db) == "database is locked"
    a.execute("COMMIT")
    assert a.execute("SELECT x FROM t ORDER BY x").fetchall() == [("a",), ("other process",)]
    other.close()
    a.close()
