"""What the per-call fast paths (point select, connect per operation) must keep: each test
pins a behaviour of the stdlib's that a cache or a skipped step could lose."""

import os
import sqlite3
import sys
import threading
import warnings

import pytest

import litepool


def both(fn):
    """`fn(module)` on the stdlib and on litepool (each on its own `:memory:` database)."""
    return fn(sqlite3), fn(litepool)


@pytest.mark.parametrize("base", [int, float, str, bytearray])
def test_base_type_adapter_applies_from_the_next_execute(base):
    values = {int: 7, float: 1.5, str: "s", bytearray: bytearray(b"b")}
    value = values[base]

    def run(mod):
        c = mod.connect(":memory:")
        before = c.execute("SELECT ?", (value,)).fetchone()[0]
        mod.register_adapter(base, lambda v: "adapted")
        try:
            during = c.execute("SELECT ?", (value,)).fetchone()[0]
            # Other base types are not adapted by an adapter for this one.
            other = c.execute("SELECT ?, ?", (None, b"x")).fetchone()
        finally:
            del mod.adapters[(base, mod.PrepareProtocol)]
        after = c.execute("SELECT ?", (value,)).fetchone()[0]
        c.close()
        return before, during, other, after

    std, ours = both(run)
    assert ours == std
    assert ours[1] == "adapted" and ours[3] != "adapted"


def test_base_adapter_applies_to_every_row_of_executemany():
    def run(mod):
        c = mod.connect(":memory:")
        c.execute("CREATE TABLE t(v)")
        mod.register_adapter(int, lambda v: v * 10)
        try:
            c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), ("3",)])
        finally:
            del mod.adapters[(int, mod.PrepareProtocol)]
        rows = c.execute("SELECT v FROM t ORDER BY rowid").fetchall()
        c.close()
        return rows

    std, ours = both(run)
    assert ours == std == [(10,), (20,), ("3",)]


def test_description_follows_each_statement_on_one_connection():
    def run(mod):
        c = mod.connect(":memory:", detect_types=mod.PARSE_COLNAMES)
        c.execute("CREATE TABLE t(a, b)")
        out = []
        for sql in ["SELECT a, b FROM t", "SELECT b, a FROM t", "SELECT a AS 'x [int]' FROM t",
                    "SELECT a, b FROM t", "INSERT INTO t VALUES (1, 2)"]:
            d = c.execute(sql).description
            out.append(None if d is None else [col[0] for col in d])
        c.close()
        return out

    std, ours = both(run)
    assert ours == std
    assert ours[2] == ["x"] and ours[4] is None


def test_description_is_not_shared_across_differently_parsing_connections():
    def run(mod):
        plain = mod.connect(":memory:")
        parsing = mod.connect(":memory:", detect_types=mod.PARSE_COLNAMES)
        sql = "SELECT 1 AS 'n [int]'"
        names = [plain.execute(sql).description[0][0], parsing.execute(sql).description[0][0],
                 plain.execute(sql).description[0][0]]
        plain.close()
        parsing.close()
        return names

    std, ours = both(run)
    assert ours == std == ["n [int]", "n", "n [int]"]


@pytest.mark.parametrize(
    "kwargs, after_select, after_insert",
    [
        ({}, False, True),
        ({"isolation_level": None}, False, False),
        ({"isolation_level": "IMMEDIATE"}, False, True),
        ({"autocommit": False}, True, True),
        ({"autocommit": True}, False, False),
    ],
)
def test_implicit_begin_as_the_stdlib(db, kwargs, after_select, after_insert):
    c = litepool.connect(db, **kwargs)
    c.execute("CREATE TABLE IF NOT EXISTS t(v)")
    c.commit()
    c.execute("SELECT * FROM t").fetchall()
    assert c.in_transaction is after_select
    c.execute("INSERT INTO t VALUES (1)")
    assert c.in_transaction is after_insert
    c.rollback()
    c.close()
    if "autocommit" in kwargs and sys.version_info < (3, 12):
        return  # the stdlib has `autocommit` from 3.12 on
    with sqlite3.connect(":memory:", **kwargs) as s:
        s.execute("CREATE TABLE t(v)")
        s.commit()
        s.execute("SELECT * FROM t").fetchall()
        assert s.in_transaction is after_select
        s.execute("INSERT INTO t VALUES (1)")
        assert s.in_transaction is after_insert
        s.rollback()
    s.close()


def test_connect_after_the_file_was_replaced_sees_the_new_file(tmp_path):
    path = str(tmp_path / "r.db")
    c = litepool.connect(path)
    c.execute("CREATE TABLE old(v)")
    c.commit()
    c.close()
    old_pool = litepool.open(path)  # still open (and cached) when the file is replaced
    other = str(tmp_path / "other.db")
    o = litepool.connect(other)
    o.execute("CREATE TABLE new(v)")
    o.commit()
    o.close()
    litepool.open(other).close()
    # Empties the old pool's WAL, which stays beside the new file (as it would for any
    # program replacing a database that is open).
    old_pool.checkpoint("TRUNCATE")
    os.replace(other, path)
    sql = "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite%'"
    try:
        with warnings.catch_warnings():
            # The old pool's descriptors on the replaced file look like another library's.
            warnings.simplefilter("ignore", RuntimeWarning)
            c = litepool.connect(path)
        tables = [r[0] for r in c.execute(sql)]
        c.close()
        litepool.open(path).close()
    finally:
        old_pool.close()
    assert tables == ["new"]


def test_connect_accepts_path_like_and_bytes(tmp_path):
    path = tmp_path / "p.db"
    for database in (path, os.fsencode(str(path)), str(path)):
        c = litepool.connect(database)
        c.execute("CREATE TABLE IF NOT EXISTS t(v)")
        c.close()
    assert path.exists()
    litepool.open(str(path)).close()
    with pytest.raises(TypeError):
        litepool.connect(1.5)


def test_thread_check_names_both_threads(db):
    c = litepool.connect(db)
    errors = []

    def use():
        try:
            c.execute("SELECT 1")
        except litepool.ProgrammingError as e:
            errors.append((str(e), threading.get_ident()))

    t = threading.Thread(target=use)
    t.start()
    t.join()
    c.close()
    message, ident = errors[0]
    assert f"created in thread id {threading.get_ident()}" in message
    assert f"this is thread id {ident}" in message


def test_descriptions_stay_right_past_the_shared_cache(mem):
    # More column shapes than the process-wide description cache keeps, then the first again.
    shapes = [[f"c{i}_{j}" for j in range(i % 3 + 1)] for i in range(40)]
    for names in shapes + shapes[:3]:
        sql = "SELECT " + ", ".join(f"{j} AS {n}" for j, n in enumerate(names))
        cur = mem.execute(sql)
        assert [d[0] for d in cur.description] == names
        assert all(d[1:] == (None,) * 6 for d in cur.description)
    mem.row_factory = litepool.Row
    row = mem.execute("SELECT 1 AS a, 2 AS b").fetchone()
    assert row.keys() == ["a", "b"] and row["b"] == 2
