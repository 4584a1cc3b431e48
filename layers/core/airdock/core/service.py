"""EnvironmentService: every MWAA operation, expressed against the ports.

Request models arrive already validated field by field (see `validation.parse`); this module adds
the rules that need state: existence, status, sources in the bucket, cross-member limits.
"""
from __future__ import annotations

import base64
import binascii
import logging
import uuid
from typing import TYPE_CHECKING, Any, Callable

from airdock.core import catalog, role_passing, rules, status
from airdock.core.conflicts import retry_on_conflict
from airdock.core.errors import (
    AlreadyExists,
    ConcurrentModification,
    ResourceNotFound,
    ServiceUnavailable,
    ValidationError,
    environment_not_found,
)
from airdock.core.models import (
    CreateEnvironmentInput,
    Environment,
    InvokeRestApiInput,
    LastUpdateShape,
    LoggingConfigurationInput,
    LoggingConfigurationShape,
    ModuleLoggingConfiguration,
    NetworkConfigurationShape,
    PublishMetricsInput,
    UpdateEnvironmentInput,
    UpdateError,
)
from airdock.core.ports import (
    Buckets,
    Caller,
    Clock,
    DataPlane,
    EnvironmentRecord,
    EnvironmentRepository,
    Events,
    MetricPoint,
    Metrics,
    SystemClock,
    Workflows,
)
from airdock.core.logs import MODULES as LOG_MODULES
from airdock.core.settings import Settings

if TYPE_CHECKING:
    from airdock.core.authorization import Authorizer, Target
    from airdock.core.lifecycle import LifecycleRunner
    from airdock.core.role_passing import RolePassing

log = logging.getLogger(__name__)

class EnvironmentService:
    def __init__(
        self,
        repository: EnvironmentRepository,
        buckets: Buckets,
        events: Events,
        settings: Settings,
        *,
        workflows: Workflows | None = None,
        clock: Clock | None = None,
        data_plane: DataPlane | None = None,
        metrics: Metrics | None = None,
        lifecycle: "LifecycleRunner | None" = None,
        authorizer: "Authorizer | None" = None,
        role_passing: "RolePassing | None" = None,
    ) -> None:
        """Ports the deployment may lack: `workflows` (without: changes stay pending, visibly;
        control-plane-only mode), `data_plane` (CLI/web login tokens, InvokeRestApi), `lifecycle`
        (carries pause/resume/maintenance out asynchronously, core/lifecycle.py), `authorizer`
        (per-request IAM-style evaluation where the deployment does it itself, locally; on AWS,
        API Gateway's AWS_IAM authorization has IAM evaluate the caller before the function),
        `role_passing` (whether a caller may hand an environment the execution role it names, as
        MWAA requires iam:PassRole of it; core/role_passing.py)."""
        self.repository = repository
        self.buckets = buckets
        self.events = events
        self.settings = settings
        self.workflows = workflows
        self.clock = clock or SystemClock()
        self.data_plane = data_plane
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.authorizer = authorizer
        self.role_passing = role_passing

    def authorize(self, caller: Caller, target: "Target") -> None:
        """Raise AccessDenied unless `caller` may perform `target` (no-op without an authorizer)."""
        if self.authorizer is not None:
            self.authorizer.authorize(caller, target)

    # ---------------------------------------------------------------- control plane

    def create_environment(self, request: CreateEnvironmentInput, caller: Caller | None = None) -> dict[str, Any]:
        env = self._new_environment(request)
        rules.check_environment(env)
        _check_schedule_tags(env.Tags)
        role_passing.check(self.role_passing, caller, env.ExecutionRoleArn)
        self._check_sources(env)
        record = EnvironmentRecord(environment=env)
        try:
            record = self.repository.put_new(record)
        except AlreadyExists:
            raise ValidationError(f"Environment {env.Name} already exists.") from None
        self._emit(env, previous=None)
        self._start_workflow("create", record)
        return {"Arn": env.Arn}

    def get_environment(self, name: str) -> dict[str, Any]:
        return {"Environment": self._load(name).environment.wire()}

    def list_environments(self, max_results: int | None, next_token: str | None) -> dict[str, Any]:
        limit = max_results or 25
        after = _decode_token(next_token) if next_token else None
        names = self.repository.list_names(limit + 1, after)
        page, more = names[:limit], len(names) > limit
        result: dict[str, Any] = {"Environments": page}
        if more:
            result["NextToken"] = _encode_token(page[-1])
        return result

    def update_environment(self, request: UpdateEnvironmentInput, caller: Caller | None = None) -> dict[str, Any]:
        record = self._load(request.Name)
        status.ensure_updatable(request.Name, record.environment.Status)
        changes = request.model_dump(exclude_unset=True, exclude={"Name", "WorkerReplacementStrategy"})
        merged = self._merge(record.environment, request, changes)
        rules.check_environment(merged)
        rules.check_version_change(record.environment.AirflowVersion, merged.AirflowVersion)
        if "ExecutionRoleArn" in changes:
            role_passing.check(self.role_passing, caller, merged.ExecutionRoleArn)
        self._check_sources(merged)
        previous = record.environment
        merged.Status = status.UPDATING
        merged.LastUpdate = LastUpdateShape(
            Status="PENDING",
            CreatedAt=self._now(),
            Source="UpdateEnvironment",
            WorkerReplacementStrategy=request.WorkerReplacementStrategy or "GRACEFUL",
        )
        record.internal["rollback"] = previous.model_dump(mode="json")
        record.environment = merged
        record = self._replace_or_busy(record)
        self._emit(merged, previous=previous.Status)
        self._start_workflow("update", record)
        return {"Arn": merged.Arn}

    def delete_environment(self, name: str, caller: Caller | None = None) -> dict[str, Any]:
        record = self._load(name)
        status.ensure_deletable(name, record.environment.Status)
        previous = record.environment.Status
        record.environment.Status = status.DELETING
        record = self._replace_or_busy(record)
        self._emit(record.environment, previous=previous)
        self._start_workflow("delete", record)
        return {}

    def tag_resource(self, arn: str, tags: dict[str, str]) -> dict[str, Any]:
        _check_schedule_tags(tags)

        def add(record: EnvironmentRecord) -> None:
            merged = {**record.environment.Tags, **tags}
            if len(merged) > 50:
                raise ValidationError(
                    f"Too many tags: an environment can have at most 50 tags; this request would give it {len(merged)}."
                )
            record.environment.Tags = merged

        self._mutate(self._name_for_arn(arn), add)
        return {}

    def untag_resource(self, arn: str, keys: list[str]) -> dict[str, Any]:
        def remove(record: EnvironmentRecord) -> None:
            record.environment.Tags = {k: v for k, v in record.environment.Tags.items() if k not in keys}

        self._mutate(self._name_for_arn(arn), remove)
        return {}

    def list_tags_for_resource(self, arn: str) -> dict[str, Any]:
        return {"Tags": dict(self._load(self._name_for_arn(arn)).environment.Tags)}

    # ---------------------------------------------------------------- Airdock extensions

    def pause_environment(self, name: str, caller: Caller | None = None) -> dict[str, Any]:
        """Stop every component (zero compute), keep metadata and DAG history; status PENDING.

        MWAA has no pause: this is an Airdock extension (POST /environments/{Name}/pause). A
        paused environment can be resumed, updated (the update starts it) or deleted.
        """
        record = self._load(name)
        current = record.environment.Status
        if current == status.PENDING:
            return {"Arn": record.environment.Arn, "Status": status.PENDING}  # already paused (or pausing)
        if current not in (status.AVAILABLE, status.UNAVAILABLE):
            raise ValidationError(
                f"Environment {name} is in {current} status; only an AVAILABLE or UNAVAILABLE environment can be paused."
            )

        def mark(r: EnvironmentRecord) -> None:
            r.internal["lifecycle"] = {"operation": "pause", "state": "running", "started": self._now()}
            r.environment.StatusReason = "Pausing: stopping Airflow components"

        self._transition_or_busy(name, status.PENDING, frozenset({current}), mark)
        self.start_lifecycle("pause", name)
        return {"Arn": record.environment.Arn, "Status": status.PENDING}

    def resume_environment(self, name: str, caller: Caller | None = None) -> dict[str, Any]:
        """Start a paused environment's components again; AVAILABLE once Airflow is healthy."""
        record = self._load(name)
        env = record.environment
        running = record.internal.get("lifecycle") or {}
        if env.Status != status.PENDING:
            raise ValidationError(f"Environment {name} is in {env.Status} status; only a paused (PENDING) environment can be resumed.")
        if running.get("state") == "running":
            if running.get("operation") == "resume":
                return {"Arn": env.Arn, "Status": status.PENDING}  # already resuming
            raise ValidationError(f"Environment {name} is still pausing; resume it when the pause completes.")

        def mark(r: EnvironmentRecord) -> None:
            if (r.internal.get("lifecycle") or {}).get("state") == "running":
                raise ValidationError(f"Environment {name} is being changed by another request; try again.")
            r.internal["lifecycle"] = {"operation": "resume", "state": "running", "started": self._now()}
            r.environment.StatusReason = "Resuming: starting Airflow components"

        self._mutate(name, mark)
        self.start_lifecycle("resume", name)
        return {"Arn": env.Arn, "Status": status.PENDING}

    def start_lifecycle(self, operation: str, name: str) -> None:
        if self.lifecycle is None:
            # No lifecycle runner in this deployment (control-plane-only): the change stays pending, visibly.
            return
        self.lifecycle.start(operation, name)

    def _transition_or_busy(
        self, name: str, new_status: str, expect: frozenset[str], mutate: Callable[[EnvironmentRecord], None]
    ) -> EnvironmentRecord:
        try:
            return self.transition(name, new_status, expect=expect, mutate=mutate)
        except status.IllegalTransition:
            raise ValidationError(f"Environment {name} changed status meanwhile; try again.") from None

    # ---------------------------------------------------------------- into Airflow

    # Existence and AVAILABLE status are checked before the data plane is looked up, so a
    # CREATING environment answers MWAA's ValidationException, not "not configured".
    def create_cli_token(self, name: str, caller: Caller) -> dict[str, Any]:
        record = self._available(name)
        return self._data_plane(name).create_cli_token(record, caller)

    def create_web_login_token(self, name: str, caller: Caller) -> dict[str, Any]:
        record = self._available(name)
        return self._data_plane(name).create_web_login_token(record, caller)

    def invoke_rest_api(self, request: InvokeRestApiInput, caller: Caller) -> dict[str, Any]:
        record = self._available(request.Name)
        return self._data_plane(request.Name).invoke_rest_api(record, request, caller)

    def publish_metrics(self, request: PublishMetricsInput) -> dict[str, Any]:
        self._load(request.EnvironmentName)
        if self.metrics is None:
            raise ServiceUnavailable("Metrics are not configured for this Airdock deployment.")
        points = []
        for datum in request.MetricData:
            value = datum.Value
            if value is None and datum.StatisticValues and datum.StatisticValues.Sum is not None:
                count = datum.StatisticValues.SampleCount or 1
                value = datum.StatisticValues.Sum / count
            if value is None:
                continue
            points.append(MetricPoint(
                environment=request.EnvironmentName, name=datum.MetricName, value=float(value),
                timestamp=float(datum.Timestamp), unit=datum.Unit or "None",
                dimensions={d.Name: d.Value for d in datum.Dimensions or []},
            ))
        self.metrics.put(points)
        return {}

    # ---------------------------------------------------------------- workflow-facing

    def transition(
        self,
        name: str,
        new_status: str,
        *,
        expect: frozenset[str] | None = None,
        mutate: Callable[[EnvironmentRecord], None] | None = None,
    ) -> EnvironmentRecord:
        """Move an environment to `new_status` (idempotent: already there → no-op write skipped).

        `expect` guards against acting on an environment some other change has since taken over.
        """

        def attempt() -> tuple[str, EnvironmentRecord]:
            record = self._load(name)
            current = record.environment.Status
            if expect is not None and current not in expect and current != new_status:
                raise ValidationError(f"Environment {name} is {current}; expected one of {sorted(expect)}.")
            status.check_transition(current, new_status)
            record.environment.Status = new_status  # type: ignore[assignment]
            if new_status in status.FINAL:
                record.environment.StatusReason = None
            if mutate:
                mutate(record)
            return current, self.repository.replace(record)

        current, saved = retry_on_conflict(attempt, what=f"Environment {name}")
        if current != new_status:
            self._emit(saved.environment, previous=current)
        return saved

    def update_internal(self, name: str, mutate: Callable[[EnvironmentRecord], None]) -> EnvironmentRecord:
        return self._mutate(name, mutate)

    def forget(self, name: str) -> None:
        """The last step of a delete: the record goes; GetEnvironment answers 404 from now on.
        A write that lands between the read and the delete (progress text, a health check) is
        no reason to fail the delete: it is read again, as `transition` and `_mutate` do."""

        def attempt() -> EnvironmentRecord | None:
            record = self.repository.get(name)
            if record is None:
                return None
            status.check_transition(record.environment.Status, status.DELETED)
            self.repository.delete(name, record.version)
            return record

        record = retry_on_conflict(attempt, what=f"Environment {name}")
        if record is None:
            return
        deleted = record.environment.model_copy(update={"Status": status.DELETED})
        self._emit(deleted, previous=record.environment.Status)

    def record(self, name: str) -> EnvironmentRecord:
        return self._load(name)

    def failed_update(self, code: str, message: str, strategy: str | None) -> LastUpdateShape:
        return LastUpdateShape(
            Status="FAILED",
            CreatedAt=self._now(),
            Source="UpdateEnvironment",
            Error=UpdateError(ErrorCode=code, ErrorMessage=message[:1024] or code),
            WorkerReplacementStrategy=strategy,  # type: ignore[arg-type]
        )

    # ---------------------------------------------------------------- helpers

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _load(self, name: str) -> EnvironmentRecord:
        record = self.repository.get(name)
        if record is None:
            raise environment_not_found(name)
        return record

    def _available(self, name: str) -> EnvironmentRecord:
        record = self._load(name)
        if record.environment.Status != status.AVAILABLE:
            raise ValidationError(
                f"Environment {name} is in {record.environment.Status} status; this operation "
                "requires an environment in AVAILABLE status."
            )
        return record

    def _data_plane(self, name: str) -> DataPlane:
        if self.data_plane is None:
            self._load(name)
            raise ServiceUnavailable(
                "Airflow access (CLI and web login tokens, InvokeRestApi) is not configured for this Airdock deployment."
            )
        return self.data_plane

    def _name_for_arn(self, arn: str) -> str:
        name = self.settings.name_from_arn(arn)
        if not name:
            raise ResourceNotFound(f"Resource {arn} does not exist.")
        return name

    def _mutate(self, name: str, mutate: Callable[[EnvironmentRecord], None]) -> EnvironmentRecord:
        def attempt() -> EnvironmentRecord:
            record = self._load(name)
            mutate(record)
            return self.repository.replace(record)

        return retry_on_conflict(attempt, what=f"Environment {name}")

    def _replace_or_busy(self, record: EnvironmentRecord) -> EnvironmentRecord:
        try:
            return self.repository.replace(record)
        except ConcurrentModification:
            raise ValidationError(
                f"Environment {record.name} is being changed by another request; try again when it completes."
            ) from None

    def _start_workflow(self, kind: str, record: EnvironmentRecord) -> None:
        if self.workflows is None:
            # No provisioning engine in this deployment: the change stays pending, visibly.
            return
        execution = self.workflows.start(kind, record.name, {"Name": record.name, "Kind": kind})  # type: ignore[arg-type]
        self._mutate(record.name, lambda r: r.internal.update(execution=execution, workflow=kind))

    def _emit(self, env: Environment, previous: str | None) -> None:
        now = self.clock.now()
        detail: dict[str, Any] = {"EnvironmentName": env.Name, "Status": env.Status}
        if previous:
            detail["PreviousStatus"] = previous
        if env.LastUpdate and env.LastUpdate.Error:
            detail["Error"] = env.LastUpdate.Error.wire()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "MWAA Environment Status Change",
            "source": "aws.airflow",
            "account": self.settings.account_id,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.settings.region,
            "resources": [env.Arn],
            "detail": detail,
        }
        try:
            self.events.publish(event)
        except Exception:  # an event sink being down must never fail the user's request
            log.exception("publishing status event failed")

    def _logging(self, name: str, given: LoggingConfigurationInput | None, base: LoggingConfigurationShape | None) -> LoggingConfigurationShape:
        modules: dict[str, ModuleLoggingConfiguration] = {}
        for member, module in LOG_MODULES.items():
            current = getattr(base, member, None) if base else None
            new = getattr(given, member, None) if given else None
            enabled = new.Enabled if new else (current.Enabled if current else False)
            level = new.LogLevel if new else (current.LogLevel if current else "INFO")
            arn = (
                f"arn:{self.settings.partition}:logs:{self.settings.region}:{self.settings.account_id}"
                f":log-group:airflow-{name}-{module}"
                if enabled
                else None
            )
            modules[member] = ModuleLoggingConfiguration(Enabled=enabled, LogLevel=level, CloudWatchLogGroupArn=arn)
        return LoggingConfigurationShape(**modules)

    def _new_environment(self, request: CreateEnvironmentInput) -> Environment:
        klass_name = request.EnvironmentClass or catalog.DEFAULT_ENVIRONMENT_CLASS
        klass = catalog.ENVIRONMENT_CLASSES.get(klass_name)
        default_sched = klass.default_schedulers if klass else 2
        default_web = klass.default_webservers if klass else 2
        min_workers = request.MinWorkers or catalog.DEFAULT_MIN_WORKERS
        max_workers = request.MaxWorkers or max(catalog.DEFAULT_MAX_WORKERS, min_workers)
        return Environment(
            Name=request.Name,
            Status=status.CREATING,
            Arn=self.settings.environment_arn(request.Name),
            CreatedAt=self._now(),
            ExecutionRoleArn=request.ExecutionRoleArn,
            ServiceRoleArn=(
                f"arn:{self.settings.partition}:iam::{self.settings.account_id}:role/aws-service-role/"
                "airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"
            ),
            KmsKey=request.KmsKey,
            AirflowVersion=request.AirflowVersion or catalog.DEFAULT_AIRFLOW_VERSION,
            SourceBucketArn=request.SourceBucketArn,
            DagS3Path=request.DagS3Path,
            PluginsS3Path=request.PluginsS3Path,
            PluginsS3ObjectVersion=request.PluginsS3ObjectVersion,
            RequirementsS3Path=request.RequirementsS3Path,
            RequirementsS3ObjectVersion=request.RequirementsS3ObjectVersion,
            StartupScriptS3Path=request.StartupScriptS3Path,
            StartupScriptS3ObjectVersion=request.StartupScriptS3ObjectVersion,
            AirflowConfigurationOptions=dict(request.AirflowConfigurationOptions or {}),
            EnvironmentClass=klass_name,
            MaxWorkers=max_workers,
            MinWorkers=min_workers,
            NetworkConfiguration=NetworkConfigurationShape(
                SubnetIds=list(request.NetworkConfiguration.SubnetIds or []),
                SecurityGroupIds=list(request.NetworkConfiguration.SecurityGroupIds or []),
            ),
            LoggingConfiguration=self._logging(request.Name, request.LoggingConfiguration, None),
            WeeklyMaintenanceWindowStart=request.WeeklyMaintenanceWindowStart or catalog.DEFAULT_WEEKLY_MAINTENANCE_WINDOW,
            Tags=dict(request.Tags or {}),
            WebserverAccessMode=request.WebserverAccessMode or catalog.DEFAULT_WEBSERVER_ACCESS_MODE,
            Schedulers=request.Schedulers if request.Schedulers is not None else default_sched,
            MinWebservers=request.MinWebservers or default_web,
            MaxWebservers=request.MaxWebservers or max(default_web, request.MinWebservers or 0),
            EndpointManagement=request.EndpointManagement or catalog.DEFAULT_ENDPOINT_MANAGEMENT,
        )

    def _merge(self, current: Environment, request: UpdateEnvironmentInput, changes: dict[str, Any]) -> Environment:
        merged = current.model_copy(deep=True)
        for key, value in changes.items():
            if key == "NetworkConfiguration":
                merged.NetworkConfiguration.SecurityGroupIds = list(value["SecurityGroupIds"])
            elif key == "LoggingConfiguration":
                merged.LoggingConfiguration = self._logging(current.Name, request.LoggingConfiguration, current.LoggingConfiguration)
            elif key == "AirflowConfigurationOptions":
                merged.AirflowConfigurationOptions = dict(value)
            else:
                setattr(merged, key, value)
        return merged

    def _check_sources(self, env: Environment) -> None:
        bucket = env.SourceBucketArn.split(":::", 1)[1]
        if not self.buckets.bucket_exists(bucket):
            raise ValidationError(
                f"Unable to access bucket {bucket} given as SourceBucketArn: it does not exist or "
                "cannot be read."
            )
        for member, key in (
            ("DagS3Path", env.DagS3Path),
        ):
            if _escapes(key) or not self.buckets.prefix_exists(bucket, key):
                raise ValidationError(f"Invalid {member}: {key} was not found in bucket {bucket}.")
        for member, key, version in (
            ("PluginsS3Path", env.PluginsS3Path, env.PluginsS3ObjectVersion),
            ("RequirementsS3Path", env.RequirementsS3Path, env.RequirementsS3ObjectVersion),
            ("StartupScriptS3Path", env.StartupScriptS3Path, env.StartupScriptS3ObjectVersion),
        ):
            if key is None:
                continue
            if _escapes(key) or not self.buckets.object_exists(bucket, key, version):
                where = f" (version {version})" if version else ""
                raise ValidationError(f"Invalid {member}: {key}{where} was not found in bucket {bucket}.")


def _check_schedule_tags(tags: dict[str, str]) -> None:
    """Pause/resume schedule tags must be cron expressions: a typo fails the TagResource (or
    Terraform apply) now instead of silently never firing."""
    from airdock.core import schedules  # croniter is needed only when schedules are used

    for tag in schedules.SCHEDULE_TAGS:
        if tag in tags:
            schedules.check_cron(tags[tag], tag)


def _escapes(key: str) -> bool:
    """An S3 key is a name, not a path; locally it must not climb out of the bucket folder."""
    parts = key.replace("\\", "/").split("/")
    return key.startswith("/") or ".." in parts


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationError("Invalid NextToken: the token is malformed or expired.") from None
