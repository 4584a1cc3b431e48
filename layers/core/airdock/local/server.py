"""`airdock serve`: the local endpoint.

An ASGI app that verifies SigV4 like API Gateway's AWS_IAM auth, turns each request into the API
Gateway proxy event, runs the same Lambda handler in-process (on the event loop; InvokeRestApi,
which waits on Airflow, on a worker thread) and returns its answer; writes are answered once on
disk (group_commit.py). Routing is on the raw path, so any Host header works (with or without
the `api.`/`env.`/`ops.` prefix botocore injects).
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, unquote

from airdock import __version__
from airdock.local import console_routes
from airdock.core.errors import AirdockError
from airdock.core.operations import ALL_OPERATIONS
from airdock.core.paths import percent_decode
from airdock.local.functions import load_function_instance
from airdock.local.context import LocalContext
from airdock.local import sts
from airdock.local.serverless import endpoint as serverless_endpoint
from airdock.local.sigv4 import SigV4Error, verify_request

log = logging.getLogger("airdock.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# API Gateway refuses payloads above 10 MB and Lambda above 6 MB; MWAA requests are tiny.
MAX_BODY_BYTES = 6 * 1024 * 1024


# Request line + headers. API Gateway allows 10 KiB; this is looser so a legitimate UntagResource
# with 50 long Unicode tag keys (percent-encoded in the query) still fits.
MAX_HEAD_BYTES = 128 * 1024


def bounded_http_protocol() -> type:
    """uvicorn's httptools protocol with a cap on the request head.

    httptools buffers a header until it is complete and uvicorn sets no limit, so one endless
    header would grow the process without bound. Bytes received while the head is incomplete are
    counted; past MAX_HEAD_BYTES the connection gets 431 and is closed (memory stays within the
    cap plus one read)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc]
        _in_head = True
        _head_bytes = 0  # bytes received while the head is incomplete (bounds memory)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(OneSendPerAnswer(transport))

        def on_response_complete(self) -> None:
            self.transport.flush()  # the OneSendPerAnswer connection_made put in place
            super().on_response_complete()

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse_head()
                    return
                self._head_bytes += len(data)
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            # A head that arrived in few large reads passes the memory check above; its exact
            # size (the URL and the headers uvicorn collected) goes to the app, which answers
            # 431 before touching the request.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            self.scope["airdock.head_bytes"] = size  # type: ignore[typeddict-unknown-key]
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

        def _refuse_head(self) -> None:
            message = f"Request line and headers exceed {MAX_HEAD_BYTES} bytes."
            body = json.dumps({"message": message, "Message": message}).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"x-amzn-errortype: ValidationException\r\nconnection: close\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode() + body)
            self.transport.close()
            self._in_head, self._head_bytes = False, 0

    return BoundedHttpToolsProtocol


class OneSendPerAnswer:
    """A transport that sends an answer's head and body in a single send().

    uvicorn writes them in two calls. On loopback the first send() wakes the client, which then
    sleeps again until the body arrives. Writes are held until the protocol calls `flush` (its
    answer is complete) or the connection closes, which sends what is pending first, so nothing
    is dropped or reordered. An interim answer (`100 Continue`) goes out at once: the client
    waits for it before sending its body. Everything else (flow control, addresses) is the real
    transport's. About 5 % of the server's CPU per request (interleaved runs of bench/soak.py's
    load on two servers)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending.append(bytes(data))
        if self._pending[-1].startswith(b"HTTP/1.1 1"):
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._pending)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# Path prefixes of the operations that call the environment's Airflow (InvokeRestApi).
_REACHES_AIRFLOW = tuple(op.path.split("{", 1)[0] for op in ALL_OPERATIONS if op.reaches_airflow)


class LocalEndpoint:
    def __init__(self, context: LocalContext, clock: Callable[[], datetime] | None = None) -> None:
        self.context = context
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        # A copy of its own: the override below must not reach another host of the handler in
        # this process (a test running the Lambda composition, another endpoint).
        self.api = load_function_instance("api", f"endpoint{id(self)}")
        # Powertools' own dependency injection swaps the AWS adapters for the local ones.
        self.api.app.dependency_overrides[self.api.environment_service] = lambda: context.service
        # One copy of the API function per worker thread (see load_function_instance).
        self._thread_api = threading.local()
        self._thread_api.module = self.api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope.get("airdock.head_bytes", 0) > MAX_HEAD_BYTES:
            await _send_error(send, 431, "ValidationException", f"Request line and headers exceed {MAX_HEAD_BYTES} bytes.")
            return
        if path == "/_airdock/health":
            await _send_json(send, 200, self._health())
            return
        if path == "/_airdock/openapi.json":
            from airdock.openapi import openapi_document

            await _send_json(send, 200, openapi_document())
            return
        if console_routes.is_console(path):  # the static web console (issue 9); unsigned files
            await console_routes.serve_static(scope, send)
            return
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _send_error(send, 413, "ValidationException", f"Request body exceeds {MAX_BODY_BYTES} bytes.")
            return
        if serverless_endpoint.is_serverless(scope):  # MWAA Serverless: POST / with X-Amz-Target
            await serverless_endpoint.handle(self.context, self.clock, scope, body, send)
            return
        if path == serverless_endpoint.LOGS_PATH and scope["method"] == "GET":  # the console's task logs
            await serverless_endpoint.handle_logs(self.context, self.clock, scope, body, send)
            return
        if sts.is_sts(scope, body):  # STS GetCallerIdentity (clients learning their account)
            await sts.handle(self.context, self.clock, scope, body, send)
            return
        if console_routes.is_extension(path):  # the console's signed read-only extensions
            await console_routes.handle_extension(self.context, self.clock, scope, body, send)
            return
        if path.startswith("/_airdock/environments/"):
            await self._extension(scope, body, send)
            return
        await self._api(scope, body, send)

    async def _extension(self, scope: Scope, body: bytes, send: Send) -> None:
        """Airdock's API extension (not an MWAA operation; SigV4-signed like them):
        `GET /_airdock/environments/{Name}/workers` → current/desired Celery workers, each worker's
        state and busy tasks, and the autoscaler's last decisions (docs: README, "API extensions")."""
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            identity = verify_request(method=scope["method"], raw_path=raw_path,
                                      query_string=scope.get("query_string", b"").decode("utf-8", "surrogateescape"),
                                      headers=headers, body=body, secret_for=self.context.keys.secret_for,
                                      now=self.clock())
        except SigV4Error as exc:
            await _send_error(send, exc.status, exc.code, exc.message)
            return
        parts = scope["path"].split("/")  # ['', '_airdock', 'environments', Name, 'workers']
        if len(parts) != 5 or parts[4] != "workers" or scope["method"] != "GET":
            await _send_error(send, 404, "ResourceNotFoundException", "No such Airdock extension route.")
            return
        name = unquote(parts[3])
        try:  # per-key policies (issue 10): a read of the environment, airflow:GetEnvironment
            self.context.authorize_extension(identity.access_key_id, name)
        except AirdockError as exc:
            await _send_error(send, exc.status, exc.code, exc.message)
            return
        result = await asyncio.to_thread(self.context.worker_status, name)
        if result is None:
            await _send_error(send, 404, "ResourceNotFoundException", f"Environment {name} not found.")
            return
        await _send_json(send, 200, result)

    async def _api(self, scope: Scope, body: bytes, send: Send) -> None:
        # surrogateescape keeps any non-UTF-8 byte intact, so the signature is checked over
        # exactly what the client signed.
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
        query = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        keys = self.context.keys
        try:
            identity = verify_request(
                method=scope["method"],
                raw_path=raw_path,
                query_string=query,
                headers=headers,
                body=body,
                secret_for=keys.secret_for,
                now=self.clock(),
            )
        except SigV4Error as exc:
            await _send_error(send, exc.status, exc.code, exc.message)
            return
        key = keys.lookup(identity.access_key_id)
        event = _proxy_event(scope, raw_path, query, headers, body, identity.access_key_id, key.principal_arn if key else "")
        commits = self.context.group_commit
        if raw_path.startswith(_REACHES_AIRFLOW):
            response = await asyncio.to_thread(self._handle, event)
        elif scope["method"] == "GET" or commits is None:
            # Every other operation answers from the SQLite store (a read is a row or a page, a
            # write one conditional statement) in well under a millisecond of CPU: run it here,
            # on the event loop. On worker threads the GIL hand-offs between them and the loop
            # cost more than the work itself (bench/soak.py). Only calls into Airflow, of
            # unbounded length, leave the loop.
            response = self._handle(event)
        else:
            try:  # answered once on disk, with this turn's other writes (group_commit.py)
                response = await commits.write(lambda: self._handle(event))
            except OSError as exc:
                log.error("could not make state.db durable: %s", exc)
                await _send_error(send, 500, "InternalServerException", "An internal error occurred. Try again later.")
                return
        await _send_proxy_response(send, response)

    def _handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run the API function on this thread's own copy of it (the loop's, or a worker's)."""
        api = getattr(self._thread_api, "module", None)
        if api is None:
            api = load_function_instance("api", f"t{threading.get_ident()}")
            api.app.dependency_overrides[api.environment_service] = lambda: self.context.service
            self._thread_api.module = api
        return api.handler(event, None)

    def _health(self) -> dict[str, Any]:
        try:
            self.context.repository.list_names(1)
            store = "ok"
        except Exception as exc:  # report, don't crash: health must always answer
            store = f"error: {exc.__class__.__name__}"
        return {"status": "ok" if store == "ok" else "degraded", "version": __version__, "store": store}

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.context.start)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.context.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _proxy_event(
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
            "requestId": _request_id(),
            "stage": "local",
            "httpMethod": scope["method"],
            "path": raw_path,
            "resourcePath": "/{proxy+}",
            "identity": {"accessKey": access_key, "userArn": principal, "caller": principal, "sourceIp": client[0]},
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def _request_id() -> str:
    """A fresh UUID4 for x-amzn-RequestId. Request ids need to be unique, not secret: uuid4()
    reads os.urandom, a system call that releases the GIL, and under load the event loop then
    waited for a worker thread to hand it back on every request (bench/soak.py)."""
    value = f"{random.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


# The version (4) and variant (RFC 4122) bits, set as uuid.UUID(version=4) sets them, without
# building a UUID object per request.
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (0x4000 << 64)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
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


async def _send_json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload).encode()
    all_headers = {"content-type": "application/json", "x-amzn-requestid": _request_id(), **(headers or {}),
                   "content-length": str(len(data))}
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
    })
    await send({"type": "http.response.body", "body": data})


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    await _send_json(send, status, {"message": message, "Message": message}, {"x-amzn-errortype": code})


async def _send_proxy_response(send: Send, response: dict[str, Any]) -> None:
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
