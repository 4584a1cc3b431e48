"""MWAA Serverless's API (awsJson1_0) as a Lambda handler behind API Gateway (`POST /`).

The operation is named by `X-Amz-Target: AmazonMWAAServerless.<Operation>`; the body is its JSON
input. Each operation parses its input into its request model, calls one WorkflowService method
and returns the result; errors are rendered once, in `_error`, in the protocol's shape
(`__type` and the error shape's members).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Callable

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from airdock.core.errors import AirdockError, InternalError
from airdock.core.ports import Caller
from airdock.core.serverless import models as m
from airdock.core.serverless.errors import ServerlessValidationError
from airdock.core.serverless.service import WorkflowService, unknown_operation
from airdock.core.serverless.validation import parse
from airdock.wiring import workflow_service

log = logging.getLogger("airdock.serverless.api")

TARGET_PREFIX = "AmazonMWAAServerless."
CONTENT_TYPE = "application/x-amz-json-1.0"

Operation = Callable[[WorkflowService, dict[str, Any], Caller, APIGatewayProxyEvent], dict[str, Any]]


def _create_workflow(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    return s.create_workflow(parse(m.CreateWorkflowRequest, body), caller)


def _update_workflow(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    return s.update_workflow(parse(m.UpdateWorkflowRequest, body), caller)


def _get_workflow(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.GetWorkflowRequest, body)
    return s.get_workflow(r.WorkflowArn, r.WorkflowVersion, caller)


def _delete_workflow(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.DeleteWorkflowRequest, body)
    return s.delete_workflow(r.WorkflowArn, r.WorkflowVersion, caller)


def _list_workflows(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.ListWorkflowsRequest, body)
    return s.list_workflows(r.MaxResults, r.NextToken, caller)


def _list_workflow_versions(s: WorkflowService, body: dict[str, Any], caller: Caller,
                            _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.ListWorkflowVersionsRequest, body)
    return s.list_workflow_versions(r.WorkflowArn, r.MaxResults, r.NextToken, caller)


def _start_workflow_run(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    return s.start_workflow_run(parse(m.StartWorkflowRunRequest, body), caller)


def _stop_workflow_run(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.StopWorkflowRunRequest, body)
    return s.stop_workflow_run(r.WorkflowArn, r.RunId, caller)


def _get_workflow_run(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.GetWorkflowRunRequest, body)
    return s.get_workflow_run(r.WorkflowArn, r.RunId, caller)


def _list_workflow_runs(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.ListWorkflowRunsRequest, body)
    return s.list_workflow_runs(r.WorkflowArn, r.WorkflowVersion, r.MaxResults, r.NextToken, caller)


def _list_task_instances(s: WorkflowService, body: dict[str, Any], caller: Caller,
                         _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.ListTaskInstancesRequest, body)
    return s.list_task_instances(r.WorkflowArn, r.RunId, r.MaxResults, r.NextToken, caller)


def _get_task_instance(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.GetTaskInstanceRequest, body)
    return s.get_task_instance(r.WorkflowArn, r.RunId, r.TaskInstanceId, caller)


def _tag_resource(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.TagResourceRequest, body)
    return s.tag_resource(r.ResourceArn, r.Tags, caller)


def _untag_resource(s: WorkflowService, body: dict[str, Any], caller: Caller, _e: APIGatewayProxyEvent) -> dict[str, Any]:
    r = parse(m.UntagResourceRequest, body)
    return s.untag_resource(r.ResourceArn, r.TagKeys, caller)


def _list_tags_for_resource(s: WorkflowService, body: dict[str, Any], caller: Caller,
                            _e: APIGatewayProxyEvent) -> dict[str, Any]:
    return s.list_tags_for_resource(parse(m.ListTagsForResourceRequest, body).ResourceArn, caller)


def _create_airflow_ui_url(s: WorkflowService, body: dict[str, Any], caller: Caller,
                           event: APIGatewayProxyEvent) -> dict[str, Any]:
    source_ip = event.request_context.identity.source_ip
    return s.create_airflow_ui_url(parse(m.CreateAirflowUiUrlRequest, body), caller, source_ip)


OPERATIONS: dict[str, Operation] = {
    "CreateWorkflow": _create_workflow, "UpdateWorkflow": _update_workflow, "GetWorkflow": _get_workflow,
    "DeleteWorkflow": _delete_workflow, "ListWorkflows": _list_workflows,
    "ListWorkflowVersions": _list_workflow_versions, "StartWorkflowRun": _start_workflow_run,
    "StopWorkflowRun": _stop_workflow_run, "GetWorkflowRun": _get_workflow_run,
    "ListWorkflowRuns": _list_workflow_runs, "ListTaskInstances": _list_task_instances,
    "GetTaskInstance": _get_task_instance, "TagResource": _tag_resource, "UntagResource": _untag_resource,
    "ListTagsForResource": _list_tags_for_resource, "CreateAirflowUiUrl": _create_airflow_ui_url,
}


def _body(event: APIGatewayProxyEvent) -> dict[str, Any]:
    try:
        raw = event.decoded_body
    except (ValueError, UnicodeDecodeError):
        raise ServerlessValidationError("The request body is not valid JSON.", "cannotParse") from None
    if raw is None or raw == "":
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ServerlessValidationError("The request body is not valid JSON.", "cannotParse") from None
    except RecursionError:
        raise ServerlessValidationError("The request body is nested too deeply.", "cannotParse") from None
    if not isinstance(data, dict):
        raise ServerlessValidationError("The request body must be a JSON object.", "cannotParse")
    return data


def _caller(event: APIGatewayProxyEvent) -> Caller:
    identity = event.request_context.identity
    return Caller(access_key_id=identity.access_key or "anonymous",
                  principal_arn=identity.user_arn or identity.caller or "anonymous")


def _answer(status: int, payload: dict[str, Any], request_id: str, error: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}
    if error:
        headers["x-amzn-ErrorType"] = error
    return {"statusCode": status, "headers": headers, "body": json.dumps(payload, ensure_ascii=False),
            "isBase64Encoded": False}


def _error(error: AirdockError, request_id: str) -> dict[str, Any]:
    return _answer(error.status, {"__type": error.code, **error.body()}, request_id, error.code)


def operation_of(event: dict[str, Any]) -> str | None:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    target = headers.get("x-amz-target") or ""
    return target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None


def handler(event: dict[str, Any], context: Any, service: WorkflowService | None = None) -> dict[str, Any]:
    request = APIGatewayProxyEvent(event)
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    try:
        name = operation_of(event)
        operation = OPERATIONS.get(name or "")
        if operation is None:
            raise unknown_operation(dict((k.lower(), v) for k, v in (event.get("headers") or {}).items())
                                    .get("x-amz-target", "(none)"))
        result = operation(service or workflow_service(), _body(request), _caller(request), request)
        return _answer(200, result, request_id)
    except AirdockError as exc:
        return _error(exc, request_id)
    except Exception:  # the user gets the model's opaque InternalServerException; the trace stays here
        log.exception("unhandled error")
        return _error(InternalError("An internal error occurred. Try again later."), request_id)
