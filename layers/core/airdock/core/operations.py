"""The 12 MWAA operations and Airdock's extensions: HTTP binding and shapes, in one table.

The API function's routes and the OpenAPI document both derive from it (a test checks the
function registers exactly these routes). `OPERATIONS` is MWAA's API and nothing else (a test
compares it with botocore's service model); `EXTENSIONS` are Airdock's own operations, signed
the same way, on paths MWAA does not use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from airdock.core import models as m


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # OpenAPI template, e.g. /environments/{Name}
    input: type[BaseModel] | None
    path_params: tuple[str, ...] = ()
    query_params: tuple[str, ...] = ()
    output: dict = field(default_factory=dict)  # JSON schema of the success body
    errors: tuple[str, ...] = ()
    # Waits on the environment's Airflow (a network call of unbounded length) rather than
    # answering from Airdock's own store; a host must not run it where it would hold up others.
    reaches_airflow: bool = False


_ARN = {"type": "object", "properties": {"Arn": {"type": "string"}}}
_EMPTY = {"type": "object"}
_TAGS = {"type": "object", "properties": {"Tags": {"type": "object", "additionalProperties": {"type": "string"}}}}
_TOKEN = {"type": "object", "properties": {"CliToken": {"type": "string"}, "WebServerHostname": {"type": "string"}}}
_WEB_TOKEN = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("WebToken", "WebServerHostname", "IamIdentity", "AirflowIdentity")},
}
_REST = {"type": "object", "properties": {"RestApiStatusCode": {"type": "integer"}, "RestApiResponse": {}}}
_LIST = {
    "type": "object",
    "required": ["Environments"],
    "properties": {"Environments": {"type": "array", "items": {"type": "string"}}, "NextToken": {"type": "string"}},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation("CreateEnvironment", "PUT", "/environments/{Name}", m.CreateEnvironmentInput, ("Name",), output=_ARN,
              errors=("ValidationException", "InternalServerException")),
    Operation("GetEnvironment", "GET", "/environments/{Name}", None, ("Name",), output={"$ref": "#/components/schemas/GetEnvironmentOutput"},
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("UpdateEnvironment", "PATCH", "/environments/{Name}", m.UpdateEnvironmentInput, ("Name",), output=_ARN,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("DeleteEnvironment", "DELETE", "/environments/{Name}", None, ("Name",), output=_EMPTY,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("ListEnvironments", "GET", "/environments", None, (), ("MaxResults", "NextToken"), output=_LIST,
              errors=("ValidationException",)),
    Operation("TagResource", "POST", "/tags/{ResourceArn}", m.TagResourceInput, ("ResourceArn",), output=_EMPTY,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("UntagResource", "DELETE", "/tags/{ResourceArn}", None, ("ResourceArn",), ("tagKeys",), output=_EMPTY,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("ListTagsForResource", "GET", "/tags/{ResourceArn}", None, ("ResourceArn",), output=_TAGS,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("CreateCliToken", "POST", "/clitoken/{Name}", None, ("Name",), output=_TOKEN,
              errors=("ValidationException", "ResourceNotFoundException", "ServiceUnavailableException")),
    Operation("CreateWebLoginToken", "POST", "/webtoken/{Name}", None, ("Name",), output=_WEB_TOKEN,
              errors=("ValidationException", "ResourceNotFoundException", "AccessDeniedException", "ServiceUnavailableException")),
    Operation("InvokeRestApi", "POST", "/restapi/{Name}", m.InvokeRestApiInput, ("Name",), output=_REST,
              errors=("ValidationException", "ResourceNotFoundException", "RestApiClientException", "RestApiServerException",
                      "ServiceUnavailableException"), reaches_airflow=True),
    Operation("PublishMetrics", "POST", "/metrics/environments/{EnvironmentName}", m.PublishMetricsInput, ("EnvironmentName",),
              output=_EMPTY, errors=("ValidationException", "ResourceNotFoundException", "ServiceUnavailableException")),
)

_STATUS = {"type": "object", "properties": {"Arn": {"type": "string"}, "Status": {"type": "string"}}}

EXTENSIONS: tuple[Operation, ...] = (
    Operation("PauseEnvironment", "POST", "/environments/{Name}/pause", None, ("Name",), output=_STATUS,
              errors=("ValidationException", "ResourceNotFoundException")),
    Operation("ResumeEnvironment", "POST", "/environments/{Name}/resume", None, ("Name",), output=_STATUS,
              errors=("ValidationException", "ResourceNotFoundException")),
)

ALL_OPERATIONS: tuple[Operation, ...] = OPERATIONS + EXTENSIONS
