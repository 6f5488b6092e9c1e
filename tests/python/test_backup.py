"""``Connection.backup``: file to file through SQLite's online backup on a pooled reader, into
and out of ``:memory:`` through a serialized image, and the stdlib's errors for bad
arguments (compared with the stdlib on ``:memory:`` connections, never on a shared file)."""

import sqlite3

import pytest

import litepool


def fill(c, n=2000):
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    c.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 200,) for _ in range(n)])
    c.commit()


def rows(c):
    return c.execute("SELECT count(*), sum(length(v)) FROM t").fetchone()


def test_file_to_file_in_steps_with_progress(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    dst = litepool.connect(tmp_path / "dst.db")
    fill(src)
    calls = []
    src.backup(dst, pages=10, progress=lambda *a: calls.append(a))
    assert rows(dst) == (2000, 400000)
    total = calls[-1][2]
    assert total > 10
    assert len(calls) == -(-total // 10), "one progress call per step of 10 pages"
    assert calls[-1][:2] == (101, 0), "the last step reports SQLITE_DONE and nothing left"
    assert all(c[0] == 0 and c[1] > 0 for c in calls[:-1])
    # The target's own pool sees the copy, and the source goes on working.
    dst.execute("INSERT INTO t(v) VALUES ('after')")
    dst.commit()
    assert rows(src) == (2000, 400000)
    src.close()
    dst.close()


def test_backup_replaces_the_target_and_copies_committed_state(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    dst = litepool.connect(tmp_path / "dst.db")
    fill(src, 10)
    dst.execute("CREATE TABLE other(x)")
    dst.commit()
    src.backup(dst)
    assert rows(dst) == (10, 2000)
    names = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert names == ["t"]
    src.close()
    dst.close()


def test_file_to_memory_and_memory_to_memory(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    fill(src, 50)
    mem = litepool.connect(":memory:")
    calls = []
    src.backup(mem, progress=lambda *a: calls.append(a))
    assert rows(mem) == (50, 10000)
    assert calls and calls[-1][:2] == (101, 0) and calls[-1][2] > 0
    mem2 = litepool.connect(":memory:")
    mem.backup(mem2)
    assert rows(mem2) == (50, 10000)
    for c in (src, mem, mem2):
        c.close()


def test_memory_to_file_is_not_supported_and_changes_nothing(tmp_path):
    mem = litepool.connect(":memory:")
    fill(mem, 5)
    dst = litepool.connect(tmp_path / "dst.db")
    dst.execute("CREATE TABLE keep(x)")
    dst.execute("INSERT INTO keep VALUES (1)")
    dst.commit()
    with pytest.raises(litepool.NotSupportedError, match="in-memory"):
        mem.backup(dst)
    assert dst.execute("SELECT x FROM keep").fetchall() == [(1,)]
    mem.close()
    dst.close()


def test_exception_in_progress_is_raised(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    dst = litepool.connect(tmp_path / "dst.db")
    fill(src, 100)

    def progress(status, remaining, total):
        raise ZeroDivisionError("from progress")

    with pytest.raises(ZeroDivisionError, match="from progress"):
        src.backup(dst, pages=1, progress=progress)
    src.close()
    dst.close()


def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the class and message are what we compare
        return (type(e), str(e))


@pytest.mark.parametrize(
    "case",
    ["not a connection", "same connection", "progress not callable", "closed target",
     "target in transaction"],
)
def test_bad_arguments_match_the_stdlib(case):
    def run(mod):
        src = mod.connect(":memory:")
        dst = mod.connect(":memory:")
        src.execute("CREATE TABLE t(x)")
        if case == "not a connection":
            return outcome(lambda: src.backup(42))
        if case == "same connection":
            return outcome(lambda: src.backup(src))
        if case == "progress not callable":
            return outcome(lambda: src.backup(dst, progress=1))
        if case == "closed target":
            dst.close()
            return outcome(lambda: src.backup(dst))
        dst.execute("CREATE TABLE u(x)")
        dst.execute("BEGIN")
        dst.execute("INSERT INTO u VALUES (1)")
        return outcome(lambda: src.backup(dst))

    got = run(litepool)
    want = run(sqlite3)
    assert got != "ok"
    assert got == want


def test_closed_source(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    dst = litepool.connect(tmp_path / "dst.db")
    src.close()
    with pytest.raises(litepool.ProgrammingError, match="closed database"):
        src.backup(dst)
    dst.close()
