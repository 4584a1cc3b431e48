"""In-memory Metrics and DecisionLog: for the autoscaler's simulator and unit tests (and any
process that needs the ports without a store)."""
from __future__ import annotations

import bisect
from collections import defaultdict, deque
from typing import Any

from airdock.core.ports import MetricPoint


class InMemoryMetrics:
    def __init__(self, keep: int = 100_000) -> None:
        self._series: dict[tuple[str, str], list[MetricPoint]] = defaultdict(list)
        self._keep = keep

    def put(self, points: list[MetricPoint]) -> None:
        for p in points:
            series = self._series[(p.environment, p.name)]
            if series and series[-1].timestamp > p.timestamp:
                bisect.insort(series, p, key=lambda q: q.timestamp)
            else:
                series.append(p)
            if len(series) > self._keep:
                del series[: len(series) - self._keep]

    def query(self, environment: str, name: str, since: float, until: float | None = None) -> list[MetricPoint]:
        series = self._series.get((environment, name), [])
        lo = bisect.bisect_left(series, since, key=lambda q: q.timestamp)
        hi = len(series) if until is None else bisect.bisect_right(series, until, key=lambda q: q.timestamp)
        return series[lo:hi]

    def names(self, environment: str) -> list[str]:
        return sorted(n for (e, n), s in self._series.items() if e == environment and s)


class InMemoryDecisionLog:
    def __init__(self, keep: int = 10_000) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=keep)

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def recent(self, environment: str, limit: int = 20) -> list[dict[str, Any]]:
        return [e for e in reversed(self.events) if e["environment"] == environment][:limit]
