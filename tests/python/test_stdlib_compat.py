"""Issue 19: behaviours programs and libraries rely on, each run the same way on the stdlib
``sqlite3`` and on litepool (separate database files) and compared; and ``install()``, the
module swap and the ``python -m litepool run`` launcher."""

import collections.abc
import os
import sqlite3
import subprocess
import sys

import pytest

import litepool
from litepool.__main__ import command_env

MODULES = [sqlite3, litepool]


def path_for(tmp_path, module):
    return str(tmp_path / f"{module.__name__}.db")


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the exception is the result compared
        return (type(e), str(e))


@pytest.mark.parametrize("sql, params", [
    ("select no_such_col", ()),
    ("select ?", (1, 2)),
    ("select ?", (object(),)),
    ("select :a", {"b": 1}),
])
def test_error_of_a_connection_with_no_other_reference(tmp_path, sql, params):
    # `connect(p).execute(bad)`: the connection's finalizer runs while the error propagates.
    got = [outcome(lambda m=m: m.connect(path_for(tmp_path, m)).execute(sql, params))
           for m in MODULES]
    assert got[1] == got[0]
    assert got[0][0] is not SystemError


def test_error_survives_a_resource_warning_emitted_meanwhile(tmp_path):
    # With ResourceWarning shown, the finalizer warns; the error must still be the one raised.
    code = (
        "import warnings, litepool\n"
        "warnings.simplefilter('always', ResourceWarning)\n"
        "try:\n"
        f"    litepool.connect({path_for(tmp_path, litepool)!r}).execute('select nope')\n"
        "except litepool.OperationalError as e:\n"
        "    print('raised', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "raised no such column: nope", out.stderr
    assert "ResourceWarning" in out.stderr and "SystemError" not in out.stderr


def subclass_round_trip(module, path):
    class Conn(module.Connection):
        def __init__(self, *args, **kwargs):
            self.extra = kwargs.pop("extra", None)
            super().__init__(*args, **kwargs)

    class Cur(module.Cursor):
        pass

    conn = Conn(path, timeout=2.0, isolation_level=None, extra="x")
    cur = Cur(conn)
    cur.execute("create table if not exists t(v)")
    cur.execute("insert into t values (1)")
    rows = conn.cursor(Cur).execute("select v from t").fetchall()
    positional = module.connect(path, 5.0, 0, None, True, Conn, 128, False, extra="p")
    keyword = module.connect(path, factory=Conn, extra="k")
    result = (conn.extra, type(cur).__name__, rows, conn.isolation_level,
              positional.extra, keyword.extra, isinstance(keyword, module.Connection))
    for c in (conn, positional, keyword):
        c.close()
    return result


def test_connection_and_cursor_subclasses_with_the_stdlib_constructors(tmp_path):
    got = [subclass_round_trip(m, path_for(tmp_path, m)) for m in MODULES]
    assert got[1] == got[0]


def uninitialised(module):
    class Lazy(module.Connection):
        def __init__(self, *args):
            pass  # never calls the base __init__

    return [outcome(lambda: Lazy(":memory:").cursor()),
            outcome(lambda: module.Connection.__new__(module.Connection).execute("select 1")),
            outcome(lambda: module.Cursor.__new__(module.Cursor).fetchall())]


def test_uninitialised_connection_and_cursor_raise_like_the_stdlib():
    got = [uninitialised(m) for m in MODULES]
    assert got[1] == got[0]
    assert got[0][0][0] is sqlite3.ProgrammingError


def test_row_is_a_sequence_named_like_the_stdlibs():
    con = litepool.connect(":memory:")
    con.row_factory = litepool.Row
    row = con.execute("select 1 as a").fetchone()
    assert isinstance(row, collections.abc.Sequence)
    assert type(row).__module__ == sqlite3.Row.__module__
    assert repr(row).startswith("<sqlite3.Row object at ")
    con.close()


def failing_generator_rows(module, path, autocommit_mode):
    con = module.connect(path, isolation_level=None if autocommit_mode else "")
    con.execute("create table t(v)")

    def rows():
        for i in range(10):
            if i == 5:
                raise ValueError("no more")
            yield (i,)

    raised = outcome(lambda: con.executemany("insert into t values (?)", rows()))
    in_txn = con.in_transaction
    seen = con.execute("select count(*) from t").fetchone()[0]
    con.rollback()
    kept = con.execute("select count(*) from t").fetchone()[0]
    con.close()
    return raised, in_txn, seen, kept


@pytest.mark.parametrize("autocommit_mode", [True, False])
def test_executemany_runs_the_sets_before_a_failing_one(tmp_path, autocommit_mode):
    got = [failing_generator_rows(m, path_for(tmp_path, m), autocommit_mode) for m in MODULES]
    assert got[1] == got[0]
    assert got[0][2] == 5


class Defaulting(dict):
    def __missing__(self, key):
        return f"default {key}"


class Upper(dict):
    def __getitem__(self, key):
        return super().__getitem__(key).upper()


@pytest.mark.parametrize("params", [
    Defaulting(a="given"),
    Upper(a="x", b="y"),
    Defaulting(),
])
def test_named_parameters_from_a_dict_subclass(params):
    sql = "select :a, :b, ':c' -- :d\n"
    got = [outcome(lambda m=m: m.connect(":memory:").execute(sql, params).fetchall())
           for m in MODULES]
    assert got[1] == got[0]


def test_install_patches_and_uninstall_restores():
    import sqlite3.dbapi2 as std_dbapi2
    names = ("connect", "Connection", "Cursor", "Row", "Blob", "sqlite_version")
    before = {n: getattr(sqlite3, n) for n in names}
    before_dbapi2 = (sqlite3.dbapi2, sys.modules["sqlite3.dbapi2"], std_dbapi2.Cursor)
    litepool.install()
    try:
        litepool.install()  # idempotent
        for n in names:
            assert getattr(sqlite3, n) is getattr(litepool, n)
            assert getattr(std_dbapi2, n) is getattr(litepool, n)
        assert sqlite3.dbapi2 is litepool.dbapi2
        from sqlite3 import dbapi2 as Database

        class WrapperCursor(Database.Cursor):  # as Django's SQLiteCursorWrapper
            pass

        con = sqlite3.connect(":memory:")
        assert isinstance(con, litepool.Connection)
        assert con.cursor(factory=WrapperCursor).execute("select 1").fetchall() == [(1,)]
        con.close()
    finally:
        litepool.uninstall()
    litepool.uninstall()  # idempotent
    assert {n: getattr(sqlite3, n) for n in names} == before
    assert (sqlite3.dbapi2, sys.modules["sqlite3.dbapi2"], std_dbapi2.Cursor) == before_dbapi2


CHILD = """
import sqlite3, subprocess, sys
print(sqlite3.connect is __import__('litepool').connect if 'litepool' in sys.modules else False)
if len(sys.argv) > 1:
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__])
"""


def test_launcher_installs_in_the_program_and_its_python_subprocesses(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = subprocess.run(
        [sys.executable, "-m", "litepool", "run", "--", sys.executable, str(script), "spawn"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
    # Without the launcher: the stdlib's.
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=60)
    assert plain.stdout.split() == ["False"]


def test_launcher_keeps_the_existing_pythonpath_and_sitecustomize(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['SHADOWED_RAN'] = '1'\n")
    env = command_env({"PYTHONPATH": str(tmp_path), "PATH": os.environ.get("PATH", "")})
    assert env["PYTHONPATH"].split(os.pathsep)[1] == str(tmp_path)
    code = "import os, sqlite3, litepool; print(os.environ.get('SHADOWED_RAN'), sqlite3.connect is litepool.connect)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["1", "True"], out.stderr


def test_console_script_runs_the_launcher():
    script = os.path.join(os.path.dirname(sys.executable), "litepool-run")
    code = "import sqlite3, litepool; print(sqlite3.connect is litepool.connect)"
    out = subprocess.run([script, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["True"], out.stderr


def text_factory_changed_while_reading(module):
    con = module.connect(":memory:")
    cur = con.execute("select 'a' union all select 'b' union all select 'c'")
    first = cur.fetchone()
    con.text_factory = bytes
    rest = cur.fetchall()
    con.close()
    return first, rest


def test_text_factory_applies_to_the_rows_fetched_after_it_changes():
    got = [text_factory_changed_while_reading(m) for m in MODULES]
    assert got[1] == got[0]
    assert got[0] == (("a",), [(b"b",), (b"c",)])
