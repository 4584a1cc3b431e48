"""Local background loops for autoscaling: the metrics collector, the autoscaler's schedule, and the
decision log's store.

On AWS, Airflow's own StatsD metrics reach CloudWatch (`AmazonMWAA`) and EventBridge runs the
autoscaler every minute. Locally the collector samples every environment every few seconds
(AIRDOCK_METRICS_INTERVAL_S, default 5 — the issue asks for ≤ 10) into the Metrics port, and the
autoscaler handler runs on its own loop (AIRDOCK_AUTOSCALER_INTERVAL_S, default 5).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from airdock.core import autoscaling, status
from airdock.core.ports import EnvironmentRepository, MetricPoint, Metrics, WorkerPool, all_records
from airdock.local.sqlite_db import SqliteDatabase

log = logging.getLogger("airdock.local.metrics")

# States in which an environment's Airflow runs and its numbers mean something.
_RUNNING_STATES = {status.AVAILABLE, status.UPDATING, status.MAINTENANCE}


class PeriodicTask:
    """Runs `fn` every `interval_s` on a daemon thread until stopped; a failing run is logged and
    the loop goes on."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], Any]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "PeriodicTask":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.fn()
            except Exception:
                log.exception("%s failed", self.name)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


class MetricsCollector:
    """Samples QueuedTasks, RunningTasks, ScheduledTasks and WorkerCount of every running environment."""

    def __init__(self, repository: EnvironmentRepository, pool: WorkerPool, metrics: Metrics,
                 config: autoscaling.AutoscalingConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.pool = pool
        self.metrics = metrics
        self.config = config or autoscaling.AutoscalingConfig()
        self.clock = clock

    def collect_once(self) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for record in all_records(self.repository):
            if record.environment.Status == status.PENDING:
                points.append(self.sample_paused(record.name))
                continue
            if record.environment.Status not in _RUNNING_STATES:
                continue
            try:
                points += self.sample(record.name)
            except Exception as exc:  # not running here yet, or Airflow restarting
                log.debug("no metrics for %s: %s", record.name, exc)
        self.metrics.put(points)
        return points

    def sample_paused(self, name: str) -> MetricPoint:
        """WorkerCount of a paused (pausing, resuming) environment: its workers as they stop or
        start, and 0 once nothing of it runs here. Without it the last value before the pause
        would stand for the whole pause; task counts need Airflow, which is not running."""
        try:
            active = sum(w.state == "active" for w in self.pool.workers(name))
        except Exception as exc:  # nothing of it runs here: a paused environment has no worker
            log.debug("no workers of paused %s: %s", name, exc)
            active = 0
        return MetricPoint(name, autoscaling.WORKER_COUNT, float(active), self.clock(), {"Function": "Celery"}, "Count")

    def sample(self, name: str) -> list[MetricPoint]:
        # The worker count comes from the process table and never fails; the task counts need
        # Airflow's API server, which can be slow under load — one must not cost the other.
        workers = self.pool.workers(name)
        points = [MetricPoint(name, autoscaling.WORKER_COUNT, float(sum(w.state == "active" for w in workers)),
                              self.clock(), {"Function": "Celery"}, "Count")]
        now = self.clock()
        try:
            queued, running, scheduled = autoscaling.sample_task_counts(self.pool, name, now, self.config)
        except Exception as exc:
            log.debug("no task counts for %s: %s", name, exc)
            return points
        # MWAA's dimensions: Function=Executor for the executor's task counts.
        executor = {"Function": "Executor"}
        points += [
            MetricPoint(name, autoscaling.QUEUED, float(queued), now, executor, "Count"),
            MetricPoint(name, autoscaling.RUNNING, float(running), now, executor, "Count"),
        ]
        if scheduled is not None:
            points.append(MetricPoint(name, autoscaling.SCHEDULED, float(scheduled), now, executor, "Count"))
        return points


_MIGRATIONS = (
    """
    CREATE TABLE autoscaler_decisions (
        environment TEXT NOT NULL,
        at REAL NOT NULL,
        action TEXT NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX autoscaler_decisions_by_env ON autoscaler_decisions (environment, at);
    """,
)
DECISION_RETENTION_S = 24 * 3600


class SqliteDecisionLog:
    """DecisionLog port, locally: every decision in `state.db`, kept for a day (a 5-second tick
    makes ~17k rows a day per environment; the stored inputs make each one replayable)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.db.migrate("autoscaler_decisions", _MIGRATIONS)
        self._last_prune = 0.0

    def record(self, event: dict[str, Any]) -> None:
        self.db.connection().execute(
            "INSERT INTO autoscaler_decisions (environment, at, action, event) VALUES (?, ?, ?, ?)",
            (event["environment"], float(event["at"]), event["decision"]["action"],
             json.dumps(event, sort_keys=True, default=str)),
        )
        now = time.time()
        if now - self._last_prune > 600:
            self._last_prune = now
            self.db.connection().execute("DELETE FROM autoscaler_decisions WHERE at < ?",
                                         (now - DECISION_RETENTION_S,))

    def recent(self, environment: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.connection().execute(
            "SELECT event FROM autoscaler_decisions WHERE environment = ? ORDER BY at DESC LIMIT ?",
            (environment, limit),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def since(self, environment: str, since: float) -> list[dict[str, Any]]:
        """Decisions at or after `since`, oldest first (for replay and tests)."""
        rows = self.db.connection().execute(
            "SELECT event FROM autoscaler_decisions WHERE environment = ? AND at >= ? ORDER BY at",
            (environment, since),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]
