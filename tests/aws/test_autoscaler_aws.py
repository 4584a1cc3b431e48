"""The autoscaler on AWS, under moto: the ECS worker pool (airdock/aws/worker_pool.py) driven by
the domain's `autoscaling.tick`, CloudWatch metrics sampled from the metadata database (RDS Data
API answers stubbed: moto returns no rows), and a stand-in for the ECS service scheduler, which
moto lacks: it starts tasks up to the desired count and, on scale-in, stops only unprotected
tasks — what ECS task scale-in protection guarantees."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from airdock.aws import naming
from airdock_runtime import drain as worker_drain
from airdock.aws.worker_pool import DRAINING_TAG, RELEASED_TAG, TASK_COUNTS_SQL, UPCOMING_RUNS_SQL
from airdock.core import autoscaling
from airdock.core.ports import EnvironmentRecord
from aws.conftest import Stack
from aws.test_adapters import _up, environment

CLUSTER = "airdock-environments"


class Repo:
    def __init__(self, *records: EnvironmentRecord) -> None:
        self.records = {r.name: r for r in records}

    def list_names(self, limit: int, after: str | None = None) -> list[str]:
        return sorted(n for n in self.records if after is None or n > after)[:limit]

    def get(self, name: str) -> EnvironmentRecord | None:
        return self.records.get(name)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, timezone.utc)


class Database:
    """What the environment's metadata database answers to TASK_COUNTS_SQL and UPCOMING_RUNS_SQL
    (the SQL itself runs against a real Airflow schema in tests/e2e/test_worker_autoscaling.py),
    and the workers' drain markers (worker_drain.py) it keeps."""

    def __init__(self, stack: Stack) -> None:
        self.queued = 0
        self.running: dict[str, int] = {}  # hostname -> running task instances
        # dag_id -> (next_dagrun_create_after epoch, max_active_tasks, task count) of unpaused DAGs
        self.schedules: dict[str, tuple[float, int, int]] = {}
        self.statements: list[dict[str, Any]] = []
        self.drain_markers: dict[str, float] = {}  # task ARN -> since
        stack.client("rds-data").meta.events.register("before-call.rds-data.ExecuteStatement", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        body = json.loads(params["body"])
        self.statements.append(body)
        if body["sql"] == UPCOMING_RUNS_SQL:
            until = next(p["value"]["doubleValue"] for p in body["parameters"] if p["name"] == "until")
            records = [[{"stringValue": dag}, {"doubleValue": due}, {"longValue": limit}, {"longValue": count}]
                       for dag, (due, limit, count) in self.schedules.items() if due <= until]
            return self._ok(records)
        values = {p["name"]: next(iter(p["value"].values())) for p in body.get("parameters", [])}
        if body["sql"] == worker_drain.MARK_SQL:
            self.drain_markers.setdefault(values["task_arn"], values["since"])
            return self._ok([])
        if body["sql"] == worker_drain.CLEAR_SQL:
            self.drain_markers.pop(values["task_arn"], None)
            return self._ok([])
        if body["sql"] == worker_drain.CREATE_SQL:
            return self._ok([])
        if body["sql"].startswith(worker_drain.PRUNE_SQL):
            live = {v for k, v in values.items() if k.startswith("live_")}
            assert body["sql"] == worker_drain.prune_sql(len(live))
            self.drain_markers = {arn: since for arn, since in self.drain_markers.items()
                                  if arn in live or since >= values["before"]}
            return self._ok([])
        if body["sql"] != TASK_COUNTS_SQL:
            return None  # not the metadata database's: moto's Data API answers (the admin's statements)
        records = [[{"stringValue": "queued"}, {"stringValue": ""}, {"longValue": self.queued}]] if self.queued else []
        records += [[{"stringValue": "running"}, {"stringValue": h}, {"longValue": n}] for h, n in self.running.items()]
        return self._ok(records)

    @staticmethod
    def _ok(records: list[Any]) -> tuple[Any, dict[str, Any]]:
        class Http:
            status_code = 200
            headers: dict[str, str] = {}
        return Http(), {"records": records, "ResponseMetadata": {"HTTPStatusCode": 200}}


def service(stack: Stack, env: str) -> dict[str, Any]:
    return stack.client("ecs").describe_services(cluster=CLUSTER, services=[naming.service_name(env, "worker")])["services"][0]


def running_tasks(stack: Stack, env: str) -> list[dict[str, Any]]:
    ecs = stack.client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    group = f"service:{naming.service_name(env, 'worker')}"
    return [t for t in ecs.describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"] if t.get("group") == group]


def ecs_scheduler(stack: Stack, env: str) -> None:
    """The ECS service scheduler's part: start tasks up to the desired count; on scale-in stop
    surplus tasks, never a protected one."""
    ecs = stack.client("ecs")
    svc = service(stack, env)
    tasks = running_tasks(stack, env)
    missing = svc["desiredCount"] - len(tasks)
    if missing > 0:
        ecs.run_task(cluster=CLUSTER, taskDefinition=svc["taskDefinition"], launchType="FARGATE", count=missing,
                     group=f"service:{svc['serviceName']}", startedBy="ecs-svc/0",
                     networkConfiguration={"awsvpcConfiguration": {"subnets": stack.subnets, "securityGroups": [stack.security_group]}})
    for task in [t for t in tasks if not stack.protection.get(t["taskArn"])][: max(0, -missing)]:
        ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="service scale-in")


def hostname(task: dict[str, Any]) -> str:
    ip = next(d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "privateIPv4Address")
    return f"ip-{ip.replace('.', '-')}.ec2.internal"


@pytest.fixture
def aws_env(stack: Stack) -> tuple[Stack, Any, Database]:
    env = environment(stack, Status="AVAILABLE", MinWorkers=1, MaxWorkers=10)
    _up(stack, env)
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"), desiredCount=1)
    ecs_scheduler(stack, env.Name)
    for svc in ("cloudwatch", "rds-data", "sqs"):
        stack.client(svc)
    return stack, env, Database(stack)


def run_tick(stack: Stack, env: Any, now: float, config: autoscaling.AutoscalingConfig | None = None) -> autoscaling.Decision:
    metrics, pool, decisions = (stack.metrics(), stack.worker_pool(), None)
    repo = Repo(EnvironmentRecord(environment=env))
    autoscaling.publish_task_metrics(repo, metrics, pool, now, config or autoscaling.AutoscalingConfig())
    made = autoscaling.tick(repo, metrics, pool, Clock(now), config or autoscaling.AutoscalingConfig(), decisions)
    assert len(made) == 1
    return made[0]


def test_queued_work_raises_the_worker_services_desired_count(aws_env: Any) -> None:
    stack, env, db = aws_env
    db.queued = 12  # mw1.small: 5 tasks per worker -> ceil(12 / 5) = 3 workers
    now = datetime.now(timezone.utc).timestamp()
    decision = run_tick(stack, env, now)
    assert (decision.action, decision.inputs.queued, decision.inputs.running) == ("scale_out", 12, 0)
    assert service(stack, env.Name)["desiredCount"] == 3
    # The statements ran against the environment's own database with its own secret.
    assert db.statements[0]["database"] == naming.pg_identifier(env.Name, "db")
    assert db.statements[0]["secretArn"].split(":secret:")[1].startswith(naming.secret_name(env.Name, "database"))
    # Before ECS has started them, the two new tasks count as capacity: no second scale-out.
    decision = run_tick(stack, env, now + 1)
    assert decision.action == "hold" and service(stack, env.Name)["desiredCount"] == 3
    ecs_scheduler(stack, env.Name)
    assert len(running_tasks(stack, env.Name)) == 3


def test_scale_in_protects_a_busy_task_and_lowers_the_count_only_for_idle_ones(aws_env: Any) -> None:
    stack, env, db = aws_env
    config = autoscaling.AutoscalingConfig(scale_in_stabilization_s=0)
    now = datetime.now(timezone.utc).timestamp()
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"), desiredCount=3)
    ecs_scheduler(stack, env.Name)
    tasks = running_tasks(stack, env.Name)
    busy, idle = tasks[0], tasks[1:]
    db.running = {hostname(busy): 2}  # 2 running -> 1 worker wanted: 2 of 3 go, idle ones first
    decision = run_tick(stack, env, now, config)
    assert decision.action == "scale_in" and decision.desired == 1
    assert set(decision.drain) == {t["taskArn"] for t in idle} and decision.protect == ()
    tags = {t["taskArn"]: {x["key"] for x in t.get("tags", [])} for t in running_tasks(stack, env.Name)}
    assert all(DRAINING_TAG in tags[t["taskArn"]] for t in idle) and DRAINING_TAG not in tags[busy["taskArn"]]
    assert service(stack, env.Name)["desiredCount"] == 3  # draining changes no count

    # Next tick: the drained idle workers are released - the count drops by two, exactly they stop.
    decision = run_tick(stack, env, now + 60, config)
    assert set(decision.release) == {t["taskArn"] for t in idle}
    assert service(stack, env.Name)["desiredCount"] == 1
    ecs_scheduler(stack, env.Name)
    assert [t["taskArn"] for t in running_tasks(stack, env.Name)] == [busy["taskArn"]]


def test_a_busy_victim_is_protected_drained_and_released_only_once_idle(aws_env: Any) -> None:
    stack, env, db = aws_env
    config = autoscaling.AutoscalingConfig(scale_in_stabilization_s=0)
    now = datetime.now(timezone.utc).timestamp()
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"),
                                       desiredCount=2)
    ecs_scheduler(stack, env.Name)
    a, b = running_tasks(stack, env.Name)
    db.running = {hostname(a): 1, hostname(b): 1}  # 2 running -> 1 worker; both busy
    decision = run_tick(stack, env, now, config)
    assert decision.action == "scale_in" and len(decision.drain) == 1 and decision.protect == decision.drain
    victim = decision.drain[0]
    keeper = a if victim == b["taskArn"] else b
    assert stack.protection[victim] is True
    # Still busy: held, protected, and the count is untouched (ECS may not stop it).
    decision = run_tick(stack, env, now + 60, config)
    assert decision.release == () and service(stack, env.Name)["desiredCount"] == 2
    ecs_scheduler(stack, env.Name)
    assert len(running_tasks(stack, env.Name)) == 2
    # Its task ends: released - unprotected, count lowered, that very task stopped.
    db.running = {hostname(keeper): 1}
    decision = run_tick(stack, env, now + 120, config)
    assert decision.release == (victim,)
    assert stack.protection[victim] is False
    assert service(stack, env.Name)["desiredCount"] == 1
    ecs_scheduler(stack, env.Name)
    assert [t["taskArn"] for t in running_tasks(stack, env.Name)] == [keeper["taskArn"]]


def test_release_is_idempotent(aws_env: Any) -> None:
    stack, env, db = aws_env
    metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"), desiredCount=2)
    ecs_scheduler(stack, env.Name)
    task = running_tasks(stack, env.Name)[0]["taskArn"]
    pool.drain(env.Name, task)
    assert pool.release(env.Name, task) is True
    assert pool.release(env.Name, task) is True  # a retried tick
    assert service(stack, env.Name)["desiredCount"] == 1
    described = stack.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task], include=["TAGS"])["tasks"][0]
    assert RELEASED_TAG in {t["key"] for t in described["tags"]}


def test_without_the_database_queued_and_running_come_from_the_sqs_queue(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)

    def fail(params: dict[str, Any], **_: Any) -> None:
        raise RuntimeError("Data API unavailable")

    stack.client("rds-data").meta.events.register_first("before-call.rds-data.ExecuteStatement", fail)
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=naming.queue_name(env.Name))["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"task {i}")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)  # taken by a worker: in flight = running
    assert pool.queued_and_running(env.Name) == (2, 1)
    # Unknown per-worker load: every worker counts as busy, so none is released blindly.
    assert all(w.busy_tasks >= 1 for w in pool.workers(env.Name) if not w.id.startswith("pending:"))


def test_a_scheduled_run_due_within_the_horizon_starts_workers_before_its_tasks_are_queued(aws_env: Any) -> None:
    stack, env, db = aws_env
    now = datetime.now(timezone.utc).timestamp()
    # "nightly" fans out 40 tasks but allows 12 at once; "weekly" is due too late to matter yet.
    db.schedules = {"nightly": (now + 150, 12, 40), "weekly": (now + 3600, 0, 30)}
    decision = run_tick(stack, env, now)
    assert (decision.inputs.queued, decision.inputs.running, decision.inputs.scheduled) == (0, 0, 12)
    assert decision.action == "scale_out" and service(stack, env.Name)["desiredCount"] == 3  # ceil(12 / 5)
    upcoming = next(s for s in db.statements if s["sql"] == UPCOMING_RUNS_SQL)
    assert upcoming["database"] == naming.pg_identifier(env.Name, "db")
    # The scheduled demand is a CloudWatch metric like QueuedTasks.
    metrics, _, _ = (stack.metrics(), stack.worker_pool(), None)
    assert [p.value for p in metrics.query(env.Name, autoscaling.SCHEDULED, now - 60, now + 1)] == [12.0]
