"""The soak's load (tests/support/soak_load.py), briefly, against a live control-plane server: the
long run is bench/soak.py (50 clients for a minute; read p99 and errors)."""
from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from pathlib import Path

from support.live_server import LiveServer
from support.soak_load import MIX, run_clients, seed_environments


def test_given_the_soak_mix_for_a_few_seconds_then_every_call_succeeds(tmp_path: Path) -> None:
    # Given a server holding a few environments
    server = LiveServer(tmp_path / "data", env={"AIRDOCK_AUTOSCALER": "off"}).start()
    try:
        names = seed_environments(server, 5)
        # When eight clients run the soak's mix for three seconds
        queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
        run_clients(server.port, server.credentials(), names, time.time() + 3, list(range(8)), queue)
        results = queue.get(timeout=10)
        pages = server.client().get_paginator("list_environments").paginate()
        listed = [name for page in pages for name in page["Environments"]]
    finally:
        server.stop()
    # Then every kind of call was made and every one succeeded, and the creates are real
    kinds = Counter(kind for kind, *_ in results)
    assert set(kinds) == {kind for kind, _ in MIX}
    assert [detail for *_, ok, detail in results if not ok] == []
    assert len(listed) == len(names) + kinds["create"]
