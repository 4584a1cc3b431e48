"""API Gateway, emulated: an HTTP request as the REST API's Lambda proxy event (what the same
handlers get on AWS), and the function's proxy response back as HTTP; the error bodies and
request ids API Gateway gives."""
from __future__ import annotations

import json
import random
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from airdock.core.paths import percent_decode

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def proxy_event(
    scope: Scope, raw_path: str, query: str, headers: list[tuple[str, str]], body: bytes, access_key: str, principal: str
) -> dict[str, Any]:
    single = dict(headers)  # a repeated header: its last value, as API Gateway's `headers`
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    q_single: dict[str, str] = {}
    q_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True) if query else ():
        q_single[name] = value
        q_multi.setdefault(name, []).append(value)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        text, is_b64 = base64.b64encode(body).decode(), True
    client = scope.get("client") or ("127.0.0.1", 0)
    return {
        "resource": "/{proxy+}",
        "path": raw_path,
        "httpMethod": scope["method"],
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": q_single or None,
        "multiValueQueryStringParameters": q_multi or None,
        "pathParameters": {"proxy": percent_decode(raw_path.lstrip("/"))},
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id(),
            "stage": "local",
            "httpMethod": scope["method"],
            "path": raw_path,
            "resourcePath": "/{proxy+}",
            "identity": {"accessKey": access_key, "userArn": principal, "caller": principal, "sourceIp": client[0]},
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def request_id() -> str:
    """A fresh UUID4 for x-amzn-RequestId. Request ids need to be unique, not secret: uuid4()
    reads os.urandom, a system call that releases the GIL, and under load the event loop then
    waited for a worker thread to hand it back on every request (bench/soak.py)."""
    value = f"{random.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


# The version (4) and variant (RFC 4122) bits, set as uuid.UUID(version=4) sets them, without
# building a UUID object per request.
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (0x4000 << 64)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def send_json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload).encode()
    all_headers = {"content-type": "application/json", "x-amzn-requestid": request_id(), **(headers or {}),
                   "content-length": str(len(data))}
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
    })
    await send({"type": "http.response.body", "body": data})


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    await send_json(send, status, {"message": message, "Message": message}, {"x-amzn-errortype": code})


async def send_proxy_response(send: Send, response: dict[str, Any]) -> None:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        import base64

        data = base64.b64decode(body)
    else:
        data = body.encode()
    # A length instead of chunked encoding, as API Gateway answers (the function's own
    # Content-Length, if it set one, is replaced: the body may have been re-encoded here).
    headers: list[tuple[bytes, bytes]] = [(b"content-length", str(len(data)).encode())]
    seen: set[str] = {"content-length"}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        if name.lower() != "content-length":
            seen.add(name.lower())
            headers.extend((name.encode(), str(v).encode()) for v in values)
    for name, value in (response.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name.encode(), str(value).encode()))
    await send({"type": "http.response.start", "status": int(response.get("statusCode", 500)), "headers": headers})
    await send({"type": "http.response.body", "body": data})
