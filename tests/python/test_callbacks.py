"""User functions, aggregates, window functions, collations, authorizer, progress handler,
trace callback, limits and serialize/deserialize, compared against the stdlib where the two
can run side by side (the stdlib always on ``:memory:`` or its own temp file, never on a
file litepool has open)."""

import sqlite3
import sys
import threading

import pytest

import litepool

MODULES = [sqlite3, litepool]


def outcome(fn):
    """What calling ``fn`` gives: ('ok', value) or (exception class, message)."""
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the class is what we compare
        return (type(e), str(e))


@pytest.fixture
def filed(db):
    """A litepool connection on a file, with table t(0..4)."""
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    c.commit()
    yield c
    c.close()


class Sum:
    def __init__(self):
        self.n = 0

    def step(self, x):
        self.n += x

    def finalize(self):
        return self.n


class WindowSum(Sum):
    def inverse(self, x):
        self.n -= x

    def value(self):
        return self.n


def boom(*args):
    raise ValueError("boom")


def scenario(c):
    """Every callback behaviour whose outcome the stdlib defines; run on both modules."""
    results = []
    r = results.append
    c.create_function("double", 1, lambda x: x * 2, deterministic=True)
    r(outcome(lambda: c.execute("SELECT double(x) FROM t ORDER BY x").fetchall()))
    c.create_function("nargs", -1, lambda *a: len(a))
    r(outcome(lambda: c.execute("SELECT nargs(1, 2, 3), nargs()").fetchall()))
    c.create_function("kinds", 5, lambda *a: repr([type(v).__name__ for v in a]))
    r(outcome(lambda: c.execute("SELECT kinds(NULL, 1, 1.5, 'a', x'00')").fetchall()))
    r(outcome(lambda: c.execute("SELECT double(1, 2)").fetchall()))
    c.create_function("boom", 0, boom)
    r(outcome(lambda: c.execute("SELECT boom()").fetchall()))
    c.create_function("big", 0, lambda: 2**70)
    r(outcome(lambda: c.execute("SELECT big()").fetchall()))
    c.create_function("obj", 0, lambda: object())
    r(outcome(lambda: c.execute("SELECT obj()").fetchall()))
    c.create_function("notcallable", 0, 42)
    r(outcome(lambda: c.execute("SELECT notcallable()").fetchall()))
    r(outcome(lambda: c.create_function("f", 2000, boom)))
    r(outcome(lambda: c.create_function("f", -2, boom)))
    c.create_function("double", 1, None)  # not a removal: None is called, and fails
    r(outcome(lambda: c.execute("SELECT double(1)").fetchall()))
    c.create_aggregate("mysum", 1, None)
    r(outcome(lambda: c.execute("SELECT mysum(1)").fetchall()))

    c.create_aggregate("mysum", 1, Sum)
    r(outcome(lambda: c.execute("SELECT mysum(x) FROM t").fetchall()))
    r(outcome(lambda: c.execute("SELECT mysum(x) FROM t WHERE 0").fetchall()))

    class BadInit:
        def __init__(self):
            raise ValueError

    class BadStep(Sum):
        def step(self, x):
            raise ValueError

    class BadFinal(Sum):
        def finalize(self):
            raise ValueError

    class NoStep:
        def finalize(self):
            return 1

    for name, cls in [("bi", BadInit), ("bs", BadStep), ("bf", BadFinal), ("ns", NoStep)]:
        c.create_aggregate(name, 1, cls)
        r(outcome(lambda: c.execute(f"SELECT {name}(x) FROM t").fetchall()))
    r(outcome(lambda: c.create_aggregate("x", 3000, Sum)))

    over = "OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
    c.create_window_function("wsum", 1, WindowSum)
    r(outcome(lambda: c.execute(f"SELECT wsum(x) {over} FROM t").fetchall()))

    class BadValue(WindowSum):
        def value(self):
            raise ValueError

    class BadInverse(WindowSum):
        def inverse(self, x):
            raise ValueError

    for name, cls in [("wv", BadValue), ("wi", BadInverse), ("wn", Sum)]:
        c.create_window_function(name, 1, cls)
        r(outcome(lambda: c.execute(f"SELECT {name}(x) {over} FROM t").fetchall()))
    r(outcome(lambda: c.create_window_function("x", 3000, WindowSum)))
    c.create_window_function("wsum", 1, None)
    r(outcome(lambda: c.execute(f"SELECT wsum(x) {over} FROM t").fetchall()))

    r(outcome(lambda: c.create_collation("c", 42)))
    c.create_collation("rev", lambda a, b: (a < b) - (a > b))
    r(outcome(lambda: c.execute(
        "SELECT x FROM t ORDER BY CAST(x AS TEXT) COLLATE rev").fetchall()))
    c.create_collation("rev", None)
    r(outcome(lambda: c.execute(
        "SELECT x FROM t ORDER BY CAST(x AS TEXT) COLLATE rev").fetchall()))

    c.set_authorizer(lambda *a: sqlite3.SQLITE_DENY)
    r(outcome(lambda: c.execute("SELECT 1").fetchall()))
    c.set_authorizer(lambda *a: 1 / 0)
    r(outcome(lambda: c.execute("SELECT 2").fetchall()))
    c.set_authorizer(lambda *a: "not an int")
    r(outcome(lambda: c.execute("SELECT 3").fetchall()))
    c.set_authorizer(
        lambda action, a1, a2, db, src:
        sqlite3.SQLITE_IGNORE if action == sqlite3.SQLITE_READ else sqlite3.SQLITE_OK)
    r(outcome(lambda: c.execute("SELECT x FROM t").fetchall()))
    c.set_authorizer(None)
    r(outcome(lambda: c.execute("SELECT count(*) FROM t").fetchall()))

    c.set_progress_handler(lambda: 1, 1)
    r(outcome(lambda: c.execute("SELECT count(*) FROM t").fetchall()))
    c.set_progress_handler(lambda: 1 / 0, 1)
    r(outcome(lambda: c.execute("SELECT count(*) FROM t").fetchall()))
    c.set_progress_handler(lambda: 0, 1)
    r(outcome(lambda: c.execute("SELECT count(*) FROM t").fetchall()))
    c.set_progress_handler(None, 1)

    r(outcome(lambda: c.getlimit(1000)))
    r(outcome(lambda: c.getlimit(-1)))
    r(outcome(lambda: c.setlimit(1000, 1)))
    r(outcome(lambda: c.setlimit("x", 1)))
    old = c.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    r(outcome(lambda: c.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100) == old))
    r(outcome(lambda: c.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)))
    r(outcome(lambda: c.execute("SELECT ?", ("x" * 200,)).fetchall()))
    r(outcome(lambda: c.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, -1)))
    c.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, old)

    # Only a deterministic function may be used in an index.
    c.create_function("det", 1, lambda x: x, deterministic=True)
    c.create_function("nondet", 1, lambda x: x)
    r(outcome(lambda: c.execute("CREATE INDEX i_det ON t(det(x))").fetchall()))
    r(outcome(lambda: c.execute("CREATE INDEX i_nondet ON t(nondet(x))").fetchall()))
    r(outcome(lambda: c.execute("SELECT x FROM t WHERE det(x) = 3").fetchall()))
    c.execute("DROP INDEX i_det")

    # A collation's exception: the stdlib leaves it pending, so execute raises it.
    c.create_collation("boom", lambda a, b: 1 / 0)
    r(outcome(lambda: c.execute(
        "SELECT x FROM t ORDER BY CAST(x AS TEXT) COLLATE boom").fetchall()))
    c.create_collation("notint", lambda a, b: "x")
    r(outcome(lambda: c.execute(
        "SELECT x FROM t ORDER BY CAST(x AS TEXT) COLLATE notint").fetchall()))
    r(outcome(lambda: c.execute("SELECT 1").fetchall()))
    return results


def test_callbacks_behave_as_the_stdlib():
    std = sqlite3.connect(":memory:")
    lp = litepool.connect(":memory:")
    for c in (std, lp):
        c.execute("CREATE TABLE t(x)")
        c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    expected = scenario(std)
    got = scenario(lp)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g == e, f"step {i}: stdlib {e!r}, litepool {g!r}"
    assert len(got) == len(expected)
    std.close()
    lp.close()


def test_callbacks_on_a_pooled_file_connection_behave_as_the_stdlib(db, tmp_path):
    std = sqlite3.connect(str(tmp_path / "stdlib.db"))
    lp = litepool.connect(db)
    for c in (std, lp):
        c.execute("CREATE TABLE t(x)")
        c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
        c.commit()
    expected = scenario(std)
    got = scenario(lp)
    assert got == expected
    std.close()
    lp.close()


def test_a_function_is_not_visible_to_another_connection_of_the_same_file(db):
    a = litepool.connect(db)
    b = litepool.connect(db)
    a.create_function("secret", 0, lambda: 42)
    a.execute("CREATE TABLE t(x)")
    a.execute("INSERT INTO t VALUES (secret())")  # on the writer, in a transaction
    assert a.execute("SELECT secret()").fetchone() == (42,)
    a.commit()
    assert a.execute("SELECT secret()").fetchone() == (42,)  # on a reader
    for sql in ["SELECT secret()", "INSERT INTO t VALUES (secret())"]:
        with pytest.raises(litepool.OperationalError, match="no such function: secret"):
            b.execute(sql)
    b.rollback()
    a.close()
    b.close()


def test_callback_tracebacks_go_to_the_unraisable_hook(monkeypatch):
    """As in the stdlib: with tracebacks enabled, the exception reaches
    ``sys.unraisablehook`` with the callable as the object; disabled, it does not."""
    for module in MODULES:
        seen = []
        monkeypatch.setattr(sys, "unraisablehook", seen.append)
        c = module.connect(":memory:")
        c.create_function("boom", 0, boom)
        module.enable_callback_tracebacks(True)
        try:
            with pytest.raises(module.OperationalError,
                               match="user-defined function raised exception"):
                c.execute("SELECT boom()")
        finally:
            module.enable_callback_tracebacks(False)
        assert len(seen) == 1, module
        assert isinstance(seen[0].exc_value, ValueError)
        assert seen[0].object is boom
        seen.clear()
        with pytest.raises(module.OperationalError):
            c.execute("SELECT boom()")
        assert seen == []
        c.close()


def test_trace_callback_sees_expanded_sql_and_can_be_removed(filed):
    for module, c in [(sqlite3, sqlite3.connect(":memory:")), (litepool, filed)]:
        traced = []
        c.set_trace_callback(traced.append)
        c.execute("SELECT ?, ?", (1, "a")).fetchall()
        assert "SELECT 1, 'a'" in traced, module
        c.set_trace_callback(None)
        c.execute("SELECT 2").fetchall()
        assert "SELECT 2" not in traced
        if module is sqlite3:
            c.close()


def test_trace_of_sql_too_long_to_expand_matches_the_stdlib(monkeypatch, filed):
    """Expanded SQL over SQLITE_LIMIT_LENGTH: the stdlib traces the SQL as written and
    reports a DataError to sys.unraisablehook (with tracebacks on)."""
    def run(module, c):
        seen = []
        monkeypatch.setattr(sys, "unraisablehook", seen.append)
        traced = []
        c.setlimit(module.SQLITE_LIMIT_LENGTH, 64)
        c.set_trace_callback(traced.append)
        module.enable_callback_tracebacks(True)
        try:
            c.execute("SELECT ? AS a", ("a" * 64,)).fetchall()
            c.execute("SELECT ? AS a", ("b",)).fetchall()
        finally:
            module.enable_callback_tracebacks(False)
            c.set_trace_callback(None)
        return traced, [(type(u.exc_value).__name__, str(u.exc_value)) for u in seen]

    want = run(sqlite3, sqlite3.connect(":memory:"))
    got = run(litepool, filed)
    assert got == want
    assert want == (["SELECT ? AS a", "SELECT 'b' AS a"],
                    [("DataError", "Expanded SQL string exceeds the maximum string length")])


def test_trace_callback_raising_is_ignored(filed):
    filed.set_trace_callback(boom)
    assert filed.execute("SELECT 1").fetchall() == [(1,)]


def test_progress_handler_and_authorizer_do_not_reach_other_connections(db, filed):
    other = litepool.connect(db)
    filed.set_progress_handler(lambda: 1, 1)
    filed.set_authorizer(lambda *a: sqlite3.SQLITE_DENY)
    with pytest.raises(litepool.DatabaseError, match="not authorized"):
        filed.execute("SELECT x FROM t")
    assert other.execute("SELECT count(*) FROM t").fetchone() == (5,)
    other.execute("INSERT INTO t VALUES (5)")
    other.commit()
    filed.set_authorizer(None)
    with pytest.raises(litepool.OperationalError, match="interrupted"):
        filed.execute("SELECT count(*) FROM t")
    filed.set_progress_handler(None, 1)
    assert filed.execute("SELECT count(*) FROM t").fetchone() == (6,)
    other.close()


def test_limits_are_per_connection(db, filed):
    other = litepool.connect(db)
    default = other.getlimit(litepool.SQLITE_LIMIT_LENGTH)
    filed.setlimit(litepool.SQLITE_LIMIT_LENGTH, 100)
    with pytest.raises(litepool.DataError, match="string or blob too big"):
        filed.execute("SELECT ?", ("x" * 200,))
    assert other.getlimit(litepool.SQLITE_LIMIT_LENGTH) == default
    assert other.execute("SELECT length(?)", ("x" * 200,)).fetchone() == (200,)
    other.close()


def test_a_callback_may_use_another_connection_without_deadlock(db, filed):
    """The statement runs on a pooled connection's thread while the caller waits without
    the GIL; the callback takes the GIL there and may run SQL on another connection of the
    same file (a read, which takes a reader, while the caller holds the writer too). As in
    the stdlib, where the callback runs on the calling thread, it may use a connection that
    thread owns (check_same_thread=True)."""
    other = litepool.connect(db)
    filed.create_function(
        "count_other", 0,
        lambda: other.execute("SELECT count(*) FROM t").fetchone()[0])
    assert filed.execute("SELECT count_other()").fetchone() == (5,)
    filed.execute("INSERT INTO t VALUES (count_other())")  # writer held meanwhile
    filed.commit()
    assert filed.execute("SELECT max(x) FROM t").fetchone() == (5,)
    # A connection owned by yet another thread stays off limits, as in the stdlib.
    foreign = []
    opened, done = threading.Event(), threading.Event()

    def owner():
        foreign.append(litepool.connect(db))
        opened.set()
        done.wait()
        foreign[0].close()

    t = threading.Thread(target=owner)
    t.start()
    opened.wait()
    inner = []

    def use_foreign():
        try:
            return foreign[0].execute("SELECT 1").fetchone()[0]
        except litepool.ProgrammingError as e:
            inner.append(str(e))
            raise

    filed.create_function("use_foreign", 0, use_foreign)
    with pytest.raises(litepool.OperationalError,
                       match="user-defined function raised exception"):
        filed.execute("SELECT use_foreign()")
    assert len(inner) == 1 and "created in a thread can only be used in that same thread" \
        in inner[0]
    done.set()
    t.join()
    other.close()


def test_a_callback_using_its_own_connection_fails_instead_of_deadlocking(db):
    c = litepool.connect(db, check_same_thread=False)
    errors = []

    def reentrant():
        try:
            return c.execute("SELECT 1").fetchone()[0]
        except litepool.ProgrammingError as e:
            errors.append(e)
            raise

    c.create_function("reentrant", 0, reentrant)
    with pytest.raises(litepool.OperationalError,
                       match="user-defined function raised exception"):
        c.execute("SELECT reentrant()")
    assert len(errors) == 1 and "callback cannot use the connection" in str(errors[0])
    c.close()


def test_callbacks_from_several_threads(db):
    """Threads sharing a file, each with its own function, never see the others'."""
    failures = []

    def work(n):
        try:
            c = litepool.connect(db)
            c.create_function("mine", 0, lambda: n)
            for _ in range(50):
                assert c.execute("SELECT mine()").fetchone() == (n,)
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_function_arguments_with_non_utf8_text_raise_as_the_stdlib(filed):
    for c in [sqlite3.connect(":memory:"), filed]:
        c.create_function("ident", 1, lambda x: x)
        with pytest.raises(sqlite3.OperationalError,
                           match="user-defined function raised exception"):
            c.execute("SELECT ident(CAST(x'61ff62' AS TEXT))").fetchall()


def test_registration_on_a_closed_connection(db):
    c = litepool.connect(db)
    c.close()
    for call in [
        lambda: c.create_function("f", 1, boom),
        lambda: c.create_aggregate("f", 1, Sum),
        lambda: c.create_window_function("f", 1, WindowSum),
        lambda: c.create_collation("f", boom),
        lambda: c.set_authorizer(None),
        lambda: c.set_progress_handler(None, 1),
        lambda: c.set_trace_callback(None),
        lambda: c.getlimit(0),
        lambda: c.setlimit(0, 1),
        lambda: c.serialize(),
        lambda: c.deserialize(b""),
        lambda: c.blobopen("t", "x", 1),
    ]:
        with pytest.raises(litepool.ProgrammingError,
                           match="Cannot operate on a closed database."):
            call()


def test_serialize_roundtrip_and_deserialize_garbage(filed):
    image = filed.serialize()
    assert image[:16] == b"SQLite format 3\x00"
    std = sqlite3.connect(":memory:")
    std.deserialize(image)  # the stdlib can read what litepool serialized
    assert std.execute("SELECT count(*) FROM t").fetchone() == (5,)
    std.close()
    mem = litepool.connect(":memory:")
    mem.deserialize(image)
    assert mem.execute("SELECT count(*) FROM t").fetchone() == (5,)
    mem.deserialize(b"garbage" * 100)
    with pytest.raises(litepool.DatabaseError, match="file is not a database"):
        mem.execute("SELECT * FROM sqlite_master")
    with pytest.raises(litepool.OperationalError, match="unable to serialize 'nope'"):
        filed.serialize(name="nope")
    with pytest.raises(litepool.NotSupportedError):
        filed.deserialize(image)
    mem.close()


def test_a_closed_connection_lets_go_of_its_callbacks(db):
    """Closing drops the connection's callables (and what they hold) from every pooled
    connection it used, though those connections stay open in the pool."""
    import gc
    import weakref

    class Marker:
        pass

    marker = Marker()
    ref = weakref.ref(marker)
    c = litepool.connect(db)
    # Default arguments: the callables are the only holders once `marker` is deleted.
    c.create_function("f", 0, lambda m=marker: m is not None)
    c.create_collation("coll", lambda a, b, m=marker: 0)
    c.set_trace_callback(lambda sql, m=marker: None)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (f())")  # the writer
    c.commit()
    assert c.execute("SELECT f() FROM t ORDER BY x COLLATE coll").fetchall() == [(1,)]
    del marker
    gc.collect()
    assert ref() is not None
    c.close()
    gc.collect()
    assert ref() is None


def test_enable_callback_tracebacks_takes_an_int_as_the_stdlib():
    for module in MODULES:
        module.enable_callback_tracebacks(1)
        module.enable_callback_tracebacks(0)
        with pytest.raises(TypeError):
            module.enable_callback_tracebacks("yes")


def test_a_cursor_or_blob_of_the_same_connection_freed_inside_a_callback(db):
    """Freeing, inside a callback, the last reference to a cursor with unread rows or an open
    blob of the connection running the statement must not deadlock (the statement holds
    that connection); they are closed once the statement ends."""
    c = litepool.connect(db, check_same_thread=False)
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(b"abc",)] * 2000)
    c.commit()
    held = [c.execute("SELECT x FROM t"), c.blobopen("t", "x", 1)]
    pool = c.pool
    c.create_function("release", 0, lambda: held.clear())
    assert c.execute("SELECT release()").fetchone() == (None,)
    assert held == []
    c.close()
    assert pool.stats()["readers_in_use"] == 0
    assert not pool.stats()["writer_in_use"]
