"""What `airdock serve` adds for the web console (issue 9), next to MWAA's API:

* `GET /console/…`: the static console (plain HTML/CSS/ES modules from `console/` at the repo root,
  or `AIRDOCK_CONSOLE_DIR`). Unsigned, like any static site; every call the page makes is signed.
* Read-only API extensions, SigV4-verified exactly like MWAA's operations (no back door):
  `GET /_airdock/environments/{Name}/metrics?since=&names=` — points from the metrics store
  (the local CloudWatch `AmazonMWAA` namespace): `{"Metrics": {name: [[ts, value], …]}}`;
  `GET /_airdock/environments/{Name}/events?limit=` — recent status-change events (the local
  EventBridge `aws.airflow` events);
  `GET /_airdock/environments/{Name}/logs/{Module}?limit=` — the tail of one LoggingConfiguration
  module's log (the local `airflow-{Name}-{Module}` log group).
MWAA's twelve operations are untouched; on AWS the same extensions would sit behind the same
AWS_IAM authorizer.
"""
from __future__ import annotations

import asyncio
import json
import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, unquote

from airdock.core.errors import AirdockError
from airdock.local.sigv4 import SigV4Error, verify_request

Send = Callable[[dict[str, Any]], Awaitable[None]]

CONSOLE_PREFIX = "/console"
EXTENSIONS = ("metrics", "events", "logs")
DEFAULT_METRICS = ("QueuedTasks", "RunningTasks", "WorkerCount")
METRICS_WINDOW_MAX_S = 24 * 3600
MAX_POINTS = 600  # per series; a chart on a laptop screen needs no more
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}
# The console calls only its own origin locally; deployed on AWS the API is another origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def console_dir() -> Path:
    import airdock

    # layers/core/airdock/__init__.py → the repository root holds console/
    return Path(airdock.__file__).resolve().parents[3] / "console"


def is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def is_extension(path: str) -> bool:
    parts = path.split("/")  # ['', '_airdock', 'environments', Name, route, ...]
    return len(parts) >= 5 and parts[1] == "_airdock" and parts[2] == "environments" and parts[4] in EXTENSIONS


# ---------------------------------------------------------------------------- static files


async def serve_static(scope: dict[str, Any], send: Send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await _send(send, 405, b"Method not allowed\n", "text/plain; charset=utf-8", {"allow": "GET, HEAD"})
        return
    path: str = scope["path"]
    if path == CONSOLE_PREFIX:
        await _send(send, 308, b"", "text/plain; charset=utf-8", {"location": CONSOLE_PREFIX + "/"})
        return
    relative = path[len(CONSOLE_PREFIX) + 1:] or "index.html"
    root = console_dir().resolve()
    target = (root / relative).resolve()
    if root not in target.parents or not target.is_file() or any(p.startswith(".") for p in Path(relative).parts):
        await _send(send, 404, b"Not found\n", "text/plain; charset=utf-8")
        return
    data = await asyncio.to_thread(target.read_bytes)
    kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
    if target.suffix == ".html":
        headers.update({"content-security-policy": _CSP, "x-frame-options": "DENY"})
    await _send(send, 200, b"" if scope["method"] == "HEAD" else data, kind, headers, length=len(data))


# ---------------------------------------------------------------------------- signed extensions


async def handle_extension(context: Any, clock: Callable[[], Any], scope: dict[str, Any], body: bytes,
                           send: Send) -> None:
    raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
    query = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    try:
        identity = verify_request(method=scope["method"], raw_path=raw_path, query_string=query, headers=headers,
                                  body=body, secret_for=context.keys.secret_for, now=clock())
    except SigV4Error as exc:
        await _error(send, exc.status, exc.code, exc.message)
        return
    if scope["method"] != "GET":
        await _error(send, 404, "UnknownOperationException", f"No operation matches {scope['method']} {scope['path']}.")
        return
    parts = scope["path"].split("/")
    name, route, rest = unquote(parts[3]), parts[4], parts[5:]
    try:  # per-key policies (issue 10): these reads count as airflow:GetEnvironment
        context.authorize_extension(identity.access_key_id, name)
    except AirdockError as exc:
        await _error(send, exc.status, exc.code, exc.message)
        return
    params = dict(parse_qsl(query, keep_blank_values=True))
    try:
        status, payload = await asyncio.to_thread(_dispatch, context, name, route, rest, params)
    except ValueError as exc:
        await _error(send, 400, "ValidationException", str(exc))
        return
    if status == 404:
        await _error(send, 404, "ResourceNotFoundException", payload["message"])
        return
    await _json(send, status, payload)


def _dispatch(context: Any, name: str, route: str, rest: list[str], params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if route == "events":
        if rest:
            return 404, {"message": "No such Airdock extension route."}
        limit = _int(params, "limit", 50, 1, 1000)
        return 200, {"Name": name, "Events": context.events.read(name, limit)}
    record = context.repository.get(name)
    if record is None:
        return 404, {"message": f"Environment {name} not found."}
    if route == "metrics" and not rest:
        return 200, metrics(context.metrics, name, params)
    if route == "logs" and len(rest) == 1:
        return 200, logs(context, record, unquote(rest[0]), params)
    return 404, {"message": "No such Airdock extension route."}


def metrics(store: Any, name: str, params: dict[str, str]) -> dict[str, Any]:
    now = time.time()
    since = _float(params, "since", now - 3600)
    since = max(since, now - METRICS_WINDOW_MAX_S)
    wanted = [n for n in (params.get("names") or ",".join(DEFAULT_METRICS)).split(",") if n][:10]
    series: dict[str, list[list[float]]] = {}
    for metric in wanted:
        points = [[round(p.timestamp, 3), p.value] for p in store.query(name, metric, since)]
        if len(points) > MAX_POINTS:  # keep the shape: every k-th point, and always the last
            step = -(-len(points) // MAX_POINTS)
            points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
        series[metric] = points
    return {"Name": name, "Since": since, "Until": now, "Metrics": series}


def logs(context: Any, record: Any, module_name: str, params: dict[str, str]) -> dict[str, Any]:
    from airdock.core.logs import MODULES, log_group_name, module_for

    try:
        module = module_for(module_name)
    except ValueError as exc:
        raise ValueError(f"Invalid Module: {exc}") from None
    limit = _int(params, "limit", 200, 1, 2000)
    member = next(m for m, mod in MODULES.items() if mod == module)
    config = getattr(record.environment.LoggingConfiguration, member, None)
    enabled = bool(config and getattr(config, "Enabled", False))
    events = [{"timestamp": e.timestamp, "stream": e.stream, "level": e.level, "message": e.message}
              for e in context.logs.read(record.name, module, limit=limit)]
    return {"Name": record.name, "Module": module, "LogGroup": log_group_name(record.name, module),
            "Enabled": enabled, "LogLevel": getattr(config, "LogLevel", None), "Events": events}


def _int(params: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Invalid {key}: {raw!r} is not an integer.") from None
    return min(max(value, low), high)


def _float(params: dict[str, str], key: str, default: float) -> float:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"Invalid {key}: {raw!r} is not a number (epoch seconds).") from None


# ---------------------------------------------------------------------------- responses


async def _send(send: Send, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None,
                length: int | None = None) -> None:
    all_headers = {"content-type": content_type, "content-length": str(len(data) if length is None else length),
                   **(headers or {})}
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()]})
    await send({"type": "http.response.body", "body": data})


async def _json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    await _send(send, status, json.dumps(payload, default=str).encode(), "application/json",
                {"x-amzn-requestid": str(uuid.uuid4()), **(headers or {})})


async def _error(send: Send, status: int, code: str, message: str) -> None:
    await _json(send, status, {"message": message, "Message": message}, {"x-amzn-errortype": code})
