"""The environment's web front (images/airflow/web_front.py) run in the test process, as the
entrypoint runs it: loaded by path, since it is no part of the airdock package."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from support.modules import WEB_FRONT, load_by_path


def load_web_front() -> ModuleType:
    return load_by_path(WEB_FRONT, "web_front")


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
