"""Open flags and per-connection options: the same steps on the stdlib sqlite3 and on
litepool (each on its own database file), with the same outcomes."""

import os
import sqlite3

import pytest

import litepool

MODULES = {"sqlite3": sqlite3, "litepool": litepool}


def outcome(fn, *args):
    """What a call did, comparable across the two modules: its result, or the DB-API class
    name and message of the error it raised."""
    try:
        return ("ok", fn(*args))
    except (sqlite3.Error, litepool.Error) as e:
        return (type(e).__name__, str(e))


def both(tmp_path, scenario):
    """Runs scenario(module, path) for each module on a file of its own; returns the two
    results (stdlib first)."""
    results = []
    for name, module in MODULES.items():
        path = str(tmp_path / f"{name}.db")
        try:
            results.append(scenario(module, path))
        finally:
            if module is litepool and os.path.exists(path):
                litepool.open(path).close()
    return results


def make_table(module, path):
    c = module.connect(path)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES (1)")
    c.commit()
    return c


@pytest.mark.parametrize("read_only_first", [False, True])
def test_mode_ro_is_per_connection_in_either_order(tmp_path, read_only_first):
    def scenario(m, path):
        make_table(m, path).close()
        uri = f"file:{path}?mode=ro"
        if read_only_first:
            ro = m.connect(uri, uri=True)
            rw = m.connect(path)
        else:
            rw = m.connect(path)
            ro = m.connect(uri, uri=True)
        steps = [
            outcome(lambda: ro.execute("SELECT x FROM t").fetchall()),
            outcome(lambda: ro.execute("INSERT INTO t VALUES (2)").rowcount),
            outcome(ro.commit),
            outcome(lambda: ro.execute("CREATE TABLE u(y)").rowcount),
            outcome(lambda: ro.executescript("DELETE FROM t")),
            outcome(lambda: rw.execute("INSERT INTO t VALUES (3)").rowcount),
            outcome(rw.commit),
            outcome(lambda: ro.execute("SELECT x FROM t ORDER BY x").fetchall()),
        ]
        ro.close()
        rw.close()
        return steps

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib
    assert stdlib[1] == ("OperationalError", "attempt to write a readonly database")


def test_try_read_only_then_fall_back_stays_writable(tmp_path):
    """An app pattern: try a read-only connection, fall back to a plain one; the plain one
    writes."""

    def scenario(m, path):
        make_table(m, path).close()
        ro = m.connect(f"file:{path}?mode=ro", uri=True)
        ro.execute("SELECT count(*) FROM t").fetchone()
        rw = m.connect(path)
        rw.execute("INSERT INTO t VALUES (2)")
        rw.commit()
        got = ro.execute("SELECT count(*) FROM t").fetchone()
        ro.close()
        rw.close()
        return got

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib == (2,)


def test_immutable_is_accepted_and_read_only(tmp_path):
    def scenario(m, path):
        make_table(m, path).close()
        c = m.connect(f"file:{path}?immutable=1", uri=True)
        steps = [
            outcome(lambda: c.execute("SELECT x FROM t").fetchall()),
            outcome(lambda: c.execute("DELETE FROM t").rowcount),
        ]
        c.close()
        return steps

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib


def test_shared_memory_database_is_shared_by_name_while_open(tmp_path):
    def scenario(m, path):
        name = f"file:shared_{m.__name__}?mode=memory&cache=shared"
        a = m.connect(name, uri=True)
        a.execute("CREATE TABLE t(x)")
        a.execute("INSERT INTO t VALUES (1)")
        a.commit()
        b = m.connect(name, uri=True)
        steps = [outcome(lambda: b.execute("SELECT x FROM t").fetchall())]
        other = m.connect(f"file:other_{m.__name__}?mode=memory&cache=shared", uri=True)
        steps.append(outcome(lambda: other.execute("SELECT x FROM t").fetchall()))
        other.close()
        a.close()
        steps.append(outcome(lambda: b.execute("SELECT x FROM t").fetchall()))
        b.close()
        c = m.connect(name, uri=True)
        steps.append(outcome(lambda: c.execute("SELECT x FROM t").fetchall()))
        c.close()
        return steps

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib
    assert stdlib[0] == ("ok", [(1,)])


def test_django_test_database_uri(tmp_path):
    """Django's default test database: a named shared in-memory database that several
    connections (threads) use at once."""

    def scenario(m, path):
        uri = "file:memorydb_default?mode=memory&cache=shared"
        keep = m.connect(uri, uri=True, check_same_thread=False)
        keep.execute("CREATE TABLE app(id INTEGER PRIMARY KEY, name TEXT)")
        keep.commit()
        other = m.connect(uri, uri=True, check_same_thread=False)
        other.execute("INSERT INTO app(name) VALUES ('a')")
        other.commit()
        got = keep.execute("SELECT name FROM app").fetchall()
        other.close()
        keep.close()
        return got

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib == [("a",)]


def test_a_second_open_with_other_options_is_never_refused(tmp_path):
    """litepool's own URI options: per-connection ones are the connection's, pool ones are
    set by the first opener; no combination makes a connect fail."""
    path = str(tmp_path / "opts.db")
    make_table(litepool, path).close()
    uris = [
        f"file:{path}?foreign_keys=on",
        f"file:{path}?foreign_keys=off&busy_timeout=1s",
        f"file:{path}?max_readers=2",
        f"file:{path}?pragma=mmap_size(268435456)&pragma=cache_size(-4000)",
        f"file:{path}?journal_mode=wal",
        f"file:{path}?mode=ro",
    ]
    conns = [litepool.connect(u, uri=True) for u in uris] + [litepool.connect(path)]
    pragmas = [
        c.execute("PRAGMA foreign_keys").fetchone()[0] for c in conns
    ]
    assert pragmas == [1, 0, 0, 0, 0, 0, 0]
    assert conns[3].execute("PRAGMA cache_size").fetchone()[0] == -4000
    assert conns[0].execute("PRAGMA cache_size").fetchone()[0] == -2000
    assert conns[1].execute("PRAGMA busy_timeout").fetchone()[0] == 1000
    assert conns[6].execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    for c in conns:
        c.close()
    litepool.open(path).close()


def test_a_file_deleted_between_uses_behaves_like_the_stdlib(tmp_path):
    def scenario(m, path):
        c = make_table(m, path)
        c.close()
        os.unlink(path)
        c = m.connect(path)
        steps = [
            outcome(lambda: c.execute("CREATE TABLE t(x)").rowcount),
            outcome(lambda: c.execute("INSERT INTO t VALUES (2)").rowcount),
            outcome(c.commit),
            outcome(lambda: c.execute("SELECT x FROM t").fetchall()),
        ]
        c.close()
        return steps

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib
    assert stdlib[-1] == ("ok", [(2,)])


def test_an_unused_pool_checkpoints_and_closes_itself(tmp_path):
    """After the last connection closes (and pool_idle_timeout passes), the data is in the
    main file alone, as with the stdlib: a copy of just that file has it."""
    import shutil
    import time

    import fdcheck

    def scenario(m, path):
        uri = f"file:{path}?pool_idle_timeout=200ms&checkpoint_interval=50ms"
        c = m.connect(uri, uri=True) if m is litepool else m.connect(path)
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
        c.commit()
        c.close()
        deadline = time.monotonic() + 5
        while os.path.exists(path + "-wal") and time.monotonic() < deadline:
            time.sleep(0.05)
        copy = path + ".copy"
        shutil.copyfile(path, copy)
        check = sqlite3.connect(copy)
        got = check.execute("SELECT x FROM t").fetchall()
        check.close()
        return got, os.path.exists(path + "-wal"), fdcheck.fds_on(os.path.realpath(path))

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib == ([(1,)], False, 0)
    # A new connect reopens it transparently.
    path = str(tmp_path / "litepool.db")
    c = litepool.connect(path)
    assert c.execute("SELECT x FROM t").fetchall() == [(1,)]
    c.close()


def test_an_explicitly_opened_pool_stays_open(tmp_path):
    import time

    path = str(tmp_path / "held.db")
    pool = litepool.open(path, pool_idle_timeout="100ms", checkpoint_interval="20ms")
    c = litepool.connect(path)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.close()
    time.sleep(0.5)
    assert not pool.closed
    pool.close()


def test_mode_memory_creates_no_file(tmp_path):
    def scenario(m, path):
        c = m.connect(f"file:{path}?mode=memory", uri=True)
        c.execute("CREATE TABLE t(x)")
        c.close()
        return os.path.exists(path)

    stdlib, lp = both(tmp_path, scenario)
    assert lp == stdlib is False


def undecodable_opens(module, directory):
    """Opens a file whose name is not UTF-8 (as Linux allows) three ways, as the stdlib's
    test_open_with_undecodable_path and test_open_undecodable_uri do: the names of the files
    made, and what each connection read back."""
    import urllib.parse

    raw = os.path.join(os.fsencode(directory), b"caf\xe9-\xff.db")
    made = []
    for database, uri in [
        (raw, False),                                      # bytes
        (os.fsdecode(raw).replace(".db", "-s.db"), False),  # str with surrogate escapes
        ("file:" + urllib.parse.quote(raw.replace(b".db", b"-u.db")), True),
    ]:
        c = module.connect(database, uri=uri)
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
        c.commit()
        made.append(c.execute("SELECT x FROM t").fetchall())
        c.close()
    names = sorted(n for n in os.listdir(os.fsencode(directory)) if n.endswith(b".db"))
    return names, made


def test_undecodable_paths_open_the_file_they_name(tmp_path):
    (tmp_path / "stdlib").mkdir()
    (tmp_path / "litepool").mkdir()
    want = undecodable_opens(sqlite3, tmp_path / "stdlib")
    got = undecodable_opens(litepool, tmp_path / "litepool")
    assert got == want
    assert want[0] == [b"caf\xe9-\xff-s.db", b"caf\xe9-\xff-u.db", b"caf\xe9-\xff.db"]


@pytest.mark.parametrize("database", [b"a\x00b.db", "a\x00b.db", "file:a\x00b.db"])
def test_a_nul_in_the_path_raises_as_in_the_stdlib(tmp_path, monkeypatch, database):
    monkeypatch.chdir(tmp_path)
    uri = isinstance(database, str) and database.startswith("file:")
    outcomes = []
    for module in (sqlite3, litepool):
        try:
            module.connect(database, uri=uri).close()
            outcomes.append("ok")
        except ValueError as e:
            outcomes.append(("ValueError", str(e)))
    assert outcomes == [("ValueError", "embedded null byte")] * 2
    assert os.listdir(tmp_path) == []
