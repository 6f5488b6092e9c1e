"""litepool.aio: an asyncio API in the shape of aiosqlite's, over litepool's pools.

``import litepool.aio as aiosqlite`` is all a typical aiosqlite program has to change::

    async with litepool.aio.connect("app.db") as db:
        await db.execute("INSERT INTO kv VALUES (?, ?)", ("a", "1"))
        await db.commit()
        async with db.execute("SELECT k, v FROM kv") as cur:
            async for row in cur:
                ...

How it runs: no thread waits on the loop's behalf. Each connection's calls are jobs queued,
in order, on a native lane; a job is one of litepool's core operations, polled on the
loop's thread without the GIL: it hands its statement to the pinned connection thread (as
the sync API does) or queues for a pool connection, and yields until that is done. The
thread that finishes the wait (the connection thread, or a session giving a connection
back) writes one byte to a socket the loop watches (``loop.add_reader``) when the loop has
nothing queued yet, and the loop's reader callback polls every woken lane and resolves the
finished futures. The loop thread never waits on SQLite nor on the pool. Calls with no
asyncio counterpart (opening, pool statistics, ``create_function``, ``iterdump``,
``backup``) run the sync call on the loop's default executor, holding their place in the
connection's order.

Cancelling a task that awaits a call interrupts its statement (or drops it if it had not
started) and then resets the cursor and rolls back the connection's open transaction, so
the connection is left clean.
"""

import asyncio
import atexit
import functools
import weakref

import litepool
from litepool import _litepool

__all__ = [
    "Connection", "Cursor", "Pool", "Row", "connect", "open",
    "Error", "Warning", "InterfaceError", "DatabaseError", "DataError",
    "OperationalError", "IntegrityError", "InternalError", "ProgrammingError",
    "NotSupportedError", "sqlite_version", "sqlite_version_info",
]

Row = litepool.Row
Warning = litepool.Warning
Error = litepool.Error
InterfaceError = litepool.InterfaceError
DatabaseError = litepool.DatabaseError
DataError = litepool.DataError
OperationalError = litepool.OperationalError
IntegrityError = litepool.IntegrityError
InternalError = litepool.InternalError
ProgrammingError = litepool.ProgrammingError
NotSupportedError = litepool.NotSupportedError
sqlite_version = litepool.sqlite_version
sqlite_version_info = litepool.sqlite_version_info

# At exit, interrupt the statements still running for asyncio callers, so exit never waits
# on one.
atexit.register(_litepool._aio_shutdown)

_wakers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _litepool._AioWaker]" = (
    weakref.WeakKeyDictionary()
)


def _waker(loop):
    waker = _wakers.get(loop)
    if waker is None:
        waker = _litepool._AioWaker()
        loop.add_reader(waker.fileno(), waker.drain)
        _wakers[loop] = waker
    return waker


async def _call(func):
    """Runs ``func()`` (a sync call that may wait) on the loop's default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, func)


class _Awaitable:
    """A call's result that can be awaited, passed to ``asyncio.create_task`` (it is a
    coroutine), or used as ``async with`` (entering awaits the call; leaving closes what it
    returned), as aiosqlite's ``execute`` and ``connect``."""

    __slots__ = ("_coro", "_obj")

    def __init__(self, coro):
        self._coro = coro
        self._obj = None

    def __await__(self):
        return self._coro.__await__()

    def send(self, value):
        return self._coro.send(value)

    def throw(self, *args):
        return self._coro.throw(*args)

    def close(self):
        return self._coro.close()

    async def __aenter__(self):
        self._obj = await self._coro
        return self._obj

    async def __aexit__(self, exc_type, exc, tb):
        await self._obj.close()


class Cursor(_litepool._AioCursor):
    """An asyncio cursor: ``await`` its fetch methods, ``async for`` over its rows.

    Rows of a statement come back in batches; ``fetchone`` after ``execute`` of a point query
    is answered from the first batch without another round trip.
    """

    def __init__(self, connection):
        self._conn = connection

    @property
    def connection(self):
        """The :class:`Connection` this cursor belongs to."""
        return self._conn

    async def _run(self, submit, *args):
        conn = self._conn
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        ticket = submit(fut, conn._waker_for(loop), self, *args)
        try:
            return await fut
        except asyncio.CancelledError:
            conn._native.cancel(ticket, self)
            raise

    async def execute(self, sql, parameters=None):
        """Runs ``sql`` with ``parameters``; returns this cursor."""
        await self._run(self._conn._native.execute, sql, parameters)
        return self

    async def executemany(self, sql, parameters):
        """Runs the DML ``sql`` once per parameter set; returns this cursor."""
        await self._run(self._conn._native.executemany, sql, parameters)
        return self

    async def executescript(self, sql_script):
        """Runs a script of ``;``-separated statements; returns this cursor."""
        await self._run(self._conn._native.executescript, sql_script)
        return self

    async def fetchone(self):
        """The next row, or ``None`` when there are no more."""
        row = self._take_one()
        if row is None and self._more:
            await self._run(self._conn._native.fetch)
            row = self._take_one()
        if row is None:
            self._check()
        return row

    async def fetchmany(self, size=None):
        """Up to ``size`` rows (``arraysize`` by default)."""
        if size is None:
            size = self.arraysize
        rows = self._take(size)
        while len(rows) < size and self._more:
            await self._run(self._conn._native.fetch)
            rows += self._take(size - len(rows))
        if not rows:
            self._check()
        return rows

    async def fetchall(self):
        """Every remaining row."""
        rows = self._take()
        while self._more:
            await self._run(self._conn._native.fetch)
            rows += self._take()
        if not rows:
            self._check()
        return rows

    async def close(self):
        """Closes the cursor, giving back the connection its unread rows held. Idempotent."""
        native = self._conn._native
        if self._close() and not native.closed:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            native.release(fut, self._conn._waker_for(loop), self)
            await fut

    def __aiter__(self):
        return self

    async def __anext__(self):
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.close()


class Connection:
    """An asyncio connection: a litepool session (no SQLite connection while idle) whose
    calls run in order on its native lane. Use as ``async with`` (closes on exit, as
    aiosqlite does; it does not commit) or ``await`` it after :func:`connect`.
    """

    def __init__(self, sync_connection):
        self._native = _litepool._AioConnection(sync_connection)
        self._loop = None
        self._waker = None

    def _waker_for(self, loop):
        if loop is not self._loop:
            self._waker = _waker(loop)
            self._loop = loop
        return self._waker

    async def _end(self, commit):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        ticket = self._native.end(fut, self._waker_for(loop), commit)
        try:
            await fut
        except asyncio.CancelledError:
            self._native.cancel(ticket)
            raise

    async def cursor(self):
        """A new :class:`Cursor` (with the connection's ``row_factory``)."""
        if self._native.closed:
            raise ProgrammingError("Cannot operate on a closed database.")
        return Cursor(self)

    def execute(self, sql, parameters=None):
        """Runs ``sql`` on a new cursor; await it for the cursor, or ``async with`` it to
        close the cursor afterwards."""
        return _Awaitable(Cursor(self).execute(sql, parameters))

    def executemany(self, sql, parameters):
        """Runs the DML ``sql`` once per parameter set, on a new cursor."""
        return _Awaitable(Cursor(self).executemany(sql, parameters))

    def executescript(self, sql_script):
        """Runs a script of ``;``-separated statements (committing first), on a new cursor."""
        return _Awaitable(Cursor(self).executescript(sql_script))

    async def execute_fetchall(self, sql, parameters=None):
        """Runs ``sql`` and returns all its rows (aiosqlite's helper)."""
        cursor = await Cursor(self).execute(sql, parameters)
        try:
            return await cursor.fetchall()
        finally:
            await cursor.close()

    async def execute_insert(self, sql, parameters=None):
        """Runs an INSERT and returns ``(lastrowid,)`` (aiosqlite's helper)."""
        cursor = await Cursor(self).execute(sql, parameters)
        await cursor.close()
        return (cursor.lastrowid,)

    async def _on_lane(self, func):
        """Runs ``func()`` (a call on the sync connection) after the calls queued before and
        before those queued after, on the loop's default executor."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        ticket, hold = self._native.call(fut, self._waker_for(loop))
        try:
            try:
                await fut
            except asyncio.CancelledError:
                self._native.cancel(ticket)
                raise
            return await loop.run_in_executor(None, func)
        finally:
            hold.release()

    async def create_function(self, name, num_params, func, *, deterministic=False):
        """Registers a user function, as the sync ``Connection.create_function``."""
        sync = self._native.sync
        await self._on_lane(
            lambda: sync.create_function(name, num_params, func, deterministic=deterministic))

    async def iterdump(self):
        """The SQL text of a dump of the database, line by line (``async for``), as the sync
        ``Connection.iterdump``; the dump is made in one call."""
        sync = self._native.sync
        for line in await self._on_lane(lambda: list(sync.iterdump())):
            yield line

    async def backup(self, target, *, pages=-1, progress=None, name="main", sleep=0.250):
        """Backs the database up into ``target`` (a ``litepool.aio.Connection`` or a sync
        ``litepool.Connection``), as the sync ``Connection.backup``; ``progress`` runs on an
        executor thread."""
        sync = self._native.sync
        dest = target._native.sync if isinstance(target, Connection) else target
        await self._on_lane(lambda: sync.backup(dest, pages=pages, progress=progress,
                                                name=name, sleep=sleep))

    async def commit(self):
        """Commits the open transaction, if any."""
        await self._end(True)

    async def rollback(self):
        """Rolls back the open transaction, if any."""
        await self._end(False)

    async def close(self):
        """Closes the connection after the calls queued before it: an open transaction is
        rolled back, every pool connection given back. Idempotent."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._native.close(fut, self._waker_for(loop))
        await fut
        self._native.sync.close()  # its session is closed: this only marks it closed

    async def interrupt(self):
        """Interrupts the statement running now, if any."""
        self._native.sync.interrupt()

    @property
    def in_transaction(self):
        """Whether a transaction is open (as of the last finished call)."""
        return self._native.in_transaction

    @property
    def total_changes(self):
        """Rows changed by INSERT, UPDATE and DELETE statements on this connection."""
        return self._native.sync.total_changes

    @property
    def row_factory(self):
        """The row factory new cursors get (``litepool.Row``/``sqlite3.Row``, a callable
        ``(cursor, row_tuple)``, or ``None`` for tuples)."""
        return self._native.sync.row_factory

    @row_factory.setter
    def row_factory(self, value):
        self._native.sync.row_factory = value

    @property
    def text_factory(self):
        """How TEXT values are returned (``str`` by default)."""
        return self._native.sync.text_factory

    @text_factory.setter
    def text_factory(self, value):
        self._native.sync.text_factory = value

    @property
    def isolation_level(self):
        """The legacy transaction control's ``BEGIN`` flavour, or ``None`` for autocommit."""
        return self._native.sync.isolation_level

    @isolation_level.setter
    def isolation_level(self, value):
        self._native.set_isolation_level(value)

    @property
    def pool(self):
        """The :class:`Pool` this connection's session belongs to."""
        return Pool(self._native.sync.pool)

    def __await__(self):
        async def itself():
            return self
        return itself().__await__()

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.close()


async def _connect(database, kwargs):
    sync = await _call(functools.partial(
        litepool.connect, database, check_same_thread=False, **kwargs))
    return Connection(sync)


def connect(database, *, iter_chunk_size=64, loop=None, **kwargs):
    """Opens an asyncio connection to ``database`` (``await`` it, or ``async with`` it).

    ``kwargs`` are ``litepool.connect``'s (``timeout``, ``isolation_level``,
    ``detect_types``, ``uri``, ``autocommit``). ``iter_chunk_size`` and ``loop`` are
    aiosqlite's and ignored: rows come in the core's batches, and the running loop is used.
    """
    del iter_chunk_size, loop
    if "check_same_thread" in kwargs:
        kwargs = dict(kwargs)
        del kwargs["check_same_thread"]
    return _Awaitable(_connect(database, kwargs))


class Pool:
    """The asyncio face of a :class:`litepool.Pool`: the pool of one database file."""

    def __init__(self, pool):
        self._pool = pool

    @property
    def path(self):
        """The database file's path."""
        return self._pool.path

    @property
    def closed(self):
        """Whether the pool was closed."""
        return self._pool.closed

    def connect(self, **kwargs):
        """A new asyncio connection (a session) on this pool; ``await`` or ``async with`` it."""
        pool = self._pool

        async def opened():
            sync = await _call(functools.partial(
                pool.connect, check_same_thread=False, **kwargs))
            return Connection(sync)

        return _Awaitable(opened())

    async def stats(self):
        """A snapshot of the pool's connections, waits and file descriptors, as a dict."""
        return await _call(self._pool.stats)

    async def checkpoint(self, mode="PASSIVE"):
        """Runs a WAL checkpoint; returns ``(busy, log frames, checkpointed frames)``."""
        return await _call(functools.partial(self._pool.checkpoint, mode))

    async def close(self):
        """Closes the pool for everyone (checkpointing, closing every connection). Idempotent."""
        await _call(self._pool.close)

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.close()

    def __repr__(self):
        return f"<litepool.aio.Pool {self._pool.path!r}>"


def open(path, **config):
    """Opens (or joins, with the same options) the pool of a database file; ``await`` it, or
    ``async with`` it to close the pool on exit. ``config`` is ``litepool.open``'s."""
    async def opened():
        return Pool(await _call(functools.partial(litepool.open, path, **config)))
    return _Awaitable(opened())
