"""API fuzzing (seeded, small): schemathesis generates positive and negative requests for every
operation of /_airdock/openapi.json against a control-plane-only server, signed with SigV4.
The long run is bench/fuzz.py (≥ 10 000 requests)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import fuzz
from support.live_server import LiveServer


@pytest.fixture
def fuzz_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", env={"AIRDOCK_AUTOSCALER": "off"}).start()
    fuzz.seed_state(server)
    yield server
    server.stop()


def test_given_generated_requests_then_no_5xx_every_response_matches_the_schema_and_state_stays_consistent(
        fuzz_server: LiveServer) -> None:
    report = fuzz.run(fuzz_server, examples_per_operation=15, seed=20261129)
    print(report.line())
    assert report.requests >= 300
    assert (report.server_errors, report.schema_violations, report.inconsistent) == (0, 0, 0), \
        "\n".join(report.examples)
    assert not report.skipped
    # Not only refusals: some generated requests got through to real state changes.
    assert report.statuses[200] > 20
