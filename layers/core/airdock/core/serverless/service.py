"""WorkflowService: the 16 MWAA Serverless operations, plus the reconcile step that fires
schedules, hands STARTING runs to the engine and follows live runs.

Every operation authorizes the caller first (`airflow-serverless:<Operation>` on the workflow's
ARN), then checks, then writes. Responses are the wire shapes (timestamps ISO-8601).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import yaml

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.ports import Caller, Clock, Events
from airdock.core.serverless import identifiers as ids
from airdock.core.serverless.access import WorkflowAccess
from airdock.core.serverless.definition import MAX_DEFINITION_BYTES, DefinitionError, check_definition
from airdock.core.serverless.errors import (ConflictError, DefinitionRejected, EngineUnavailable, NotFoundError,
                                            QuotaExceededError, ServerlessValidationError, field_error)
from airdock.core.serverless.models import (CreateAirflowUiUrlRequest, CreateWorkflowRequest, StartWorkflowRunRequest,
                                            UpdateWorkflowRequest, _WorkflowConfig)
from airdock.core.serverless.ports import Deployment, Engine, EngineRun, Sources, SourceError, UiSessions, WorkflowRepository
from airdock.core.serverless.records import RunRecord, TaskRecord, VersionRecord, WorkflowRecord
from airdock.core.serverless.schedule import parse_schedule
from airdock.core.serverless.settings import ServerlessSettings

log = logging.getLogger("airdock.serverless")

WORKFLOW = "Workflow"
VERSION = "WorkflowVersion"
RUN = "WorkflowRun"
TASK = "TaskInstance"
EVENT_SOURCE = "aws.airflow-serverless"
DEFAULT_PAGE = 100
# The engine's task states → the model's TaskInstanceStatus (it has no SKIPPED: a task a stopped
# or failed run never ran is CANCELLED).
TASK_STATES = {
    None: "NONE", "none": "NONE", "scheduled": "SCHEDULED", "queued": "QUEUED", "running": "RUNNING",
    "success": "SUCCESS", "failed": "FAILED", "up_for_retry": "UP_FOR_RETRY", "up_for_reschedule": "UP_FOR_RESCHEDULE",
    "upstream_failed": "UPSTREAM_FAILED", "removed": "REMOVED", "restarting": "RESTARTING", "deferred": "DEFERRED",
    "skipped": "CANCELLED",
}
_RESERVED_ENV = ("AWS_", "AIRFLOW__")
_ALLOWED_RESERVED_ENV = re.compile(r"AIRFLOW__WORKERS__SECRETS_BACKEND(_KWARGS|_KWARG__.+)?")
_LOG_GROUP = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")
_TIMEOUT_ERRORS = ("AirflowTaskTimeout", "TaskTimeout")
MANUAL_TRIGGER_MODES = frozenset({"manual_only", "manual", "on_demand"})
DISABLED_TRIGGER_MODES = frozenset({"disabled"})


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _clean(shape: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shape.items() if v is not None}


def _fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _encode_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode_token(token: str | None) -> Any:
    if token is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise field_error("NextToken", "the token is not one this service returned") from None


def _token_of(value: Any, kind: type | tuple[type, ...]) -> Any:
    if value is not None and not isinstance(value, kind):
        raise field_error("NextToken", "the token is not one this service returned")
    return value


class WorkflowService:
    def __init__(self, *, repository: WorkflowRepository, sources: Sources, engine: Engine, events: Events,
                 clock: Clock, scope: ids.Scope, settings: ServerlessSettings, access: WorkflowAccess,
                 ui: UiSessions | None = None) -> None:
        self.repository = repository
        self.sources = sources
        self.engine = engine
        self.events = events
        self.clock = clock
        self.scope = scope
        self.settings = settings
        self.access = access
        self.ui = ui

    # ---- workflows -------------------------------------------------------------------------------

    def create_workflow(self, request: CreateWorkflowRequest, caller: Caller) -> dict[str, Any]:
        fingerprint = _fingerprint(request.model_dump(exclude={"ClientToken"}))
        if request.ClientToken is not None:
            existing = self.repository.find_workflow(client_token=request.ClientToken)
            if existing is not None:
                self.access.authorize(caller, "CreateWorkflow", existing.arn)
                if existing.request_fingerprint != fingerprint:
                    raise ConflictError(f"ClientToken {request.ClientToken} was used for a different CreateWorkflow "
                                        "request.", existing.workflow_id, WORKFLOW)
                version = self.repository.get_version(existing.workflow_id, existing.latest_version)
                return self._created(existing, version)
        workflow_id = f"{request.Name}-{ids.new_suffix()}"
        arn = self.scope.workflow_arn(workflow_id)
        self.access.authorize(caller, "CreateWorkflow", arn)
        if request.EncryptionConfiguration is not None:
            encryption = request.EncryptionConfiguration
            if encryption.Type == "CUSTOMER_MANAGED_KEY" and not encryption.KmsKeyId:
                raise field_error("EncryptionConfiguration.KmsKeyId", "CUSTOMER_MANAGED_KEY needs a KmsKeyId")
        taken = self.repository.find_workflow(name=request.Name)
        if taken is not None:
            raise ConflictError(f"A workflow named {request.Name} already exists.", taken.workflow_id, WORKFLOW)
        if self.repository.count_workflows() >= self.settings.max_workflows:
            raise QuotaExceededError(f"An account can have at most {self.settings.max_workflows} workflows.",
                                     workflow_id, WORKFLOW, "WorkflowsPerAccount")
        now = self.clock.now()
        version = self._build_version(workflow_id, request, 1, now)
        workflow = WorkflowRecord(
            workflow_id=workflow_id, name=request.Name, arn=arn, created_at=now, modified_at=now,
            tags=dict(request.Tags or {}), client_token=request.ClientToken, request_fingerprint=fingerprint,
            encryption=request.EncryptionConfiguration.model_dump(exclude_none=True)
            if request.EncryptionConfiguration else None,
            latest_version=version.version, latest_number=1, revision_id=ids.new_revision_id(),
            description=version.description, trigger_mode=version.trigger_mode)
        try:
            workflow = self.repository.create_workflow(workflow, version)
        except AlreadyExists:
            self.sources.delete_snapshots(workflow_id, version.version)
            taken = self.repository.find_workflow(name=request.Name)
            raise ConflictError(f"A workflow named {request.Name} already exists.",
                                taken.workflow_id if taken else workflow_id, WORKFLOW) from None
        self._deploy(workflow, version)
        return self._created(workflow, version)

    def _created(self, workflow: WorkflowRecord, version: VersionRecord | None) -> dict[str, Any]:
        return _clean({"WorkflowArn": workflow.arn, "CreatedAt": ts(workflow.created_at),
                       "RevisionId": workflow.revision_id, "WorkflowStatus": workflow.status,
                       "WorkflowVersion": workflow.latest_version, "IsLatestVersion": True,
                       "Warnings": version.warnings if version else []})

    def update_workflow(self, request: UpdateWorkflowRequest, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(request.WorkflowArn, caller, "UpdateWorkflow")
        if workflow.status != "READY":
            raise ConflictError(f"Workflow {workflow.workflow_id} is {workflow.status}.", workflow.workflow_id, WORKFLOW)
        count = len(self.repository.list_versions(workflow.workflow_id, self.settings.max_versions + 1))
        if count >= self.settings.max_versions:
            raise QuotaExceededError(f"A workflow can have at most {self.settings.max_versions} versions.",
                                     workflow.workflow_id, WORKFLOW, "VersionsPerWorkflow")
        now = self.clock.now()
        version = self._build_version(workflow.workflow_id, request, workflow.latest_number + 1, now)
        updated = workflow.model_copy(update={
            "latest_version": version.version, "latest_number": version.number, "modified_at": now,
            "revision_id": ids.new_revision_id(), "description": version.description,
            "trigger_mode": version.trigger_mode})
        try:
            updated = self.repository.add_version(updated, version)
        except ConcurrentModification:
            self.sources.delete_snapshots(workflow.workflow_id, version.version)
            raise ConflictError(f"Workflow {workflow.workflow_id} changed during the update; try again.",
                                workflow.workflow_id, WORKFLOW) from None
        self._deploy(updated, version)
        return _clean({"WorkflowArn": updated.arn, "ModifiedAt": ts(now), "WorkflowVersion": version.version,
                       "Warnings": version.warnings})

    def _check_config(self, config: _WorkflowConfig) -> None:
        variables = (config.Environment.Variables if config.Environment else None) or {}
        for key in variables:
            if key.startswith(_RESERVED_ENV) and not _ALLOWED_RESERVED_ENV.fullmatch(key):
                raise field_error("Environment.Variables", f"{key}: the prefixes AWS_ and AIRFLOW__ are reserved "
                                  "(except AIRFLOW__WORKERS__SECRETS_BACKEND and its _KWARGS)")
        if config.EngineVersion is not None and config.EngineVersion != 1:
            raise field_error("EngineVersion", f"{config.EngineVersion} is not a supported engine version (1 is)")
        if config.LoggingConfiguration is not None and not _LOG_GROUP.fullmatch(config.LoggingConfiguration.LogGroupName):
            raise field_error("LoggingConfiguration.LogGroupName",
                              "must be 1 to 512 characters of letters, digits, '.', '-', '_', '/' and '#'")

    def _build_version(self, workflow_id: str, config: _WorkflowConfig, number: int, now: datetime) -> VersionRecord:
        """Read, check and snapshot a new version's definition and code (nothing is stored yet)."""
        self._check_config(config)
        location = config.DefinitionS3Location
        try:
            text = self.sources.read_definition(location.Bucket, location.ObjectKey, location.VersionId,
                                                MAX_DEFINITION_BYTES + 1)
        except SourceError as exc:
            raise field_error("DefinitionS3Location", str(exc)) from None
        try:
            checked = check_definition(text, now=now)
        except DefinitionError as exc:
            raise field_error("DefinitionS3Location", f"the workflow definition is invalid: {exc}") from None
        version_id = ids.new_version_id()
        dag_id = ids.dag_id(workflow_id, version_id)
        environment = dict((config.Environment.Variables if config.Environment else None) or {})
        code_ref = None
        snapshotted = None
        if config.Code is not None and config.Code.S3Location is not None:
            code = config.Code.S3Location
            try:
                code_ref = self.sources.snapshot_code(code.Bucket, code.ObjectKey, code.VersionId, workflow_id, version_id)
            except SourceError as exc:
                raise field_error("Code.S3Location", str(exc)) from None
            snapshotted = self.clock.now()
        dag_yaml = yaml.safe_dump(checked.for_dag(dag_id, config.Description), sort_keys=False)
        try:
            self.engine.check_definition(dag_yaml, dag_id, code_ref, environment)
        except DefinitionError as exc:
            self.sources.delete_snapshots(workflow_id, version_id)
            raise field_error("DefinitionS3Location", f"the workflow definition does not load: {exc}") from None
        except BaseException:
            self.sources.delete_snapshots(workflow_id, version_id)
            raise
        return VersionRecord(
            workflow_id=workflow_id, version=version_id, number=number, dag_id=dag_id, created_at=now,
            modified_at=now, definition_location=location.model_dump(exclude_none=True),
            code_location=config.Code.S3Location.model_dump(exclude_none=True) if config.Code and config.Code.S3Location else None,
            code_ref=code_ref, code_snapshotted_at=snapshotted, role_arn=config.RoleArn, description=config.Description,
            logging=config.LoggingConfiguration.model_dump() if config.LoggingConfiguration else None,
            engine_version=config.EngineVersion,
            network=config.NetworkConfiguration.model_dump(exclude_none=True) if config.NetworkConfiguration else None,
            environment=environment or None, trigger_mode=config.TriggerMode,
            schedule=checked.schedule_expression, start_date=checked.start_date, end_date=checked.end_date,
            definition_text=text.decode("utf-8"), dag_yaml=dag_yaml,
            tasks=[{"task_id": t.task_id, "operator": t.operator} for t in checked.tasks], warnings=checked.warnings)

    def deployment(self, workflow: WorkflowRecord, version: VersionRecord) -> Deployment:
        return Deployment(dag_id=version.dag_id, workflow_id=workflow.workflow_id, workflow_arn=workflow.arn,
                          version=version.version, dag_yaml=version.dag_yaml, code_ref=version.code_ref,
                          environment=dict(version.environment or {}), role_arn=version.role_arn,
                          network=version.network, log_group=self.log_group(workflow, version))

    def _deploy(self, workflow: WorkflowRecord, version: VersionRecord) -> None:
        try:
            self.engine.deploy(self.deployment(workflow, version))
        except EngineUnavailable as exc:  # the reconcile step deploys it again
            log.warning("deploying %s later: %s", version.dag_id, exc)

    def redeploy_all(self) -> int:
        """Deploy every version again (idempotent): after a restart or a lost engine."""
        count = 0
        for workflow in self._all_workflows():
            if workflow.status != "READY":
                continue
            before = None
            while True:
                versions = self.repository.list_versions(workflow.workflow_id, DEFAULT_PAGE, before)
                if not versions:
                    break
                for version in versions:
                    self._deploy(workflow, version)
                    count += 1
                before = versions[-1].number
        return count

    def log_group(self, workflow: WorkflowRecord, version: VersionRecord) -> str:
        if version.logging and version.logging.get("LogGroupName"):
            return str(version.logging["LogGroupName"])
        return f"/aws/mwaa-serverless/{workflow.workflow_id}/"

    def get_workflow(self, arn: str, version_id: str | None, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "GetWorkflow")
        version = self._version(workflow, version_id or workflow.latest_version)
        definition = version.definition_text
        return _clean({
            "WorkflowArn": workflow.arn, "WorkflowVersion": version.version, "Name": workflow.name,
            "Description": version.description, "CreatedAt": ts(workflow.created_at), "ModifiedAt": ts(version.modified_at),
            "EncryptionConfiguration": workflow.encryption or {"Type": "AWS_MANAGED_KEY"},
            "LoggingConfiguration": {"LogGroupName": self.log_group(workflow, version)},
            "EngineVersion": version.engine_version if version.engine_version is not None else 1,
            "WorkflowStatus": workflow.status, "DefinitionS3Location": version.definition_location,
            "Code": {"S3Location": version.code_location} if version.code_location else None,
            "CodeSnapshottedAt": ts(version.code_snapshotted_at),
            "ScheduleConfiguration": {"CronExpression": version.schedule} if version.schedule else None,
            "RoleArn": version.role_arn, "NetworkConfiguration": version.network,
            "Environment": {"Variables": version.environment} if version.environment else None,
            "TriggerMode": version.trigger_mode,
            # The model caps WorkflowDefinition at 255 characters, definitions at 50 KB.
            "WorkflowDefinition": definition if len(definition) <= 255 else definition[:252] + "...",
        })

    def list_workflows(self, max_results: int | None, next_token: str | None, caller: Caller) -> dict[str, Any]:
        self.access.authorize(caller, "ListWorkflows", "*")
        after = _token_of(_decode_token(next_token), str)
        limit = max_results or DEFAULT_PAGE
        page = self.repository.list_workflows(limit + 1, after)
        items = [_clean({"WorkflowArn": w.arn, "WorkflowVersion": w.latest_version, "Name": w.name,
                         "Description": w.description, "CreatedAt": ts(w.created_at), "ModifiedAt": ts(w.modified_at),
                         "WorkflowStatus": w.status, "TriggerMode": w.trigger_mode}) for w in page[:limit]]
        return _clean({"Workflows": items, "NextToken": _encode_token(page[limit - 1].name) if len(page) > limit else None})

    def list_workflow_versions(self, arn: str, max_results: int | None, next_token: str | None,
                               caller: Caller) -> dict[str, Any]:
        self.access.authorize(caller, "ListWorkflowVersions", arn)
        before = _token_of(_decode_token(next_token), int)
        workflow_id = self.scope.workflow_id(arn)
        workflow = self.repository.get_workflow(workflow_id) if workflow_id else None
        if workflow is None:
            return {"WorkflowVersions": []}
        limit = max_results or DEFAULT_PAGE
        page = self.repository.list_versions(workflow.workflow_id, limit + 1, before)
        items = [_clean({"WorkflowVersion": v.version, "WorkflowArn": workflow.arn,
                         "IsLatestVersion": v.version == workflow.latest_version, "CreatedAt": ts(v.created_at),
                         "ModifiedAt": ts(v.modified_at), "DefinitionS3Location": v.definition_location,
                         "ScheduleConfiguration": {"CronExpression": v.schedule} if v.schedule else None,
                         "TriggerMode": v.trigger_mode}) for v in page[:limit]]
        return _clean({"WorkflowVersions": items,
                       "NextToken": _encode_token(page[limit - 1].number) if len(page) > limit else None})

    def delete_workflow(self, arn: str, version_id: str | None, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "DeleteWorkflow")
        if version_id is not None:
            version = self._version(workflow, version_id)
            if len(self.repository.list_versions(workflow.workflow_id, 2)) > 1:
                self._delete_version(workflow, version)
                return {"WorkflowArn": workflow.arn, "WorkflowVersion": version.version}
        if workflow.status != "DELETING":
            workflow = self._save_workflow(workflow, status="DELETING", modified_at=self.clock.now())
        self.finish_delete(workflow)
        return _clean({"WorkflowArn": workflow.arn, "WorkflowVersion": version_id})

    def _delete_version(self, workflow: WorkflowRecord, version: VersionRecord) -> None:
        for run in self.repository.active_runs(workflow.workflow_id):
            if run.version == version.version:
                self._stop_in_engine(run)
        self.engine.undeploy(version.dag_id, workflow.workflow_id, version.version)
        self.repository.delete_runs(workflow.workflow_id, version.version)
        self.repository.delete_version(workflow.workflow_id, version.version)
        self.sources.delete_snapshots(workflow.workflow_id, version.version)
        if version.version == workflow.latest_version:
            newest = self.repository.list_versions(workflow.workflow_id, 1)[0]
            self._save_workflow(workflow, latest_version=newest.version, latest_number=newest.number,
                                revision_id=ids.new_revision_id(), description=newest.description,
                                trigger_mode=newest.trigger_mode, modified_at=self.clock.now())

    def finish_delete(self, workflow: WorkflowRecord) -> None:
        """Stop its runs, remove every version from the engine, purge history (idempotent; a
        delete interrupted by a crash is finished by the next reconcile)."""
        for run in self.repository.active_runs(workflow.workflow_id):
            self._stop_in_engine(run)
        while True:
            versions = self.repository.list_versions(workflow.workflow_id, DEFAULT_PAGE)
            if not versions:
                break
            for version in versions:
                self.engine.undeploy(version.dag_id, workflow.workflow_id, version.version)
                self.repository.delete_runs(workflow.workflow_id, version.version)
                self.repository.delete_version(workflow.workflow_id, version.version)
        self.sources.delete_snapshots(workflow.workflow_id)
        self.repository.delete_workflow(workflow.workflow_id)

    def _stop_in_engine(self, run: RunRecord) -> None:
        if run.triggered:
            try:
                self.engine.stop(run.dag_id, run.run_id)
            except EngineUnavailable:
                pass

    # ---- tags ------------------------------------------------------------------------------------

    def tag_resource(self, arn: str, tags: dict[str, str], caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "TagResource")
        merged = {**workflow.tags, **tags}
        if len(merged) > 50:
            raise field_error("Tags", f"a workflow can have at most 50 tags; this would make {len(merged)}")
        self._save_workflow(workflow, tags=merged)
        return {}

    def untag_resource(self, arn: str, keys: list[str], caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "UntagResource")
        self._save_workflow(workflow, tags={k: v for k, v in workflow.tags.items() if k not in set(keys)})
        return {}

    def list_tags_for_resource(self, arn: str, caller: Caller) -> dict[str, Any]:
        return {"Tags": dict(self._workflow(arn, caller, "ListTagsForResource").tags)}

    # ---- runs ------------------------------------------------------------------------------------

    def start_workflow_run(self, request: StartWorkflowRunRequest, caller: Caller,
                           run_type: str = "ON_DEMAND") -> dict[str, Any]:
        workflow = self._workflow(request.WorkflowArn, caller, "StartWorkflowRun")
        run = self._start(workflow, request.WorkflowVersion, request.OverrideParameters, request.ClientToken, run_type)
        return _clean({"RunId": run.run_id, "Status": run.status, "StartedAt": ts(run.created_at)})

    def _start(self, workflow: WorkflowRecord, version_id: str | None, overrides: dict[str, Any] | None,
               client_token: str | None, run_type: str) -> RunRecord:
        if workflow.status != "READY":
            raise ConflictError(f"Workflow {workflow.workflow_id} is {workflow.status}.", workflow.workflow_id, WORKFLOW)
        version = self._version(workflow, version_id or workflow.latest_version)
        if (version.trigger_mode or "").lower() in DISABLED_TRIGGER_MODES:
            raise ConflictError(f"Workflow {workflow.workflow_id} version {version.version} is disabled "
                                f"(TriggerMode {version.trigger_mode}).", workflow.workflow_id, WORKFLOW)
        fingerprint = _fingerprint({"version": version_id, "overrides": overrides})
        if client_token is not None:
            existing = self.repository.find_run(workflow.workflow_id, client_token)
            if existing is not None:
                if existing.request_fingerprint != fingerprint:
                    raise ConflictError(f"ClientToken {client_token} was used for a different StartWorkflowRun "
                                        "request.", existing.run_id, RUN)
                return existing
        active = self.repository.active_runs()
        if len(active) >= self.settings.max_concurrent_runs:
            raise QuotaExceededError(f"At most {self.settings.max_concurrent_runs} workflow runs may be active at "
                                     "once in an account.", workflow.workflow_id, WORKFLOW, "ConcurrentRunsPerAccount")
        if sum(1 for r in active if r.workflow_id == workflow.workflow_id) >= self.settings.max_runs_per_workflow:
            raise QuotaExceededError(f"At most {self.settings.max_runs_per_workflow} runs of a workflow may be active "
                                     "at once.", workflow.workflow_id, WORKFLOW, "ConcurrentRunsPerWorkflow")
        now = self.clock.now()
        run = RunRecord(run_id=ids.new_run_id(), run_uuid=str(uuid.uuid4()), workflow_id=workflow.workflow_id,
                        version=version.version, dag_id=version.dag_id, run_type=run_type,
                        override_parameters=overrides, client_token=client_token, request_fingerprint=fingerprint,
                        created_at=now, modified_at=now,
                        tasks=[TaskRecord(task_id=t["task_id"], operator=t["operator"].rsplit(".", 1)[-1],
                                          task_instance_id="")
                               for t in version.tasks])
        for task in run.tasks:
            task.task_instance_id = ids.task_instance_id(run.run_uuid, task.task_id)
        try:
            run = self.repository.create_run(run)
        except AlreadyExists:  # the same ClientToken raced in
            existing = self.repository.find_run(workflow.workflow_id, client_token or "")
            if existing is None:
                raise
            return existing
        self._run_event(workflow, run, None)
        return self._trigger(workflow, run)

    def _trigger(self, workflow: WorkflowRecord, run: RunRecord) -> RunRecord:
        try:
            self.engine.trigger(run.dag_id, run.run_id, dict(run.override_parameters or {}))
        except EngineUnavailable as exc:
            log.debug("run %s of %s waits for the engine: %s", run.run_id, run.dag_id, exc)
            return run
        except DefinitionRejected as exc:
            now, error = self.clock.now(), f"Workflow definition failed to load: {exc}"[:255]
            return self._update_run(workflow, run, lambda r: r if r.final else r.model_copy(update={
                "status": "FAILED", "ended_at": now, "error": error}))
        return self._update_run(workflow, run, lambda r: r.model_copy(update={
            "triggered": True, "status": "QUEUED" if r.status == "STARTING" else r.status}))

    def stop_workflow_run(self, arn: str, run_id: str, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "StopWorkflowRun")
        run = self._run(workflow, run_id)
        if not run.final:
            if run.triggered:
                self._stop_in_engine(run)
                run = self._update_run(workflow, run, lambda r: r if r.final else r.model_copy(
                    update={"stop_requested": True, "status": "STOPPING"}))
            else:
                now = self.clock.now()
                run = self._update_run(workflow, run, lambda r: r if r.final else r.model_copy(
                    update={"stop_requested": True, "status": "STOPPED", "ended_at": now,
                            "error": "The run was stopped before it started."}))
        return _clean({"WorkflowArn": workflow.arn, "WorkflowVersion": run.version, "RunId": run.run_id,
                       "Status": run.status})

    def get_workflow_run(self, arn: str, run_id: str, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "GetWorkflowRun")
        run = self.refresh_run(workflow, self._run(workflow, run_id))
        duration = None
        if run.started_at is not None:
            duration = int(((run.ended_at or self.clock.now()) - run.started_at).total_seconds())
        detail = _clean({
            "WorkflowArn": workflow.arn, "WorkflowVersion": run.version, "RunId": run.run_id, "RunType": run.run_type,
            "StartedOn": ts(run.started_at), "CreatedAt": ts(run.created_at), "CompletedOn": ts(run.ended_at),
            "ModifiedAt": ts(run.modified_at), "Duration": duration, "ErrorMessage": run.error,
            "TaskInstances": [t.task_instance_id for t in run.tasks], "RunState": run.status})
        return _clean({"WorkflowArn": workflow.arn, "WorkflowVersion": run.version, "RunId": run.run_id,
                       "RunType": run.run_type, "OverrideParameters": run.override_parameters, "RunDetail": detail})

    def list_workflow_runs(self, arn: str, version: str | None, max_results: int | None, next_token: str | None,
                           caller: Caller) -> dict[str, Any]:
        self.access.authorize(caller, "ListWorkflowRuns", arn)
        after = _token_of(_decode_token(next_token), list)
        workflow_id = self.scope.workflow_id(arn)
        workflow = self.repository.get_workflow(workflow_id) if workflow_id else None
        if workflow is None:
            return {"WorkflowRuns": []}
        limit = max_results or DEFAULT_PAGE
        page = self.repository.list_runs(workflow.workflow_id, limit + 1, tuple(after) if after else None, version)
        items = [_clean({"RunId": r.run_id, "WorkflowArn": workflow.arn, "WorkflowVersion": r.version,
                         "RunType": r.run_type, "RunDetailSummary": _clean({
                             "Status": r.status, "CreatedOn": ts(r.created_at), "StartedAt": ts(r.started_at),
                             "EndedAt": ts(r.ended_at)})}) for r in page[:limit]]
        last = page[limit - 1] if len(page) > limit else None
        return _clean({"WorkflowRuns": items,
                       "NextToken": _encode_token([ts(last.created_at), last.run_id]) if last else None})

    def list_task_instances(self, arn: str, run_id: str, max_results: int | None, next_token: str | None,
                            caller: Caller) -> dict[str, Any]:
        self.access.authorize(caller, "ListTaskInstances", arn)
        start = _token_of(_decode_token(next_token), int) or 0
        workflow_id = self.scope.workflow_id(arn)
        workflow = self.repository.get_workflow(workflow_id) if workflow_id else None
        run = self.repository.get_run(workflow.workflow_id, run_id) if workflow else None
        if workflow is None or run is None:
            return {"TaskInstances": []}
        run = self.refresh_run(workflow, run)
        limit = max_results or DEFAULT_PAGE
        page = run.tasks[start:start + limit]
        items = [_clean({"WorkflowArn": workflow.arn, "WorkflowVersion": run.version, "RunId": run.run_id,
                         "TaskInstanceId": t.task_instance_id, "Status": t.status, "DurationInSeconds": t.duration,
                         "OperatorName": t.operator}) for t in page]
        more = start + limit < len(run.tasks)
        return _clean({"TaskInstances": items, "NextToken": _encode_token(start + limit) if more else None})

    def get_task_instance(self, arn: str, run_id: str, task_instance_id: str, caller: Caller) -> dict[str, Any]:
        workflow = self._workflow(arn, caller, "GetTaskInstance")
        run = self.refresh_run(workflow, self._run(workflow, run_id))
        task = next((t for t in run.tasks if t.task_instance_id == task_instance_id), None)
        if task is None:
            raise NotFoundError(f"Task instance {task_instance_id} of run {run_id} does not exist.",
                                task_instance_id, TASK)
        xcom = task.xcom
        if xcom is None and run.triggered and task.status in ("SUCCESS", "FAILED", "RUNNING", "UP_FOR_RETRY"):
            try:
                xcom = self.engine.task_xcom(run.dag_id, run.run_id, task.task_id)
            except EngineUnavailable:
                xcom = None
            if xcom is not None and task.status in ("SUCCESS", "FAILED"):
                run = self._update_run(workflow, run, lambda r: _with_task(r, task.task_id, xcom=xcom))
        return _clean({
            "WorkflowArn": workflow.arn, "RunId": run.run_id, "TaskInstanceId": task.task_instance_id,
            "WorkflowVersion": run.version, "Status": task.status, "DurationInSeconds": task.duration,
            "OperatorName": task.operator, "ModifiedAt": ts(task.modified_at or run.modified_at),
            "StartedAt": ts(task.started_at), "EndedAt": ts(task.ended_at), "AttemptNumber": task.attempt,
            "ErrorMessage": task.error, "TaskId": task.task_id, "LogStream": task.log_stream, "Xcom": xcom})

    def task_log(self, arn: str, run_id: str, task_id: str, attempt: int | None, caller: Caller) -> dict[str, Any]:
        """One attempt's log (Airdock's extension; what CloudWatch's LogStream holds on AWS),
        authorized as GetTaskInstance."""
        workflow = self._workflow(arn, caller, "GetTaskInstance")
        run = self._run(workflow, run_id)
        task = next((t for t in run.tasks if t.task_id == task_id or t.task_instance_id == task_id), None)
        if task is None:
            raise NotFoundError(f"Task {task_id} of run {run_id} does not exist.", task_id, TASK)
        attempt = attempt or max(task.attempt, 1)
        try:
            events = self.engine.task_log(run.dag_id, run.run_id, task.task_id, attempt)
        except EngineUnavailable:
            events = []
        return {"LogGroup": self.log_group(workflow, self._version(workflow, run.version)),
                "LogStream": self.engine.log_stream(workflow.workflow_id, run.run_id, task.task_id, attempt),
                "TaskId": task.task_id, "AttemptNumber": attempt, "Events": events}

    # ---- the Airflow UI --------------------------------------------------------------------------

    def create_airflow_ui_url(self, request: CreateAirflowUiUrlRequest, caller: Caller,
                              source_ip: str | None) -> dict[str, Any]:
        self.access.authorize(caller, "CreateAirflowUiUrl", "*")
        if self.ui is None:
            raise ConflictError("The Airflow UI is not available in this deployment.", "airflow-ui", "AirflowUi")
        dag_ids: list[str] = []
        for workflow in self._all_workflows():
            if workflow.status == "READY" and self.access.allows(caller, "GetWorkflow", workflow.arn):
                dag_ids += [v.dag_id for v in self.repository.list_versions(workflow.workflow_id, DEFAULT_PAGE)]
        expires = request.ExpiresInSeconds or 300
        session = request.SessionDurationInSeconds or 43200
        url, session_id = self.ui.create_url(caller.principal_arn, source_ip, dag_ids, expires, session)
        now = self.clock.now()
        from datetime import timedelta

        return {"AuthorizedUrl": url, "SessionId": session_id, "UrlExpiresAt": ts(now + timedelta(seconds=expires)),
                "SessionExpiresAt": ts(now + timedelta(seconds=session))}

    # ---- following runs --------------------------------------------------------------------------

    def refresh_run(self, workflow: WorkflowRecord, run: RunRecord) -> RunRecord:
        """Bring the stored run up to what the engine says (a final run never changes again)."""
        if run.final or not run.triggered:
            return run
        try:
            observed = self.engine.observe(run.dag_id, run.run_id)
        except EngineUnavailable:
            return run
        if observed is None:
            return run
        return self._update_run(workflow, run, lambda r: self._merge(r, observed))

    def _merge(self, run: RunRecord, observed: EngineRun) -> RunRecord:
        if run.final:
            return run
        now = self.clock.now()
        by_id = {t.task_id: t for t in run.tasks}
        tasks: list[TaskRecord] = []
        for seen in observed.tasks:
            old = by_id.pop(seen.task_id, None) or TaskRecord(
                task_id=seen.task_id, task_instance_id=ids.task_instance_id(run.run_uuid, seen.task_id))
            status = TASK_STATES.get(seen.state, "NONE")
            error = old.error
            attempt = seen.try_number
            if status == "FAILED" and (old.status != "FAILED" or old.attempt != attempt or error is None):
                try:
                    error = self.engine.task_error(run.dag_id, run.run_id, seen.task_id, max(attempt, 1))
                except EngineUnavailable:
                    error = None
                if error is None:
                    error = "The task failed without an error message (it may have been killed)."
                if any(marker in error for marker in _TIMEOUT_ERRORS):
                    status = "TIMEOUT"
            elif status == "FAILED" and old.status == "TIMEOUT":
                status = "TIMEOUT"
            stream = self.engine.log_stream(run.workflow_id, run.run_id, seen.task_id, attempt) if attempt else None
            task = old.model_copy(update={
                "status": status, "operator": seen.operator or old.operator, "attempt": attempt,
                "started_at": seen.started_at, "ended_at": seen.ended_at,
                "duration": int(seen.duration) if seen.duration is not None else None,
                "error": error if status in ("FAILED", "TIMEOUT", "UP_FOR_RETRY") else None,
                "log_stream": stream})
            changed = (task.status, task.attempt, task.error) != (old.status, old.attempt, old.error)
            tasks.append(task.model_copy(update={"modified_at": now}) if changed else task)
        tasks += by_id.values()
        state = observed.state
        status = {"queued": "QUEUED", "running": "RUNNING", "success": "SUCCESS", "failed": "FAILED"}.get(state, run.status)
        error = None
        if status == "FAILED":
            failed = next((t for t in tasks if t.status in ("TIMEOUT", "FAILED")), None)
            if failed is not None and failed.status == "TIMEOUT":
                status = "TIMEOUT"
                error = f"Workflow execution timed out: task {failed.task_id}: {failed.error}"
            elif failed is not None:
                error = f"Workflow execution failed: task {failed.task_id}: {failed.error}"
            else:
                error = "Workflow execution failed"
        if run.stop_requested:
            final = status in ("SUCCESS", "FAILED", "TIMEOUT")
            status = "STOPPED" if final else "STOPPING"
            error = "The run was stopped by StopWorkflowRun." if final else None
        if status in ("QUEUED", "STARTING") and run.status in ("RUNNING",):
            status = run.status
        return run.model_copy(update={
            "status": status, "started_at": observed.started_at or run.started_at,
            "ended_at": observed.ended_at if status in ("SUCCESS", "FAILED", "TIMEOUT", "STOPPED") else None,
            "error": (error[:255] if error else None), "tasks": tasks})

    def _update_run(self, workflow: WorkflowRecord, run: RunRecord,
                    change: Callable[[RunRecord], RunRecord]) -> RunRecord:
        """Apply `change` and store it, again on the newest record if another writer won; events
        for every status that changed."""
        for _ in range(5):
            updated = change(run)
            if updated == run:
                return run
            updated = updated.model_copy(update={"modified_at": self.clock.now()})
            try:
                saved = self.repository.put_run(updated)
            except ConcurrentModification:
                fresh = self.repository.get_run(run.workflow_id, run.run_id)
                if fresh is None:
                    return run
                run = fresh
                continue
            if saved.status != run.status:
                self._run_event(workflow, saved, run.status)
            before = {t.task_id: t.status for t in run.tasks}
            for task in saved.tasks:
                if before.get(task.task_id) != task.status and task.status != "NONE":
                    self._task_event(workflow, saved, task, before.get(task.task_id))
            return saved
        raise ConcurrentModification(f"run {run.run_id} keeps changing")

    def _run_event(self, workflow: WorkflowRecord, run: RunRecord, previous: str | None) -> None:
        self.events.publish(self._event(f"MWAA Serverless Workflow Run {run.status.title()}", workflow, _clean({
            "WorkflowArn": workflow.arn, "WorkflowName": workflow.name, "WorkflowVersion": run.version,
            "RunId": run.run_id, "RunType": run.run_type, "Status": run.status, "PreviousStatus": previous,
            "ErrorMessage": run.error})))

    def _task_event(self, workflow: WorkflowRecord, run: RunRecord, task: TaskRecord, previous: str | None) -> None:
        self.events.publish(self._event(f"MWAA Serverless Task {task.status.title()}", workflow, _clean({
            "WorkflowArn": workflow.arn, "WorkflowName": workflow.name, "WorkflowVersion": run.version,
            "RunId": run.run_id, "TaskInstanceId": task.task_instance_id, "TaskId": task.task_id,
            "Status": task.status, "PreviousStatus": previous, "AttemptNumber": task.attempt,
            "OperatorName": task.operator, "ErrorMessage": task.error})))

    def _event(self, detail_type: str, workflow: WorkflowRecord, detail: dict[str, Any]) -> dict[str, Any]:
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": EVENT_SOURCE,
                "account": self.scope.account_id, "time": ts(self.clock.now()), "region": self.scope.region,
                "resources": [workflow.arn], "detail": detail}

    # ---- the reconcile step ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """One pass of the background loop: finish deletes, fire due schedules, hand STARTING
        runs to the engine, repeat stops the engine has not done yet, follow live runs."""
        workflows = {w.workflow_id: w for w in self._all_workflows()}
        for workflow in workflows.values():
            try:
                if workflow.status == "DELETING":
                    self.finish_delete(workflow)
                else:
                    self._fire_schedule(workflow)
            except Exception:  # one workflow's trouble must not stop the others
                log.exception("reconciling workflow %s failed", workflow.workflow_id)
        for run in self.repository.active_runs():
            workflow = workflows.get(run.workflow_id) or self.repository.get_workflow(run.workflow_id)
            if workflow is None or workflow.status != "READY":
                continue
            try:
                if not run.triggered:
                    if not run.stop_requested:
                        self._trigger(workflow, run)
                    continue
                run = self.refresh_run(workflow, run)
                if run.stop_requested and not run.final:
                    self._stop_in_engine(run)
            except Exception:
                log.exception("following run %s failed", run.run_id)

    def _fire_schedule(self, workflow: WorkflowRecord) -> None:
        version = self.repository.get_version(workflow.workflow_id, workflow.latest_version)
        if version is None or not version.schedule:
            return
        mode = (version.trigger_mode or "").lower()
        if mode in MANUAL_TRIGGER_MODES or mode in DISABLED_TRIGGER_MODES:
            return
        schedule = parse_schedule(version.schedule)
        if schedule is None:
            return
        now = self.clock.now()
        anchor = max(version.start_date or version.created_at, version.created_at)
        after = max(workflow.last_fire or version.created_at, version.created_at)
        due = schedule.latest_due(after, now, anchor)
        if due is None or (version.end_date is not None and due > version.end_date):
            return
        # Mark the occurrence first: a crash between the two loses one run rather than firing twice.
        workflow = self._save_workflow(workflow, last_fire=due)
        try:
            self._start(workflow, version.version, None, f"schedule-{due.strftime('%Y%m%dT%H%M%S')}", "SCHEDULED")
        except (QuotaExceededError, ConflictError) as exc:
            log.warning("scheduled run of %s at %s skipped: %s", workflow.workflow_id, due, exc.message)

    # ---- helpers ---------------------------------------------------------------------------------

    def _all_workflows(self) -> list[WorkflowRecord]:
        found: list[WorkflowRecord] = []
        after: str | None = None
        while True:
            page = self.repository.list_workflows(DEFAULT_PAGE, after)
            found += page
            if len(page) < DEFAULT_PAGE:
                return found
            after = page[-1].name

    def _workflow(self, arn: str, caller: Caller, operation: str) -> WorkflowRecord:
        self.access.authorize(caller, operation, arn)
        workflow_id = self.scope.workflow_id(arn)
        workflow = self.repository.get_workflow(workflow_id) if workflow_id else None
        if workflow is None:
            resource = workflow_id or arn.rsplit("/", 1)[-1]
            raise NotFoundError(f"Workflow {resource} does not exist.", resource, WORKFLOW)
        return workflow

    def _version(self, workflow: WorkflowRecord, version_id: str) -> VersionRecord:
        version = self.repository.get_version(workflow.workflow_id, version_id)
        if version is None:
            raise NotFoundError(f"Version {version_id} of workflow {workflow.workflow_id} does not exist.",
                                version_id, VERSION)
        return version

    def _run(self, workflow: WorkflowRecord, run_id: str) -> RunRecord:
        run = self.repository.get_run(workflow.workflow_id, run_id)
        if run is None:
            raise NotFoundError(f"Run {run_id} of workflow {workflow.workflow_id} does not exist.", run_id, RUN)
        return run

    def _save_workflow(self, workflow: WorkflowRecord, **changes: Any) -> WorkflowRecord:
        for _ in range(5):
            try:
                return self.repository.put_workflow(workflow.model_copy(update=changes))
            except ConcurrentModification:
                fresh = self.repository.get_workflow(workflow.workflow_id)
                if fresh is None:
                    raise NotFoundError(f"Workflow {workflow.workflow_id} does not exist.", workflow.workflow_id,
                                        WORKFLOW) from None
                workflow = fresh
        raise ConflictError(f"Workflow {workflow.workflow_id} keeps changing; try again.", workflow.workflow_id,
                            WORKFLOW)


def _with_task(run: RunRecord, task_id: str, **changes: Any) -> RunRecord:
    return run.model_copy(update={"tasks": [t.model_copy(update=changes) if t.task_id == task_id else t
                                            for t in run.tasks]})


def unknown_operation(target: str) -> ServerlessValidationError:
    return ServerlessValidationError(f"Unknown operation {target}.", "unknownOperation")
