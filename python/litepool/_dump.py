"""``Connection.iterdump``: the stdlib's own dump generator, run over a litepool connection."""

from sqlite3.dump import _iterdump as _std_iterdump


def _iterdump(connection, filter=None):
    if filter is None:
        return _std_iterdump(connection)
    return _std_iterdump(connection, filter=filter)
