"""Environments that run: real Airflow behind the MWAA API, driven by the same ASL workflows as AWS.

One provisioning server per module; every call goes through boto3 against `airdock serve`.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from airdock.local.sample import EXAMPLE_DAG
from support.environments import BUCKET, create, rest, wait_gone, wait_status
from support.mwaa_access import run_cli
from support.live_server import LiveServer
from support.processes import processes_under as _processes_under

pytestmark = pytest.mark.airflow

SLOW_DAG = """
from datetime import datetime
import time
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:
    from airflow.operators.python import PythonOperator

with DAG("slow_task", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="sleep", python_callable=lambda: time.sleep(25))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-env") / "data", provision=True).start()
    bucket = live.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    (bucket / "dags" / "example_hello.py").write_text(EXAMPLE_DAG)
    (bucket / "dags" / "slow_task.py").write_text(SLOW_DAG)
    (bucket / "broken-requirements.txt").write_text("airdock-no-such-package-xyz==1.0\n")
    yield live
    live.stop()
    assert not _processes_under(live.data_dir), "environment processes outlived the server"


def test_given_a_dag_in_the_bucket_when_created_then_available_and_a_retried_task_succeeds(server: LiveServer) -> None:
    mwaa = server.client()
    create(mwaa, "e2e3", "3.3.2")
    assert mwaa.get_environment(Name="e2e3")["Environment"]["Status"] == "CREATING"
    env = wait_status(mwaa, "e2e3", {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    assert len(_processes_under(server.data_dir / "envs" / "e2e3")) >= 6  # db, web, scheduler, dag-processor, triggerer, worker
    assert "StatusReason" not in env  # progress text is only shown while work is under way
    run = rest(server, env).run_dag("example_hello")
    assert run["state"] == "success"
    assert run["task_instances"]["flaky"]["try_number"] == 2  # failed once, succeeded on retry
    events = [json.loads(line) for line in (server.data_dir / "events.jsonl").read_text().splitlines()]
    mine = [e for e in events if e["detail"]["EnvironmentName"] == "e2e3"]
    assert [e["detail"]["Status"] for e in mine] == ["CREATING", "AVAILABLE"]
    assert {(e["source"], e["detail-type"]) for e in mine} == {("aws.airflow", "MWAA Environment Status Change")}
    assert mine[-1]["resources"] == [env["Arn"]]


def test_given_an_available_environment_when_workers_and_config_change_then_available_with_the_change(server: LiveServer) -> None:
    mwaa = server.client()
    mwaa.update_environment(Name="e2e3", MaxWorkers=3, AirflowConfigurationOptions={"core.default_task_retries": "3"})
    assert mwaa.get_environment(Name="e2e3")["Environment"]["Status"] == "UPDATING"
    env = wait_status(mwaa, "e2e3", {"AVAILABLE", "UPDATE_FAILED"})
    assert env["Status"] == "AVAILABLE"
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    assert env["MaxWorkers"] == 3
    assert env["AirflowConfigurationOptions"] == {"core.default_task_retries": "3"}
    # What the running Airflow reads, asked as an MWAA user would: through the CLI endpoint.
    stdout, stderr = run_cli(server, "e2e3", "config get-value core default_task_retries")
    assert stdout.strip() == "3", stderr
    assert rest(server, env).run_dag("example_hello")["state"] == "success"


def test_given_a_running_task_when_a_graceful_update_replaces_the_components_then_the_task_finishes_on_its_first_try(server: LiveServer) -> None:
    mwaa = server.client()
    env = mwaa.get_environment(Name="e2e3")["Environment"]
    airflow = rest(server, env)
    airflow.wait_for_dag("slow_task")
    assert airflow.call("PATCH", "/dags/slow_task", {"is_paused": False})[0] == 200
    status, run = airflow.call("POST", "/dags/slow_task/dagRuns", {"logical_date": None})
    assert status == 200, run
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the task must really be running when the update starts
        _, tis = airflow.call("GET", f"/dags/slow_task/dagRuns/{run['dag_run_id']}/taskInstances")
        if tis["task_instances"] and tis["task_instances"][0]["state"] == "running":
            break
        time.sleep(1)
    mwaa.update_environment(Name="e2e3", AirflowConfigurationOptions={"core.default_task_retries": "2"},
                            WorkerReplacementStrategy="GRACEFUL")
    env = wait_status(mwaa, "e2e3", {"AVAILABLE", "UPDATE_FAILED"})
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    airflow = rest(server, env)
    finished, instances = airflow.wait_run("slow_task", run["dag_run_id"], 120)
    task = instances[0]
    assert (finished["state"], task["state"], task["try_number"]) == ("success", "success", 1)


def test_given_broken_requirements_when_updated_then_the_update_fails_with_the_pip_error_and_the_old_environment_keeps_running(server: LiveServer) -> None:
    mwaa = server.client()
    mwaa.update_environment(Name="e2e3", RequirementsS3Path="broken-requirements.txt")
    env = wait_status(mwaa, "e2e3", {"AVAILABLE", "UPDATE_FAILED"}, timeout=300)
    assert env["Status"] == "AVAILABLE"
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert env["LastUpdate"]["Error"]["ErrorCode"] == "REQUIREMENTS_INSTALL_FAILED"
    assert "airdock-no-such-package-xyz" in env["LastUpdate"]["Error"]["ErrorMessage"]
    assert "RequirementsS3Path" not in env  # the previous configuration is the current one again
    assert env["MaxWorkers"] == 3
    assert rest(server, env).run_dag("example_hello")["state"] == "success"


def test_given_an_environment_when_deleted_then_404_and_no_process_or_file_remains(server: LiveServer) -> None:
    mwaa = server.client()
    mwaa.delete_environment(Name="e2e3")
    wait_gone(mwaa, "e2e3")
    env_dir = server.data_dir / "envs" / "e2e3"
    assert not env_dir.exists()
    assert not _processes_under(env_dir)


def test_given_airflow_2_when_created_run_and_deleted_then_it_behaves_the_same(server: LiveServer) -> None:
    mwaa = server.client()
    create(mwaa, "e2e2", "2.11.0")
    env = wait_status(mwaa, "e2e2", {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    run = rest(server, env).run_dag("example_hello")
    assert run["state"] == "success"
    assert run["task_instances"]["flaky"]["try_number"] == 2
    mwaa.delete_environment(Name="e2e2")
    wait_gone(mwaa, "e2e2")
    assert not (server.data_dir / "envs" / "e2e2").exists()


def test_given_a_bad_dag_path_at_provisioning_time_when_created_then_create_failed_with_the_reason(server: LiveServer) -> None:
    mwaa = server.client()
    bucket = server.bucket(BUCKET)
    (bucket / "vanishing").mkdir(exist_ok=True)
    (bucket / "vanishing" / "x.py").write_text("# DAG\n")
    (bucket / "bad-reqs").mkdir(exist_ok=True)
    create(mwaa, "e2ebad", "3.3.2", RequirementsS3Path="broken-requirements.txt")
    env = wait_status(mwaa, "e2ebad", {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "CREATE_FAILED"
    assert env["LastUpdate"]["Error"]["ErrorCode"] == "REQUIREMENTS_INSTALL_FAILED"
    assert "airdock-no-such-package-xyz" in env["LastUpdate"]["Error"]["ErrorMessage"]
    with pytest.raises(ClientError, match="CREATE_FAILED status cannot be updated"):
        mwaa.update_environment(Name="e2ebad", MaxWorkers=4)
    mwaa.delete_environment(Name="e2ebad")
    wait_gone(mwaa, "e2ebad")
