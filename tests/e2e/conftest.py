from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live_server import LiveServer

BUCKET = "airdock-test-dags"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock") / "data").start()
    dags = live.bucket(BUCKET) / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "hello.py").write_text("# a DAG file\n")
    (live.bucket(BUCKET) / "requirements.txt").write_text("\n")
    (live.bucket(BUCKET) / "plugins.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (live.bucket(BUCKET) / "startup.sh").write_text("export FOO=bar\n")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def clock_offset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of seconds the web fronts add to their clock (AIRDOCK_TOKEN_CLOCK_OFFSET_FILE), so a
    test can expire a token without waiting."""
    path = tmp_path_factory.mktemp("clock") / "offset"
    path.write_text("0")
    return path


@pytest.fixture(scope="module")
def mwaa(server: LiveServer) -> Any:
    return server.client()


def create_request(name: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Name": name,
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/airdock-test",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    }
    request.update(overrides)
    return request


def data_dir(server: LiveServer) -> Path:
    return server.data_dir


# Debian's chromium, never a downloaded browser; the flags keep it off this closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is missing: run `make test` (it installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
