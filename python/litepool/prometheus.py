"""The metrics of litepool's pools as a ``prometheus_client`` collector.

Install with ``pip install litepool[prometheus]``, then::

    from prometheus_client import REGISTRY, start_http_server
    from litepool.prometheus import LitepoolCollector

    REGISTRY.register(LitepoolCollector())
    start_http_server(9100)

Every metric of the core's list (``Pool.metrics()``) is exposed as ``litepool_<name>``, of
the core's kind (counter or gauge), labelled with the database ``path`` and the metric's own
labels, so a metric the core gains shows up here without a change to this module.
"""

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from litepool import _litepool

__all__ = ["LitepoolCollector"]


class LitepoolCollector(Collector):
    """Collects the metrics of ``pools`` at each scrape; by default of every file pool open
    in the process at that moment (opened by ``litepool.open()`` or ``litepool.connect()``).
    Pass the pools to watch ``:memory:`` pools, or only some files."""

    def __init__(self, pools: Iterable[_litepool.Pool] | None = None, prefix: str = "litepool"):
        self._pools = None if pools is None else list(pools)
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        pools = _litepool._open_pools() if self._pools is None else self._pools
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for pool in pools:
            if pool.closed:
                continue
            path = pool.path
            for name, kind, help_text, labels, value in pool.metrics():
                family = families.get(name)
                if family is None:
                    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    family = cls(f"{self._prefix}_{name}", help_text, labels=["path", *labels])
                    families[name] = family
                family.add_metric([path, *labels.values()], value)
        return iter(families.values())
