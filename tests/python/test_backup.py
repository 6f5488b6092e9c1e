"""``Connection.backup``: file to file through SQLite's online backup on a pooled reader; into
``:memory:`` step by step as the stdlib does (progress between steps on the caller's
thread); and the stdlib's errors for bad arguments (compared with the stdlib on
``:memory:`` connections, never on a shared file)."""

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


def stepped_backup(module, pages=1, modify=False, name="main", attach=False):
    """The stdlib's test_backup setup: what a backup of a two-row :memory: database into
    another reports to `progress`, and what the copy holds."""
    src = module.connect(":memory:")
    src.execute("CREATE TABLE foo (key INTEGER)")
    src.executemany("INSERT INTO foo (key) VALUES (?)", [(3,), (4,)])
    src.commit()
    if attach:
        src.execute("ATTACH DATABASE ':memory:' AS attached_db")
        src.execute("CREATE TABLE attached_db.foo (key INTEGER)")
        src.execute("INSERT INTO attached_db.foo VALUES (5)")
        src.commit()
    journal = []

    def progress(status, remaining, total):
        if modify and not journal:
            src.execute("INSERT INTO foo (key) VALUES (?)", (remaining + 1000,))
            src.commit()
        journal.append((status, remaining, total))

    dst = module.connect(":memory:")
    try:
        src.backup(dst, pages=pages, progress=progress, name=name)
    except module.Error as e:
        return type(e).__name__, str(e)
    keys = dst.execute("SELECT key FROM foo ORDER BY key").fetchall() if name != "temp" else []
    src.close()
    dst.close()
    return journal, keys


@pytest.mark.parametrize("pages", [1, 2, -1, 0])
def test_memory_target_steps_as_the_stdlib(pages):
    assert stepped_backup(litepool, pages) == stepped_backup(sqlite3, pages)


def test_a_change_made_by_progress_is_in_the_copy_as_in_the_stdlib():
    want = stepped_backup(sqlite3, modify=True)
    assert want == ([(0, 1, 2), (0, 1, 2), (101, 0, 2)], [(3,), (4,), (1001,)])
    assert stepped_backup(litepool, modify=True) == want


@pytest.mark.parametrize("name", ["temp", "attached_db", "non-existing"])
def test_source_database_names_as_in_the_stdlib(name):
    want = stepped_backup(sqlite3, name=name, attach=True)
    assert stepped_backup(litepool, name=name, attach=True) == want
    if name == "non-existing":
        assert want == ("OperationalError", "unknown database non-existing")


def test_file_source_into_memory_in_steps(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    fill(src, 100)
    mem = litepool.connect(":memory:")
    calls = []

    def progress(status, remaining, total):
        # On the reader's thread, on behalf of this one: the source connection may be used.
        src.execute("INSERT INTO t(v) VALUES ('during')")
        src.commit()
        calls.append((status, remaining, total))

    src.backup(mem, pages=1, progress=progress)
    total = calls[0][2]
    assert calls == [(0, total - i, total) for i in range(1, total)] + [(101, 0, total)]
    # One snapshot: the rows inserted meanwhile are not in the copy.
    assert rows(mem) == (100, 20000)
    assert src.execute("SELECT count(*) FROM t").fetchone() == (100 + total,)
    src.close()
    mem.close()


@pytest.mark.parametrize("module", [sqlite3, litepool])
def test_closing_the_source_during_the_backup_as_in_the_stdlib(module):
    """The stdlib's close() succeeds and the backup still completes (SQLite keeps the closed
    connection until the backup finishes); the source is closed afterwards."""
    src = module.connect(":memory:")
    fill(src, 100)
    dst = module.connect(":memory:")
    calls = []

    def progress(status, remaining, total):
        src.close()
        calls.append(status)

    src.backup(dst, pages=1, progress=progress)
    assert calls[-1] == 101 and len(calls) > 2
    assert rows(dst) == (100, 20000)
    with pytest.raises(module.ProgrammingError, match="closed database"):
        src.execute("SELECT 1")
    dst.close()


def test_an_exception_in_progress_leaves_the_source_usable():
    src = litepool.connect(":memory:")
    fill(src, 100)
    dst = litepool.connect(":memory:")

    def progress(status, remaining, total):
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        src.backup(dst, pages=1, progress=progress)
    src.execute("INSERT INTO t(v) VALUES ('after')")
    src.commit()
    assert src.execute("SELECT count(*) FROM t").fetchone() == (101,)
    src.backup(dst)
    assert rows(dst) == (101, 20005)
    src.close()
    dst.close()


def test_an_exception_in_progress_from_a_file_leaves_a_memory_target_as_it_was(tmp_path):
    src = litepool.connect(tmp_path / "src.db")
    fill(src, 100)
    mem = litepool.connect(":memory:")
    mem.execute("CREATE TABLE keep(x)")
    mem.commit()

    def progress(status, remaining, total):
        raise ZeroDivisionError("from progress")

    with pytest.raises(ZeroDivisionError, match="from progress"):
        src.backup(mem, pages=1, progress=progress)
    names = [r[0] for r in mem.execute("SELECT name FROM sqlite_master")]
    assert names == ["keep"]
    src.close()
    mem.close()
