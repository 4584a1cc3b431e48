"""Timing that fits the deployment (core/timing.py): a health budget counted from the first check,
longer after a GRACEFUL update; lifecycle waits that hand over to a new run instead of outliving
one (on AWS: before the Lambda timeout), keeping the operation's deadline."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airdock.core import status
from airdock.core.errors import ProvisioningError
from airdock.core.lifecycle import Lifecycle
from airdock.core.models import Environment, LastUpdateShape
from airdock.core.ports import EnvironmentRecord, Health, NullEvents
from airdock.core.provisioning import Provisioner
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings
from airdock.core.timing import LifecycleTimings, WorkflowTimings
from airdock.local.sqlite_repository import SqliteEnvironmentRepository


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, timezone.utc)


class Compute:
    def __init__(self) -> None:
        self.healthy = False
        self.started = 0

    def health(self, env: Any) -> Health:
        return Health(self.healthy, "scheduler=0/2")

    def resume(self, env: Any, progress: Any) -> None:
        self.started += 1

    def webserver_hostname(self, env: Any) -> str:
        return "analytics.example"


class Runner:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, operation: str, name: str) -> None:
        self.started.append((operation, name))


def _service(tmp_path: Path, clock: Clock, env_status: str, **internal: Any) -> EnvironmentService:
    service = EnvironmentService(SqliteEnvironmentRepository(tmp_path / "state.db"), buckets=None, events=NullEvents(),  # type: ignore[arg-type]
                                 settings=Settings(), clock=clock, lifecycle=Runner())
    env = Environment.model_validate({
        "Name": "analytics", "Status": env_status, "Arn": "arn:aws:airflow:us-east-1:000000000000:environment/analytics",
        "CreatedAt": 0, "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r", "AirflowVersion": "3.3.2",
        "SourceBucketArn": "arn:aws:s3:::b", "DagS3Path": "dags", "EnvironmentClass": "mw1.small", "MaxWorkers": 2,
        "MinWorkers": 1, "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        "Schedulers": 2, "MinWebservers": 2, "MaxWebservers": 2, "WebserverAccessMode": "PRIVATE_ONLY",
        "LoggingConfiguration": {}, "WeeklyMaintenanceWindowStart": "SUN:03:00", "EndpointManagement": "SERVICE",
        "LastUpdate": LastUpdateShape(Status="PENDING", CreatedAt=0, Source="UpdateEnvironment",
                                      WorkerReplacementStrategy="GRACEFUL").model_dump(),
    })
    service.repository.put_new(EnvironmentRecord(environment=env, internal=internal))
    return service


def test_the_health_budget_counts_from_the_first_check_and_a_graceful_update_adds_the_drain(tmp_path: Path) -> None:
    clock, compute = Clock(), Compute()
    provisioner = Provisioner(_service(tmp_path, clock, status.UPDATING), compute)  # type: ignore[arg-type]
    timings = WorkflowTimings(health_s=2700, drain_s=43200)
    first = provisioner.check_health({"Name": "analytics", "attempts": 0, "deadline": 0, "budget_s": timings.health_s,
                                      "drain_s": timings.drain_s})
    assert first["deadline"] == clock.t + 2700 + 43200 and first["healthy"] is False
    clock.t += 2700 + 43200 - 1
    state = provisioner.check_health({"Name": "analytics", **first, "budget_s": 2700, "drain_s": 43200})
    assert state["deadline"] == first["deadline"]
    clock.t += 1
    with pytest.raises(ProvisioningError) as late:
        provisioner.check_health({"Name": "analytics", **state, "budget_s": 2700, "drain_s": 43200})
    assert late.value.code == "HEALTH_CHECK_TIMEOUT"


def test_a_create_gets_the_health_budget_alone(tmp_path: Path) -> None:
    clock = Clock()
    service = _service(tmp_path, clock, status.CREATING)
    first = Provisioner(service, Compute()).check_health({"Name": "analytics", "attempts": 0, "deadline": 0,  # type: ignore[arg-type]
                                                          "budget_s": 2700})
    assert first["deadline"] == clock.t + 2700


def test_a_lifecycle_wait_hands_over_to_a_new_run_and_keeps_the_operations_deadline(tmp_path: Path) -> None:
    clock, compute = Clock(), Compute()
    service = _service(tmp_path, clock, status.PENDING,
                       lifecycle={"operation": "resume", "state": "running", "started": clock.t})
    timings = LifecycleTimings(resume_s=2700, poll_s=0.0, per_run_s=0.01)

    def sleep(seconds: float) -> None:
        clock.t += 30  # time passes while the run polls (and a little real time, which the hand-over counts)
        time.sleep(0.005)

    lifecycle = Lifecycle(service, compute, clock=clock, sleep=sleep, timings=timings)  # type: ignore[arg-type]
    lifecycle.run("resume", "analytics")
    assert service.lifecycle.started == [("resume", "analytics")]  # type: ignore[union-attr]
    record = service.record("analytics")
    assert record.environment.Status == status.PENDING and record.internal["lifecycle"]["state"] == "running"

    compute.healthy = True  # the next run finds Airflow up
    lifecycle.run("resume", "analytics")
    assert service.record("analytics").environment.Status == status.AVAILABLE
    assert compute.started == 2  # each run makes sure the components were asked to start


def test_a_lifecycle_wait_fails_once_the_operations_budget_is_spent_across_runs(tmp_path: Path) -> None:
    clock, compute = Clock(), Compute()
    service = _service(tmp_path, clock, status.PENDING,
                       lifecycle={"operation": "resume", "state": "running", "started": clock.t - 2700})
    lifecycle = Lifecycle(service, compute, clock=clock, sleep=lambda s: None,  # type: ignore[arg-type]
                          timings=LifecycleTimings(resume_s=2700, poll_s=0.0, per_run_s=600))
    lifecycle.run("resume", "analytics")
    record = service.record("analytics")
    assert record.environment.Status == status.UNAVAILABLE
    assert "did not become healthy within 2700s" in (record.environment.StatusReason or "")
    assert service.lifecycle.started == []  # type: ignore[union-attr]


def test_aws_timings_come_from_the_settings_the_template_gives() -> None:
    workflow = WorkflowTimings.from_settings(Settings(step_timeout_s=330, health_timeout_s=2700, drain_timeout_s=43200,
                                                      health_poll_s=30))
    assert workflow.execution_input() == {"Step": 330, "Build": 330, "Update": 330, "Health": 2700, "Drain": 43200, "Poll": 30}
    assert WorkflowTimings.from_settings(Settings()) == WorkflowTimings()
    lifecycle = LifecycleTimings.from_settings(Settings(lifecycle_health_timeout_s=2700, lifecycle_run_s=780,
                                                        lifecycle_poll_s=15))
    assert (lifecycle.resume_s, lifecycle.maintenance_s, lifecycle.recover_s, lifecycle.per_run_s, lifecycle.poll_s) == (
        2700, 2700, 2700, 780, 15)
