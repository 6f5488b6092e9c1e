import sqlite3
import threading

import pytest

import litepool


def test_closed_connection(db):
    c = litepool.connect(db)
    cur = c.cursor()
    c.close()
    c.close()  # idempotent
    for op in (lambda: c.execute("SELECT 1"), lambda: c.cursor(), c.commit,
               lambda: cur.execute("SELECT 1"), lambda: c.in_transaction,
               lambda: c.total_changes):
        with pytest.raises(litepool.ProgrammingError, match=r"^Cannot operate on a closed database\.$"):
            op()


def test_closed_cursor(mem):
    cur = mem.execute("SELECT 1")
    cur.close()
    with pytest.raises(litepool.ProgrammingError, match=r"^Cannot operate on a closed cursor\.$"):
        cur.fetchone()
    with pytest.raises(litepool.ProgrammingError, match="closed cursor"):
        cur.execute("SELECT 1")


def test_wrong_thread(mem):
    errors = []

    def use():
        try:
            mem.execute("SELECT 1")
        except litepool.ProgrammingError as e:
            errors.append(str(e))

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert errors and errors[0].startswith("SQLite objects created in a thread can only be used in that same thread.")


def test_parameter_count(mem):
    with pytest.raises(litepool.ProgrammingError, match="Incorrect number of bindings supplied. The current statement uses 2, and there are 1 supplied."):
        mem.execute("SELECT ?, ?", (1,))


def test_parameter_type(mem):
    with pytest.raises(litepool.ProgrammingError, match="Error binding parameter 1: type 'list' is not supported"):
        mem.execute("SELECT ?", ([1],))
    with pytest.raises(litepool.ProgrammingError, match="parameters are of unsupported type"):
        mem.execute("SELECT ?", 5)


def test_named_vs_qmark(mem):
    with pytest.raises(litepool.ProgrammingError):
        mem.execute("SELECT ?", {"a": 1})
    with pytest.raises(litepool.ProgrammingError):
        mem.execute("SELECT :a", {"b": 1})


def test_recursive_cursor_use(mem):
    cur = mem.cursor()

    def factory(c, row):
        c.fetchone()
        return row

    cur.row_factory = factory
    cur.execute("SELECT 1 UNION ALL SELECT 2")
    with pytest.raises(litepool.ProgrammingError, match="Recursive use of cursors not allowed."):
        cur.fetchone()


def test_integer_overflow(mem):
    with pytest.raises(OverflowError):
        mem.execute("SELECT ?", (2**63,))
    assert mem.execute("SELECT ?", (2**63 - 1,)).fetchone() == (2**63 - 1,)
    assert mem.execute("SELECT ?", (-(2**63),)).fetchone() == (-(2**63),)


def test_surrogates_rejected(mem):
    with pytest.raises(UnicodeEncodeError):
        mem.execute("SELECT ?", ("\udc80",))


def test_two_statements(mem):
    with pytest.raises(litepool.ProgrammingError, match="You can only execute one statement at a time."):
        mem.execute("SELECT 1; SELECT 2")


@pytest.mark.parametrize("tail", ["; -- done", ";  /* not closed", "; /* two */ -- comments"])
def test_statement_with_a_comment_tail_binds_its_parameters(mem, tail):
    # The same steps on the stdlib: a statement followed by only comments runs, with its
    # parameters (litepool may retry such SQL as its first statement).
    sql = "SELECT ?, ?" + tail
    stdlib = sqlite3.connect(":memory:")
    want = stdlib.execute(sql, (1, "x")).fetchall()
    stdlib.close()
    assert mem.execute(sql, (1, "x")).fetchall() == want == [(1, "x")]
    with pytest.raises(litepool.ProgrammingError, match="Incorrect number of bindings"):
        mem.execute(sql, (1,))


def test_bad_sql(mem):
    with pytest.raises(litepool.OperationalError, match="syntax error") as e:
        mem.execute("SELEKT 1")
    assert e.value.sqlite_errorcode == litepool.SQLITE_ERROR
    assert e.value.sqlite_errorname == "SQLITE_ERROR"


def test_constraint_error_codes(mem):
    mem.execute("CREATE TABLE t(x UNIQUE)")
    mem.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(litepool.IntegrityError) as e:
        mem.execute("INSERT INTO t VALUES (1)")
    assert e.value.sqlite_errorcode == litepool.SQLITE_CONSTRAINT_UNIQUE
    assert e.value.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"


def test_error_mid_iteration_is_raised(mem):
    mem.execute("CREATE TABLE t(x)")
    mem.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)] + [("boom",)])
    cur = mem.execute("SELECT CASE WHEN x = 'boom' THEN abs(-9223372036854775807 - 1) ELSE x END FROM t")
    with pytest.raises(litepool.OperationalError, match="integer overflow"):
        cur.fetchall()


def test_executemany_requires_dml(mem):
    with pytest.raises(litepool.ProgrammingError, match="executemany\\(\\) can only execute DML statements."):
        mem.executemany("SELECT ?", [(1,)])


def test_sql_must_be_str(mem):
    with pytest.raises(TypeError):
        mem.execute(b"SELECT 1")


def test_null_character(mem):
    with pytest.raises(litepool.ProgrammingError, match="null character"):
        mem.execute("SELECT 1\0")


def test_non_utf8_text_with_the_default_text_factory(db, tmp_path):
    """As the stdlib: OperationalError naming the column (as the query names it) and the text
    with replacement characters; with text_factory=bytes (or a callable) the raw bytes."""
    import sqlite3

    std = sqlite3.connect(str(tmp_path / "stdlib.db"))
    lp = litepool.connect(db)
    results = []
    for c in (std, lp):
        c.execute("CREATE TABLE t(x TEXT)")
        c.execute("INSERT INTO t VALUES (CAST(x'61ff62' AS TEXT))")
        c.commit()
        got = []
        for sql in ["SELECT x FROM t", "SELECT x AS y FROM t"]:
            with pytest.raises(litepool.OperationalError) as info:
                c.execute(sql).fetchall()
            got.append(str(info.value))
        c.text_factory = bytes
        got.append(c.execute("SELECT x FROM t").fetchall())
        c.text_factory = lambda b: b.hex()
        got.append(c.execute("SELECT x, 'ok' FROM t").fetchall())
        c.text_factory = str
        got.append(c.execute("SELECT 'still usable'").fetchall())
        results.append(got)
    std.close()
    lp.close()
    assert results[0][0] == "Could not decode to UTF-8 column 'x' with text 'a\ufffdb'"
    assert results[1][:3] == results[0][:3]
    assert results[1][4] == results[0][4]
    # A callable text factory: valid TEXT goes through it; non-UTF-8 TEXT arrives as bytes
    # (the stdlib passes it through the factory too: a documented difference).
    assert results[1][3] == [(b"a\xffb", "6f6b")]
    assert results[0][3] == [("61ff62", "6f6b")]


def test_blob_over_the_length_limit(db, tmp_path):
    """A bound BLOB, a zeroblob() and a function's BLOB result over SQLITE_LIMIT_LENGTH fail
    with the stdlib's DataError and leave the connection usable."""
    import sqlite3

    std = sqlite3.connect(str(tmp_path / "stdlib.db"))
    lp = litepool.connect(db)
    results = []
    for c in (std, lp):
        c.execute("CREATE TABLE b(x)")
        c.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
        c.create_function("big", 0, lambda: b"x" * 2000)
        got = []
        for sql, params in [
            ("INSERT INTO b VALUES (?)", (b"x" * 2000,)),
            ("INSERT INTO b VALUES (zeroblob(2000))", ()),
            ("SELECT big()", ()),
        ]:
            with pytest.raises(litepool.DataError) as info:
                c.execute(sql, params).fetchall()
            got.append((str(info.value), info.value.sqlite_errorname))
        c.rollback()
        got.append(c.execute("SELECT length(?)", (b"x" * 1000,)).fetchall())
        results.append(got)
    std.close()
    lp.close()
    assert results[1] == results[0]
    assert results[0][0] == ("string or blob too big", "SQLITE_TOOBIG")
