"""Metrics port on CloudWatch: namespace `AmazonMWAA`, dimension `Environment` (as MWAA)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import boto3

from airdock.core.ports import MetricPoint

NAMESPACE = "AmazonMWAA"
_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}
_BATCH = 1000  # PutMetricData's limit of data points per call


def _dimensions(point: MetricPoint) -> list[dict[str, str]]:
    dims = {"Environment": point.environment, **point.dimensions}
    return [{"Name": k, "Value": v} for k, v in sorted(dims.items())]


class CloudWatchMetrics:
    def __init__(self, client: Any | None = None, namespace: str = NAMESPACE) -> None:
        self.cw = client or boto3.client("cloudwatch")
        self.namespace = namespace

    def put(self, points: list[MetricPoint]) -> None:
        data = [
            {
                "MetricName": p.name,
                "Dimensions": _dimensions(p),
                "Timestamp": datetime.fromtimestamp(p.timestamp, timezone.utc),
                "Value": p.value,
                "Unit": p.unit if p.unit in _UNITS else "None",
                # One-second resolution: the autoscaler decides every minute on fresh points.
                "StorageResolution": 1,
            }
            for p in points
        ]
        for start in range(0, len(data), _BATCH):
            self.cw.put_metric_data(Namespace=self.namespace, MetricData=data[start:start + _BATCH])

    def query(self, environment: str, name: str, since: float, until: float | None = None) -> list[MetricPoint]:
        """Points of the series with only the `Environment` dimension, oldest first.

        CloudWatch returns aggregates, not raw points: each point here is the one-second average
        (the finest resolution CloudWatch keeps, for 3 hours)."""
        end = until if until is not None else datetime.now(timezone.utc).timestamp() + 1
        points: list[MetricPoint] = []
        request: dict[str, Any] = {
            "MetricDataQueries": [{
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": self.namespace, "MetricName": name,
                               "Dimensions": [{"Name": "Environment", "Value": environment}]},
                    "Period": 1,
                    "Stat": "Average",
                },
            }],
            "StartTime": datetime.fromtimestamp(since, timezone.utc),
            "EndTime": datetime.fromtimestamp(end, timezone.utc),
            "ScanBy": "TimestampAscending",
        }
        for page in self.cw.get_paginator("get_metric_data").paginate(**request):
            for result in page["MetricDataResults"]:
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", [])):
                    points.append(MetricPoint(environment, name, float(value), ts.timestamp(), {}, "None"))
        points.sort(key=lambda p: p.timestamp)
        return [p for p in points if since <= p.timestamp <= end]

    def names(self, environment: str) -> list[str]:
        found: set[str] = set()
        for page in self.cw.get_paginator("list_metrics").paginate(
            Namespace=self.namespace, Dimensions=[{"Name": "Environment", "Value": environment}]
        ):
            found.update(m["MetricName"] for m in page["Metrics"])
        return sorted(found)


class ReadYourWritesMetrics:
    """CloudWatch with this process's own recent writes merged into reads.

    CloudWatch is eventually consistent: a point put a moment ago may not be returned by
    GetMetricData yet (and its EndTime is exclusive). The autoscaler samples QueuedTasks /
    RunningTasks and decides on them within one invocation, so it reads through this."""

    def __init__(self, inner: CloudWatchMetrics) -> None:
        self.inner = inner
        self._written: list[MetricPoint] = []

    def put(self, points: list[MetricPoint]) -> None:
        self.inner.put(points)
        self._written += [p for p in points if not p.dimensions]

    def query(self, environment: str, name: str, since: float, until: float | None = None) -> list[MetricPoint]:
        stored = self.inner.query(environment, name, since, until)
        seen = {round(p.timestamp, 3) for p in stored}
        end = float("inf") if until is None else until
        mine = [p for p in self._written if p.environment == environment and p.name == name
                and since <= p.timestamp <= end and round(p.timestamp, 3) not in seen]
        return sorted(stored + mine, key=lambda p: p.timestamp)

    def names(self, environment: str) -> list[str]:
        return sorted(set(self.inner.names(environment)) | {p.name for p in self._written if p.environment == environment})
