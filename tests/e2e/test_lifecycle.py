"""Lifecycle and observability on real Airflow: module logs at their level, health metrics and
PublishMetrics, a maintenance window that restarts the environment under a running task, pause and
resume (by command and by schedule tag).

One provisioning server and one Airflow 3 environment for the whole module; the tests run in file
order and leave the environment AVAILABLE for the next one. The lifecycle loop ticks every 2 s
here, and its clock is moved through AIRDOCK_LIFECYCLE_CLOCK_OFFSET_FILE (the injected clock).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from support.airflow_rest import AirflowRest
from support.live_server import REPO, LiveServer
from support.processes import processes_under

pytestmark = pytest.mark.airflow

BUCKET = "airdock-lifecycle"
NAME = "life"
WINDOW = "MON:03:00"

LEVELS_DAG = '''
from __future__ import annotations

import logging
from datetime import datetime

from airflow import DAG
from airflow.providers.standard.operators.python import PythonOperator


def speak() -> None:
    log = logging.getLogger("airdock.levels")
    log.debug("airdock-marker-debug")
    log.info("airdock-marker-info")
    log.warning("airdock-marker-warning")
    log.error("airdock-marker-error")


with DAG(dag_id="lifecycle_levels", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    PythonOperator(task_id="speak", python_callable=speak)
'''

SLEEP_DAG = '''
from __future__ import annotations

import time
from datetime import datetime

from airflow import DAG
from airflow.providers.standard.operators.python import PythonOperator


def nap() -> None:
    time.sleep(30)


with DAG(dag_id="lifecycle_sleep", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
         default_args={"retries": 0}):
    PythonOperator(task_id="nap", python_callable=nap)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("airdock-lifecycle")
    clock = root / "clock-offset"
    clock.write_text("0")
    live = LiveServer(root / "data", provision=True, env={
        "AIRDOCK_LIFECYCLE_INTERVAL": "2",
        "AIRDOCK_LIFECYCLE_CLOCK_OFFSET_FILE": str(clock),
        "AIRDOCK_HEALTH_METRICS_INTERVAL_S": "3",
        # The autoscaler (issue 7) is not under test here; a fixed single worker keeps the
        # maintenance and pause assertions about this module's code alone.
        "AIRDOCK_AUTOSCALER": "off",
    }).start()
    bucket = live.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    (bucket / "dags" / "lifecycle_levels.py").write_text(LEVELS_DAG)
    (bucket / "dags" / "lifecycle_sleep.py").write_text(SLEEP_DAG)
    mwaa = live.client()
    mwaa.create_environment(
        Name=NAME, ExecutionRoleArn="arn:aws:iam::000000000000:role/airdock-e2e", SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags", EnvironmentClass="mw1.micro", AirflowVersion="3.3.2", MinWorkers=1, MaxWorkers=1,
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        WeeklyMaintenanceWindowStart=WINDOW,
        LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "WARNING"},
                              "SchedulerLogs": {"Enabled": True, "LogLevel": "INFO"}},
    )
    env = wait_status(mwaa, {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    yield live
    try:
        mwaa.delete_environment(Name=NAME)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (live.data_dir / "envs" / NAME).exists():
            time.sleep(1)
    finally:
        live.stop()
    assert not processes_under(live.data_dir), "environment processes outlived the server"


def status_reason(mwaa: Any) -> str:
    """Airdock's StatusReason member (boto3 drops members its model does not know: read the raw reply)."""
    reason: list[str] = []

    def keep(http_response: Any, **_: Any) -> None:
        reason.append(json.loads(http_response.content)["Environment"].get("StatusReason", ""))

    mwaa.meta.events.register("after-call.mwaa.GetEnvironment", keep)
    try:
        mwaa.get_environment(Name=NAME)
    finally:
        mwaa.meta.events.unregister("after-call.mwaa.GetEnvironment", keep)
    return reason[-1]


def wait_status(mwaa: Any, done: set[str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    env: dict[str, Any] = {}
    while time.monotonic() < deadline:
        env = mwaa.get_environment(Name=NAME)["Environment"]
        # PENDING means "paused" once the pause finished (StatusReason says so).
        if env["Status"] in done and (env["Status"] != "PENDING" or status_reason(mwaa).startswith("Paused")):
            return env
        time.sleep(1)
    raise TimeoutError(f"{NAME} stayed {env.get('Status')}")


def cli(server: LiveServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "airdock.cli", *args, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def control(server: LiveServer, operation: str) -> subprocess.CompletedProcess[str]:
    return cli(server, operation, NAME, "--endpoint-url", server.endpoint)


def rest(server: LiveServer) -> AirflowRest:
    env = server.client().get_environment(Name=NAME)["Environment"]
    return AirflowRest(server.data_dir / "envs" / NAME, env["WebserverUrl"], env["AirflowVersion"])


def my_events(server: LiveServer) -> list[tuple[str | None, str]]:
    out = cli(server, "events", NAME, "--json", "--limit", "1000")
    return [(e["detail"].get("PreviousStatus"), e["detail"]["Status"]) for e in map(json.loads, out.stdout.splitlines())]


def trigger(api: AirflowRest, dag_id: str) -> str:
    api.wait_for_dag(dag_id)
    status, body = api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    assert status == 200, body
    status, run = api.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})
    assert status == 200, run
    return str(run["dag_run_id"])


def wait_task(api: AirflowRest, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    ti: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, ti = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        if status == 200 and ti.get("state") in states:
            return ti
        time.sleep(1)
    raise TimeoutError(f"{dag_id}.{task_id} stayed {ti.get('state')}")


# ---------------------------------------------------------------- logs


def test_task_log_lines_appear_in_the_task_module_at_its_level_and_not_below(server: LiveServer) -> None:
    api = rest(server)
    run_id = trigger(api, "lifecycle_levels")
    assert wait_task(api, "lifecycle_levels", run_id, "speak", {"success", "failed"})["state"] == "success"

    deadline = time.monotonic() + 60
    output = ""
    while time.monotonic() < deadline and "airdock-marker-error" not in output:
        output = cli(server, "logs", NAME, "--module", "Task").stdout
        time.sleep(1)
    assert "airdock-marker-warning" in output and "airdock-marker-error" in output
    assert "airdock-marker-info" not in output and "airdock-marker-debug" not in output
    task_lines = [line for line in output.splitlines() if "lifecycle_levels" in line]
    assert task_lines and all(line.split(" ")[1] in ("WARNING", "ERROR", "CRITICAL") for line in task_lines)

    # The Airflow UI reads the same task log through Airflow's own handler: it is still there.
    status, body = api.call("GET", f"/dags/lifecycle_levels/dagRuns/{run_id}/taskInstances/speak/logs/1")
    assert status == 200, body
    assert "airdock-marker-warning" in json.dumps(body)

    scheduler = cli(server, "logs", NAME, "--module", "Scheduler").stdout
    assert scheduler.strip(), "the Scheduler module (enabled, INFO) has lines"
    assert " DEBUG " not in scheduler
    refused = cli(server, "logs", NAME, "--module", "Worker", check=False)
    assert refused.returncode == 1 and "not enabled" in refused.stderr


# ---------------------------------------------------------------- metrics


def test_health_metrics_are_collected_and_published_metrics_round_trip(server: LiveServer) -> None:
    mwaa = server.client()
    mwaa.publish_metrics(EnvironmentName=NAME, MetricData=[{
        "MetricName": "AirdockRoundTrip", "Timestamp": datetime.now(timezone.utc), "Value": 42.5, "Unit": "Count",
        "Dimensions": [{"Name": "Function", "Value": "Test"}],
    }])
    deadline = time.monotonic() + 90
    metrics: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rows = json.loads(cli(server, "metrics", NAME, "--json").stdout)["Metrics"]
        metrics = {row["MetricName"]: row for row in rows}
        if {"SchedulerHeartbeat", "DAGParseTime"} <= set(metrics):
            break
        time.sleep(2)
    assert metrics["AirdockRoundTrip"]["Latest"] == 42.5
    assert metrics["AirdockRoundTrip"]["Dimensions"] == {"Function": "Test"}
    assert metrics["SchedulerHeartbeat"]["Unit"] == "Count"
    assert metrics["DAGParseTime"]["Unit"] == "Seconds" and metrics["DAGParseTime"]["Latest"] > 0
    table = cli(server, "metrics", NAME).stdout
    assert "AirdockRoundTrip" in table and "42.5" in table


# ---------------------------------------------------------------- maintenance


def next_window_after(now: datetime) -> datetime:
    """The next MON 03:00 UTC more than a minute away."""
    start = (now + timedelta(days=(0 - now.weekday()) % 7)).replace(hour=3, minute=0, second=0, microsecond=0)
    while start <= now + timedelta(minutes=1):
        start += timedelta(days=7)
    return start


def test_a_maintenance_window_due_now_restarts_the_environment_without_failing_a_running_task(server: LiveServer) -> None:
    mwaa = server.client()
    api = rest(server)
    run_id = trigger(api, "lifecycle_sleep")
    wait_task(api, "lifecycle_sleep", run_id, "nap", {"running"})
    pids_before = set(processes_under(server.data_dir / "envs" / NAME))

    # Move the lifecycle clock to a minute after the window opens: maintenance is due now.
    now = datetime.now(timezone.utc)
    target = next_window_after(now) + timedelta(minutes=1)
    clock = Path(server.env["AIRDOCK_LIFECYCLE_CLOCK_OFFSET_FILE"])
    clock.write_text(str((target - now).total_seconds()))
    try:
        wait_status(mwaa, {"MAINTENANCE"}, timeout=60)
        env = wait_status(mwaa, {"AVAILABLE", "UNAVAILABLE"}, timeout=600)
    finally:
        clock.write_text("0")
    assert env["Status"] == "AVAILABLE", status_reason(mwaa)
    assert env["AirflowVersion"] == "3.3.2"  # the newest 3.3 patch Airdock offers

    ti = wait_task(rest(server), "lifecycle_sleep", run_id, "nap", {"success", "failed", "up_for_retry"})
    assert ti["state"] == "success"
    assert ti["try_number"] == 1
    assert my_events(server)[-2:] == [("AVAILABLE", "MAINTENANCE"), ("MAINTENANCE", "AVAILABLE")]
    # It was a restart: the environment runs on new processes.
    assert not pids_before & set(processes_under(server.data_dir / "envs" / NAME))


# ---------------------------------------------------------------- pause / resume


def dag_runs(api: AirflowRest) -> dict[str, str]:
    runs: dict[str, str] = {}
    for dag_id in ("lifecycle_levels", "lifecycle_sleep"):
        status, body = api.call("GET", f"/dags/{dag_id}/dagRuns")
        assert status == 200, body
        runs.update({f"{dag_id}/{r['dag_run_id']}": r["state"] for r in body["dag_runs"]})
    return runs


def wait_no_processes(env_dir: Path, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    left = processes_under(env_dir)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = processes_under(env_dir)
    return left


def test_pause_frees_every_process_and_resume_brings_back_all_dag_run_history(server: LiveServer) -> None:
    mwaa = server.client()
    env_dir = server.data_dir / "envs" / NAME
    history = dag_runs(rest(server))
    assert len(history) >= 2 and set(history.values()) == {"success"}

    assert "PENDING" in control(server, "pause").stdout
    wait_status(mwaa, {"PENDING"}, timeout=120)
    assert status_reason(server.client()).startswith("Paused by Airdock")
    assert wait_no_processes(env_dir) == []
    assert (env_dir / "pgdata" / "PG_VERSION").exists()  # the metadata database is kept

    started = time.monotonic()
    control(server, "resume")
    env = wait_status(mwaa, {"AVAILABLE", "UNAVAILABLE"}, timeout=180)
    took = time.monotonic() - started
    assert env["Status"] == "AVAILABLE", status_reason(mwaa)
    # Target (the issue): ≤ 30 s locally, on an otherwise idle machine. Other Airflow test suites
    # sharing the cores slow every component's start-up, so the budget grows with the load.
    budget = 30 * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    print(f"resume took {took:.1f}s (budget {budget:.0f}s)")
    assert took <= budget, f"resume took {took:.1f}s"
    assert dag_runs(rest(server)) == history
    assert my_events(server)[-2:] == [("AVAILABLE", "PENDING"), ("PENDING", "AVAILABLE")]


def test_a_pause_schedule_given_as_a_tag_pauses_the_environment(server: LiveServer) -> None:
    mwaa = server.client()
    arn = mwaa.get_environment(Name=NAME)["Environment"]["Arn"]
    mwaa.tag_resource(ResourceArn=arn, Tags={"airdock:pause-schedule": "_ _ _ _ _"})
    try:
        wait_status(mwaa, {"PENDING"}, timeout=150)
    finally:
        mwaa.untag_resource(ResourceArn=arn, tagKeys=["airdock:pause-schedule"])
    assert status_reason(server.client()).startswith("Paused by Airdock")
    assert wait_no_processes(server.data_dir / "envs" / NAME) == []
    control(server, "resume")
    assert wait_status(mwaa, {"AVAILABLE", "UNAVAILABLE"}, timeout=180)["Status"] == "AVAILABLE"
