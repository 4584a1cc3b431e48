"""Specification: status events, pause/resume and the lifecycle function, on the real service,
repository, event log and ASL workflows, with a recording stand-in for Compute (no Airflow).

The clock of the lifecycle function is the EventBridge event's time: each test hands it the time
it wants, so a maintenance window or a schedule is "due now" without waiting for it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airdock.core.errors import ValidationError
from airdock.core.models import CreateEnvironmentInput, InvokeRestApiInput, UpdateEnvironmentInput
from airdock.core.ports import Caller, Health
from airdock.core.settings import Settings
from airdock.core.validation import parse
from airdock.local.context import LocalContext
from airdock.local.functions import load_function

BUCKET = "lifecycle-bucket"


class RecordingCompute:
    """Compute port stand-in: records calls, always healthy."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (method, environment, detail)

    def _record(self, method: str, env: Any, detail: str = "") -> None:
        self.calls.append((method, env.Name, detail))

    def prepare(self, env: Any, progress: Any) -> None: self._record("prepare", env)
    def build_runtime(self, env: Any, progress: Any) -> None: self._record("build_runtime", env)
    def preflight(self, env: Any, progress: Any) -> None: self._record("preflight", env)
    def start(self, env: Any, progress: Any) -> None: self._record("start", env)
    def replace(self, env: Any, strategy: str, progress: Any) -> None: self._record("replace", env, strategy)
    def roll_back(self, env: Any, progress: Any, *, failed: Any) -> None: self._record("roll_back", env, "FORCED")
    def health(self, env: Any) -> Health: return Health(True, "ok")
    def stop(self, env: Any) -> None: self._record("stop", env)
    def destroy(self, env: Any) -> None: self._record("destroy", env)
    def webserver_hostname(self, env: Any) -> str: return "127.0.0.1:1"
    def pause(self, env: Any) -> None: self._record("pause", env)
    def resume(self, env: Any, progress: Any) -> None: self._record("resume", env)
    def restart(self, env: Any, strategy: str, progress: Any) -> None:
        self._record("restart", env, f"{strategy} {env.AirflowVersion}")

    def close(self) -> None: pass

    def methods(self, name: str) -> list[str]:
        return [m for m, n, _ in self.calls if n == name]


@pytest.fixture
def context(tmp_path: Path) -> Iterator[LocalContext]:
    compute = RecordingCompute()
    ctx = LocalContext(tmp_path / "data", Settings(), compute=compute)
    (ctx.data_dir / "buckets" / BUCKET / "dags").mkdir(parents=True)
    yield ctx
    ctx.close()


def create(ctx: LocalContext, name: str, **extra: Any) -> None:
    request = parse(CreateEnvironmentInput, {
        "Name": name, "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}", "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}, **extra,
    })
    ctx.service.create_environment(request)
    wait_status(ctx, name, "AVAILABLE")


def wait_status(ctx: LocalContext, name: str, wanted: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    env: dict[str, Any] = {}
    while time.monotonic() < deadline:
        record = ctx.repository.get(name)
        if wanted == "DELETED" and record is None:
            return {}
        if record is not None:
            env = record.environment.wire()
            running = (record.internal.get("lifecycle") or {}).get("state") == "running"
            if env["Status"] == wanted and not running:
                return env
        time.sleep(0.05)
    raise TimeoutError(f"{name} is {env.get('Status')}, not {wanted}")


def transitions(ctx: LocalContext, name: str) -> list[tuple[str | None, str]]:
    return [(e["detail"].get("PreviousStatus"), e["detail"]["Status"]) for e in ctx.events.read(name, limit=1000)]


def tick(ctx: LocalContext, now: datetime) -> dict[str, Any]:
    function = load_function("lifecycle")
    result: dict[str, Any] = function.handler(function.scheduled_event(now), None, lifecycle=ctx.lifecycle)
    ctx.service.lifecycle.join(10)  # the operations it started run on threads
    return result


# ---------------------------------------------------------------- events


def test_every_transition_of_create_update_delete_is_one_event_in_order(context: LocalContext, monkeypatch: pytest.MonkeyPatch) -> None:
    stored: list[str] = []
    original_replace, original_put = context.repository.replace, context.repository.put_new

    def record_replace(record: Any) -> Any:
        previous = context.repository.get(record.name)
        saved = original_replace(record)
        if previous is None or previous.environment.Status != saved.environment.Status:
            stored.append(saved.environment.Status)
        return saved

    def record_put(record: Any) -> Any:
        saved = original_put(record)
        stored.append(saved.environment.Status)
        return saved

    monkeypatch.setattr(context.repository, "replace", record_replace)
    monkeypatch.setattr(context.repository, "put_new", record_put)

    create(context, "ev")
    context.service.update_environment(parse(UpdateEnvironmentInput, {"Name": "ev", "MaxWorkers": 3}))
    wait_status(context, "ev", "AVAILABLE")
    context.service.delete_environment("ev")
    wait_status(context, "ev", "DELETED")

    assert transitions(context, "ev") == [
        (None, "CREATING"), ("CREATING", "AVAILABLE"), ("AVAILABLE", "UPDATING"), ("UPDATING", "AVAILABLE"),
        ("AVAILABLE", "DELETING"), ("DELETING", "DELETED"),
    ]
    # One event per stored status change, none missing, none extra (DELETED is the record's removal).
    assert [s for _, s in transitions(context, "ev")] == stored + ["DELETED"]
    for event in context.events.read("ev"):
        assert event["source"] == "aws.airflow" and event["detail-type"] == "MWAA Environment Status Change"
        assert event["resources"] == [context.settings.environment_arn("ev")]


# ---------------------------------------------------------------- pause / resume


def test_pause_stops_the_compute_reports_pending_and_resume_brings_it_back(context: LocalContext) -> None:
    create(context, "pr")
    assert context.service.pause_environment("pr")["Status"] == "PENDING"
    paused = wait_status(context, "pr", "PENDING")
    assert paused["StatusReason"].startswith("Paused")
    assert context.compute.methods("pr")[-1] == "pause"

    context.service.resume_environment("pr")
    resumed = wait_status(context, "pr", "AVAILABLE")
    assert context.compute.methods("pr")[-1] == "resume"
    assert resumed.get("StatusReason") is None
    assert transitions(context, "pr")[-2:] == [("AVAILABLE", "PENDING"), ("PENDING", "AVAILABLE")]


def test_pause_and_resume_refuse_environments_in_the_wrong_status(context: LocalContext) -> None:
    create(context, "wrong")
    with pytest.raises(ValidationError, match="only a paused"):
        context.service.resume_environment("wrong")
    context.service.pause_environment("wrong")
    wait_status(context, "wrong", "PENDING")
    # pausing a paused environment is a no-op, not an error (schedules and retries repeat it)
    assert context.service.pause_environment("wrong")["Status"] == "PENDING"
    assert context.compute.methods("wrong").count("pause") == 1


def test_a_paused_environment_can_be_deleted(context: LocalContext) -> None:
    create(context, "gone")
    context.service.pause_environment("gone")
    wait_status(context, "gone", "PENDING")
    context.service.delete_environment("gone")
    wait_status(context, "gone", "DELETED")


# ---------------------------------------------------------------- maintenance


def test_a_maintenance_window_due_now_restarts_gracefully_and_returns_to_available(context: LocalContext) -> None:
    create(context, "mx", WeeklyMaintenanceWindowStart="WED:03:00", AirflowVersion="3.3.2")
    created = datetime.fromtimestamp(context.repository.get("mx").environment.CreatedAt, timezone.utc)
    # The first Wednesday 03:10 UTC after creation: the window opened ten minutes ago.
    now = (created + timedelta(days=(2 - created.weekday()) % 7 or 7)).replace(hour=3, minute=10, second=0, microsecond=0)

    assert tick(context, now)["started"] == [{"Name": "mx", "Action": "maintain"}]
    env = wait_status(context, "mx", "AVAILABLE")
    # The newest patch of 3.3 that Airdock offers is 3.3.2 itself: restarted all the same.
    assert ("restart", "mx", "GRACEFUL 3.3.2") in context.compute.calls
    assert env["AirflowVersion"] == "3.3.2"
    assert transitions(context, "mx")[-2:] == [("AVAILABLE", "MAINTENANCE"), ("MAINTENANCE", "AVAILABLE")]

    # Done for this week: later ticks in the same window do nothing.
    assert tick(context, now + timedelta(minutes=30))["started"] == []
    # Next week's window: due again.
    assert tick(context, now + timedelta(days=7))["started"] == [{"Name": "mx", "Action": "maintain"}]


def test_no_maintenance_outside_the_window(context: LocalContext) -> None:
    create(context, "quiet", WeeklyMaintenanceWindowStart="WED:03:00")
    created = datetime.fromtimestamp(context.repository.get("quiet").environment.CreatedAt, timezone.utc)
    thursday = (created + timedelta(days=(3 - created.weekday()) % 7 or 7)).replace(hour=12, minute=0)
    assert tick(context, thursday)["started"] == []
    assert "restart" not in context.compute.methods("quiet")


# ---------------------------------------------------------------- schedules via tags


def test_pause_and_resume_schedules_given_as_tags_fire_at_their_times(context: LocalContext) -> None:
    create(context, "sched")
    arn = context.settings.environment_arn("sched")
    context.service.tag_resource(arn, {"airdock:pause-schedule": "0 19 _ _ _", "airdock:resume-schedule": "0 7 _ _ _"})
    created = datetime.fromtimestamp(context.repository.get("sched").environment.CreatedAt, timezone.utc)
    # A weekday with no maintenance window (the default window is SUN:03:00).
    day = created + timedelta(days=1 if created.weekday() != 5 else 2)

    assert tick(context, day.replace(hour=19, minute=0, second=20))["started"] == [{"Name": "sched", "Action": "pause"}]
    wait_status(context, "sched", "PENDING")
    assert tick(context, day.replace(hour=19, minute=30))["started"] == []  # once per occurrence

    morning = (day + timedelta(days=1)).replace(hour=7, minute=0, second=20)
    assert tick(context, morning)["started"] == [{"Name": "sched", "Action": "resume"}]
    wait_status(context, "sched", "AVAILABLE")
    assert context.compute.methods("sched")[-2:] == ["pause", "resume"]


def test_a_paused_by_hand_environment_is_not_paused_again_and_a_manual_resume_is_not_overruled(context: LocalContext) -> None:
    create(context, "manual")
    context.service.tag_resource(context.settings.environment_arn("manual"), {"airdock:pause-schedule": "0 19 * * *"})
    created = datetime.fromtimestamp(context.repository.get("manual").environment.CreatedAt, timezone.utc)
    evening = (created + timedelta(days=1 if created.weekday() != 5 else 2)).replace(hour=19, minute=5)
    assert tick(context, evening)["started"] == [{"Name": "manual", "Action": "pause"}]
    wait_status(context, "manual", "PENDING")
    context.service.resume_environment("manual")
    wait_status(context, "manual", "AVAILABLE")
    assert tick(context, evening + timedelta(minutes=10))["started"] == []
    assert context.repository.get("manual").environment.Status == "AVAILABLE"


def test_schedule_tags_must_be_cron_expressions(context: LocalContext) -> None:
    create(context, "badtag")
    with pytest.raises(ValidationError, match="airdock:resume-schedule"):
        context.service.tag_resource(context.settings.environment_arn("badtag"), {"airdock:resume-schedule": "at dawn"})


def test_an_operation_interrupted_by_a_restart_is_started_again(context: LocalContext) -> None:
    create(context, "crash")
    runner = context.service.lifecycle
    context.service.lifecycle = None  # the server "dies" right after accepting the pause
    context.service.pause_environment("crash")
    assert "pause" not in context.compute.methods("crash")
    context.service.lifecycle = runner
    assert context.lifecycle.recover() == ["pause:crash"]
    runner.join(10)
    wait_status(context, "crash", "PENDING")
    assert context.compute.methods("crash")[-1] == "pause"


# ---------------------------------------------------------------- recovery after a server restart


class ComponentsComingBack(RecordingCompute):
    """The compute of a restarted server: its start() returns at once, but Airflow is healthy
    only once `back` is set (the components take their time to come up)."""

    def __init__(self) -> None:
        super().__init__()
        self.back = threading.Event()

    def health(self, env: Any) -> Health:
        return Health(self.back.is_set(), "ok" if self.back.is_set() else "scheduler=unhealthy")

    def environment(self, name: str) -> None:
        return None  # no local Airflow handle: the health-metrics collector skips it


def restart_server(ctx: LocalContext, compute: RecordingCompute, monkeypatch: pytest.MonkeyPatch) -> LocalContext:
    """Stop the server of `ctx` and start a new one on the same data dir (its lifecycle loop never
    ticks by itself: the tests tick it)."""
    ctx.close()
    monkeypatch.setenv("AIRDOCK_AUTOSCALER", "off")
    monkeypatch.setenv("AIRDOCK_LIFECYCLE_INTERVAL", "3600")
    again = LocalContext(ctx.data_dir, Settings(), compute=compute)
    again.start()
    return again


def airflow_access_error(ctx: LocalContext, name: str) -> list[str]:
    caller = Caller()
    calls = [lambda: ctx.service.create_cli_token(name, caller),
             lambda: ctx.service.create_web_login_token(name, caller),
             lambda: ctx.service.invoke_rest_api(parse(InvokeRestApiInput, {"Name": name, "Path": "/dags", "Method": "GET"}), caller)]
    messages = []
    for call in calls:
        with pytest.raises(ValidationError) as caught:
            call()
        messages.append(caught.value.message)
    return messages


def test_given_a_restarted_server_then_its_environments_are_unavailable_until_their_components_are_healthy_again(
        context: LocalContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an AVAILABLE environment and a paused one
    create(context, "back")
    create(context, "asleep")
    context.service.pause_environment("asleep")
    wait_status(context, "asleep", "PENDING")
    # When the server restarts, and the components are not back yet
    compute = ComponentsComingBack()
    again = restart_server(context, compute, monkeypatch)
    try:
        # Then from the first request on the environment is UNAVAILABLE, saying why
        env = again.service.get_environment("back")["Environment"]
        assert env["Status"] == "UNAVAILABLE"
        assert env["StatusReason"].startswith("Recovering")
        # and Airflow access gives MWAA's error for an environment that is not AVAILABLE
        assert all("UNAVAILABLE status" in message for message in airflow_access_error(again, "back"))
        # while the paused environment stays paused, nothing started
        assert again.repository.get("asleep").environment.Status == "PENDING"
        assert compute.methods("asleep") == []
        # When Airflow is healthy again / Then it is AVAILABLE, its components started once
        compute.back.set()
        wait_status(again, "back", "AVAILABLE")
        assert compute.methods("back") == ["start"]
        assert transitions(again, "back")[-2:] == [("AVAILABLE", "UNAVAILABLE"), ("UNAVAILABLE", "AVAILABLE")]
        assert again.service.get_environment("back")["Environment"].get("StatusReason") is None
    finally:
        again.close()


def test_given_a_recovery_that_timed_out_then_the_lifecycle_tick_retries_it_and_returns_the_environment_to_available_once_healthy(
        context: LocalContext, monkeypatch: pytest.MonkeyPatch) -> None:
    import airdock.core.lifecycle as lifecycle_module

    create(context, "slow")
    monkeypatch.setattr(lifecycle_module, "RECOVER_HEALTH_TIMEOUT_S", 0.5)
    compute = ComponentsComingBack()
    again = restart_server(context, compute, monkeypatch)
    try:
        # Given a recovery that gave up waiting for Airflow
        env = wait_status(again, "slow", "UNAVAILABLE")
        assert env["StatusReason"].startswith("Recover failed: Airflow did not become healthy")
        now = datetime.now(timezone.utc)
        # When the lifecycle ticks while Airflow is still not healthy / Then nothing changes…
        assert tick(again, now)["started"] == []
        # …until the retry is due: the recovery starts again
        assert tick(again, now + timedelta(seconds=lifecycle_module.RECOVER_RETRY_S + 1))["started"] == [
            {"Name": "slow", "Action": "recover"}]
        wait_status(again, "slow", "UNAVAILABLE")
        assert compute.methods("slow") == ["start", "start"]
        # When the components are healthy at last / Then the next tick makes it AVAILABLE
        compute.back.set()
        assert tick(again, now)["started"] == [{"Name": "slow", "Action": "healed"}]
        assert again.repository.get("slow").environment.Status == "AVAILABLE"
        assert transitions(again, "slow")[-2:] == [("AVAILABLE", "UNAVAILABLE"), ("UNAVAILABLE", "AVAILABLE")]
    finally:
        again.close()


def test_a_write_between_the_last_read_and_the_delete_does_not_fail_the_delete(
        context: LocalContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an environment being deleted, and a write (progress text) that lands right before the
    # delete's first attempt to remove the record
    create(context, "raced")
    context.service.transition("raced", "DELETING")
    original_delete = context.repository.delete
    attempts: list[int] = []

    def delete_after_a_concurrent_write(name: str, version: int) -> None:
        attempts.append(version)
        if len(attempts) == 1:
            context.service.update_internal(name, lambda record: record.internal.update(progress="stopping"))
        original_delete(name, version)

    monkeypatch.setattr(context.repository, "delete", delete_after_a_concurrent_write)
    # When the delete's last step runs
    context.service.forget("raced")
    # Then it read the record again and removed it, and DELETED was announced once
    assert len(attempts) == 2 and attempts[1] == attempts[0] + 1
    assert context.repository.get("raced") is None
    assert [s for _, s in transitions(context, "raced")].count("DELETED") == 1
