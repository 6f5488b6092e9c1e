"""``litepool.dump`` (``sqlite3.dump`` under a module swap): ``Connection.iterdump``'s generator,
the stdlib's own, run over a litepool connection."""

from sqlite3.dump import _iterdump as _std_iterdump


def _iterdump(connection, filter=None):
    if filter is None:
        return _std_iterdump(connection)
    return _std_iterdump(connection, filter=filter)
