"""MWAA Serverless request shapes with every constraint of botocore's `mwaa-serverless` model.

Member names are the model's (PascalCase). Requests are strict (awsJson never coerces "5" into
5) and ignore unknown members, as AWS's JSON services do. A test probes every boundary against
the service model itself (tests/unit/test_serverless_models_match_service_model.py).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from airdock.core.models import Str

_ARN = (r"arn:aws(?:-(?:cn|us-gov|iso|iso-b|iso-e|iso-f))?:airflow-serverless:([a-z]{2}-(?:[a-z]+-)+[0-9]{1}):"
        r"([0-9]{12}):workflow/([a-zA-Z0-9][a-zA-Z0-9\.\-_]{0,254}-[a-zA-Z0-9]{10})")
_ROLE_ARN = (r"arn:aws(?:-(?:cn|us-gov|iso|iso-b|iso-e|iso-f))?:iam::[0-9]{12}:role(/[a-zA-Z0-9+=,.@_\-]{1,512})*?"
             r"/[a-zA-Z0-9+=,.@_\-]{1,64}")
_ID = r"[a-zA-Z0-9]+[a-zA-Z0-9\.\-_]*"

NameT = Str(1, 255, _ID)
IdT = Str(1, 255, _ID)
ClientTokenT = Str(1, 128, r"[\x21-\x7E]+")
RoleArnT = Str(1, 2048, _ROLE_ARN)
DescriptionT = Str(1, 1024, r".+")
GenericStringT = Str(1, 255, r".*")
WorkflowArnT = Str(1, 2048, _ARN)
TaggableArnT = Str(1, 1011, _ARN)
WorkflowVersionT = Str(32, 32, r"[a-z0-9]{32}")
VersionIdT = Str(1, 2048, r".+")
SecurityGroupT = Str(1, 255, r"sg-[a-z0-9]*")
SubnetT = Str(1, 255, r"subnet-[a-z0-9]*")
EnvKeyT = Str(1, 128, r"[a-zA-Z][a-zA-Z0-9_]*")
EnvValueT = Str(0, 255)
TagKeyT = Str(1, 128, r".*")
TagValueT = Str(0, 256, r".*")
TagsT = Annotated[dict[TagKeyT, TagValueT], Field(min_length=0, max_length=50)]


def _max_results(high: int = 100) -> Any:
    return Annotated[int, Field(ge=1, le=high)]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class DefinitionLocation(Request):
    Bucket: str
    ObjectKey: str
    VersionId: Optional[str] = None


class CodeS3Location(Request):
    Bucket: Str(3, 63)  # type: ignore[valid-type]
    ObjectKey: Str(1, 1024)  # type: ignore[valid-type]
    VersionId: Optional[Str(1, 1024)] = None  # type: ignore[valid-type]


class CodeShape(Request):
    """A union in the model: exactly one member. S3Location is its only one."""

    S3Location: Optional[CodeS3Location] = None

    @model_validator(mode="after")
    def _one_member(self) -> "CodeShape":
        if self.S3Location is None:
            raise ValueError("Code must set exactly one member (S3Location)")
        return self


class EncryptionShape(Request):
    Type: Literal["AWS_MANAGED_KEY", "CUSTOMER_MANAGED_KEY"]
    KmsKeyId: Optional[str] = None


class LoggingShape(Request):
    LogGroupName: str


class NetworkShape(Request):
    SecurityGroupIds: Optional[list[SecurityGroupT]] = None
    SubnetIds: Optional[list[SubnetT]] = None


class EnvironmentShape(Request):
    Variables: Optional[Annotated[dict[EnvKeyT, EnvValueT], Field(min_length=0, max_length=50)]] = None


class _WorkflowConfig(Request):
    DefinitionS3Location: DefinitionLocation
    RoleArn: RoleArnT
    Code: Optional[CodeShape] = None
    Description: Optional[DescriptionT] = None
    LoggingConfiguration: Optional[LoggingShape] = None
    EngineVersion: Optional[int] = None
    NetworkConfiguration: Optional[NetworkShape] = None
    Environment: Optional[EnvironmentShape] = None
    TriggerMode: Optional[GenericStringT] = None


class CreateWorkflowRequest(_WorkflowConfig):
    Name: NameT
    ClientToken: Optional[ClientTokenT] = None
    EncryptionConfiguration: Optional[EncryptionShape] = None
    Tags: Optional[TagsT] = None


class UpdateWorkflowRequest(_WorkflowConfig):
    WorkflowArn: WorkflowArnT


class GetWorkflowRequest(Request):
    WorkflowArn: WorkflowArnT
    WorkflowVersion: Optional[WorkflowVersionT] = None


class DeleteWorkflowRequest(GetWorkflowRequest):
    pass


class ListWorkflowsRequest(Request):
    MaxResults: Optional[_max_results()] = None
    NextToken: Optional[str] = None


class ListWorkflowVersionsRequest(ListWorkflowsRequest):
    WorkflowArn: WorkflowArnT


class StartWorkflowRunRequest(Request):
    WorkflowArn: WorkflowArnT
    ClientToken: Optional[ClientTokenT] = None
    OverrideParameters: Optional[dict[str, Any]] = None
    WorkflowVersion: Optional[VersionIdT] = None


class StopWorkflowRunRequest(Request):
    WorkflowArn: WorkflowArnT
    RunId: IdT


class GetWorkflowRunRequest(StopWorkflowRunRequest):
    pass


class ListWorkflowRunsRequest(ListWorkflowsRequest):
    WorkflowArn: WorkflowArnT
    WorkflowVersion: Optional[VersionIdT] = None


class ListTaskInstancesRequest(ListWorkflowsRequest):
    WorkflowArn: WorkflowArnT
    RunId: IdT


class GetTaskInstanceRequest(Request):
    WorkflowArn: WorkflowArnT
    TaskInstanceId: IdT
    RunId: IdT


class TagResourceRequest(Request):
    ResourceArn: TaggableArnT
    Tags: TagsT


class UntagResourceRequest(Request):
    ResourceArn: TaggableArnT
    TagKeys: Annotated[list[TagKeyT], Field(min_length=1, max_length=50)]


class ListTagsForResourceRequest(Request):
    ResourceArn: TaggableArnT


class CreateAirflowUiUrlRequest(Request):
    ExpiresInSeconds: Optional[Annotated[int, Field(ge=5, le=300)]] = None
    SessionDurationInSeconds: Optional[Annotated[int, Field(ge=1, le=43200)]] = None


WorkflowRunStatus = Literal["STARTING", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT", "STOPPING", "STOPPED"]
TaskInstanceStatus = Literal["QUEUED", "FAILED", "SCHEDULED", "RUNNING", "SUCCESS", "UP_FOR_RESCHEDULE", "UP_FOR_RETRY",
                             "UPSTREAM_FAILED", "REMOVED", "RESTARTING", "DEFERRED", "NONE", "CANCELLED", "TIMEOUT"]
RunType = Literal["ON_DEMAND", "SCHEDULED"]
WorkflowStatus = Literal["READY", "DELETING"]

# Operation name → its request shape (the model's input shape names, for the tests).
REQUESTS: dict[str, type[Request]] = {
    "CreateWorkflow": CreateWorkflowRequest,
    "UpdateWorkflow": UpdateWorkflowRequest,
    "GetWorkflow": GetWorkflowRequest,
    "DeleteWorkflow": DeleteWorkflowRequest,
    "ListWorkflows": ListWorkflowsRequest,
    "ListWorkflowVersions": ListWorkflowVersionsRequest,
    "StartWorkflowRun": StartWorkflowRunRequest,
    "StopWorkflowRun": StopWorkflowRunRequest,
    "GetWorkflowRun": GetWorkflowRunRequest,
    "ListWorkflowRuns": ListWorkflowRunsRequest,
    "ListTaskInstances": ListTaskInstancesRequest,
    "GetTaskInstance": GetTaskInstanceRequest,
    "TagResource": TagResourceRequest,
    "UntagResource": UntagResourceRequest,
    "ListTagsForResource": ListTagsForResourceRequest,
    "CreateAirflowUiUrl": CreateAirflowUiUrlRequest,
}
