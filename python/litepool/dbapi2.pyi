from litepool import *  # noqa: F403
from litepool import __all__ as __all__
