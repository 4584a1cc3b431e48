"""What the WorkflowRepository keeps: workflows, their immutable versions, runs and task instances.

The engine (Airflow) is the source of truth for run and task states while a run is live; the
records keep what must outlive it (every version, the run index and the last state seen), so a
restart or an engine that is down loses no history.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel

FINAL_RUN_STATES = frozenset({"SUCCESS", "FAILED", "TIMEOUT", "STOPPED"})


class WorkflowRecord(BaseModel):
    workflow_id: str  # Name-suffix, the last part of the ARN
    name: str
    arn: str
    status: str = "READY"
    created_at: datetime
    modified_at: datetime
    tags: dict[str, str] = {}
    client_token: Optional[str] = None
    request_fingerprint: str = ""  # of the create request, for ClientToken replays
    encryption: Optional[dict[str, Any]] = None
    latest_version: str
    latest_number: int = 1
    revision_id: str
    last_fire: Optional[datetime] = None  # the newest schedule occurrence acted on
    # Copies of the latest version's, for ListWorkflows.
    description: Optional[str] = None
    trigger_mode: Optional[str] = None
    record_version: int = 0


class VersionRecord(BaseModel):
    workflow_id: str
    version: str
    number: int
    dag_id: str
    created_at: datetime
    modified_at: datetime
    definition_location: dict[str, Any]
    code_location: Optional[dict[str, Any]] = None
    code_ref: Optional[str] = None
    code_snapshotted_at: Optional[datetime] = None
    role_arn: str
    description: Optional[str] = None
    logging: Optional[dict[str, Any]] = None
    engine_version: Optional[int] = None
    network: Optional[dict[str, Any]] = None
    environment: Optional[dict[str, str]] = None
    trigger_mode: Optional[str] = None
    schedule: Optional[str] = None
    start_date: Optional[datetime] = None
    end_date: Optional[datetime] = None
    definition_text: str
    dag_yaml: str
    tasks: list[dict[str, str]] = []
    warnings: list[str] = []


class TaskRecord(BaseModel):
    task_id: str
    task_instance_id: str
    status: str = "NONE"
    operator: Optional[str] = None
    attempt: int = 0
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    duration: Optional[int] = None
    error: Optional[str] = None
    xcom: Optional[dict[str, str]] = None
    log_stream: Optional[str] = None
    modified_at: Optional[datetime] = None


class RunRecord(BaseModel):
    run_id: str
    run_uuid: str
    workflow_id: str
    version: str
    dag_id: str
    run_type: str = "ON_DEMAND"
    override_parameters: Optional[dict[str, Any]] = None
    client_token: Optional[str] = None
    request_fingerprint: str = ""
    status: str = "STARTING"
    created_at: datetime
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    modified_at: datetime
    error: Optional[str] = None
    stop_requested: bool = False
    triggered: bool = False
    tasks: list[TaskRecord] = []
    record_version: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_RUN_STATES
