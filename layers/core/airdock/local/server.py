"""`airdock serve`: the local endpoint.

An ASGI app that verifies SigV4 like API Gateway's AWS_IAM auth, turns each request into the API
Gateway proxy event, runs the same Lambda handler in-process (on the event loop; InvokeRestApi,
which waits on Airflow, on a worker thread) and returns its answer; writes are answered once on
disk (group_commit.py). Routing is on the raw path, so any Host header works (with or without
the `api.`/`env.`/`ops.` prefix botocore injects).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import unquote

from airdock import __version__
from airdock.local import console_routes
from airdock.core.errors import AirdockError
from airdock.core.operations import ALL_OPERATIONS
from airdock.local.functions import load_function_instance
from airdock.local.context import LocalContext
from airdock.local import sts
from airdock.local.serverless import endpoint as serverless_endpoint
from airdock.local.apigw_events import (Receive, Scope, Send, proxy_event, read_body, send_error,
                                        send_json, send_proxy_response)
from airdock.local.http_transport import MAX_BODY_BYTES, MAX_HEAD_BYTES
from airdock.local.sigv4 import SigV4Error, verify_request

log = logging.getLogger("airdock.server")


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
            await send_error(send, 431, "ValidationException", f"Request line and headers exceed {MAX_HEAD_BYTES} bytes.")
            return
        if path == "/_airdock/health":
            await send_json(send, 200, self._health())
            return
        if path == "/_airdock/openapi.json":
            from airdock.openapi import openapi_document

            await send_json(send, 200, openapi_document())
            return
        if console_routes.is_console(path):  # the static web console (issue 9); unsigned files
            await console_routes.serve_static(scope, send)
            return
        body = await read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await send_error(send, 413, "ValidationException", f"Request body exceeds {MAX_BODY_BYTES} bytes.")
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
            await send_error(send, exc.status, exc.code, exc.message)
            return
        parts = scope["path"].split("/")  # ['', '_airdock', 'environments', Name, 'workers']
        if len(parts) != 5 or parts[4] != "workers" or scope["method"] != "GET":
            await send_error(send, 404, "ResourceNotFoundException", "No such Airdock extension route.")
            return
        name = unquote(parts[3])
        try:  # per-key policies (issue 10): a read of the environment, airflow:GetEnvironment
            self.context.authorize_extension(identity.access_key_id, name)
        except AirdockError as exc:
            await send_error(send, exc.status, exc.code, exc.message)
            return
        result = await asyncio.to_thread(self.context.worker_status, name)
        if result is None:
            await send_error(send, 404, "ResourceNotFoundException", f"Environment {name} not found.")
            return
        await send_json(send, 200, result)

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
            await send_error(send, exc.status, exc.code, exc.message)
            return
        key = keys.lookup(identity.access_key_id)
        event = proxy_event(scope, raw_path, query, headers, body, identity.access_key_id, key.principal_arn if key else "")
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
                await send_error(send, 500, "InternalServerException", "An internal error occurred. Try again later.")
                return
        await send_proxy_response(send, response)

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
