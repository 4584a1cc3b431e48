"""MWAA's control-plane API as a Lambda handler behind API Gateway (REST, AWS_IAM auth).

Each route parses its input into a request model, calls one EnvironmentService operation and
returns its result. Errors are rendered once, in `_render_error`, in the rest-json error shape.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import threading
import uuid
from typing import Any, Callable, TypeVar
from urllib.parse import quote

import pydantic_core
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from airdock.core import observability
from airdock.core.authorization import target_of
from airdock.core.errors import AirdockError, InternalError, ValidationError
from airdock.core.models import (
    CreateEnvironmentInput,
    InvokeRestApiInput,
    ListEnvironmentsInput,
    NameInput,
    PublishMetricsInput,
    ResourceArnInput,
    TagResourceInput,
    UntagResourceInput,
    UpdateEnvironmentInput,
)
from airdock.core.paths import percent_decode
from airdock.core.ports import Caller
from airdock.core.service import EnvironmentService
from airdock.core.validation import parse
from airdock.wiring import environment_service

log = logging.getLogger("airdock.api")
F = TypeVar("F", bound=Callable[..., Any])


class _Resolver(APIGatewayRestResolver):
    """Powertools keeps the current event on the `BaseRouter` class, which is right for Lambda
    (one request per process at a time). The local server runs this handler on several threads,
    where a class-wide event let concurrent requests read each other's identity, body and route
    (found by bench/soak.py). Here the event is per thread; routing and every `app.current_event`
    read go through this property."""

    _events = threading.local()

    @property  # type: ignore[override]
    def current_event(self) -> Any:
        return self._events.value

    @current_event.setter
    def current_event(self, value: Any) -> None:
        self._events.value = value

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._events.value = self._to_proxy_event(event)
        return super().resolve(event, context)

    def _to_proxy_event(self, event: dict[str, Any]) -> Any:
        # Powertools' resolve builds the event again; reuse the one just stored for this thread.
        current = getattr(self._events, "value", None)
        if current is not None and current.raw_event is event:
            return current
        return super()._to_proxy_event(event)


def _to_json(result: Any) -> str:
    # The JSON of what routes return (plain dicts and lists), compact as Powertools' default but
    # written by pydantic-core: a fifth of json.dumps' time for a GetEnvironment answer. Non-ASCII
    # text is sent as UTF-8 rather than \u-escaped, as AWS's JSON APIs answer.
    return pydantic_core.to_json(result).decode()


app = _Resolver(serializer=_to_json)


def _service() -> EnvironmentService:
    """The service of this deployment: `environment_service()` on Lambda, or what the host put in
    `app.dependency_overrides` (the local server hands in its own). Looked up here rather than with
    Powertools' `Depends`, which rebuilds the dependency tree with `typing.get_type_hints` on
    every request: about a tenth of a local request's CPU (bench/soak.py)."""
    return app.dependency_overrides.get(environment_service, environment_service)()


def _body() -> dict[str, Any]:
    try:
        raw = app.current_event.decoded_body
    except (ValueError, UnicodeDecodeError):  # a binary (non-UTF-8) body arrives base64-encoded
        raise ValidationError("The request body is not valid JSON.") from None
    if raw is None or raw == "":
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The request body is not valid JSON.") from None
    except RecursionError:  # a nesting bomb: json recurses per level; MWAA's shapes are shallow
        raise ValidationError("The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.")
    return data


def _caller() -> Caller:
    identity = app.current_event.request_context.identity
    return Caller(
        access_key_id=identity.access_key or "anonymous",
        principal_arn=identity.user_arn or identity.caller or "anonymous",
    )


def _int_query(name: str) -> int | None:
    value = (app.current_event.query_string_parameters or {}).get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{name[:1].lower() + name[1:]}' failed to "
            "satisfy constraint: Member must be an integer"
        ) from None


def _operation(method: str, rule: str) -> Callable[[F], F]:
    """Register a route that authorizes every call first, once, before its input is even parsed
    (as IAM runs before API Gateway hands the request on). The decision is the domain's
    (core/authorization.py). A wrapper rather than a Powertools middleware, whose chain of frames
    cost more per request than the authorization itself (bench/soak.py)."""

    def register(function: F) -> F:
        @functools.wraps(function)
        def authorized(**parameters: str) -> Any:
            event = app.current_event
            target = target_of(event.http_method, event.path)
            if target is not None:
                _service().authorize(_caller(), target)
            return function(**parameters)

        app.route(rule, method)(authorized)
        return function

    return register


@_operation("PUT", "/environments/<Name>")
def create_environment(Name: str) -> dict[str, Any]:
    request = parse(CreateEnvironmentInput, {**_body(), "Name": percent_decode(Name)})
    return _service().create_environment(request, _caller())


@_operation("GET", "/environments/<Name>")
def get_environment(Name: str) -> dict[str, Any]:
    return _service().get_environment(parse(NameInput, {"Name": percent_decode(Name)}).Name)


@_operation("PATCH", "/environments/<Name>")
def update_environment(Name: str) -> dict[str, Any]:
    request = parse(UpdateEnvironmentInput, {**_body(), "Name": percent_decode(Name)})
    return _service().update_environment(request, _caller())


@_operation("DELETE", "/environments/<Name>")
def delete_environment(Name: str) -> dict[str, Any]:
    return _service().delete_environment(parse(NameInput, {"Name": percent_decode(Name)}).Name, _caller())


@_operation("GET", "/environments")
def list_environments() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    request = parse(ListEnvironmentsInput, {
        k: v for k, v in {"MaxResults": _int_query("MaxResults"), "NextToken": query.get("NextToken")}.items()
        if v is not None
    })
    return _service().list_environments(request.MaxResults, request.NextToken)


@_operation("POST", "/tags/<ResourceArn>")
def tag_resource(ResourceArn: str) -> dict[str, Any]:
    request = parse(TagResourceInput, {**_body(), "ResourceArn": percent_decode(ResourceArn)})
    return _service().tag_resource(request.ResourceArn, request.Tags)


@_operation("DELETE", "/tags/<ResourceArn>")
def untag_resource(ResourceArn: str) -> dict[str, Any]:
    keys = (app.current_event.multi_value_query_string_parameters or {}).get("tagKeys")
    request = parse(UntagResourceInput, {"ResourceArn": percent_decode(ResourceArn), **({"tagKeys": keys} if keys is not None else {})})
    return _service().untag_resource(request.ResourceArn, request.tagKeys)


@_operation("GET", "/tags/<ResourceArn>")
def list_tags_for_resource(ResourceArn: str) -> dict[str, Any]:
    request = parse(ResourceArnInput, {"ResourceArn": percent_decode(ResourceArn)})
    return _service().list_tags_for_resource(request.ResourceArn)


@_operation("POST", "/clitoken/<Name>")
def create_cli_token(Name: str) -> dict[str, Any]:
    return _service().create_cli_token(parse(NameInput, {"Name": percent_decode(Name)}).Name, _caller())


@_operation("POST", "/webtoken/<Name>")
def create_web_login_token(Name: str) -> dict[str, Any]:
    return _service().create_web_login_token(parse(NameInput, {"Name": percent_decode(Name)}).Name, _caller())


@_operation("POST", "/restapi/<Name>")
def invoke_rest_api(Name: str) -> dict[str, Any]:
    request = parse(InvokeRestApiInput, {**_body(), "Name": percent_decode(Name)})
    return _service().invoke_rest_api(request, _caller())


@_operation("POST", "/metrics/environments/<EnvironmentName>")
def publish_metrics(EnvironmentName: str) -> dict[str, Any]:
    request = parse(PublishMetricsInput, {**_body(), "EnvironmentName": percent_decode(EnvironmentName)})
    return _service().publish_metrics(request)


# ---- Airdock extensions (not in MWAA's API; see core/operations.py EXTENSIONS)


@_operation("POST", "/environments/<Name>/pause")
def pause_environment(Name: str) -> dict[str, Any]:
    return _service().pause_environment(parse(NameInput, {"Name": percent_decode(Name)}).Name, _caller())


@_operation("POST", "/environments/<Name>/resume")
def resume_environment(Name: str) -> dict[str, Any]:
    return _service().resume_environment(parse(NameInput, {"Name": percent_decode(Name)}).Name, _caller())


def _render_error(error: AirdockError) -> Response:
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=json.dumps(error.body()),
        headers={"x-amzn-ErrorType": error.code},
    )


@app.exception_handler(AirdockError)
def handle_airdock_error(error: AirdockError) -> Response:
    return _render_error(error)


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response:
    # The user gets MWAA's opaque 500; the trace stays in our log, never in the response.
    log.exception("unhandled error")
    observability.count(observability.API_INTERNAL_ERRORS)
    return _render_error(InternalError("An internal error occurred. Try again later."))


@app.not_found
def handle_not_found(error: Exception) -> Response:
    event = app.current_event
    return Response(
        status_code=404,
        content_type="application/json",
        body=json.dumps({"message": f"No operation matches {event.http_method} {event.path}."}),
        headers={"x-amzn-ErrorType": "UnknownOperationException"},
    )


# What quote(..., safe="") leaves: such a segment is already one segment, as boto3 sends the ARN.
_ONE_ENCODED_SEGMENT = re.compile(r"[A-Za-z0-9_.~%-]+")


def _normalise_path(event: dict[str, Any]) -> None:
    """ResourceArn contains '/' (environment/NAME). Whether the front door hands us the path
    encoded or decoded, re-encode the ARN so it stays one path segment for routing."""
    path = event.get("path") or ""
    if path.startswith("/tags/") and not _ONE_ENCODED_SEGMENT.fullmatch(path, len("/tags/")):
        event["path"] = "/tags/" + quote(percent_decode(path[len("/tags/"):]), safe="")


@observability.instrument
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _normalise_path(event)
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    response = app.resolve(event, context)
    headers = response.setdefault("headers", {}) or {}
    headers["x-amzn-RequestId"] = request_id
    response["headers"] = headers
    if response.get("multiValueHeaders"):
        response["multiValueHeaders"].pop("x-amzn-RequestId", None)
    return response
