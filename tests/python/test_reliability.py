"""Reliability from Python (issue 9): the FD limit, corrupt files, extension loading,
read-only and malformed URIs, the umask. The Rust side (tests/crash.rs, fdlimit.rs,
diskfull.rs, faults.rs, corrupt.rs, security.rs) covers the core; these check that the
Python host surfaces the same guarantees with the stdlib's exception classes.
Process-wide changes (RLIMIT_NOFILE, umask) run in a subprocess."""

import os
import sqlite3 as stdlib
import subprocess
import sys
import textwrap

import pytest

import litepool

FD_LIMIT_CHILD = textwrap.dedent(
    """
    import gc, importlib, os, resource, sys, warnings
    module = importlib.import_module(sys.argv[1])
    path = sys.argv[2]
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    warnings.simplefilter("ignore", ResourceWarning)
    gc.disable()
    with module.connect(path) as c:
        c.execute("CREATE TABLE IF NOT EXISTS t(x)")
    for i in range(1000):
        c = module.connect(path)          # never closed, as services do
        with c:
            c.execute("INSERT INTO t VALUES (?)", (i,))
        assert c.execute("SELECT count(*) FROM t").fetchone()[0] == i + 1
    print("1000 ok")
    if sys.argv[1] != "litepool":
        sys.exit(0)
    # The limit used up by something else: the error names errno 24; freed, it recovers.
    hogs = []
    try:
        while True:
            hogs.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    try:
        module.connect(path + ".new").execute("SELECT 1")
        print("no error at the limit")
        sys.exit(1)
    except module.OperationalError as e:
        print("at the limit:", e)
        assert "errno 24" in str(e), e
    for fd in hogs:
        os.close(fd)
    assert module.connect(path + ".new").execute("SELECT 1").fetchone() == (1,)
    print("recovered")
    """
)


def run_fd_child(module, path):
    return subprocess.run(
        [sys.executable, "-c", FD_LIMIT_CHILD, module, path],
        capture_output=True, text=True, timeout=300,
    )


def test_a_thousand_unclosed_connections_under_a_64_fd_limit(tmp_path):
    proc = run_fd_child("litepool", str(tmp_path / "lim.db"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1000 ok" in proc.stdout and "recovered" in proc.stdout
    assert "too many open files (errno 24)" in proc.stdout


def test_the_fd_limit_check_fails_with_the_stdlib(tmp_path):
    proc = run_fd_child("sqlite3", str(tmp_path / "std.db"))
    assert proc.returncode != 0, proc.stdout
    assert "unable to open database file" in proc.stderr, proc.stderr


def smash(path, offset, length):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * length)


def test_corrupt_pages_raise_database_error_and_the_rest_reads(db):
    with litepool.open(db) as pool:
        c = pool.connect()
        c.executescript(
            "CREATE TABLE small(x); INSERT INTO small VALUES (1), (2);"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB);"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
            " INSERT INTO t SELECT i, zeroblob(900) FROM n;"
        )
        c.close()
    pages = os.path.getsize(db) // 4096
    smash(db, pages // 2 * 4096, 4096)
    c = litepool.connect(db)
    with pytest.raises(stdlib.DatabaseError) as info:
        c.execute("SELECT count(pad) FROM t").fetchall()
    assert not isinstance(info.value, stdlib.OperationalError)
    assert str(info.value) == "database disk image is malformed"
    assert info.value.sqlite_errorname == "SQLITE_CORRUPT"
    assert c.execute("SELECT sum(x) FROM small").fetchone() == (3,)
    c.close()


def test_a_file_that_is_not_a_database_raises_database_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database " * 300)
    for _ in range(3):  # the same error each time, from the registry after the first
        with pytest.raises(stdlib.DatabaseError, match="file is not a database"):
            litepool.connect(str(path)).execute("SELECT 1")
    assert path.read_bytes() == b"not a database " * 300


def test_extension_loading_is_off(mem):
    assert not hasattr(mem, "enable_load_extension")
    assert not hasattr(mem, "load_extension")
    with pytest.raises(stdlib.OperationalError, match="not authorized"):
        mem.execute("SELECT load_extension('/nonexistent/ext.so')")


def test_a_read_only_uri_cannot_write(db):
    with litepool.connect(db) as c:
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
    litepool.open(db).close()
    before = open(db, "rb").read()
    ro = litepool.connect(f"file:{db}?mode=ro", uri=True)
    for sql in ("INSERT INTO t VALUES (2)", "CREATE TABLE u(y)", "PRAGMA user_version = 3"):
        with pytest.raises(stdlib.OperationalError, match="readonly"):
            ro.execute(sql)
        ro.rollback()
    assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
    ro.close()
    assert open(db, "rb").read() == before


@pytest.mark.parametrize(
    "query", ["vfs=unix-none", "immutable=1", "max_readers=0", "bogus=1", "%zz=1"]
)
def test_bad_uri_options_are_refused_and_create_nothing(tmp_path, query):
    path = tmp_path / "u.db"
    with pytest.raises(stdlib.Error) as info:
        litepool.connect(f"file:{path}?{query}", uri=True).execute("SELECT 1")
    assert "option" in str(info.value) or query.split("=")[0] in str(info.value), info.value
    assert not path.exists()


UMASK_CHILD = textwrap.dedent(
    """
    import os, sys, litepool
    os.umask(int(sys.argv[2], 8))
    c = litepool.connect(sys.argv[1])
    c.execute("CREATE TABLE t(x)")
    c.commit()
    for suffix in ("", "-wal", "-shm"):
        print(oct(os.stat(sys.argv[1] + suffix).st_mode & 0o777))
    c.close()
    """
)


@pytest.mark.parametrize("umask", [0o077, 0o027])
def test_created_files_follow_the_umask(tmp_path, umask):
    proc = subprocess.run(
        [sys.executable, "-c", UMASK_CHILD, str(tmp_path / "m.db"), oct(umask)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    modes = [int(m, 8) for m in proc.stdout.split()]
    assert modes == [0o644 & ~umask] * 3, (oct(umask), proc.stdout)
