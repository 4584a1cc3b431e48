"""MWAA's request and resource shapes as pydantic models, with every constraint of the service model.

Field names are MWAA's own (PascalCase) so a model dumps straight to the wire shape. Requests are
strict: the rest-json protocol never coerces "5" into 5, so neither do we.
"""
from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Optional

import regex
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from airdock.core import constraints as c


def _full_match(pattern: str) -> AfterValidator:
    compiled = regex.compile(pattern)

    # The same ARNs, names and paths come back in request after request: a bounded memo of the
    # verdicts saves the `regex` engine's per-call cost, a large share of a request's CPU.
    @functools.lru_cache(maxsize=4096)
    def matches(value: str) -> bool:
        return compiled.fullmatch(value) is not None

    def check(value: str) -> str:
        if not matches(value):
            raise PydanticCustomError(
                "aws_pattern",
                "Member must satisfy regular expression pattern: {pattern}",
                {"pattern": pattern},
            )
        return value

    return AfterValidator(check)


def _json_schema_pattern(pattern: str) -> str:
    # JSON Schema (ECMA-262 without the u flag) has no \p{..} classes; \w\s is the nearest
    # portable spelling of "letters, numbers and separators" for documentation and fuzzing.
    portable = pattern.replace(r"\p{L}\p{Z}\p{N}", r"\w\s")
    return f"^(?:{portable})$"


def Str(min_length: int | None = None, max_length: int | None = None, pattern: str | None = None) -> Any:
    parts: list[Any] = [StringConstraints(min_length=min_length, max_length=max_length)]
    if pattern is not None:
        parts.append(_full_match(pattern))
        parts.append(Field(json_schema_extra={"pattern": _json_schema_pattern(pattern)}))
    return Annotated[str, *parts]


EnvironmentNameT = Str(1, 80, c.ENVIRONMENT_NAME)
IamRoleArnT = Str(1, 1224, c.IAM_ROLE_ARN)
S3BucketArnT = Str(1, 1224, c.S3_BUCKET_ARN)
# The service model gives RelativePath and S3ObjectVersion min 0 (not 1); whether an empty key
# names a real object is the service's check against the bucket, not the shape's.
RelativePathT = Str(0, 1024, c.RELATIVE_PATH)
S3ObjectVersionT = Str(0, 1024)
KmsKeyT = Str(1, 1224, c.KMS_KEY)
AirflowVersionT = Str(1, 32, c.AIRFLOW_VERSION)
EnvironmentClassNameT = Str(1, 1024)
WeeklyMaintenanceWindowStartT = Str(1, 9, c.WEEKLY_MAINTENANCE_WINDOW_START)
ConfigKeyT = Str(1, 64, c.CONFIG_KEY)
ConfigValueT = Str(1, 65536, c.CONFIG_VALUE)
TagKeyT = Str(1, 128, c.TAG_KEY)
# MWAA accepts empty tag values (0..256) although the model's TagValue says min 1.
TagValueT = Str(0, 256, c.TAG_VALUE)
SubnetIdT = Str(1, 1024, c.SUBNET_ID)
SecurityGroupIdT = Str(1, 1024, c.SECURITY_GROUP_ID)
EnvironmentArnT = Str(1, 1224, c.ENVIRONMENT_ARN)
MinWorkersT = Annotated[int, Field(ge=1)]
MaxWorkersT = Annotated[int, Field(ge=1)]
SchedulersT = Annotated[int, Field(le=5)]
WebserversT = Annotated[int, Field(ge=1)]
TagMapT = Annotated[dict[TagKeyT, TagValueT], Field(min_length=1, max_length=50)]
ConfigurationOptionsT = dict[ConfigKeyT, ConfigValueT]
LoggingLevelT = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
WebserverAccessModeT = Literal["PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"]
EndpointManagementT = Literal["CUSTOMER", "SERVICE"]
WorkerReplacementStrategyT = Literal["FORCED", "GRACEFUL"]
EnvironmentStatusT = Literal[
    "CREATING", "CREATE_FAILED", "AVAILABLE", "UPDATING", "DELETING", "DELETED", "UNAVAILABLE",
    "UPDATE_FAILED", "ROLLING_BACK", "CREATING_SNAPSHOT", "PENDING", "MAINTENANCE",
]
UpdateStatusT = Literal["SUCCESS", "PENDING", "FAILED"]


class Request(BaseModel):
    # Unknown members are ignored like AWS's rest-json services do; types are never coerced.
    model_config = ConfigDict(strict=True, extra="ignore")


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class NetworkConfigurationInput(Request):
    SubnetIds: Optional[Annotated[list[SubnetIdT], Field(min_length=2, max_length=2)]] = None
    SecurityGroupIds: Optional[Annotated[list[SecurityGroupIdT], Field(min_length=1, max_length=5)]] = None


class UpdateNetworkConfigurationInput(Request):
    SecurityGroupIds: Annotated[list[SecurityGroupIdT], Field(min_length=1, max_length=5)]


class ModuleLoggingConfigurationInput(Request):
    Enabled: bool
    LogLevel: LoggingLevelT


class LoggingConfigurationInput(Request):
    DagProcessingLogs: Optional[ModuleLoggingConfigurationInput] = None
    SchedulerLogs: Optional[ModuleLoggingConfigurationInput] = None
    WebserverLogs: Optional[ModuleLoggingConfigurationInput] = None
    WorkerLogs: Optional[ModuleLoggingConfigurationInput] = None
    TaskLogs: Optional[ModuleLoggingConfigurationInput] = None


class _Configurable(Request):
    """Members CreateEnvironment and UpdateEnvironment share."""

    ExecutionRoleArn: Optional[IamRoleArnT] = None
    SourceBucketArn: Optional[S3BucketArnT] = None
    DagS3Path: Optional[RelativePathT] = None
    PluginsS3Path: Optional[RelativePathT] = None
    PluginsS3ObjectVersion: Optional[S3ObjectVersionT] = None
    RequirementsS3Path: Optional[RelativePathT] = None
    RequirementsS3ObjectVersion: Optional[S3ObjectVersionT] = None
    StartupScriptS3Path: Optional[RelativePathT] = None
    StartupScriptS3ObjectVersion: Optional[S3ObjectVersionT] = None
    AirflowConfigurationOptions: Optional[ConfigurationOptionsT] = None
    EnvironmentClass: Optional[EnvironmentClassNameT] = None
    MaxWorkers: Optional[MaxWorkersT] = None
    MinWorkers: Optional[MinWorkersT] = None
    AirflowVersion: Optional[AirflowVersionT] = None
    LoggingConfiguration: Optional[LoggingConfigurationInput] = None
    WeeklyMaintenanceWindowStart: Optional[WeeklyMaintenanceWindowStartT] = None
    WebserverAccessMode: Optional[WebserverAccessModeT] = None
    Schedulers: Optional[SchedulersT] = None
    MinWebservers: Optional[WebserversT] = None
    MaxWebservers: Optional[WebserversT] = None


class CreateEnvironmentInput(_Configurable):
    Name: EnvironmentNameT
    ExecutionRoleArn: IamRoleArnT
    SourceBucketArn: S3BucketArnT
    DagS3Path: RelativePathT
    NetworkConfiguration: NetworkConfigurationInput
    KmsKey: Optional[KmsKeyT] = None
    Tags: Optional[TagMapT] = None
    EndpointManagement: Optional[EndpointManagementT] = None


class UpdateEnvironmentInput(_Configurable):
    Name: EnvironmentNameT
    NetworkConfiguration: Optional[UpdateNetworkConfigurationInput] = None
    WorkerReplacementStrategy: Optional[WorkerReplacementStrategyT] = None


class NameInput(Request):
    Name: EnvironmentNameT


class ListEnvironmentsInput(Request):
    MaxResults: Optional[Annotated[int, Field(ge=1, le=25)]] = None
    NextToken: Optional[Annotated[str, StringConstraints(max_length=2048)]] = None


class TagResourceInput(Request):
    ResourceArn: EnvironmentArnT
    Tags: TagMapT


class UntagResourceInput(Request):
    ResourceArn: EnvironmentArnT
    tagKeys: Annotated[list[TagKeyT], Field(min_length=0, max_length=50)]


class ResourceArnInput(Request):
    ResourceArn: EnvironmentArnT


REST_API_PATH_MAX = 2048


class InvokeRestApiInput(Request):
    Name: EnvironmentNameT
    # The service model says max 64, but the Amazon provider's own DAG-run waiter sends
    # `/dags/{dag_id}/dagRuns/{run_id}`, which passes 64 for a manual run of any DAG id longer than
    # 11 characters; MwaaTriggerDagRunOperator(wait_for_completion=True) must work, so allow more.
    Path: Annotated[str, StringConstraints(min_length=1, max_length=REST_API_PATH_MAX)]
    Method: Literal["GET", "PUT", "POST", "PATCH", "DELETE"]
    QueryParameters: Optional[dict[str, Any]] = None
    Body: Optional[dict[str, Any]] = None


class Dimension(Request):
    Name: str
    Value: str


class StatisticSet(Request):
    SampleCount: Optional[int] = None
    Sum: Optional[float] = None
    Minimum: Optional[float] = None
    Maximum: Optional[float] = None


class MetricDatum(Request):
    MetricName: str
    # rest-json sends timestamps as epoch seconds (int or float).
    Timestamp: float | int
    Dimensions: Optional[list[Dimension]] = None
    Value: Optional[float | int] = None
    Unit: Optional[Literal[c.METRIC_UNITS]] = None  # type: ignore[valid-type]
    StatisticValues: Optional[StatisticSet] = None


class PublishMetricsInput(Request):
    EnvironmentName: EnvironmentNameT
    MetricData: list[MetricDatum]


# ---- resource shapes (what the service stores and returns) ----


class ModuleLoggingConfiguration(Shape):
    Enabled: bool = False
    LogLevel: LoggingLevelT = "INFO"
    CloudWatchLogGroupArn: Optional[str] = None


class LoggingConfigurationShape(Shape):
    DagProcessingLogs: Optional[ModuleLoggingConfiguration] = None
    SchedulerLogs: Optional[ModuleLoggingConfiguration] = None
    WebserverLogs: Optional[ModuleLoggingConfiguration] = None
    WorkerLogs: Optional[ModuleLoggingConfiguration] = None
    TaskLogs: Optional[ModuleLoggingConfiguration] = None


class UpdateError(Shape):
    ErrorCode: Optional[str] = None
    ErrorMessage: Optional[str] = None


class LastUpdateShape(Shape):
    Status: Optional[UpdateStatusT] = None
    CreatedAt: Optional[float] = None
    Error: Optional[UpdateError] = None
    Source: Optional[str] = None
    WorkerReplacementStrategy: Optional[WorkerReplacementStrategyT] = None


class NetworkConfigurationShape(Shape):
    SubnetIds: list[str] = []
    SecurityGroupIds: list[str] = []


class Environment(Shape):
    Name: str
    Status: EnvironmentStatusT
    Arn: str
    CreatedAt: float
    WebserverUrl: Optional[str] = None
    ExecutionRoleArn: str
    ServiceRoleArn: Optional[str] = None
    KmsKey: Optional[str] = None
    AirflowVersion: str
    SourceBucketArn: str
    DagS3Path: str
    PluginsS3Path: Optional[str] = None
    PluginsS3ObjectVersion: Optional[str] = None
    RequirementsS3Path: Optional[str] = None
    RequirementsS3ObjectVersion: Optional[str] = None
    StartupScriptS3Path: Optional[str] = None
    StartupScriptS3ObjectVersion: Optional[str] = None
    AirflowConfigurationOptions: dict[str, str] = {}
    EnvironmentClass: str
    MaxWorkers: int
    MinWorkers: int
    NetworkConfiguration: NetworkConfigurationShape
    LoggingConfiguration: LoggingConfigurationShape
    LastUpdate: Optional[LastUpdateShape] = None
    WeeklyMaintenanceWindowStart: str
    Tags: dict[str, str] = {}
    WebserverAccessMode: str
    Schedulers: int
    MinWebservers: int
    MaxWebservers: int
    WebserverVpcEndpointService: Optional[str] = None
    DatabaseVpcEndpointService: Optional[str] = None
    CeleryExecutorQueue: Optional[str] = None
    EndpointManagement: str
    # Airdock's addition (boto3 ignores unknown members): what a long create/update is doing now.
    StatusReason: Optional[str] = None


# Members of Environment an UpdateEnvironment may change (everything configurable but the name).
UPDATABLE_FIELDS: tuple[str, ...] = tuple(
    f for f in UpdateEnvironmentInput.model_fields if f not in ("Name", "WorkerReplacementStrategy")
)
