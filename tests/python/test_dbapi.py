import datetime
import gc
import sqlite3
import threading
import warnings

import pytest

import litepool


def test_module_surface():
    assert litepool.OperationalError is sqlite3.OperationalError
    assert litepool.Error is sqlite3.Error
    assert litepool.PrepareProtocol is sqlite3.PrepareProtocol
    assert litepool.adapters is sqlite3.adapters
    assert litepool.apilevel == "2.0" and litepool.paramstyle == "qmark"
    assert litepool.threadsafety in (1, 3)
    assert litepool.sqlite_version_info >= (3, 51, 3)
    assert litepool.LEGACY_TRANSACTION_CONTROL == -1
    assert litepool.PARSE_DECLTYPES == 1 and litepool.PARSE_COLNAMES == 2
    assert litepool.SQLITE_CONSTRAINT_UNIQUE == sqlite3.SQLITE_CONSTRAINT_UNIQUE
    assert litepool.complete_statement("select 1;")
    assert litepool.Binary(b"x") == memoryview(b"x")
    assert litepool.DateFromTicks(0) == datetime.date.fromtimestamp(0)
    from litepool import dbapi2

    assert dbapi2.connect is litepool.connect


def test_execute_fetch(conn):
    cur = conn.cursor()
    cur.execute("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL, d BLOB, e)")
    assert cur.description is None
    cur.execute("INSERT INTO t(b, c, d, e) VALUES (?, ?, ?, ?)", ("x", 1.5, b"\x00\xff", None))
    assert cur.rowcount == 1 and cur.lastrowid == 1
    cur.executemany("INSERT INTO t(b) VALUES (?)", [(str(i),) for i in range(10)])
    # As the stdlib's: executemany leaves the cursor's lastrowid as it was.
    assert cur.rowcount == 10 and cur.lastrowid == 1
    cur.execute("SELECT a, b, c, d, e FROM t ORDER BY a")
    assert [d[0] for d in cur.description] == ["a", "b", "c", "d", "e"]
    assert cur.rowcount == -1
    assert cur.fetchone() == (1, "x", 1.5, b"\x00\xff", None)
    assert len(cur.fetchmany(3)) == 3
    cur.arraysize = 2
    assert len(cur.fetchmany()) == 2
    rest = cur.fetchall()
    assert len(rest) == 5 and cur.fetchone() is None
    assert [r[0] for r in conn.execute("SELECT a FROM t WHERE a < 4")] == [1, 2, 3]
    assert cur.connection is conn
    assert conn.total_changes == 11


def test_large_result_crosses_batches(conn):
    conn.execute("CREATE TABLE t(x)")
    conn.executemany("INSERT INTO t VALUES (?)", ((i,) for i in range(5000)))
    conn.commit()
    rows = conn.execute("SELECT x FROM t ORDER BY x").fetchall()
    assert [r[0] for r in rows] == list(range(5000))


def test_named_params(mem):
    assert mem.execute("SELECT :a, :b", {"a": 1, "b": "two"}).fetchone() == (1, "two")
    with pytest.raises(litepool.ProgrammingError, match="binding parameter :b"):
        mem.execute("SELECT :a, :b", {"a": 1})


def test_row(mem):
    mem.row_factory = litepool.Row
    r = mem.execute("SELECT 1 AS one, 'x' AS Two").fetchone()
    assert isinstance(r, litepool.Row)
    assert r[0] == 1 and r["ONE"] == 1 and r["two"] == "x" and r[-1] == "x"
    assert r.keys() == ["one", "Two"] and len(r) == 2 and tuple(r) == (1, "x")
    assert r[0:1] == (1,)
    r2 = mem.execute("SELECT 1 AS one, 'x' AS Two").fetchone()
    assert r == r2 and hash(r) == hash(r2)
    with pytest.raises(IndexError):
        r["nope"]
    with pytest.raises(IndexError):
        r[5]


def test_stdlib_row_accepted(mem):
    mem.row_factory = sqlite3.Row
    r = mem.execute("SELECT 1 AS one").fetchone()
    assert r["one"] == 1 and r.keys() == ["one"]


def test_custom_row_factory(mem):
    def dict_factory(cursor, row):
        return {d[0]: v for d, v in zip(cursor.description, row)}

    mem.row_factory = dict_factory
    assert mem.execute("SELECT 1 AS a, 2 AS b").fetchone() == {"a": 1, "b": 2}
    cur = mem.cursor()
    cur.row_factory = lambda c, r: litepool.Row(c, r)
    assert cur.execute("SELECT 3 AS z").fetchone()["z"] == 3


def test_text_factory(mem):
    mem.text_factory = bytes
    assert mem.execute("SELECT 'abc'").fetchone() == (b"abc",)
    mem.text_factory = lambda b: b.decode().upper()
    assert mem.execute("SELECT 'abc'").fetchone() == ("ABC",)
    mem.text_factory = str
    assert mem.text_factory is str


def test_adapters_and_converters(tmp_path):
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    litepool.register_adapter(Point, lambda p: f"{p.x};{p.y}")
    litepool.register_converter("point", lambda b: Point(*map(float, b.split(b";"))))
    try:
        c = litepool.connect(str(tmp_path / "a.db"), detect_types=litepool.PARSE_DECLTYPES | litepool.PARSE_COLNAMES)
        c.execute("CREATE TABLE t(p point, q)")
        c.execute("INSERT INTO t VALUES (?, ?)", (Point(1, 2), Point(3, 4)))
        p, q = c.execute("SELECT p, q FROM t").fetchone()
        assert (p.x, p.y) == (1.0, 2.0) and q == "3;4"
        cur = c.execute('SELECT q AS "q [point]" FROM t')
        assert cur.description[0][0] == "q"
        assert cur.fetchone()[0].y == 4.0
        c.close()
        litepool.open(str(tmp_path / "a.db")).close()
    finally:
        del litepool.adapters[(Point, litepool.PrepareProtocol)]
        del litepool.converters["POINT"]


def test_conform(mem):
    class V:
        def __conform__(self, proto):
            assert proto is litepool.PrepareProtocol
            return 42

    assert mem.execute("SELECT ?", (V(),)).fetchone() == (42,)


def test_executescript(conn):
    conn.executescript("CREATE TABLE a(x); INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);")
    assert conn.execute("SELECT sum(x) FROM a").fetchone() == (3,)


def test_iterdump(mem):
    mem.execute("CREATE TABLE t(x)")
    mem.execute("INSERT INTO t VALUES ('a')")
    dump = list(mem.iterdump())
    assert dump[0] == "BEGIN TRANSACTION;"
    assert 'INSERT INTO "t" VALUES(\'a\');' in dump


def test_memory_databases_are_private():
    a = litepool.connect(":memory:")
    b = litepool.connect(":memory:")
    a.execute("CREATE TABLE t(x)")
    with pytest.raises(litepool.OperationalError, match="no such table"):
        b.execute("SELECT * FROM t")
    a.close()
    b.close()


def test_connection_error_attributes(mem):
    assert mem.OperationalError is sqlite3.OperationalError
    assert mem.Error is sqlite3.Error


def test_factories(db):
    class MyConn(litepool.Connection):
        pass

    class MyCursor(litepool.Cursor):
        pass

    c = litepool.connect(db, factory=MyConn)
    assert isinstance(c, MyConn)
    cur = c.cursor(MyCursor)
    assert isinstance(cur, MyCursor)
    assert cur.execute("SELECT 1").fetchone() == (1,)
    c.close()


def test_finalizer_warns_and_releases(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")  # opens a transaction: holds the writer
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        del c
        gc.collect()
    assert any(issubclass(x.category, ResourceWarning) for x in w)
    stats = litepool.open(db).stats()
    assert not stats["writer_in_use"] and stats["rollbacks_on_return"] >= 1


def test_cursor_finalizer_gives_back_its_reader(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3000)])
    c.commit()
    cur = c.execute("SELECT x FROM t")
    cur.fetchone()
    assert litepool.open(db).stats()["readers_in_use"] == 1
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        del cur
        gc.collect()
    assert litepool.open(db).stats()["readers_in_use"] == 0
    c.close()


def test_gil_released_while_waiting(db):
    c = litepool.connect(db, check_same_thread=False)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    c.execute("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r WHERE i < 3000000) SELECT count(*) FROM r").fetchone()
    stop.set()
    t.join()
    assert len(ticks) > 5
    c.close()
