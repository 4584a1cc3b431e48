"""MWAA Serverless on the local endpoint: `POST /` with `X-Amz-Target: AmazonMWAAServerless.*`.

SigV4 is checked for the service `airflow-serverless` (what boto3 and the AWS CLI sign with), the
request becomes the API Gateway proxy event and `functions/serverless_api/app.py` answers it on a
worker thread: creates and updates load the definition in a throw-away process and runs talk to
the engine, neither of which may hold up the event loop. The repository commits durably itself
(synchronous=FULL), so a write is on disk before it is answered, without the group commit.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, Awaitable, Callable

from airdock.local.functions import load_function
from airdock.local.sigv4 import SigV4Error, verify_request

SIGNING_NAME = "airflow-serverless"
TARGET_PREFIX = b"AmazonMWAAServerless."

Send = Callable[[dict[str, Any]], Awaitable[None]]


def is_serverless(scope: dict[str, Any]) -> bool:
    if scope.get("method") != "POST" or scope.get("path") != "/":
        return False
    return any(name.lower() == b"x-amz-target" and value.startswith(TARGET_PREFIX)
               for name, value in scope.get("headers", []))


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    data = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/x-amz-json-1.0"), (b"x-amzn-errortype", code.encode()),
        (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def handle(context: Any, clock: Callable[[], datetime], scope: dict[str, Any], body: bytes, send: Send) -> None:
    from airdock.local.apigw_events import proxy_event, send_proxy_response

    raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
    query = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    keys = context.keys
    try:
        identity = verify_request(method=scope["method"], raw_path=raw_path, query_string=query, headers=headers,
                                  body=body, secret_for=keys.secret_for, now=clock(), service=SIGNING_NAME)
    except SigV4Error as exc:
        await _send_error(send, exc.status, exc.code, exc.message)
        return
    key = keys.lookup(identity.access_key_id)
    event = proxy_event(scope, raw_path, query, headers, body, identity.access_key_id,
                         key.principal_arn if key else "")
    function = load_function("serverless_api")
    response = await asyncio.to_thread(function.handler, event, None, context.serverless.service)
    await send_proxy_response(send, response)


LOGS_PATH = "/_airdock/serverless/task-logs"


async def handle_logs(context: Any, clock: Callable[[], datetime], scope: dict[str, Any], body: bytes, send: Send) -> None:
    """Airdock's read-only extension for the console (SigV4 for `airflow-serverless`, authorized as
    GetTaskInstance): `GET /_airdock/serverless/task-logs?WorkflowArn=&RunId=&TaskId=[&Attempt=]`
    → {LogGroup, LogStream, TaskId, AttemptNumber, Events: [{timestamp, level, message}]}."""
    from urllib.parse import parse_qs

    from airdock.core.errors import AirdockError
    from airdock.core.ports import Caller

    raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
    query = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    try:
        identity = verify_request(method=scope["method"], raw_path=raw_path, query_string=query, headers=headers,
                                  body=body, secret_for=context.keys.secret_for, now=clock(), service=SIGNING_NAME)
    except SigV4Error as exc:
        await _send_error(send, exc.status, exc.code, exc.message)
        return
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    key = context.keys.lookup(identity.access_key_id)
    caller = Caller(access_key_id=identity.access_key_id, principal_arn=key.principal_arn if key else "anonymous")
    try:
        attempt = int(params["Attempt"]) if params.get("Attempt") else None
        result = await asyncio.to_thread(context.serverless.service.task_log, params.get("WorkflowArn", ""),
                                         params.get("RunId", ""), params.get("TaskId", ""), attempt, caller)
    except ValueError:
        await _send_error(send, 400, "ValidationException", "Attempt must be a number.")
        return
    except AirdockError as exc:
        await _send_error(send, exc.status, exc.code, exc.message)
        return
    data = json.dumps(result).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
