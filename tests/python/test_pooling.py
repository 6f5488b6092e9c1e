import os
import subprocess
import sys
import threading

import pytest

import fdcheck
import litepool


def test_seed_pattern_keeps_fds_bounded(db):
    worst = fdcheck.check(litepool, db)
    assert worst <= 11
    stats = litepool.open(db).stats()
    assert stats["connections_open"] <= 1 + stats["max_readers"]


def test_seed_check_fails_with_the_stdlib(tmp_path):
    path = str(tmp_path / "std.db")
    proc = subprocess.run(
        [sys.executable, fdcheck.__file__, "sqlite3", path],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_idle_connections_hold_no_sqlite_connection(db):
    conns = [litepool.connect(db) for _ in range(200)]
    for c in conns:
        c.execute("SELECT 1").fetchall()
    stats = litepool.open(db).stats()
    assert stats["connections_open"] <= 1 + stats["max_readers"]
    assert stats["readers_in_use"] == 0 and not stats["writer_in_use"]
    for c in conns:
        c.close()


def test_open_pool_stats_checkpoint_close(db):
    with litepool.open(db, max_readers=2, busy_timeout=1.5) as pool:
        assert isinstance(pool, litepool.Pool)
        c = pool.connect()
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
        c.commit()
        s = pool.stats()
        assert s["max_readers"] == 2 and s["path"] == os.path.realpath(db)
        busy, log, done = pool.checkpoint("TRUNCATE")
        assert busy == 0
        # connect() joins the open pool whatever its options
        c2 = litepool.connect(db, timeout=0.5)
        assert c2.execute("SELECT x FROM t").fetchall() == [(1,)]
        c2.close()
        c.close()
    assert pool.closed
    assert fdcheck.fds_on(os.path.realpath(db)) == 0
    assert not os.path.exists(db + "-wal")


def test_open_with_other_options_joins_and_reports(db, capfd):
    p = litepool.open(db, max_readers=2)
    q = litepool.open(db, max_readers=3)
    assert p.stats()["option_mismatches"] == 1
    assert "max_readers=3 (the pool has 2)" in capfd.readouterr().err
    litepool.open(db, max_readers=3)
    assert p.stats()["option_mismatches"] == 2
    assert capfd.readouterr().err == "", "each difference is logged once"
    assert q.stats()["max_readers"] == 2
    p.close()
    assert q.closed


def test_bad_open_option(db):
    with pytest.raises(litepool.InterfaceError, match="unknown option"):
        litepool.open(db, nonsense=1)


def test_checkpoint_mode_checked(db):
    with litepool.open(db) as p:
        with pytest.raises(ValueError):
            p.checkpoint("SOMETIMES")


def test_threads_share_the_pool(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    c.commit()
    errors = []

    def work():
        try:
            cc = litepool.connect(db)
            with cc:
                for _ in range(50):
                    assert cc.execute("SELECT count(*) FROM t").fetchone() == (100,)
            cc.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    c.close()


def test_check_same_thread_false_shares_a_connection(db):
    c = litepool.connect(db, check_same_thread=False)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    errors = []

    def work(i):
        try:
            for j in range(20):
                c.execute("INSERT INTO t VALUES (?)", (i * 100 + j,))
                c.commit()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert c.execute("SELECT count(*) FROM t").fetchone() == (80,)
    c.close()


def test_other_sqlite_copy_warns(tmp_path):
    path = str(tmp_path / "mixed.db")
    code = (
        "import sqlite3, warnings, litepool\n"
        f"s = sqlite3.connect({path!r}); s.execute('create table t(x)'); s.commit()\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    c = litepool.connect({path!r})\n"
        "assert any('another SQLite' in str(x.message) for x in w), [str(x.message) for x in w]\n"
        "c.close(); s.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_install_uninstall(db):
    import sqlite3

    orig = sqlite3.connect
    litepool.install()
    try:
        assert sqlite3.connect is litepool.connect
        c = sqlite3.connect(db)
        assert isinstance(c, litepool.Connection)
        c.close()
        litepool.install()
    finally:
        litepool.uninstall()
    assert sqlite3.connect is orig
    litepool.uninstall()


def test_timeout_bounds_the_wait_for_the_writer(db):
    import time

    a = litepool.connect(db)
    a.execute("CREATE TABLE t(x)")
    a.execute("INSERT INTO t VALUES (1)")  # holds the writer in a transaction
    b = litepool.connect(db, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(litepool.OperationalError, match="writer busy"):
        b.execute("INSERT INTO t VALUES (2)")
    assert time.monotonic() - t0 < 2
    a.rollback()
    a.close()
    b.close()
