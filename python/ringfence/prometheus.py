"""The guard's metrics for ``prometheus_client``.

``Guard.metrics()`` writes the guard's counters and gauges in the
Prometheus text format (requests by verdict, decisions by reason, clusters
formed, flagged and refused, evictions, table fill, maintenance pauses,
settlement drift). This module turns them into a collector, so that a
service that already exposes ``prometheus_client``'s registry shows them
beside its own::

    import prometheus_client
    import ringfence
    from ringfence.prometheus import GuardCollector

    guard = ringfence.Guard()
    prometheus_client.REGISTRY.register(GuardCollector(guard))
    prometheus_client.start_http_server(9464)  # /metrics

The collector reads the guard when scraped; nothing is copied in between.
``prometheus_client`` is not a dependency of ``ringfence``: install it
where you use this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ringfence import Guard

__all__ = ["GuardCollector"]


class GuardCollector:
    """A ``prometheus_client`` collector of one guard's metrics.

    ``labels`` are added to every sample (for example
    ``{"guard": "chat"}`` when a process runs several guards), and must not
    name a label the guard's metrics already use (``verdict``,
    ``decision``, ``reason``, ``table``).
    """

    _RESERVED = frozenset({"verdict", "decision", "reason", "table"})

    def __init__(self, guard: Guard, labels: Mapping[str, str] | None = None) -> None:
        if not callable(getattr(guard, "metrics", None)):
            raise TypeError(f"GuardCollector needs a ringfence.Guard, not {type(guard).__name__}")
        extra = dict(labels or {})
        clash = sorted(self._RESERVED.intersection(extra))
        if clash:
            raise ValueError(f"GuardCollector labels: {', '.join(clash)} already label the guard's metrics")
        for k, v in extra.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"GuardCollector labels must be str to str, not {k!r}: {v!r}")
        self._guard = guard
        self._labels = extra

    def collect(self) -> Iterator[Metric]:
        """The guard's metric families as of now (called at each scrape)."""
        for family in text_string_to_metric_families(self._guard.metrics()):
            if self._labels:
                family.samples = [s._replace(labels={**s.labels, **self._labels}) for s in family.samples]
            yield family
