"""The ports of MWAA Serverless: storage of records, sources in buckets, the Airflow engine.

Each has a local adapter (`airdock.local.serverless`) and an AWS one (`airdock.aws.serverless`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from airdock.core.serverless.records import RunRecord, VersionRecord, WorkflowRecord


class WorkflowRepository(Protocol):
    """Workflows, versions and runs. Writes of a record name the `record_version` they read and
    raise ConcurrentModification when it changed; creates raise AlreadyExists on a taken key."""

    def create_workflow(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        """Store a new workflow with its first version (the name must be free)."""

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

    def find_workflow(self, *, name: str | None = None, client_token: str | None = None) -> WorkflowRecord | None: ...

    def list_workflows(self, limit: int, after: str | None = None) -> list[WorkflowRecord]:
        """Up to `limit` workflows by name, strictly after the name `after`."""

    def count_workflows(self) -> int: ...

    def put_workflow(self, workflow: WorkflowRecord) -> WorkflowRecord: ...

    def add_version(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        """Write the workflow (conditionally) and its new version in one step."""

    def get_version(self, workflow_id: str, version: str) -> VersionRecord | None: ...

    def list_versions(self, workflow_id: str, limit: int, before: int | None = None) -> list[VersionRecord]:
        """Newest first: up to `limit` versions whose number is below `before`."""

    def delete_version(self, workflow_id: str, version: str) -> None: ...

    def delete_workflow(self, workflow_id: str) -> None:
        """The workflow, every version and every run (idempotent)."""

    def create_run(self, run: RunRecord) -> RunRecord:
        """Store a new run; AlreadyExists if its ClientToken was used for this workflow."""

    def get_run(self, workflow_id: str, run_id: str) -> RunRecord | None: ...

    def find_run(self, workflow_id: str, client_token: str) -> RunRecord | None: ...

    def put_run(self, run: RunRecord) -> RunRecord: ...

    def list_runs(self, workflow_id: str, limit: int, after: tuple[str, str] | None = None,
                  version: str | None = None) -> list[RunRecord]:
        """Newest first, ordered by (created_at, run_id) descending, strictly after `after`."""

    def active_runs(self, workflow_id: str | None = None) -> list[RunRecord]:
        """Runs not in a final state (of one workflow, or of all)."""

    def delete_runs(self, workflow_id: str, version: str | None = None) -> None: ...


class SourceError(Exception):
    """A definition or code object cannot be used (missing, too large, not a valid archive);
    the message says which and why."""


class Sources(Protocol):
    """The user's buckets (S3, or folders locally) and Airdock's snapshots of what it read."""

    def read_definition(self, bucket: str, key: str, version_id: str | None, limit: int) -> bytes: ...

    def snapshot_code(self, bucket: str, key: str, version_id: str | None, workflow_id: str, version: str) -> str:
        """Copy the code object (checked: .py, .sh or a safe .zip within the size limits) into
        Airdock's own storage; returns the reference the engine deploys from."""

    def delete_snapshots(self, workflow_id: str, version: str | None = None) -> None: ...


@dataclass(frozen=True)
class Deployment:
    """One workflow version as the engine runs it."""

    dag_id: str
    workflow_id: str
    workflow_arn: str
    version: str
    dag_yaml: str
    code_ref: str | None
    environment: dict[str, str]
    role_arn: str
    network: dict[str, Any] | None = None
    log_group: str | None = None


@dataclass
class EngineTask:
    task_id: str
    state: str | None  # Airflow's task instance state (None: not scheduled yet)
    try_number: int
    operator: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None


@dataclass
class EngineRun:
    state: str  # Airflow's dag run state: queued, running, success, failed
    started_at: datetime | None
    ended_at: datetime | None
    tasks: list[EngineTask] = field(default_factory=list)


class Engine(Protocol):
    """The one Airflow 3 installation every workflow version runs in (each version a DAG)."""

    def check_definition(self, dag_yaml: str, dag_id: str, code_ref: str | None,
                         environment: dict[str, str]) -> list[str]:
        """Build the DAG with dag-factory in a throw-away process; returns its operators' class
        names by task (`task_id=operator`). Raises DefinitionError with what dag-factory said."""

    def deploy(self, deployment: Deployment) -> None:
        """Make the version runnable (idempotent); the engine starts on the first one."""

    def undeploy(self, dag_id: str, workflow_id: str, version: str) -> None:
        """Remove the version's DAG and its history from the engine (idempotent)."""

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        """Start a DAG run; EngineUnavailable if the engine or the DAG is not ready yet."""

    def stop(self, dag_id: str, run_id: str) -> None:
        """Fail the run: no new tasks start, running ones are killed."""

    def observe(self, dag_id: str, run_id: str) -> EngineRun | None:
        """The run and its task instances, or None if the engine does not know it."""

    def task_error(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
        """The exception that failed this attempt (from its log), if any."""

    def task_xcom(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str]: ...

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        """The attempt's log as events {timestamp, level, message}."""

    def log_stream(self, workflow_id: str, run_id: str, task_id: str, try_number: int) -> str: ...


class UiSessions(Protocol):
    """Sign-in links to the engine's Airflow UI, restricted to some DAGs."""

    def create_url(self, principal: str, source_ip: str | None, dag_ids: list[str], expires_in_s: int,
                   session_s: int) -> tuple[str, str]:
        """A one-time URL and its session id."""
