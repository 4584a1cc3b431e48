"""SchedulerHeartbeat and DAGParseTime of every running environment, into the Metrics port.

The executor metrics (QueuedTasks, RunningTasks, WorkerCount) come from the autoscaling collector
(metrics_collector.py); this one adds the two health metrics MWAA publishes, read from Airflow
itself:
- SchedulerHeartbeat (Count, Function=Scheduler): 1 when the scheduler's heartbeat in
  `/monitor/health` moved since the previous sample, else 0 — a flat zero line is a dead scheduler,
  as on MWAA's dashboard.
- DAGParseTime (Seconds, Function=DAG Processing): the sum over DAG files of the last parse duration
  (`last_parse_duration` of `GET /dags`; Airflow 3 only — Airflow 2's API does not expose it), the
  value of MWAA's `dag_processing.total_parse_time`.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from airdock.core import status
from airdock.core.ports import MetricPoint, Metrics, all_records

log = logging.getLogger("airdock.local.metrics")

SCHEDULER_HEARTBEAT = "SchedulerHeartbeat"
DAG_PARSE_TIME = "DAGParseTime"


class AirflowHealthMetrics:
    def __init__(self, repository: Any, environment: Callable[[str], Any], metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.environment = environment  # name → LocalAirflowEnvironment | None
        self.metrics = metrics
        self.clock = clock
        self._last_heartbeat: dict[str, str] = {}

    def collect_once(self) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for record in all_records(self.repository):
            name = record.name
            airflow = self.environment(name)
            if airflow is None or record.environment.Status not in (status.AVAILABLE, status.MAINTENANCE):
                continue
            try:
                points += self.sample(name, airflow)
            except Exception as exc:  # restarting, or not up yet
                log.debug("no health metrics for %s: %s", name, exc)
        self.metrics.put(points)
        return points

    def sample(self, name: str, airflow: Any) -> list[MetricPoint]:
        now = self.clock()
        points: list[MetricPoint] = []
        code, health = airflow.api("GET", "/monitor/health" if airflow.airflow3 else "/health", timeout_s=5)
        if code == 200 and isinstance(health, dict):
            beat = str((health.get("scheduler") or {}).get("latest_scheduler_heartbeat") or "")
            moved = bool(beat) and beat != self._last_heartbeat.get(name)
            self._last_heartbeat[name] = beat
            points.append(MetricPoint(name, SCHEDULER_HEARTBEAT, 1.0 if moved else 0.0, now,
                                      {"Function": "Scheduler"}, "Count"))
        code, dags = airflow.api("GET", "/dags?limit=100", timeout_s=5)
        if code == 200 and isinstance(dags, dict):
            per_file: dict[str, float] = {}
            for dag in dags.get("dags") or []:
                duration = dag.get("last_parse_duration")
                if duration is not None:
                    per_file[str(dag.get("fileloc") or dag.get("dag_id"))] = float(duration)
            if per_file:
                points.append(MetricPoint(name, DAG_PARSE_TIME, round(sum(per_file.values()), 6), now,
                                          {"Function": "DAG Processing"}, "Seconds"))
        return points

