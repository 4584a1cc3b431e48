"""The observability and lifecycle commands against a control-plane-only `airdock serve` (no
Airflow): PublishMetrics through boto3 comes back out of `airdock metrics`; `airdock events` shows
the status events; `airdock pause`/`resume` reach the signed API extensions and get MWAA-shaped
errors for an environment that is not running."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from support.live_server import REPO, LiveServer

BUCKET = "airdock-observability"
NAME = "observed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-observability") / "data").start()
    (live.bucket(BUCKET) / "dags").mkdir(parents=True, exist_ok=True)
    live.client().create_environment(
        Name=NAME, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags", NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    )
    yield live
    live.stop()


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airdock.cli", *args, "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_publish_metrics_round_trips_to_the_metrics_command(server: LiveServer) -> None:
    server.client().publish_metrics(EnvironmentName=NAME, MetricData=[
        {"MetricName": "QueuedTasks", "Timestamp": datetime.now(timezone.utc), "Value": 3.0, "Unit": "Count",
         "Dimensions": [{"Name": "Function", "Value": "Executor"}]},
        {"MetricName": "DAGParseTime", "Timestamp": datetime.now(timezone.utc), "Unit": "Seconds",
         "StatisticValues": {"SampleCount": 2, "Sum": 3.0, "Minimum": 1.0, "Maximum": 2.0}},
    ])
    out = cli(server, "metrics", NAME, "--json")
    assert out.returncode == 0, out.stderr
    rows: dict[str, Any] = {row["MetricName"]: row for row in json.loads(out.stdout)["Metrics"]}
    assert rows["QueuedTasks"]["Latest"] == 3.0 and rows["QueuedTasks"]["Dimensions"] == {"Function": "Executor"}
    assert rows["DAGParseTime"]["Latest"] == 1.5 and rows["DAGParseTime"]["Unit"] == "Seconds"  # Sum / SampleCount
    table = cli(server, "metrics", NAME).stdout
    assert "QueuedTasks" in table and "Function=Executor" in table


def test_the_events_command_shows_the_status_events(server: LiveServer) -> None:
    out = cli(server, "events", NAME, "--json")
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["detail"]["Status"] for e in events] == ["CREATING"]
    assert events[0]["source"] == "aws.airflow"
    assert "CREATING" in cli(server, "events").stdout


def test_pause_and_resume_commands_call_the_signed_api_and_report_its_errors(server: LiveServer) -> None:
    # Control-plane-only: the environment stays CREATING, which can be neither paused nor resumed.
    pause = cli(server, "pause", NAME, "--endpoint-url", server.endpoint)
    assert pause.returncode == 1 and "only an AVAILABLE or UNAVAILABLE environment can be paused" in pause.stderr
    resume = cli(server, "resume", NAME, "--endpoint-url", server.endpoint)
    assert resume.returncode == 1 and "only a paused (PENDING) environment can be resumed" in resume.stderr
    missing = cli(server, "pause", "nope", "--endpoint-url", server.endpoint)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_the_extensions_need_a_valid_signature(server: LiveServer) -> None:
    import requests

    response = requests.post(f"{server.endpoint}/environments/{NAME}/pause", timeout=5)
    assert response.status_code == 403
