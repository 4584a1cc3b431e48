"""Specification: MWAA Serverless workflows run on real Airflow 3 through boto3.

One provisioned `airdock serve` and its one engine serve the whole module (the engine starts with
the first workflow, in about half a minute; every later run starts in a second or two).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airdock.core.settings import Settings

from support.live_server import LiveServer
from support.serverless import BASH, EMPTY, PYTHON, ROLE, put, task_instances, wait_run

pytestmark = pytest.mark.airflow

BUCKET = "serverless-flows"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serverless"
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

    ensure_runtime(Settings().runtime_cache)  # built once per machine (CI installs it here), outside the server's timeouts
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
    # Status events in EventBridge's shape, for the run and each task.
    events = [json.loads(line) for line in (server.data_dir / "events.jsonl").read_text().splitlines()]
    mine = [e for e in events if e["source"] == "aws.airflow-serverless" and e["detail"].get("RunId") == started["RunId"]]
    kinds = [e["detail-type"] for e in mine]
    assert kinds[0] == "MWAA Serverless Workflow Run Starting" and "MWAA Serverless Workflow Run Success" in kinds
    assert "MWAA Serverless Task Success" in kinds and all(e["resources"] == [pipeline] for e in mine)
    # The same log through Airdock's signed extension (the console's) and `airdock workflow-logs`.
    log = signed_get(server, "/_airdock/serverless/task-logs", {"WorkflowArn": pipeline, "RunId": started["RunId"],
                                                                 "TaskId": "shout"}).json()
    assert log["LogStream"] == tasks["shout"]["LogStream"] and log["AttemptNumber"] == 1
    assert any("bash says hi to airdock in code" in e["message"] for e in log["Events"])
    cli = subprocess.run([sys.executable, "-m", "airdock.cli", "workflow-logs", "pipeline", started["RunId"], "--task",
                          "greet", "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "greeting from the code folder" in cli.stdout and "task_id=greet/attempt=1.log" in cli.stdout


def signed_get(server: LiveServer, path: str, query: dict[str, str]) -> Any:
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{server.endpoint}{path}?{urllib.parse.urlencode(query)}"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(*server.credentials()), "airflow-serverless", "us-east-1").add_auth(request)
    return requests.get(url, headers=dict(request.headers), timeout=30)


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


def test_the_amazon_providers_mwaa_serverless_operators_and_sensor_work_unchanged(
        server: LiveServer, bucket: Path) -> None:
    from airdock.local.serverless.engine_runtime import ensure_runtime

    provider = ensure_runtime(Settings().runtime_cache, "provider-9.39.0-py3.12")
    put(bucket, "provider/ok.yaml", f"ok:\n  tasks:\n    t:\n      operator: {EMPTY}\n")
    put(bucket, "provider/failing.yaml", f"failing:\n  tasks:\n    t:\n      operator: {BASH}\n      retries: 0\n"
                                         "      bash_command: 'exit 1'\n")
    key, secret = server.credentials()
    connection = {"conn_type": "aws", "login": key, "password": secret,
                  "extra": {"endpoint_url": server.endpoint, "region_name": "us-east-1"}}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(server.data_dir.parent), "AIRFLOW_HOME": str(server.data_dir.parent / "af"),
           "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}
    out = subprocess.run([str(provider.python), str(FIXTURES / "provider_operators.py"), BUCKET, "provider/ok.yaml",
                          "provider/failing.yaml", ROLE], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["skipped_arn"] == result["arn"]
    assert "provider-flow-" in str(result["arn"])
    assert "FAILED" in result["failure"] and "Workflow execution failed" in result["failure"]


def test_yaml_from_the_aws_python_to_yaml_converter_is_accepted_and_runs(
        server: LiveServer, client: Any, bucket: Path, tmp_path: Path) -> None:
    from airdock.local.serverless.engine_runtime import ensure_runtime

    converter = ensure_runtime(Settings().runtime_cache, "converter-0.1.4-py3.12")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "converted.py").write_text(CONVERTED_DAG)
    env = {"PATH": f"{converter.venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "af"),
           "DAG_FACTORY_ENABLE_TELEMETRY": "False", "SCARF_ANALYTICS": "false"}
    out = subprocess.run([str(converter.venv / "bin" / "dag-converter"), "convert", str(tmp_path / "in"), "--output",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    yaml_text = (tmp_path / "out" / "converted_dag.yaml").read_text()
    assert "trigger_rule" in yaml_text  # what the converter writes and the service ignores
    created = create(client, bucket, "converted", yaml_text)
    assert any("ignored attributes" in w for w in created["Warnings"])
    arn = created["WorkflowArn"]
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    assert wait_run(client, arn, run_id)["RunDetail"]["RunState"] == "SUCCESS"


def test_the_airflow_ui_link_shows_only_the_workflows_the_caller_may_see(
        server: LiveServer, client: Any, bucket: Path) -> None:
    import requests

    mine = create(client, bucket, "team-a-flow", f"team-a-flow:\n  tasks:\n    t:\n      operator: {EMPTY}\n")
    create(client, bucket, "team-b-flow", f"team-b-flow:\n  tasks:\n    t:\n      operator: {EMPTY}\n")
    prefix = "arn:aws:airflow-serverless:us-east-1:000000000000:workflow"
    policy = server.data_dir.parent / "team-a.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "airflow-serverless:GetWorkflow", "Resource": f"{prefix}/team-a-*"},
        {"Effect": "Allow", "Action": "airflow-serverless:CreateAirflowUiUrl", "Resource": "*"}]}))
    made = json.loads(subprocess.run([sys.executable, "-m", "airdock.cli", "keys", "create", "team-a", "--json",
                                      "--policy", str(policy), "--data-dir", str(server.data_dir)],
                                     capture_output=True, text=True, check=True).stdout)
    team_a = server.client("mwaa-serverless", key=(made["AccessKeyId"], made["SecretAccessKey"]))
    link = team_a.create_airflow_ui_url(ExpiresInSeconds=60)
    assert len(link["SessionId"]) == 32 and link["UrlExpiresAt"] < link["SessionExpiresAt"]
    browser = requests.Session()
    signed_in = browser.get(link["AuthorizedUrl"], allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303, signed_in.text
    token = browser.cookies["_token"]
    deadline = time.monotonic() + 90
    while True:  # until the DAG processor has parsed the new workflows
        dags = browser.get(link["AuthorizedUrl"].split("/auth/")[0] + "/api/v2/dags?limit=1000",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["dags"]
        if dags or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {d["dag_id"].rsplit("__", 1)[0] for d in dags} == {mine["WorkflowArn"].rsplit("/", 1)[1]}
    assert requests.get(link["AuthorizedUrl"], allow_redirects=False, timeout=30).status_code == 403  # one-time


CONVERTED_DAG = """from datetime import datetime

from airflow import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("converted_dag", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         default_args={"retries": 1}) as dag:
    EmptyOperator(task_id="start") >> EmptyOperator(task_id="finish")
"""


def airflow_status(server: LiveServer, path: str) -> int:
    """The engine's own REST API (its JWT secret is in the data dir)."""
    import urllib.error

    from airdock_runtime.airflow_auth import mint_airflow_jwt

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
    tasks = task_instances(again, arn, run_id)
    assert run["RunDetail"]["RunState"] == "SUCCESS", (run["RunDetail"], {
        t: (d["Status"], d["AttemptNumber"], d.get("ErrorMessage")) for t, d in tasks.items()})
    assert tasks["first"]["Status"] == "SUCCESS" and tasks["slow"]["Status"] == "SUCCESS"
    history = {r["RunId"]: r["RunDetailSummary"]["Status"] for r in again.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]}
    assert history == {done: "SUCCESS", run_id: "SUCCESS"}
