"""The ports the domain talks through. Each has an AWS adapter and a local adapter."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from airdock.core.models import Environment

if TYPE_CHECKING:
    from airdock.core.airflow_access import RolePolicy
    from airdock.core.models import InvokeRestApiInput

WorkflowKind = Literal["create", "update", "delete"]


class EnvironmentRecord(BaseModel):
    """What a repository stores: the MWAA resource plus Airdock's own bookkeeping."""

    environment: Environment
    # Optimistic concurrency: every successful write increments it; writes name the version
    # they read, so two writers racing on one environment cannot both win.
    version: int = 0
    # Never on the wire: workflow execution, rollback snapshot, ports, progress text.
    internal: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.environment.Name


class EnvironmentRepository(Protocol):
    def put_new(self, record: EnvironmentRecord) -> EnvironmentRecord:
        """Store a record whose name is not taken (version becomes 1) or raise AlreadyExists."""

    def get(self, name: str) -> EnvironmentRecord | None: ...

    def list_names(self, limit: int, after: str | None = None) -> list[str]:
        """Up to `limit` names in ascending order, strictly after `after`."""

    def replace(self, record: EnvironmentRecord) -> EnvironmentRecord:
        """Write `record` if the stored version still equals `record.version`; return it with
        the version incremented, or raise ConcurrentModification (also when it vanished)."""

    def delete(self, name: str, version: int) -> None:
        """Delete if the stored version equals `version`, else raise ConcurrentModification.
        Deleting a record that is already gone is not an error."""


class Buckets(Protocol):
    """Where DAGs, plugins, requirements and startup scripts come from (S3, or a local folder)."""

    def bucket_exists(self, bucket: str) -> bool: ...

    def prefix_exists(self, bucket: str, prefix: str) -> bool: ...

    def object_exists(self, bucket: str, key: str, version: str | None = None) -> bool: ...


class Workflows(Protocol):
    def start(self, kind: WorkflowKind, name: str, payload: dict[str, Any]) -> str:
        """Start the provisioning workflow; returns its execution id."""


class Events(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Caller:
    """Who signed the request (from SigV4 locally, from the IAM context on AWS)."""

    access_key_id: str = "anonymous"
    principal_arn: str = "arn:aws:iam::000000000000:root"
    extra: dict[str, Any] = field(default_factory=dict)


class NullEvents:
    """Events port for contexts with no subscriber (unit tests of pure rules)."""

    def publish(self, event: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str = ""


class Compute(Protocol):
    """Runs an environment's Airflow components (ECS Fargate on AWS, processes locally).

    Every method is idempotent: a workflow step that is run again after a crash must be harmless.
    Failures the user can fix raise `ProvisioningError` with a message saying what to fix.
    """

    def prepare(self, env: Environment, progress: "Progress") -> Mapping[str, str]:
        """Directories/resources, metadata database, secrets, ports. Returns the MWAA members
        the platform's resources give the environment (e.g. CeleryExecutorQueue), to record."""

    def build_runtime(self, env: Environment, progress: "Progress") -> None:
        """Airflow of the right version plus the environment's requirements."""

    def preflight(self, env: Environment, progress: "Progress") -> None:
        """Check a new configuration without touching the running environment."""

    def start(self, env: Environment, progress: "Progress") -> None: ...

    def replace(self, env: Environment, strategy: str, progress: "Progress") -> None:
        """Move the running environment onto `env` (GRACEFUL: running tasks finish first),
        migrating its metadata database to `env`'s Airflow, forward or back."""

    def roll_back(self, env: Environment, progress: "Progress", *, failed: Environment) -> None:
        """Move the environment back onto `env`, its configuration before the update to `failed`
        failed; when that update changed the Airflow version, the metadata database goes back
        to `env`'s Airflow too, wherever the update got to."""

    def health(self, env: Environment) -> Health: ...

    def stop(self, env: Environment) -> None: ...

    def destroy(self, env: Environment) -> None:
        """Stop everything and delete the database and files; nothing may remain."""

    def webserver_hostname(self, env: Environment) -> str | None: ...


class Progress(Protocol):
    def __call__(self, message: str) -> None: ...


@dataclass(frozen=True)
class MetricPoint:
    environment: str
    name: str  # e.g. QueuedTasks, RunningTasks, WorkerCount, SchedulerHeartbeat, DAGParseTime
    value: float
    timestamp: float  # epoch seconds
    dimensions: dict[str, str] = field(default_factory=dict)
    unit: str = "None"


class Metrics(Protocol):
    """Environment metrics: CloudWatch `AmazonMWAA` on AWS, a local store locally."""

    def put(self, points: list[MetricPoint]) -> None: ...

    def query(self, environment: str, name: str, since: float, until: float | None = None) -> list[MetricPoint]:
        """Points of one metric of one environment in [since, until], oldest first."""

    def names(self, environment: str) -> list[str]: ...


# ---- Celery worker pool (autoscaling) ------------------------------------------------------------

WorkerState = Literal["active", "draining", "stopped"]


@dataclass(frozen=True)
class WorkerInfo:
    """One Celery worker of an environment, as the autoscaler sees it.

    active: consumes tasks. draining: told to stop consuming, finishing what it runs.
    stopped: gone (exited or crashed) but not yet released (forgotten) by the pool.
    """

    id: str
    busy_tasks: int
    state: WorkerState = "active"
    protected: bool = False
    started_at: float | None = None     # epoch seconds
    draining_since: float | None = None  # epoch seconds; set while state == "draining"


@dataclass(frozen=True)
class UpcomingRun:
    """The next scheduled run of an unpaused DAG, as Airflow's scheduler has it planned
    (`dag.next_dagrun_create_after`): when it will be created and how many tasks it can run at
    once (its task count, bounded by the DAG's `max_active_tasks`)."""

    dag_id: str
    due_at: float          # epoch seconds
    tasks: int

    @classmethod
    def of(cls, dag_id: str, due_at: float, task_count: int, max_active_tasks: int | None) -> "UpcomingRun":
        # A fan-out wider than max_active_tasks runs in waves of that size: the workers needed at once.
        limit = max_active_tasks if max_active_tasks and max_active_tasks > 0 else task_count
        return cls(dag_id, due_at, max(0, min(task_count, limit)))


class WorkerPool(Protocol):
    """The Celery workers of environments: ECS tasks on AWS, supervised processes locally.

    Scale-in never kills a running task: the autoscaler protects a busy worker, drains it (it
    stops consuming, its tasks run to the end) and releases it once it runs nothing. Every method
    is idempotent, because a tick may be repeated after a crash.
    """

    def workers(self, environment: str) -> list[WorkerInfo]: ...

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        """Tasks queued in the executor/broker and task instances running, as MWAA's
        `QueuedTasks`/`RunningTasks` metrics count them."""

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        """Scheduled runs of unpaused DAGs due before `until` (epoch seconds), from Airflow's
        metadata: the demand the autoscaler can see coming."""

    def scale_out(self, environment: str, count: int) -> list[str]:
        """Start `count` more workers; returns their ids."""

    def drain(self, environment: str, worker_id: str) -> None:
        """Stop the worker consuming new tasks; the tasks it runs go on to the end."""

    def resume(self, environment: str, worker_id: str) -> bool:
        """Take a draining worker back into service (Celery add_consumer): capacity without a
        start-up. False if this pool cannot (a new worker is started instead)."""

    def release(self, environment: str, worker_id: str, force: bool = False) -> bool:
        """Remove a drained worker that runs nothing (True once it is gone). With `force`, stop it
        even if it still runs tasks (only past the maximum drain time)."""

    def protect(self, environment: str, worker_id: str, on: bool) -> None:
        """Scale-in protection: while on, nothing but `release(force=True)` may stop the worker
        (ECS task scale-in protection on AWS)."""

    def tidy(self, environment: str) -> None:
        """After a run: forget what released workers left behind (ECS: the drain markers of
        stopped tasks)."""


class DecisionLog(Protocol):
    """Where autoscaler decisions (inputs, decision, reason) are kept for inspection and replay."""

    def record(self, event: dict[str, Any]) -> None: ...

    def recent(self, environment: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` decisions of one environment, newest first."""


def all_records(repository: EnvironmentRepository, page: int = 100) -> Iterator[EnvironmentRecord]:
    """Every stored environment, page by page (records deleted meanwhile are skipped)."""
    after: str | None = None
    while True:
        names = repository.list_names(page, after)
        if not names:
            return
        after = names[-1]
        for name in names:
            record = repository.get(name)
            if record is not None:
                yield record


# ---- the data plane (CLI and web login tokens, InvokeRestApi) -------------------------------------


@dataclass(frozen=True)
class AirflowTarget:
    """Where an environment's Airflow REST API is, for the control plane, and the keys to call it
    and sign its tokens with: token_key, jwt_secret (Airflow 3), admin_password (Airflow 2)."""

    base_url: str
    major: int
    keys: Mapping[str, str]


class AirflowTargets(Protocol):
    def target(self, record: EnvironmentRecord) -> AirflowTarget:
        """Raise ServiceUnavailable when the environment cannot be reached now."""


class RolePolicySource(Protocol):
    def role_policy(self) -> RolePolicy:
        """Access key id or principal ARN -> Airflow role, or -> {environment or "*": role}."""


class AirflowHttp(Protocol):
    def call(self, url: str, method: str, data: bytes | None, headers: dict[str, str],
             environment: str) -> tuple[int, Any]:
        """(status, decoded JSON or text); ServiceUnavailable when Airflow cannot be reached."""


class DataPlane(Protocol):
    """MWAA's operations that reach an environment's Airflow (core/data_plane.py)."""

    def create_cli_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]: ...

    def create_web_login_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]: ...

    def invoke_rest_api(self, record: EnvironmentRecord, request: "InvokeRestApiInput", caller: Caller) -> dict[str, Any]: ...
