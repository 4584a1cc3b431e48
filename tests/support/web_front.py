"""The environment's web front (airdock_runtime.web_front) run in the test process, as the
entrypoint runs it."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from airdock_runtime import web_front as web_front_module


def load_web_front() -> ModuleType:
    return web_front_module


@contextmanager
def serving(environ: dict[str, str]) -> Iterator[str]:
    """A web front configured by `environ` (its AIRDOCK_* variables) on a free port; yields its URL."""
    web_front = load_web_front()
    server = web_front.WebFront(web_front.Config({**environ, "AIRDOCK_WEB_FRONT_HOST": "127.0.0.1",
                                                  "AIRDOCK_WEB_FRONT_PORT": "0"})).make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
