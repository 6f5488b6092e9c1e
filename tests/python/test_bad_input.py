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
