"""Telling one Celery worker task on ECS to stop taking work: a drain marker in the environment's
metadata database, written by the autoscaler and read by the worker's own entrypoint.

Why this channel: Celery's remote control (`cancel_consumer`) needs a broadcast exchange, which
kombu's SQS transport does not have; ECS Exec is off; and anything the worker would read through
an AWS API (a tag, an S3 object, an SSM parameter) would need permissions on the environment's
execution role, which is the user's. The metadata database is the one place both sides already
reach with credentials Airdock owns: the autoscaler through the RDS Data API with the
environment's secret, the worker with its SQLAlchemy connection. The worker knows its task ARN
from the ECS task metadata endpoint (no permission needed), so a marker names exactly one task.

What the worker does with it (images/airflow/entrypoint.py, `ComponentRun`): SIGTERM to its
Celery worker, i.e. Celery's warm shutdown — it stops consuming at once and lets the running task
instances finish — then it stays up, drained, until the autoscaler stops the task (release) or
clears the marker (the worker is taken back: Celery starts again).

Standard library only: the image copies this file beside the entrypoint (`airdock_worker_drain.py`);
psycopg2 (in the image) is imported only when the worker checks.
"""
from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

from airdock_runtime import postgres
from airdock_runtime.postgres import UNDEFINED_TABLE, libpq_url

TABLE = "airdock_worker_drain"
CREATE_SQL = (f"CREATE TABLE IF NOT EXISTS {TABLE} "
              "(task_arn VARCHAR(1024) PRIMARY KEY, since DOUBLE PRECISION NOT NULL)")
MARK_SQL = f"INSERT INTO {TABLE} (task_arn, since) VALUES (:task_arn, :since) ON CONFLICT (task_arn) DO NOTHING"
CLEAR_SQL = f"DELETE FROM {TABLE} WHERE task_arn = :task_arn"
CHECK_SQL = f"SELECT 1 FROM {TABLE} WHERE task_arn = %s"
# Markers older than :before whose task is not among the :live_N parameters (prune_sql).
PRUNE_SQL = f"DELETE FROM {TABLE} WHERE since < :before"

# (environment, sql, parameters) -> Data API answer: MetadataTaskCounts.execute.
Execute = Callable[..., Any]


class DrainMarkers:
    """The autoscaler's side (EcsWorkerPool.drain / resume / release)."""

    def __init__(self, execute: Execute) -> None:
        self.execute = execute

    def mark(self, environment: str, task_arn: str, since: float) -> None:
        self.execute(environment, CREATE_SQL)
        self.execute(environment, MARK_SQL, task_arn=task_arn, since=since)

    def clear(self, environment: str, task_arn: str) -> None:
        self.execute(environment, CREATE_SQL)
        self.execute(environment, CLEAR_SQL, task_arn=task_arn)

    def prune(self, environment: str, live_task_arns: list[str], before: float) -> None:
        """Delete the markers of every task but `live_task_arns`. Only markers written before
        `before` (when the live tasks were listed): a marker written since names a task the
        list may have missed."""
        live = {f"live_{i}": arn for i, arn in enumerate(sorted(set(live_task_arns)))}
        self.execute(environment, CREATE_SQL)
        self.execute(environment, prune_sql(len(live)), before=before, **live)


def prune_sql(live: int) -> str:
    """PRUNE_SQL keeping the markers of `live` tasks (parameters :live_0 ... :live_{n-1})."""
    if not live:
        return PRUNE_SQL
    return PRUNE_SQL + " AND task_arn NOT IN (" + ", ".join(f":live_{i}" for i in range(live)) + ")"


def own_task_arn(environ: dict[str, str], timeout_s: float = 5.0) -> str | None:
    """This container's ECS task ARN, from the task metadata endpoint (v4); None outside ECS."""
    base = environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    with urllib.request.urlopen(base.rstrip("/") + "/task", timeout=timeout_s) as reply:
        return str(json.load(reply)["TaskARN"])



class MetadataDrainCheck:
    """The worker's side: is there a drain marker for this task? One short query per call."""

    def __init__(self, database_url: str, task_arn: str, connect: Callable[[str], Any] | None = None) -> None:
        self.database_url = libpq_url(database_url)
        self.task_arn = task_arn
        self._connect = connect

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "MetadataDrainCheck | None":
        env = dict(os.environ if environ is None else environ)
        url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        task_arn = own_task_arn(env)
        if not url or not task_arn:
            return None
        return cls(url, task_arn)

    def connect(self) -> Any:
        return postgres.connect(self.database_url, self._connect)

    def __call__(self) -> bool:
        conn = self.connect()
        try:
            cur = conn.cursor()
            try:
                cur.execute(CHECK_SQL, (self.task_arn,))
            except Exception as exc:
                # No marker was ever written in this database: the table does not exist yet.
                if getattr(exc, "pgcode", None) == UNDEFINED_TABLE:
                    return False
                raise
            return cur.fetchone() is not None
        finally:
            conn.close()
