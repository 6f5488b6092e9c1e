from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from litepool._litepool import Pool

__all__ = ["LitepoolCollector"]

class LitepoolCollector(Collector):
    def __init__(self, pools: Iterable[Pool] | None = None, prefix: str = "litepool") -> None: ...
    def collect(self) -> Iterator[Metric]: ...
