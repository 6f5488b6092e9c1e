"""``litepool.dbapi2``: the same names as ``litepool``, as ``sqlite3.dbapi2`` is to ``sqlite3``."""

from litepool import *  # noqa: F401,F403
from litepool import __all__  # noqa: F401
