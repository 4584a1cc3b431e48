"""A server killed mid-workflow resumes it on restart: no environment stays CREATING or DELETING."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airdock.local.sample import EXAMPLE_DAG
from support.live_server import LiveServer
from support.environments import BUCKET, create, wait_gone, wait_status
from support.processes import processes_under as _processes_under

pytestmark = pytest.mark.airflow


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    bucket = data / "buckets" / BUCKET / "dags"
    bucket.mkdir(parents=True)
    (bucket / "example_hello.py").write_text(EXAMPLE_DAG)
    yield data
    assert not _processes_under(data)


def _wait_progress(server: LiveServer, needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in server.log():
            return
        time.sleep(0.2)
    raise TimeoutError(f"never saw {needle!r} in the server log")


def test_given_a_server_killed_during_create_and_during_delete_when_restarted_then_each_workflow_finishes(data_dir: Path) -> None:
    first = LiveServer(data_dir, provision=True).start()
    create(first.client(), "crashy", "3.3.2")
    _wait_progress(first, "migrating the Airflow metadata database")
    first.kill()

    second = LiveServer(data_dir, provision=True, port=first.port).start()
    try:
        env = wait_status(second.client(), "crashy", {"AVAILABLE", "CREATE_FAILED"})
        assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
        second.client().delete_environment(Name="crashy")
        # Accepted: the record says DELETING and the workflow is recorded (not the access log,
        # which the server no longer writes by default)
        assert second.client().get_environment(Name="crashy")["Environment"]["Status"] == "DELETING"
        second.kill()
    finally:
        second.kill()

    third = LiveServer(data_dir, provision=True, port=first.port).start()
    try:
        wait_gone(third.client(), "crashy")
        assert not (data_dir / "envs" / "crashy").exists()
    finally:
        third.stop()
