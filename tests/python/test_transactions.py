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
