"""Metrics port, locally: points in `state.db` (table `metrics`), kept for a bounded time."""
from __future__ import annotations

import json
import time
from pathlib import Path

from airdock.core.ports import MetricPoint
from airdock.local.sqlite_db import SqliteDatabase

_MIGRATIONS = (
    """
    CREATE TABLE metrics (
        environment TEXT NOT NULL,
        name TEXT NOT NULL,
        ts REAL NOT NULL,
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        dimensions TEXT NOT NULL
    );
    CREATE INDEX metrics_by_series ON metrics (environment, name, ts);
    """,
)
# CloudWatch keeps high-resolution points for hours; a laptop needs no more than a day.
RETENTION_S = 24 * 3600


class SqliteMetrics:
    def __init__(self, path: Path | None = None, *, db: SqliteDatabase | None = None) -> None:
        if db is None:
            if path is None:
                raise ValueError("SqliteMetrics needs a path or a database")
            db = SqliteDatabase(path)
        self.db = db
        self.db.migrate("metrics", _MIGRATIONS)
        self._last_prune = 0.0

    def put(self, points: list[MetricPoint]) -> None:
        if not points:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO metrics (environment, name, ts, value, unit, dimensions) VALUES (?, ?, ?, ?, ?, ?)",
                [(p.environment, p.name, p.timestamp, p.value, p.unit, json.dumps(p.dimensions, sort_keys=True)) for p in points],
            )
        now = time.time()
        if now - self._last_prune > 600:
            self._last_prune = now
            self.db.connection().execute("DELETE FROM metrics WHERE ts < ?", (now - RETENTION_S,))

    def query(self, environment: str, name: str, since: float, until: float | None = None) -> list[MetricPoint]:
        rows = self.db.connection().execute(
            "SELECT ts, value, unit, dimensions FROM metrics WHERE environment = ? AND name = ? AND ts >= ? AND ts <= ? "
            "ORDER BY ts",
            (environment, name, since, until if until is not None else float("inf")),
        ).fetchall()
        return [MetricPoint(environment, name, value, ts, json.loads(dims), unit) for ts, value, unit, dims in rows]

    def names(self, environment: str) -> list[str]:
        rows = self.db.connection().execute(
            "SELECT DISTINCT name FROM metrics WHERE environment = ? ORDER BY name", (environment,)
        ).fetchall()
        return [r[0] for r in rows]
