"""litepool: a drop-in replacement for the stdlib ``sqlite3`` module.

``import litepool as sqlite3`` is all a program has to change. Connections to a database
file are sessions over one process-wide pool per file (one writer, a few readers), so a
``Connection`` holds no SQLite connection while idle, and a program that connects per
request no longer runs out of file descriptors.

The exception classes, ``Row``-compatible factories, the adapter and converter registries
and ``PrepareProtocol`` are the stdlib's own objects, so ``except sqlite3.Error`` and
``sqlite3.register_adapter`` keep working.
"""

import sqlite3 as _sqlite3
import collections.abc as _abc
import time as _time
import datetime as _datetime

from litepool import _litepool
# Imported now, while `sqlite3` is surely the stdlib's package (it wraps `sqlite3.dump`).
from litepool import dump
from litepool._litepool import (
    Blob,
    Connection,
    Cursor,
    Row,
    Pool,
    open,
    sqlite_version,
    sqlite_version_info,
    LEGACY_TRANSACTION_CONTROL,
    PARSE_DECLTYPES,
    PARSE_COLNAMES,
    enable_callback_tracebacks,
)

# The stdlib's own exception classes, so `except sqlite3.Error` catches ours.
Warning = _sqlite3.Warning
Error = _sqlite3.Error
InterfaceError = _sqlite3.InterfaceError
DatabaseError = _sqlite3.DatabaseError
DataError = _sqlite3.DataError
OperationalError = _sqlite3.OperationalError
IntegrityError = _sqlite3.IntegrityError
InternalError = _sqlite3.InternalError
ProgrammingError = _sqlite3.ProgrammingError
NotSupportedError = _sqlite3.NotSupportedError

# The stdlib's registries: an adapter registered through either module applies to both.
PrepareProtocol = _sqlite3.PrepareProtocol
adapters = _sqlite3.adapters
converters = _sqlite3.converters
register_adapter = _sqlite3.register_adapter
register_converter = _sqlite3.register_converter
adapt = _sqlite3.adapt
complete_statement = _sqlite3.complete_statement

apilevel = "2.0"
paramstyle = "qmark"
threadsafety = 3
version = "2.6.0"
version_info = (2, 6, 0)

Binary = memoryview
Date = _datetime.date
Time = _datetime.time
Timestamp = _datetime.datetime


def DateFromTicks(ticks):
    return Date(*_time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return Time(*_time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return Timestamp(*_time.localtime(ticks)[:6])


# As the stdlib registers its Row.
_abc.Sequence.register(Row)


def enable_shared_cache(enable):
    """Deprecated in the stdlib since 3.10 (it warns the same way). litepool never opens a
    shared cache, so this has no effect on its connections."""
    import warnings
    warnings.warn(
        "enable_shared_cache is deprecated and will be removed in Python 3.12. "
        "Shared cache is strongly discouraged by the SQLite 3 documentation. "
        "If shared cache must be used, open the database in URI mode using"
        "the cache=shared query parameter.",
        DeprecationWarning, stacklevel=2)
    if not isinstance(enable, int):
        raise TypeError("an integer is required")


def __getattr__(name):
    # `OptimizedUnicode`: deprecated in 3.10, an alias of `str` (as the stdlib 3.11 has it).
    if name == "OptimizedUnicode":
        import warnings
        warnings.warn(
            "OptimizedUnicode is deprecated and will be removed in Python 3.12. "
            "Since Python 3.3 it has simply been an alias for 'str'.",
            DeprecationWarning, stacklevel=2)
        return str
    raise AttributeError(f"module 'litepool' has no attribute '{name}'")


# The SQLITE_* constants (result codes, authorizer actions, limits) as the stdlib has them.
for _name in dir(_sqlite3):
    if _name.startswith("SQLITE_"):
        globals()[_name] = getattr(_sqlite3, _name)
del _name


def connect(database, *args, **kwargs):
    """Open a connection to ``database``, as ``sqlite3.connect`` does.

    ``connect(database, timeout=5.0, detect_types=0, isolation_level="",
    check_same_thread=True, factory=Connection, cached_statements=128, uri=False, *,
    autocommit=LEGACY_TRANSACTION_CONTROL)``. As in the stdlib, the arguments go to
    ``factory`` exactly as given (positional stay positional, keywords stay keywords).

    For a file, the connection is a session over the process-wide pool of that file;
    ``":memory:"`` gives a private in-memory database. ``timeout`` is the busy timeout
    this connection waits for locks. ``cached_statements`` is accepted and ignored (each
    pooled connection caches statements itself).
    """
    factory = args[4] if len(args) > 4 else kwargs.get("factory", Connection)
    if factory is None:
        factory = Connection
    return factory(database, *args, **kwargs)


# What `install()` replaces in the stdlib's `sqlite3` and `sqlite3.dbapi2` modules.
_INSTALLED_NAMES = (
    "connect", "Connection", "Cursor", "Row", "Blob", "enable_callback_tracebacks",
    "sqlite_version", "sqlite_version_info",
)
_MISSING = object()
_installed = None


def install():
    """Make the stdlib's ``sqlite3`` litepool's, process-wide, for libraries that import
    ``sqlite3`` themselves (Django, SQLAlchemy, ...). Idempotent.

    In both ``sqlite3`` and ``sqlite3.dbapi2`` (the module objects, so code that imported
    them earlier sees the change too) it replaces ``connect``, ``Connection``, ``Cursor``,
    ``Row``, ``Blob``, ``enable_callback_tracebacks``, ``sqlite_version`` and
    ``sqlite_version_info`` with litepool's; and ``sqlite3.dbapi2`` (the package attribute
    and ``sys.modules["sqlite3.dbapi2"]``) becomes ``litepool.dbapi2``. The exceptions, the
    adapter/converter registries and ``PrepareProtocol`` are shared already. A class that
    subclassed ``sqlite3.Cursor`` *before* ``install()`` still subclasses the stdlib's: call
    it first (or start the program with ``python -m litepool run``).
    """
    global _installed
    import sys
    import sqlite3.dbapi2 as std_dbapi2
    from litepool import dbapi2
    if _installed is not None:
        return
    saved = []
    for module in (_sqlite3, std_dbapi2):
        for name in _INSTALLED_NAMES:
            saved.append((module, name, getattr(module, name, _MISSING)))
            setattr(module, name, globals()[name])
    saved.append((_sqlite3, "dbapi2", getattr(_sqlite3, "dbapi2", _MISSING)))
    saved.append((sys.modules, "sqlite3.dbapi2", sys.modules.get("sqlite3.dbapi2", _MISSING)))
    _sqlite3.dbapi2 = dbapi2
    sys.modules["sqlite3.dbapi2"] = dbapi2
    _installed = saved


def uninstall():
    """Undo :func:`install`: every name it replaced is the stdlib's again. Idempotent."""
    global _installed
    if _installed is None:
        return
    for target, name, value in reversed(_installed):
        if isinstance(target, dict):
            if value is _MISSING:
                target.pop(name, None)
            else:
                target[name] = value
        elif value is _MISSING:
            delattr(target, name)
        else:
            setattr(target, name, value)
    _installed = None


__all__ = [
    "Binary", "Blob", "Connection", "Cursor", "DataError", "DatabaseError", "Date",
    "DateFromTicks", "Error", "IntegrityError", "InterfaceError", "InternalError",
    "LEGACY_TRANSACTION_CONTROL", "NotSupportedError", "OperationalError",
    "PARSE_COLNAMES", "PARSE_DECLTYPES", "Pool", "PrepareProtocol", "ProgrammingError",
    "Row", "Time", "TimeFromTicks", "Timestamp", "TimestampFromTicks", "Warning",
    "adapt", "adapters", "apilevel", "complete_statement", "connect", "converters",
    "enable_callback_tracebacks", "install", "open", "paramstyle", "register_adapter",
    "register_converter", "sqlite_version", "sqlite_version_info", "threadsafety",
    "uninstall", "version", "version_info", "enable_shared_cache",
] + [n for n in dir(_sqlite3) if n.startswith("SQLITE_")]
