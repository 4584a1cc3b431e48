"""Specification of the local metrics collector (the stand-in for Airflow's StatsD metrics reaching
CloudWatch): which environments it samples, and what WorkerCount says while one is paused."""
from __future__ import annotations

from pathlib import Path

from airdock.core.lifecycle import PAUSED_REASON
from airdock.core.memory import InMemoryMetrics
from airdock.core.ports import WorkerInfo
from airdock.local.metrics_collector import MetricsCollector
from airdock.local.sqlite_repository import SqliteEnvironmentRepository
from support.records import sample_record

NOW = 1_800_000_000.0


class Pool:
    """The WorkerPool's read side: each environment's workers, or 'not running here'."""

    def __init__(self, workers: dict[str, list[str]]) -> None:
        self.running = workers  # environment -> states of its workers

    def workers(self, environment: str) -> list[WorkerInfo]:
        if environment not in self.running:
            raise LookupError(f"environment {environment} is not running here")
        return [WorkerInfo(f"worker-{i}", 0, state, False, NOW, None) for i, state in enumerate(self.running[environment], 1)]

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        self.workers(environment)
        return 2, 1

    def upcoming_runs(self, environment: str, until: float) -> list:
        return []


def collect(tmp_path: Path, statuses: dict[str, tuple[str, str | None]], pool: Pool) -> dict[tuple[str, str], float]:
    repository = SqliteEnvironmentRepository(tmp_path / "state.db")
    for name, (status, reason) in statuses.items():
        repository.put_new(sample_record(name, Status=status, StatusReason=reason))
    metrics = InMemoryMetrics()
    points = MetricsCollector(repository, pool, metrics, clock=lambda: NOW).collect_once()
    return {(p.environment, p.name): p.value for p in points}


def test_running_environments_report_their_workers_and_tasks_and_others_nothing(tmp_path: Path) -> None:
    sampled = collect(tmp_path, {"up": ("AVAILABLE", None), "new": ("CREATING", "Creating the database")},
                      Pool({"up": ["active", "active", "draining"]}))
    assert sampled[("up", "WorkerCount")] == 2.0
    assert sampled[("up", "QueuedTasks")] == 2.0 and sampled[("up", "RunningTasks")] == 1.0
    assert not [key for key in sampled if key[0] == "new"]


def test_a_paused_environment_reports_zero_workers(tmp_path: Path) -> None:
    # Given an environment whose pause finished (none of its processes runs here any more)
    # When the collector samples
    sampled = collect(tmp_path, {"paused": ("PENDING", PAUSED_REASON)}, Pool({}))
    # Then its worker count is 0 (not the last value before the pause), and no task count is made up
    assert sampled == {("paused", "WorkerCount"): 0.0}


def test_a_pausing_environment_reports_the_workers_still_running(tmp_path: Path) -> None:
    sampled = collect(tmp_path, {"pausing": ("PENDING", "Pausing: stopping Airflow components")},
                      Pool({"pausing": ["active", "stopped"]}))
    assert sampled == {("pausing", "WorkerCount"): 1.0}
