"""Specification: state under --data-dir survives a restart, and the root keys and identity are
configured the documented way (credentials file, or AIRDOCK_* environment variables)."""
from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from e2e.conftest import BUCKET, create_request
from support.live_server import LiveServer

TAGGED = "arn:aws:airflow:us-east-1:000000000000:environment/keep-1"


def seeded(data_dir: Path, **env: str) -> LiveServer:
    live = LiveServer(data_dir, env=dict(env)).start()
    (live.bucket(BUCKET) / "dags").mkdir(parents=True, exist_ok=True)
    return live


def snapshot(client: Any) -> dict[str, Any]:
    names = [n for page in client.get_paginator("list_environments").paginate() for n in page["Environments"]]
    return {n: client.get_environment(Name=n)["Environment"] for n in names}


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Create environments and tags, stop the server with SIGTERM, start a new one on the same dir."""
    data_dir = tmp_path_factory.mktemp("restart") / "data"
    first = seeded(data_dir)
    client = first.client()
    for i in range(3):
        client.create_environment(**create_request(f"keep-{i}", Tags={"n": str(i)}, MaxWorkers=3 + i))
    client.tag_resource(ResourceArn=TAGGED, Tags={"added": "later"})
    before = snapshot(client)
    key = first.credentials()
    started = time.monotonic()
    first.stop(signal.SIGTERM, timeout=10)
    stop_seconds = time.monotonic() - started
    exit_code = first.process.returncode if first.process else None
    second = seeded(data_dir)
    try:
        yield {"before": before, "server": second, "key": key, "stop_seconds": stop_seconds,
               "exit_code": exit_code, "data_dir": data_dir}
    finally:
        second.stop()


def test_sigterm_stops_the_server_within_a_few_seconds(restarted: dict[str, Any]) -> None:
    assert restarted["exit_code"] is not None
    assert restarted["stop_seconds"] < 5


def test_sigterm_shutdown_exits_with_code_0(restarted: dict[str, Any]) -> None:
    assert restarted["exit_code"] == 0


def test_environments_and_tags_survive_a_restart(restarted: dict[str, Any]) -> None:
    # Given the state before the restart / When read from the new server / Then it is identical
    client = restarted["server"].client()
    assert snapshot(client) == restarted["before"]
    assert set(restarted["before"]) == {"keep-0", "keep-1", "keep-2"}
    assert client.list_tags_for_resource(ResourceArn=TAGGED)["Tags"] == {"n": "1", "added": "later"}


def test_the_restarted_server_keeps_working(restarted: dict[str, Any]) -> None:
    client = restarted["server"].client()
    client.create_environment(**create_request("after-restart"))
    with pytest.raises(ClientError) as caught:
        client.create_environment(**create_request("keep-0"))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "after-restart" in client.list_environments()["Environments"]


def test_the_credentials_file_is_private_and_its_key_survives_a_restart(restarted: dict[str, Any]) -> None:
    path = restarted["data_dir"] / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "[airdock]" in path.read_text()
    # The same key as before the restart (the file was not regenerated), and it still signs
    assert restarted["server"].credentials() == restarted["key"]
    assert "Environments" in restarted["server"].client(key=restarted["key"]).list_environments()


def test_state_survives_a_crash_of_the_server(tmp_path: Path) -> None:
    # Given an environment written just before the server is SIGKILLed
    live = seeded(tmp_path / "data")
    live.client().create_environment(**create_request("crash-1"))
    live.kill()
    # When a new server starts on the same directory / Then the environment is there
    again = seeded(tmp_path / "data")
    try:
        assert again.client().get_environment(Name="crash-1")["Environment"]["Status"] == "CREATING"
    finally:
        again.stop()


# ---------------------------------------------------------------- configuration from the environment

ACCOUNT, REGION = "123456789012", "eu-west-1"
KEY_ID, SECRET = "AKIAAIRDOCKTESTKEY01", "airdock-test-secret-0123456789abcdefghij"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = seeded(tmp_path_factory.mktemp("configured") / "data", AIRDOCK_ACCESS_KEY_ID=KEY_ID,
                  AIRDOCK_SECRET_ACCESS_KEY=SECRET, AIRDOCK_ACCOUNT_ID=ACCOUNT, AIRDOCK_REGION=REGION)
    yield live
    live.stop()


def client_for(live: LiveServer, key_id: str, secret: str) -> Any:
    return boto3.client("mwaa", endpoint_url=live.endpoint, region_name=REGION, aws_access_key_id=key_id,
                        aws_secret_access_key=secret,
                        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))


def test_keys_from_airdock_environment_variables_are_accepted(configured: LiveServer) -> None:
    assert "Environments" in client_for(configured, KEY_ID, SECRET).list_environments()
    with pytest.raises(ClientError) as caught:
        client_for(configured, "AKIAOTHERKEY00000000", SECRET).list_environments()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as caught:
        client_for(configured, KEY_ID, SECRET + "x").list_environments()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_account_and_region_from_the_environment_shape_the_arn(configured: LiveServer) -> None:
    client = client_for(configured, KEY_ID, SECRET)
    expected = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/regional"
    assert client.create_environment(**create_request("regional", Tags={"a": "b"}))["Arn"] == expected
    assert client.get_environment(Name="regional")["Environment"]["Arn"] == expected
    assert client.list_tags_for_resource(ResourceArn=expected)["Tags"] == {"a": "b"}
    # An ARN of the default account/region does not name this environment
    with pytest.raises(ClientError) as caught:
        client.list_tags_for_resource(ResourceArn="arn:aws:airflow:us-east-1:000000000000:environment/regional")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_environment_keys_are_not_written_to_the_credentials_file(configured: LiveServer) -> None:
    path = configured.data_dir / "credentials"
    assert not path.exists() or SECRET not in path.read_text()
    assert os.environ.get("AIRDOCK_SECRET_ACCESS_KEY") != SECRET  # the test process itself is unchanged
