"""WorkerPool port on ECS: the Celery workers of an environment are the tasks of its worker service.

Where the numbers come from, and why:
- queued / running (`queued_and_running`, published by the autoscaler function as the
  CloudWatch `AmazonMWAA` `QueuedTasks`/`RunningTasks` metrics that `autoscaling.tick` reads):
  the environment's metadata database, `task_instance` rows in state `queued` / `running`,
  through the RDS Data API with the environment's own credentials (its Secrets Manager secret).
  That is exactly what MWAA's two metrics count, and the same source as local mode (which asks
  Airflow's REST API). Nothing else publishes them on AWS: Airflow's StatsD output is not shipped
  to CloudWatch by Airdock's tasks. SQS queue attributes are the fallback when the database cannot
  be read: `ApproximateNumberOfMessages` = queued; `...NotVisible` = running, because Airflow's
  Celery acknowledges late, so a message stays in flight while its task runs (it also counts
  prefetched messages, and both numbers are approximate — hence only a fallback).
- busy tasks per worker: the same query grouped by `task_instance.hostname` (the worker's host
  name, which on Fargate is the task ENI's `ip-a-b-c-d...` name), matched to the task's private IP.
- draining state: an ECS task tag, `airdock:draining-since=<epoch>`, so it survives between
  Lambda invocations and is visible in the console; `airdock:released` marks a task whose slot
  was already removed from the desired count (release is idempotent).

Actions:
- scale out = raise the worker service's desired count (ECS starts the tasks);
- protect = ECS task scale-in protection (`UpdateTaskProtection`, 48 h, the longest ECS allows,
  which covers the autoscaler's maximum drain time of 12 h);
- drain = a drain marker for the task in the environment's metadata database (`worker_drain.py`:
  Celery remote control needs a broadcast exchange, which kombu's SQS transport lacks, so the
  worker's own entrypoint polls the marker and warm-shuts its Celery worker down — it stops taking
  messages, finishes its running tasks and stays up, drained), then the tag; it no longer counts
  as capacity. Nothing is ever killed for it: it stays protected while busy;
- resume = remove the marker (the entrypoint starts Celery again), then the tag;
- release = mark it released, protect every other busy worker that is not protected yet (a short
  guard), lower the desired count by one and stop this idle task at once, so the ECS service
  scheduler has no other task to pick: it only ever picks unprotected tasks, and the only
  unprotected tasks left are idle. `force` (past the maximum drain time) stops it regardless.
  Its drain marker goes once the task has stopped (`prune_drain_markers`, every autoscaler run,
  also removes markers of tasks that no longer exist); not before: a worker whose marker vanishes
  while it is still up starts Celery again and may take a task just before its SIGTERM.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock_runtime.drain import DrainMarkers
from airdock.core.ports import UpcomingRun, WorkerInfo

log = logging.getLogger(__name__)

DRAINING_TAG = "airdock:draining-since"
RELEASED_TAG = "airdock:released"
# Protection of a busy worker being drained (ECS's maximum: 48 h > the 12 h maximum drain time).
DRAIN_PROTECTION_MINUTES = 2880
# Short protection of busy workers while a release lowers the desired count.
GUARD_PROTECTION_MINUTES = 10
PENDING_PREFIX = "pending:"

TASK_COUNTS_SQL = (
    "SELECT state, COALESCE(hostname, ''), COUNT(*) FROM task_instance "
    "WHERE state IN ('queued', 'running') GROUP BY state, hostname"
)
# Unpaused DAGs whose next run is due before :until, with their task count from the newest
# serialized DAG (the same columns on Airflow 2.11 and 3; `data` is NULL only when
# `core.compress_serialized_dags` is on, and such a DAG then counts 0 tasks: no head start).
UPCOMING_RUNS_SQL = (
    "SELECT d.dag_id, CAST(EXTRACT(EPOCH FROM d.next_dagrun_create_after) AS DOUBLE PRECISION), "
    "COALESCE(d.max_active_tasks, 0), "
    "COALESCE((SELECT json_array_length(s.data::json -> 'dag' -> 'tasks') FROM serialized_dag s "
    "WHERE s.dag_id = d.dag_id ORDER BY s.last_updated DESC LIMIT 1), 0) "
    "FROM dag d WHERE NOT d.is_paused AND d.next_dagrun_create_after IS NOT NULL "
    "AND d.next_dagrun_create_after <= to_timestamp(:until)"
)


class MetadataTaskCounts:
    """Task-instance counts of an environment's metadata database, through the RDS Data API with
    the environment's own secret (`airdock/<Name>/database`, created by `database.py`)."""

    def __init__(self, cluster_arn: str, rds_data: Any, secretsmanager: Any) -> None:
        self.cluster_arn = cluster_arn
        self.rds_data = rds_data
        self.sm = secretsmanager
        self._secrets: dict[str, str] = {}

    def execute(self, environment: str, sql: str, **parameters: float | str) -> dict[str, Any]:
        secret = self._secrets.get(environment)
        if secret is None:
            secret = str(self.sm.describe_secret(SecretId=naming.secret_name(environment, "database"))["ARN"])
            self._secrets[environment] = secret
        request: dict[str, Any] = {"resourceArn": self.cluster_arn, "secretArn": secret,
                                   "database": naming.pg_identifier(environment, "db"), "sql": sql}
        if parameters:
            request["parameters"] = [{"name": k, "value": {"stringValue": v} if isinstance(v, str)
                                      else {"doubleValue": float(v)}} for k, v in parameters.items()]
        return self.rds_data.execute_statement(**request)

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        result = self.execute(environment, UPCOMING_RUNS_SQL, until=until)
        return [UpcomingRun.of(r[0].get("stringValue", ""), float(r[1].get("doubleValue", 0.0)),
                               int(r[3].get("longValue", 0)), int(r[2].get("longValue", 0)))
                for r in result.get("records", [])]

    def __call__(self, environment: str) -> tuple[int, dict[str, int]]:
        """(queued, {hostname: running})."""
        result = self.execute(environment, TASK_COUNTS_SQL)
        queued = 0
        running: dict[str, int] = {}
        for record in result.get("records", []):
            state = record[0].get("stringValue", "")
            host = record[1].get("stringValue", "")
            count = int(record[2].get("longValue", 0))
            if state == "queued":
                queued += count
            elif state == "running":
                running[host] = running.get(host, 0) + count
        return queued, running


TaskCounts = Callable[[str], "tuple[int, dict[str, int]]"]


def _host_keys(task: dict[str, Any]) -> set[str]:
    """The names a worker task's Airflow hostname may take: its private IP, the `ip-a-b-c-d`
    host name Fargate gives it (with or without a domain), its private DNS name."""
    keys: set[str] = set()
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                ip = detail["value"]
                keys |= {ip, "ip-" + ip.replace(".", "-")}
            elif detail.get("name") == "privateDnsName" and detail.get("value"):
                keys |= {detail["value"], detail["value"].split(".")[0]}
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            ip = interface.get("privateIpv4Address")
            if ip:
                keys |= {ip, "ip-" + ip.replace(".", "-")}
    return keys


def busy_of(task: dict[str, Any], running_by_host: dict[str, int]) -> int:
    keys = _host_keys(task)
    return sum(n for host, n in running_by_host.items() if host in keys or host.split(".")[0] in keys)


class EcsWorkerPool:
    def __init__(self, ecs: Any, cluster: str, *, task_counts: TaskCounts, sqs: Any | None = None,
                 upcoming: Callable[[str, float], list[UpcomingRun]] | None = None,
                 markers: DrainMarkers | None = None, clock: Callable[[], float] = time.time) -> None:
        """`markers`: how a worker is told to stop consuming; without them a draining worker
        finishes its tasks but may take new ones until it is released."""
        self.ecs = ecs
        self.cluster = cluster
        self.task_counts = task_counts
        self.upcoming = upcoming
        self.markers = markers
        self.sqs = sqs
        self.clock = clock

    # ------------------------------------------------------------------ reading

    def _service(self, environment: str) -> dict[str, Any] | None:
        services = self.ecs.describe_services(cluster=self.cluster,
                                              services=[naming.service_name(environment, "worker")])["services"]
        return next((s for s in services if s.get("status") == "ACTIVE"), None)

    def _tasks(self, environment: str, desired_status: str) -> list[dict[str, Any]]:
        """The worker service's tasks (real ECS filters by service; the `group` check keeps this
        exact where a list is wider, e.g. a task started by hand in the same cluster)."""
        service = naming.service_name(environment, "worker")
        arns: list[str] = []
        try:
            for page in self.ecs.get_paginator("list_tasks").paginate(cluster=self.cluster, serviceName=service,
                                                                      desiredStatus=desired_status):
                arns += page.get("taskArns", [])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ServiceNotFoundException":
                return []
            raise
        tasks: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):  # DescribeTasks takes 100 tasks a call
            tasks += self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[start:start + 100],
                                             include=["TAGS"])["tasks"]
        return [t for t in tasks if t.get("group") == f"service:{service}"]

    def _protection(self, task_arns: list[str]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        for start in range(0, len(task_arns), 10):
            response = self.ecs.get_task_protection(cluster=self.cluster, tasks=task_arns[start:start + 10])
            for item in response.get("protectedTasks", []):
                found[item["taskArn"]] = bool(item.get("protectionEnabled"))
        return found

    def _counts(self, environment: str) -> tuple[int, dict[str, int]] | None:
        try:
            return self.task_counts(environment)
        except Exception as exc:  # database unreachable or not migrated yet
            log.warning("[%s] task counts from the metadata database failed: %s", environment, exc)
            return None

    def workers(self, environment: str) -> list[WorkerInfo]:
        running_tasks = self._tasks(environment, "RUNNING")
        counts = self._counts(environment)
        by_host = counts[1] if counts is not None else {}
        protection = self._protection([t["taskArn"] for t in running_tasks]) if running_tasks else {}
        out: list[WorkerInfo] = []
        kept = 0
        for task in running_tasks:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            if RELEASED_TAG in tags:
                continue  # being stopped; its slot is gone already
            kept += 1
            draining = tags.get(DRAINING_TAG)
            busy = busy_of(task, by_host)
            if counts is None:
                busy = max(busy, 1)  # unknown: treat as busy, so nothing is released blindly
            started = task.get("startedAt") or task.get("createdAt")
            out.append(WorkerInfo(
                id=task["taskArn"], busy_tasks=busy, state="draining" if draining else "active",
                protected=protection.get(task["taskArn"], False),
                started_at=started.timestamp() if hasattr(started, "timestamp") else None,
                draining_since=float(draining) if draining else None,
            ))
        # Draining workers that stopped on their own (crash, OOM): ECS replaced them, so their
        # slot must still be removed from the desired count — reported `stopped` to be released.
        for task in self._tasks(environment, "STOPPED"):
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            if DRAINING_TAG in tags and RELEASED_TAG not in tags:
                out.append(WorkerInfo(id=task["taskArn"], busy_tasks=0, state="stopped",
                                      draining_since=float(tags[DRAINING_TAG])))
        # Tasks ECS has been asked for but not created yet: capacity already on its way (without
        # them a tick right after a scale-out would scale out again).
        service = self._service(environment)
        desired = int(service.get("desiredCount", 0)) if service else 0
        for i in range(max(0, desired - kept)):
            out.append(WorkerInfo(id=f"{PENDING_PREFIX}{i}", busy_tasks=0, state="active"))
        return out

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        counts = self._counts(environment)
        if counts is not None:
            return counts[0], sum(counts[1].values())
        if self.sqs is None:
            raise RuntimeError(f"no task counts for {environment}")
        url = self.sqs.get_queue_url(QueueName=naming.queue_name(environment))["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0)), int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        if self.upcoming is None:
            raise RuntimeError(f"no metadata database to read the DAG schedules of {environment} from")
        return self.upcoming(environment, until)

    # ------------------------------------------------------------------ acting

    def _set_desired(self, environment: str, change: int) -> None:
        service = self._service(environment)
        if service is None:
            raise RuntimeError(f"environment {environment} has no worker service")
        desired = max(0, int(service.get("desiredCount", 0)) + change)
        self.ecs.update_service(cluster=self.cluster, service=service["serviceName"], desiredCount=desired)

    def scale_out(self, environment: str, count: int) -> list[str]:
        if count <= 0:
            return []
        self._set_desired(environment, count)
        log.info("[%s] worker service desired count +%d", environment, count)
        return []  # ECS names the tasks when it starts them; the next tick lists them

    def protect(self, environment: str, worker_id: str, on: bool, minutes: int = DRAIN_PROTECTION_MINUTES) -> None:
        if worker_id.startswith(PENDING_PREFIX):
            return
        self.protect_tasks([worker_id], on, minutes)

    def protect_tasks(self, task_arns: list[str], on: bool, minutes: int = DRAIN_PROTECTION_MINUTES) -> None:
        """ECS task scale-in protection set (for `minutes`) or lifted: while set, ECS never
        picks the task when the desired count drops, and a deployment waits for it."""
        for start in range(0, len(task_arns), 10):  # UpdateTaskProtection takes 10 tasks a call
            request: dict[str, Any] = {"cluster": self.cluster, "tasks": task_arns[start:start + 10],
                                       "protectionEnabled": on}
            if on:
                request["expiresInMinutes"] = minutes
            response = self.ecs.update_task_protection(**request)
            for failure in response.get("failures", []):
                if failure.get("reason") != "TASK_NOT_VALID":  # stopped already: nothing to protect
                    raise RuntimeError(f"task protection of {failure.get('arn')} failed: {failure.get('reason')}")

    def protect_all(self, environment: str, on: bool) -> None:
        """Every worker task of the environment (a FORCED update, a pause: none may hold a deployment back)."""
        self.protect_tasks([t["taskArn"] for t in self._tasks(environment, "RUNNING")], on)

    def _tag(self, worker_id: str, key: str, value: str) -> None:
        try:
            self.ecs.tag_resource(resourceArn=worker_id, tags=[{"key": key, "value": value}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("InvalidParameterException", "ResourceNotFoundException"):
                raise

    def drain(self, environment: str, worker_id: str) -> None:
        if worker_id.startswith(PENDING_PREFIX):
            self._set_desired(environment, -1)  # not started yet: just ask for one task fewer
            return
        described = self.ecs.describe_tasks(cluster=self.cluster, tasks=[worker_id], include=["TAGS"])["tasks"]
        if not described or DRAINING_TAG in {t["key"] for t in described[0].get("tags", [])}:
            return  # gone, or already draining (keep the first timestamp)
        now = self.clock()
        if self.markers is not None:
            # Before the tag: if this fails, the worker is not draining yet and the next tick
            # decides again (the marker is idempotent).
            self.markers.mark(environment, worker_id, now)
        self._tag(worker_id, DRAINING_TAG, f"{now:.0f}")
        log.info("[%s] draining %s", environment, worker_id)

    def resume(self, environment: str, worker_id: str) -> bool:
        if self.markers is not None:
            self.markers.clear(environment, worker_id)
        try:
            self.ecs.untag_resource(resourceArn=worker_id, tagKeys=[DRAINING_TAG])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("InvalidParameterException", "ResourceNotFoundException"):
                return False
            raise
        return True

    def release(self, environment: str, worker_id: str, force: bool = False) -> bool:
        if worker_id.startswith(PENDING_PREFIX):
            return True
        described = self.ecs.describe_tasks(cluster=self.cluster, tasks=[worker_id], include=["TAGS"])["tasks"]
        if not described:
            return True
        task = described[0]
        tags = {t["key"]: t["value"] for t in task.get("tags", [])}
        stopped = task.get("desiredStatus") == "STOPPED"
        if not stopped and not force:
            counts = self._counts(environment)
            if counts is None or busy_of(task, counts[1]) > 0:
                return False  # took work since the decision: release it on a later tick
        if RELEASED_TAG not in tags:
            # Marked first: a retry after a crash must not lower the count a second time.
            self._tag(worker_id, RELEASED_TAG, f"{self.clock():.0f}")
            if not stopped:
                self._guard_busy(environment, exclude=worker_id)
            self._set_desired(environment, -1)
        if not stopped:
            self.ecs.stop_task(cluster=self.cluster, task=worker_id,
                               reason="Airdock autoscaler: drained worker released" + (" (forced)" if force else ""))
        elif task.get("lastStatus") == "STOPPED":
            self._clear_marker(environment, worker_id)
        log.info("[%s] released %s%s", environment, worker_id, " (forced)" if force else "")
        return True

    def _clear_marker(self, environment: str, worker_id: str) -> None:
        if self.markers is None:
            return
        try:
            self.markers.clear(environment, worker_id)
        except Exception as exc:  # the release stands; prune_drain_markers retries the delete
            log.warning("[%s] drain marker of %s not deleted yet: %s", environment, worker_id, exc)

    def tidy(self, environment: str) -> None:
        """Delete the drain markers of worker tasks that have stopped or no longer exist. A task
        ECS is still stopping keeps its marker, so it stays drained until its SIGTERM."""
        if self.markers is None:
            return
        listed_at = self.clock()
        live = [t["taskArn"] for t in self._tasks(environment, "RUNNING")]
        live += [t["taskArn"] for t in self._tasks(environment, "STOPPED") if t.get("lastStatus") != "STOPPED"]
        self.markers.prune(environment, live, before=listed_at)

    def _guard_busy(self, environment: str, exclude: str) -> None:
        """Protect every busy worker that is not protected yet, briefly: while the desired count
        drops, the ECS service scheduler may only pick idle tasks."""
        workers = [w for w in self.workers(environment)
                   if w.id != exclude and not w.id.startswith(PENDING_PREFIX) and w.state != "stopped"]
        self.protect_tasks([w.id for w in workers if w.busy_tasks > 0 and not w.protected], True,
                           GUARD_PROTECTION_MINUTES)

    def busy_worker_tasks(self, environment: str) -> list[str]:
        """Worker tasks running at least one task instance (a GRACEFUL restart protects them)."""
        return [w.id for w in self.workers(environment)
                if w.state != "stopped" and not w.id.startswith(PENDING_PREFIX) and w.busy_tasks > 0]
