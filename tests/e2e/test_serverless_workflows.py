"""Specification: MWAA Serverless workflows run on real Airflow 3 through boto3.

One provisioned `airdock serve` and its one engine serve the whole module (the engine starts with
the first workflow, in about half a minute; every later run starts in a second or two).
"""
from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live_server import LiveServer
from support.serverless import BASH, EMPTY, PYTHON, ROLE, put, task_instances, wait_run

pytestmark = pytest.mark.airflow

BUCKET = "serverless-flows"
CODE = '''import os


def greet(**context):
    print("greeting from the code folder", os.getcwd())
    return "hello " + os.environ["GREETING"] + " and " + os.environ.get("who", "nobody")
'''
PIPELINE = f"""pipeline:
  dag_id: pipeline
  schedule: null
  params:
    who: world
  tasks:
    begin:
      operator: {EMPTY}
    shout:
      operator: {BASH}
      bash_command: 'echo "bash says $GREETING to {{{{ params.who }}}} in $(basename $(pwd))"; ls greet.py'
      dependencies: [begin]
    greet:
      operator: {PYTHON}
      python_callable: greet.greet
      dependencies: [shout]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from airdock.local.serverless.engine_runtime import ensure_runtime

    ensure_runtime()  # built once per machine (CI installs it here), outside the server's timeouts
    live = LiveServer(tmp_path_factory.mktemp("serverless") / "data", provision=True,
                      env={"AIRDOCK_AUTOSCALER": "off", "AIRDOCK_SERVERLESS_INTERVAL_S": "1"}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Any:
    return server.client("mwaa-serverless", read_timeout=120)


@pytest.fixture(scope="module")
def bucket(server: LiveServer) -> Path:
    folder = server.bucket(BUCKET)
    put(folder, "code/greet.py", CODE)
    return folder


def create(client: Any, bucket: Path, name: str, definition: str, **extra: Any) -> dict[str, Any]:
    return client.create_workflow(Name=name, DefinitionS3Location=put(bucket, f"{name}.yaml", definition),
                                  RoleArn=ROLE, **extra)


@pytest.fixture(scope="module")
def pipeline(client: Any, bucket: Path) -> str:
    return create(client, bucket, "pipeline", PIPELINE, Code={"S3Location": {"Bucket": BUCKET, "ObjectKey": "code/greet.py"}},
                  Environment={"Variables": {"GREETING": "hi"}})["WorkflowArn"]


def test_bash_python_and_empty_tasks_run_to_success_with_status_xcom_and_log(
        server: LiveServer, client: Any, pipeline: str) -> None:
    started = client.start_workflow_run(WorkflowArn=pipeline, OverrideParameters={"who": "airdock"})
    assert started["Status"] in ("STARTING", "QUEUED")
    run = wait_run(client, pipeline, started["RunId"], timeout=300)
    assert run["RunDetail"]["RunState"] == "SUCCESS", run
    assert run["OverrideParameters"] == {"who": "airdock"} and run["RunType"] == "ON_DEMAND"
    tasks = task_instances(client, pipeline, started["RunId"])
    assert {t: d["Status"] for t, d in tasks.items()} == {"begin": "SUCCESS", "shout": "SUCCESS", "greet": "SUCCESS"}
    assert tasks["greet"]["OperatorName"] == "PythonOperator" and tasks["greet"]["AttemptNumber"] == 1
    # Code is importable, the workflow's variables and the run's OverrideParameters are in the
    # environment, and Jinja sees the overridden params.
    assert tasks["greet"]["Xcom"] == {"return_value": "hello hi and airdock"}
    assert tasks["shout"]["Xcom"] == {"return_value": "greet.py"}
    log = server.data_dir / "serverless" / "engine" / "home" / "logs"
    shout = list(log.glob(f"dag_id=*/run_id={started['RunId']}/task_id=shout/attempt=1.log"))
    assert tasks["shout"]["LogStream"].endswith(f"run_id={started['RunId']}/task_id=shout/attempt=1.log")
    assert "bash says hi to airdock in code" in shout[0].read_text()


def test_a_failing_task_fails_the_run_with_its_error(client: Any, bucket: Path) -> None:
    arn = create(client, bucket, "failing", f"""failing:
  tasks:
    ok:
      operator: {EMPTY}
    boom:
      operator: {BASH}
      retries: 0
      bash_command: 'echo about to fail; exit 3'
      dependencies: [ok]
""")["WorkflowArn"]
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    run = wait_run(client, arn, run_id)
    assert run["RunDetail"]["RunState"] == "FAILED"
    assert "boom" in run["RunDetail"]["ErrorMessage"] and "exit code 3" in run["RunDetail"]["ErrorMessage"]
    tasks = task_instances(client, arn, run_id)
    assert tasks["ok"]["Status"] == "SUCCESS" and tasks["boom"]["Status"] == "FAILED"
    assert "exit code 3" in tasks["boom"]["ErrorMessage"]


def test_stopping_a_run_on_a_long_task_stops_it(client: Any, bucket: Path) -> None:
    arn = create(client, bucket, "long", f"""long:
  tasks:
    sleep:
      operator: {BASH}
      retries: 0
      bash_command: 'sleep 600'
    after:
      operator: {EMPTY}
      dependencies: [sleep]
""")["WorkflowArn"]
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    deadline = time.monotonic() + 120
    while task_instances(client, arn, run_id)["sleep"]["Status"] != "RUNNING":
        assert time.monotonic() < deadline, "the long task never ran"
        time.sleep(0.5)
    stopped = client.stop_workflow_run(WorkflowArn=arn, RunId=run_id)
    assert stopped["Status"] in ("STOPPING", "STOPPED")
    run = wait_run(client, arn, run_id, timeout=120)
    assert run["RunDetail"]["RunState"] == "STOPPED"
    tasks = task_instances(client, arn, run_id)
    assert tasks["sleep"]["Status"] in ("FAILED", "CANCELLED") and tasks["after"]["Status"] in ("CANCELLED", "NONE")


def test_an_update_makes_version_2_and_version_1_still_runs(client: Any, bucket: Path) -> None:
    created = create(client, bucket, "versioned", f"""versioned:
  tasks:
    one:
      operator: {BASH}
      bash_command: 'echo version-one'
""")
    arn, first = created["WorkflowArn"], created["WorkflowVersion"]
    updated = client.update_workflow(WorkflowArn=arn, RoleArn=ROLE, DefinitionS3Location=put(bucket, "versioned.yaml", f"""versioned:
  tasks:
    two:
      operator: {BASH}
      bash_command: 'echo version-two'
"""))
    second = updated["WorkflowVersion"]
    assert second != first
    versions = client.list_workflow_versions(WorkflowArn=arn)["WorkflowVersions"]
    assert [(v["WorkflowVersion"], v["IsLatestVersion"]) for v in versions] == [(second, True), (first, False)]
    old = client.start_workflow_run(WorkflowArn=arn, WorkflowVersion=first)["RunId"]
    new = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    assert wait_run(client, arn, old)["RunDetail"]["RunState"] == "SUCCESS"
    assert wait_run(client, arn, new)["RunDetail"]["RunState"] == "SUCCESS"
    assert task_instances(client, arn, old)["one"]["Xcom"] == {"return_value": "version-one"}
    assert task_instances(client, arn, new)["two"]["Xcom"] == {"return_value": "version-two"}
    assert client.get_workflow_run(WorkflowArn=arn, RunId=old)["WorkflowVersion"] == first


def test_a_cron_schedule_fires_scheduled_runs(client: Any, bucket: Path) -> None:
    arn = create(client, bucket, "every-minute", f"""every-minute:
  schedule: '* * * * *'
  tasks:
    tick:
      operator: {EMPTY}
""")["WorkflowArn"]
    assert client.get_workflow(WorkflowArn=arn)["ScheduleConfiguration"] == {"CronExpression": "* * * * *"}
    deadline = time.monotonic() + 150
    while True:
        runs = client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]
        if runs:
            break
        assert time.monotonic() < deadline, "no scheduled run within two minutes"
        time.sleep(1)
    assert runs[0]["RunType"] == "SCHEDULED"
    assert wait_run(client, arn, runs[0]["RunId"])["RunDetail"]["RunState"] == "SUCCESS"


def test_deleting_a_workflow_removes_everything(server: LiveServer, client: Any, bucket: Path) -> None:
    created = create(client, bucket, "doomed", f"""doomed:
  tasks:
    t:
      operator: {EMPTY}
""")
    arn = created["WorkflowArn"]
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    wait_run(client, arn, run_id)
    engine = server.data_dir / "serverless" / "engine"
    assert list((engine / "dags").glob("doomed-*.py"))
    client.delete_workflow(WorkflowArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_workflow(WorkflowArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_workflow_run(WorkflowArn=arn, RunId=run_id)
    assert client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"] == []
    assert arn not in [w["WorkflowArn"] for w in client.list_workflows()["Workflows"]]
    assert not list((engine / "dags").glob("doomed-*.py")) and not list((engine / "versions").glob("doomed-*"))
    assert not list((server.data_dir / "serverless" / "snapshots").glob("doomed-*"))
    dag_id = f"{arn.rsplit('/', 1)[1]}__{created['WorkflowVersion']}"
    assert airflow_status(server, f"/dags/{dag_id}") == 404


def airflow_status(server: LiveServer, path: str) -> int:
    """The engine's own REST API (its JWT secret is in the data dir)."""
    import urllib.error

    from airdock.local.airflow_auth import mint_airflow_jwt

    engine = server.data_dir / "serverless" / "engine"
    secret = json.loads((engine / "secrets.json").read_text())["jwt_secret"]
    port = json.loads((engine / "ports.json").read_text())["api"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2{path}",
                                     headers={"Authorization": f"Bearer {mint_airflow_jwt(secret)}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_server_killed_mid_run_resumes_without_losing_run_or_task_history(
        server: LiveServer, client: Any, bucket: Path) -> None:
    arn = create(client, bucket, "survivor", f"""survivor:
  tasks:
    first:
      operator: {BASH}
      bash_command: 'echo first'
    slow:
      operator: {BASH}
      retries: 1
      retry_delay: {{__type__: datetime.timedelta, seconds: 1}}
      bash_command: 'sleep 8; echo slow'
      dependencies: [first]
""")["WorkflowArn"]
    done = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    wait_run(client, arn, done)
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    deadline = time.monotonic() + 120
    while task_instances(client, arn, run_id)["slow"]["Status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    server.kill()
    server.start(timeout=120)
    again = server.client("mwaa-serverless", read_timeout=120)
    run = wait_run(again, arn, run_id, timeout=300)
    assert run["RunDetail"]["RunState"] == "SUCCESS"
    tasks = task_instances(again, arn, run_id)
    assert tasks["first"]["Status"] == "SUCCESS" and tasks["slow"]["Status"] == "SUCCESS"
    history = {r["RunId"]: r["RunDetailSummary"]["Status"] for r in again.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]}
    assert history == {done: "SUCCESS", run_id: "SUCCESS"}
