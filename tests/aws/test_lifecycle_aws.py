"""Lifecycle operations on ECS, under moto: pause (every service to 0 tasks, the database and
everything else kept), resume (the counts back), maintenance restart (a new deployment of every
service; GRACEFUL protects the busy workers first), and the AWS LifecycleRunner."""
from __future__ import annotations

import json
from typing import Any

from airdock.aws import naming
from airdock.aws.factory import LambdaLifecycleRunner
from aws.conftest import Stack
from aws.test_adapters import _services, _up, environment
from aws.test_autoscaler_aws import Database, ecs_scheduler, hostname, running_tasks
from support.modules import REPO, load_by_path


def _record_updates(stack: Stack) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    stack.client("ecs").meta.events.register(
        "before-call.ecs.UpdateService", lambda params, **_: calls.append(json.loads(params["body"])))
    return calls


def test_pause_stops_every_component_and_keeps_the_database(stack: Stack) -> None:
    env = environment(stack, MinWorkers=2)
    compute = _up(stack, env)
    compute.pause(env)
    assert {c: s["desiredCount"] for c, s in _services(stack, env.Name).items()} == {
        "scheduler": 0, "webserver": 0, "web-front": 0, "dag-processor": 0, "triggerer": 0, "worker": 0}
    sm = stack.client("secretsmanager")
    assert sm.describe_secret(SecretId=naming.secret_name(env.Name, "database"))["Name"]
    assert stack.client("sqs").get_queue_url(QueueName=naming.queue_name(env.Name))["QueueUrl"]
    compute.pause(env)  # idempotent


def test_resume_restores_the_counts(stack: Stack) -> None:
    env = environment(stack, MinWorkers=2)
    compute = _up(stack, env)
    compute.pause(env)
    compute.resume(env, lambda _m: None)
    assert {c: s["desiredCount"] for c, s in _services(stack, env.Name).items()} == {
        "scheduler": 2, "webserver": 2, "web-front": 1, "dag-processor": 1, "triggerer": 1, "worker": 2}


def test_a_graceful_restart_protects_busy_workers_then_forces_a_new_deployment(stack: Stack) -> None:
    env = environment(stack, MinWorkers=2)
    compute = _up(stack, env)
    ecs_scheduler(stack, env.Name)
    task = running_tasks(stack, env.Name)[0]
    busy = task["taskArn"]
    Database(stack).running = {hostname(task): 1}  # the metadata database: one task instance runs on it
    updates = _record_updates(stack)
    compute.restart(env, "GRACEFUL", lambda _m: None)
    assert stack.protection == {busy: True}  # only the busy one; idle workers may be replaced at once
    forced = {u["service"] for u in updates if u.get("forceNewDeployment")}
    assert forced == {naming.service_name(env.Name, c)
                      for c in ("scheduler", "webserver", "web-front", "dag-processor", "triggerer", "worker")}
    assert _services(stack, env.Name)["worker"]["desiredCount"] == 2  # the autoscaled count is kept


def test_a_forced_restart_lifts_worker_protection(stack: Stack) -> None:
    env = environment(stack, MinWorkers=1)
    compute = _up(stack, env)
    ecs_scheduler(stack, env.Name)
    task = running_tasks(stack, env.Name)[0]["taskArn"]
    compute.workers.protect(env.Name, task, on=True)
    compute.restart(env, "FORCED", lambda _m: None)
    assert stack.protection[task] is False


def test_the_runner_invokes_the_lifecycle_function_asynchronously_with_its_operation_event() -> None:
    calls: list[dict[str, Any]] = []

    class Lambda:
        def invoke(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    LambdaLifecycleRunner("stack-lifecycle", Lambda()).start("pause", "analytics")
    assert calls[0]["FunctionName"] == "stack-lifecycle" and calls[0]["InvocationType"] == "Event"
    event = json.loads(calls[0]["Payload"])
    # The event the lifecycle function runs one operation from.
    app = load_by_path(REPO / "functions" / "lifecycle" / "app.py", "lifecycle_app_under_test")
    assert event == app.operation_event("pause", "analytics")

    ran: list[tuple[str, str]] = []

    class Lifecycle:
        def run(self, operation: str, name: str) -> None:
            ran.append((operation, name))

    app.handler(event, None, lifecycle=Lifecycle())  # type: ignore[arg-type]
    assert ran == [("pause", "analytics")]
