"""Per-connection semantics over a shared pool (issue 18).

Each test runs the same steps on the stdlib ``sqlite3`` and on ``litepool`` (separate
files) and compares what a program sees.
"""

import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import litepool

MODULES = {"stdlib": sqlite3, "litepool": litepool}


def outcome(f, *args):
    """What calling ``f`` gives a program: ("ok", value) or (error class, message)."""
    try:
        return ("ok", f(*args))
    except Exception as e:  # noqa: BLE001 - the comparison is the point
        return (type(e).__name__, str(e))


def both(tmp_path, steps):
    """``steps(module, path)`` on each module, each on its own file."""
    results = {}
    for name, mod in MODULES.items():
        path = str(tmp_path / f"{name}.db")
        results[name] = steps(mod, path)
        if mod is litepool:
            litepool.open(path).close()
    return results["stdlib"], results["litepool"]


# -- schema changes are seen at once ---------------------------------------------------


def table_rebuild(mod, path):
    """A Django-style table rebuild in autocommit, while other connections read."""
    c = mod.connect(path, isolation_level=None)
    readers = [mod.connect(path) for _ in range(4)]
    seen = [outcome(c.execute("CREATE TABLE t(a)").fetchall)]
    c.execute("INSERT INTO t VALUES (1)")
    seen += [outcome(r.execute("SELECT * FROM t").fetchall) for r in readers]
    for sql in [
        "CREATE TABLE new_t(a, b)",
        "INSERT INTO new_t(a) SELECT a FROM t",
        "DROP TABLE t",
        "ALTER TABLE new_t RENAME TO t",
        "SELECT a, b FROM t",
    ]:
        seen.append(outcome(lambda: c.execute(sql).fetchall()))
    seen += [outcome(r.execute("SELECT a, b FROM t").fetchall) for r in readers]
    for r in readers:
        r.close()
    c.close()
    return seen


def test_a_table_rebuild_sees_each_schema_change(tmp_path):
    stdlib, pooled = both(tmp_path, table_rebuild)
    assert pooled == stdlib
    assert ("ok", [(1, None)]) in stdlib


def upsert_after_index(mod, path):
    """peewee's migration pattern (autocommit): an upsert right after the unique index it
    needs."""
    c = mod.connect(path, isolation_level=None)
    other = mod.connect(path)
    c.execute("CREATE TABLE reg(k, v)")
    seen = [outcome(other.execute("SELECT * FROM reg").fetchall)]
    c.execute("CREATE UNIQUE INDEX reg_k ON reg(k)")
    for v in "ab":
        seen.append(outcome(c.execute,
                            "INSERT INTO reg VALUES (1, ?) ON CONFLICT(k) DO UPDATE "
                            "SET v = excluded.v", (v,)) [0])
    seen.append(outcome(other.execute("SELECT * FROM reg").fetchall))
    other.close()
    c.close()
    return seen


def test_an_upsert_right_after_its_unique_index_works(tmp_path):
    stdlib, pooled = both(tmp_path, upsert_after_index)
    assert pooled == stdlib
    assert stdlib[-1] == ("ok", [(1, "b")])


def schema_pragmas_after_ddl(mod, path):
    """SQLAlchemy's reflection: the schema pragmas right after the DDL they describe, on the
    connection that ran it, while another connection had read the schema before it. (That
    other connection is left out of the comparison: with the stdlib it keeps reporting the
    schema it loaded, a stale copy, where litepool reports the current one.)"""
    c = mod.connect(path)
    other = mod.connect(path)
    reads = ['PRAGMA main.index_list("t")', 'PRAGMA main.table_xinfo("t")',
             'PRAGMA main.index_info("sqlite_autoindex_t_1")']
    seen = [outcome(conn.execute(sql).fetchall) for conn in (c, other) for sql in reads]
    c.execute("CREATE TABLE t (x INTEGER NOT NULL, y INTEGER NOT NULL UNIQUE)")
    seen += [outcome(c.execute(sql).fetchall) for sql in reads]
    fresh = mod.connect(path)
    seen += [outcome(fresh.execute(sql).fetchall) for sql in reads]
    for conn in (fresh, other, c):
        conn.close()
    return seen


def test_schema_pragmas_see_the_ddl_before_them(tmp_path):
    stdlib, pooled = both(tmp_path, schema_pragmas_after_ddl)
    assert pooled == stdlib
    assert ("ok", [(0, "sqlite_autoindex_t_1", 1, "u", 0)]) in stdlib


def script_select_steps(mod, path):
    """A SELECT inside executescript runs through all its rows (sqlite3_exec semantics)."""
    c = mod.connect(path)
    with c:
        c.execute("CREATE TABLE t(x)")
        c.executemany("INSERT INTO t VALUES (?)", [(v,) for v in range(5)])
    steps = []
    c.create_function("step", 1, lambda x: steps.append(x))
    c.executescript("SELECT step(x) FROM t; SELECT step(x * 10) FROM t WHERE x < 2;")
    c.close()
    return steps


def test_a_select_in_a_script_runs_through_its_rows(tmp_path):
    stdlib, pooled = both(tmp_path, script_select_steps)
    assert pooled == stdlib
    assert stdlib == [0, 1, 2, 3, 4, 0, 10]


# -- setting a connection pragma does not wait for the writer --------------------------


def pragmas_while_another_writes(mod, path):
    w = mod.connect(path)
    w.execute("CREATE TABLE t(x)")
    w.commit()
    w.execute("INSERT INTO t VALUES (1)")  # an open write transaction
    c = mod.connect(path, timeout=1.0)
    seen = []
    for sql in ["PRAGMA query_only=1", "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=1234", "PRAGMA cache_size=-4000"]:
        start = time.monotonic()
        seen.append((sql, outcome(lambda: c.execute(sql).fetchall())))
        seen.append(time.monotonic() - start < 0.5)
    seen.append(outcome(c.execute("PRAGMA query_only").fetchall))
    w.commit()
    seen.append(outcome(c.execute, "INSERT INTO t VALUES (2)")[0])
    c.close()
    w.close()
    return seen


def test_setting_a_pragma_does_not_wait_for_the_writer(tmp_path):
    stdlib, pooled = both(tmp_path, pragmas_while_another_writes)
    assert pooled == stdlib
    assert all(x is True for x in stdlib[1::2][:4])


# -- an error comes before the rows it invalidates -------------------------------------


def returning_with_a_deferred_key(mod, path):
    c = mod.connect(path, isolation_level=None)
    c.execute("PRAGMA foreign_keys=ON")
    c.executescript("""
        CREATE TABLE a(id INTEGER PRIMARY KEY);
        CREATE TABLE b(id INTEGER PRIMARY KEY,
                       a_id INTEGER REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED);
    """)

    def first_row():
        return c.execute("INSERT INTO b(a_id) VALUES (1) RETURNING id").fetchone()

    seen = [outcome(first_row), outcome(c.execute("SELECT count(*) FROM b").fetchall)]
    c.close()
    return seen


def test_a_returning_write_that_fails_at_its_end_returns_no_row(tmp_path):
    stdlib, pooled = both(tmp_path, returning_with_a_deferred_key)
    assert stdlib[0] == ("IntegrityError", "FOREIGN KEY constraint failed")
    assert pooled == stdlib


# -- no connection state leaks to the next connection ----------------------------------

# Every pragma SQLite documents as connection state, a value other than its default, and
# what shows it (its read-back, or what it changes when it has none).
CONNECTION_PRAGMAS = [
    ("analysis_limit", "100", "PRAGMA analysis_limit"),
    ("automatic_index", "0", "PRAGMA automatic_index"),
    ("busy_timeout", "1234", "PRAGMA busy_timeout"),
    ("cache_size", "-4321", "PRAGMA cache_size"),
    ("cache_spill", "77", "PRAGMA cache_spill"),
    ("case_sensitive_like", "1", "SELECT 'a' LIKE 'A'"),
    ("cell_size_check", "1", "PRAGMA cell_size_check"),
    ("checkpoint_fullfsync", "1", "PRAGMA checkpoint_fullfsync"),
    ("count_changes", "1", "PRAGMA count_changes"),
    ("defer_foreign_keys", "1", "PRAGMA defer_foreign_keys"),
    ("empty_result_callbacks", "1", "PRAGMA empty_result_callbacks"),
    ("foreign_keys", "1", "PRAGMA foreign_keys"),
    ("full_column_names", "1", "SELECT t.x FROM t"),
    ("fullfsync", "1", "PRAGMA fullfsync"),
    ("ignore_check_constraints", "1", "PRAGMA ignore_check_constraints"),
    ("journal_size_limit", "4096", "PRAGMA journal_size_limit"),
    ("legacy_alter_table", "1", "PRAGMA legacy_alter_table"),
    ("max_page_count", "100000", "PRAGMA max_page_count"),
    ("mmap_size", "1048576", "PRAGMA mmap_size"),
    ("query_only", "1", "PRAGMA query_only"),
    ("read_uncommitted", "1", "PRAGMA read_uncommitted"),
    ("recursive_triggers", "1", "PRAGMA recursive_triggers"),
    ("reverse_unordered_selects", "1", "PRAGMA reverse_unordered_selects"),
    ("secure_delete", "1", "PRAGMA secure_delete"),
    ("short_column_names", "0", "SELECT t.x FROM t"),
    ("synchronous", "0", "PRAGMA synchronous"),
    ("temp_store", "2", "PRAGMA temp_store"),
    ("threads", "2", "PRAGMA threads"),
    ("trusted_schema", "0", "PRAGMA trusted_schema"),
    ("writable_schema", "1", "PRAGMA writable_schema"),
]


def shown(c, read):
    """What ``read`` shows on ``c``: its rows and its column names (``Row`` keys)."""
    cur = c.execute(read)
    return cur.fetchall(), [d[0] for d in cur.description]


def pragma_steps(name, value, read):
    def steps(mod, path):
        setup = mod.connect(path)
        setup.execute("CREATE TABLE IF NOT EXISTS t(x)")
        setup.commit()
        setup.close()
        def fresh():
            c = mod.connect(path)
            try:
                return shown(c, read)
            finally:
                c.close()

        before = fresh()
        a = mod.connect(path, isolation_level=None)
        a.execute(f"PRAGMA {name}={value}").fetchall()
        own = shown(a, read)
        a.close()
        # Connections after A, one at a time (each may get A's pooled connection).
        after = [fresh() for _ in range(3)]
        return before, own, after
    return steps


@pytest.mark.parametrize("name,value,read", CONNECTION_PRAGMAS,
                         ids=[p[0] for p in CONNECTION_PRAGMAS])
def test_connection_pragmas_do_not_leak_to_the_next_connection(tmp_path, name, value, read):
    stdlib, pooled = both(tmp_path, pragma_steps(name, value, read))
    (s_before, s_own, s_after) = stdlib
    (l_before, l_own, l_after) = pooled
    # The next connections see what a fresh connection sees, on both.
    assert s_after == [s_before] * 3
    assert l_after == [l_before] * 3
    # The connection that set it sees what the stdlib's sees.
    assert l_own == s_own


# -- no wait on a connection thread for itself -----------------------------------------

FINALIZER_SCRIPT = textwrap.dedent("""
    import gc, sys
    import litepool

    path = sys.argv[1]
    main = litepool.connect(path)
    main.execute("CREATE TABLE t(x)")
    main.commit()

    def make_garbage():
        for i in range(3):
            c = litepool.connect(path)
            c.create_function(f"g{i}", 0, lambda: 1)
            c.execute(f"SELECT g{i}()").fetchall()   # its function is on the reader
            cur = c.execute("SELECT x FROM t")       # an unfinished cursor
            cycle = [c, cur]
            cycle.append(cycle)
        w = litepool.connect(path)
        w.execute("INSERT INTO t VALUES (1)")         # holds the writer, in a transaction
        cycle = [w]
        cycle.append(cycle)

    gc.disable()
    make_garbage()
    main.create_function("collect", 0, lambda: gc.collect() * 0 + 1)
    assert main.execute("SELECT collect()").fetchone() == (1,)
    main.execute("INSERT INTO t VALUES (2)")
    assert main.execute("SELECT collect()").fetchone() == (1,)   # on the writer now
    main.commit()
    assert main.execute("SELECT count(*) FROM t").fetchone() == (1,)
    main.close()
    litepool.open(path).close()
    print("done")
""")


def test_gc_inside_a_function_on_a_connection_thread_does_not_block(tmp_path):
    path = str(tmp_path / "gc.db")
    proc = subprocess.run([sys.executable, "-c", FINALIZER_SCRIPT, path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"


# -- journal mode belongs to the user ---------------------------------------------------


def journal_switches(mod, path):
    # One connection at a time: leaving WAL mode needs the file to itself (another
    # connection that has read it holds it open, and the stdlib fails "database is locked").
    c = mod.connect(path)
    seen = []

    def step(sql, in_rollback_mode):
        seen.append((sql, outcome(lambda: c.execute(sql).fetchall())))
        c.commit()
        if in_rollback_mode:
            # No -wal file: the data is in the main file (litepool keeps an empty -wal
            # around in WAL mode, where the stdlib creates it at the first write).
            seen.append(os.path.exists(path + "-wal"))

    for sql in ["PRAGMA journal_mode=wal", "CREATE TABLE t(x)", "INSERT INTO t VALUES (1)"]:
        step(sql, False)
    for sql in ["PRAGMA journal_mode=delete", "INSERT INTO t VALUES (2)",
                "PRAGMA journal_mode", "SELECT count(*) FROM t"]:
        step(sql, True)
    for sql in ["PRAGMA journal_mode=wal", "INSERT INTO t VALUES (3)", "PRAGMA journal_mode"]:
        step(sql, False)
    c.close()
    other = mod.connect(path)
    seen.append(outcome(other.execute("SELECT count(*) FROM t").fetchall))
    seen.append(outcome(other.execute("PRAGMA journal_mode").fetchall))
    other.close()
    return seen


def test_a_connection_may_switch_the_journal_mode(tmp_path):
    stdlib, pooled = both(tmp_path, journal_switches)
    assert ("PRAGMA journal_mode=delete", ("ok", [("delete",)])) in stdlib
    assert False in stdlib
    assert pooled == stdlib


# -- the WAL stays under its cap with the stdlib's default writer -----------------------

WAL_CAP_BYTES = 65536 * (4096 + 24) + 32  # the default wal_cap_frames, as bytes


def test_the_wal_stays_under_its_cap_with_the_default_writer_and_slow_readers(tmp_path):
    """The stdlib's default mode (implicit BEGIN, one INSERT, commit(), back to back) plus
    readers each holding a snapshot ~100 ms, staggered so one is always open: the writer is
    inside a transaction nearly all the time, and the checkpoint must still get it."""
    path = str(tmp_path / "soak.db")
    setup = litepool.connect(path)
    setup.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
    setup.commit()
    setup.close()
    stop = threading.Event()
    errors = []
    counts = {"commits": 0, "reads": 0}

    def writer():
        c = litepool.connect(path)
        blob = os.urandom(3000)
        try:
            while not stop.is_set():
                c.execute("INSERT INTO t(b) VALUES (?)", (blob,))
                c.commit()
                counts["commits"] += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        c.close()

    def reader(delay):
        time.sleep(delay)
        c = litepool.connect(path)
        try:
            while not stop.is_set():
                cur = c.execute("SELECT id FROM t")
                cur.fetchone()  # holds its snapshot while the cursor is open
                time.sleep(0.1)
                cur.close()
                counts["reads"] += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        c.close()

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(i * 0.033,)) for i in range(3)]
    for t in threads:
        t.start()
    largest = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and largest <= WAL_CAP_BYTES:
        try:
            largest = max(largest, os.path.getsize(path + "-wal"))
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert counts["commits"] > 1000 and counts["reads"] > 50, counts
    assert largest <= WAL_CAP_BYTES, f"the -wal file reached {largest} bytes"
    c = litepool.connect(path)
    assert c.execute("SELECT count(*) FROM t").fetchone() == (counts["commits"],)
    c.close()
    litepool.open(path).close()


# -- ATTACH is per connection and does not serialize the process ------------------------


def attach_per_connection(mod, path):
    """SQLAlchemy's provisioning: every new connection attaches a schema database."""
    schema = path + "_test_schema.db"
    conns = [mod.connect(path, timeout=1.0) for _ in range(3)]
    seen = [outcome(c.execute, f'ATTACH DATABASE "{schema}" AS test_schema')[0]
            for c in conns]
    conns[0].execute("CREATE TABLE test_schema.s(x)")
    conns[0].execute("CREATE TABLE main.m(x)")
    for i, c in enumerate(conns):
        seen.append(outcome(c.execute, "INSERT INTO test_schema.s VALUES (?)", (i,))[0])
        seen.append(outcome(c.execute, "INSERT INTO m VALUES (?)", (i,))[0])
        c.commit()
    seen += [outcome(lambda c=c: c.execute("SELECT count(*) FROM test_schema.s").fetchall())
             for c in conns]
    for c in conns:
        c.close()
    later = mod.connect(path)
    seen.append(outcome(lambda: later.execute("SELECT count(*) FROM test_schema.s").fetchall()))
    seen.append(outcome(later.execute("SELECT count(*) FROM m").fetchall))
    later.close()
    return seen


def test_each_connection_may_attach_a_database_at_once(tmp_path):
    stdlib, pooled = both(tmp_path, attach_per_connection)
    assert stdlib[-2] == ("OperationalError", "no such table: test_schema.s")
    assert pooled == stdlib


def temp_tables_per_connection(mod, path):
    """Each connection keeps TEMP tables of its own while the others write."""
    conns = [mod.connect(path, timeout=1.0) for _ in range(3)]
    conns[0].execute("CREATE TABLE m(x)")
    conns[0].commit()
    seen = []
    for i, c in enumerate(conns):
        seen.append(outcome(c.execute, "CREATE TEMP TABLE tt(x)")[0])
        seen.append(outcome(c.execute, "INSERT INTO tt VALUES (?)", (i,))[0])
        c.commit()
    for i, c in enumerate(conns):
        seen.append(outcome(c.execute, "INSERT INTO m VALUES (?)", (i,))[0])
        c.commit()
        seen.append(outcome(lambda c=c: c.execute("SELECT x FROM tt").fetchall()))
    seen.append(outcome(lambda: conns[0].execute("SELECT count(*) FROM m").fetchall()))
    for c in conns:
        c.close()
    return seen


def test_connections_with_temp_tables_do_not_block_each_other(tmp_path):
    stdlib, pooled = both(tmp_path, temp_tables_per_connection)
    assert stdlib[-1] == ("ok", [(3,)])
    assert pooled == stdlib
