"""Issue 17: ``executemany`` is one core operation (``Session::execute_many``). Each scenario
runs the same steps on the stdlib ``sqlite3`` and on litepool (separate database files) and
compares what a program can observe: what was raised, the rows, the transaction, ``rowcount``,
``lastrowid`` and ``total_changes``."""

import asyncio
import sqlite3

import pytest

import litepool
import litepool.aio as aio

MODULES = [sqlite3, litepool]


def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the exception is the result compared
        return (type(e).__name__, str(e))


def fresh(module, path, **kwargs):
    con = module.connect(path, **kwargs)
    con.execute("create table t(a integer primary key, b)")
    con.commit()
    return con


def rows_raising_after(n):
    for i in range(n):
        yield (i + 1, f"v{i}")
    raise ZeroDivisionError("no more rows")


def observe(con, cur, raised):
    return {
        "raised": raised,
        "rows": con.execute("select a, b from t order by a").fetchall(),
        "in_transaction": con.in_transaction,
        "rowcount": cur.rowcount,
        "lastrowid": cur.lastrowid,
        "total_changes": con.total_changes,
    }


def generator_raising(module, path):
    con = fresh(module, path)
    cur = con.cursor()
    raised = outcome(lambda: cur.executemany("insert into t values (?, ?)", rows_raising_after(5)))
    seen = observe(con, cur, raised)
    con.rollback()
    seen["after_rollback"] = con.execute("select count(*) from t").fetchone()
    return seen


def rowcount_and_lastrowid(module, path):
    con = fresh(module, path)
    cur = con.cursor()
    cur.execute("insert into t values (100, 'x')")
    cur.executemany("insert into t(b) values (?)", [("a",), ("b",), ("c",)])
    first = observe(con, cur, "ok")
    cur.executemany("update t set b = ? where a > ?", [("z", 100), ("y", 101)])
    second = observe(con, cur, "ok")
    # The connection's last rowid is the last set's: the next execute's lastrowid shows it.
    cur.execute("select 1")
    return first, second, cur.lastrowid


def select_is_refused_before_a_set_is_read(module, path):
    con = fresh(module, path)
    cur = con.cursor()
    read = []

    def sets():
        read.append(1)
        yield (1,)

    return (outcome(lambda: cur.executemany("select ?", sets())), len(read),
            outcome(lambda: cur.executemany("select 1", [])), cur.rowcount)


def wrong_parameter_counts(module, path):
    con = fresh(module, path)
    cur = con.cursor()
    too_many = outcome(lambda: cur.executemany("insert into t values (?, ?)",
                                               [(1, "a"), (2, "b", "c")]))
    seen = observe(con, cur, too_many)
    con.rollback()
    too_few = outcome(lambda: cur.executemany("insert into t values (?, ?)", [(1, "a"), (2,)]))
    return seen, observe(con, cur, too_few)


@pytest.mark.parametrize("isolation_level", ["", None])
def test_a_failing_set_past_the_first_chunk_keeps_the_sets_before(tmp_path, isolation_level):
    def run(module):
        con = fresh(module, str(tmp_path / f"{module.__name__}.db"),
                    isolation_level=isolation_level)
        # Each set commits on its own in autocommit: no fsync for each (a session pragma,
        # which the sets' jobs carry too).
        con.execute("pragma synchronous=off")
        cur = con.cursor()
        sets = [(i, "x") for i in range(1, 3001)]
        sets[2499] = (7, "duplicate")
        raised = outcome(lambda: cur.executemany("insert into t values (?, ?)", sets))
        seen = observe(con, cur, raised)
        seen["rows"] = len(seen["rows"])
        return seen

    got = [run(m) for m in MODULES]
    assert got[1] == got[0]
    assert got[0]["rows"] == 2499


@pytest.mark.parametrize("scenario", [
    generator_raising,
    rowcount_and_lastrowid,
    select_is_refused_before_a_set_is_read,
    wrong_parameter_counts,
])
def test_executemany_observes_what_the_stdlib_does(tmp_path, scenario):
    got = [scenario(m, str(tmp_path / f"{m.__name__}.db")) for m in MODULES]
    assert got[1] == got[0]


def test_empty_sets_and_a_generator_failing_at_once_still_open_the_transaction(tmp_path):
    def run(module):
        con = fresh(module, str(tmp_path / f"{module.__name__}.db"))
        cur = con.cursor()
        empty = outcome(lambda: cur.executemany("insert into t values (?, ?)", []))
        in_txn_after_empty = con.in_transaction
        rowcount_after_empty = cur.rowcount
        con.rollback()
        failing = outcome(lambda: cur.executemany("insert into t values (?, ?)",
                                                  rows_raising_after(0)))
        return empty, in_txn_after_empty, rowcount_after_empty, failing, con.in_transaction

    got = [run(m) for m in MODULES]
    assert got[1] == got[0]


def test_an_interrupt_stops_executemany(db):
    con = litepool.connect(db, isolation_level=None)
    con.execute("create table t(a)")
    calls = []

    def interrupting(x):
        calls.append(x)
        if x == 3:
            con.interrupt()
        return x

    con.create_function("interrupting", 1, interrupting)
    with pytest.raises(litepool.OperationalError, match="interrupted"):
        con.executemany("insert into t values (interrupting(?))", ((i,) for i in range(1, 1000)))
    assert calls == [1, 2, 3]
    assert con.execute("select count(*) from t").fetchone()[0] <= 3
    con.close()


def test_aio_executemany_runs_the_sets_before_a_failing_one(db):
    async def main():
        async with aio.connect(db) as c:
            await c.execute("create table t(a integer primary key, b)")
            await c.commit()
            cur = await c.execute("insert into t values (100, 'x')")
            with pytest.raises(ZeroDivisionError):
                await cur.executemany("insert into t values (?, ?)", rows_raising_after(5))
            assert cur.rowcount == -1
            assert c.in_transaction
            kept = await c.execute_fetchall("select count(*) from t")
            await cur.executemany("insert into t(b) values (?)", [("a",), ("b",)])
            # As the stdlib's: the cursor's lastrowid is the one before executemany.
            counts = (cur.rowcount, cur.lastrowid)
            await c.rollback()
            return kept, counts

    kept, counts = asyncio.run(asyncio.wait_for(main(), 120))
    assert kept == [(6,)]
    assert counts == (2, 100)
