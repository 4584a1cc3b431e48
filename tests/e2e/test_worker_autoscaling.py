"""Celery workers that follow the queue — and never kill a running task (issue 7), on real Airflow.

Sizing, so that the burst needs exactly MaxWorkers: 12 tasks of 20 s, `celery.worker_autoscale`
"4,4" → 4 tasks per worker → ceil(12 / 4) = 3 workers. (mw1.micro's default of 3 per worker would
want 4, above MaxWorkers=3, and the test would not show the clamp-free path.) `core.parallelism`
and `core.max_active_tasks_per_dag` are raised to 16 so the scheduler queues all 12 at once.
The DAG retries tasks (retries=2): a task killed by scale-in would come back as try 2, so
`try_number == 1` everywhere proves that none was.
The server runs with a 20 s stabilization window and 3 s loops (env vars), so the test takes
minutes, not the production 3-minute window.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from airdock.local.metrics_store import SqliteMetrics
from support.airflow_rest import AirflowRest
from support.environments import wait_status
from support.live_server import LiveServer
from support.metadata_sql import metadata_query

pytestmark = pytest.mark.airflow

BUCKET = "airdock-autoscale"
ROLE = "arn:aws:iam::000000000000:role/airdock-autoscale"
NAME = "scaling"
TASKS = 12
TASK_SECONDS = 20

BURST_DAG = f'''\
from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow import DAG
try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def work() -> None:
    time.sleep({TASK_SECONDS})


with DAG(dag_id="burst", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
         default_args={{"retries": 2, "retry_delay": timedelta(seconds=5)}}) as dag:
    for i in range({TASKS}):
        PythonOperator(task_id=f"t{{i:02d}}", python_callable=work)
'''


SCHEDULED_TASKS = 8
# A DAG on a 2-minute schedule: its next run is always known to the scheduler ahead of time.
SCHEDULED_DAG = f'''\
from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

with DAG(dag_id="every_two_minutes", start_date=datetime(2024, 1, 1), schedule=timedelta(minutes=2),
         catchup=False, max_active_tasks=16) as dag:
    for i in range({SCHEDULED_TASKS}):
        BashOperator(task_id=f"t{{i}}", bash_command="sleep 1")
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-autoscale") / "data", provision=True, env={
        "AIRDOCK_AUTOSCALER_STABILIZATION_S": "20",
        "AIRDOCK_AUTOSCALER_INTERVAL_S": "3",
        "AIRDOCK_METRICS_INTERVAL_S": "3",
    }).start()
    dags = live.bucket(BUCKET) / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "burst.py").write_text(BURST_DAG)
    (dags / "every_two_minutes.py").write_text(SCHEDULED_DAG)
    yield live
    live.stop()


def workers_view(server: LiveServer, name: str) -> dict[str, Any]:
    """The signed `GET /_airdock/environments/{Name}/workers` extension, as any SigV4 client calls it."""
    key, secret = server.credentials()
    request = AWSRequest(method="GET", url=f"{server.endpoint}/_airdock/environments/{name}/workers")
    SigV4Auth(Credentials(key, secret), "airflow", "us-east-1").add_auth(request)
    response = requests.get(request.url, headers=dict(request.headers), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def wait_available(mwaa: Any, name: str) -> dict[str, Any]:
    return wait_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def test_given_a_burst_of_12_tasks_when_queued_then_workers_rise_to_3_and_return_to_1_without_killing_any(server: LiveServer) -> None:
    mwaa = server.client()
    mwaa.create_environment(
        Name=NAME, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        EnvironmentClass="mw1.micro", AirflowVersion="3.3.2", MinWorkers=1, MaxWorkers=3,
        AirflowConfigurationOptions={"celery.worker_autoscale": "4,4", "core.parallelism": "16",
                                     "core.max_active_tasks_per_dag": "16"},
    )
    env = wait_available(mwaa, NAME)
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    view = workers_view(server, NAME)
    assert (view["MinWorkers"], view["MaxWorkers"], view["TasksPerWorker"]) == (1, 3, 4)
    assert view["CurrentWorkers"] == 1

    rest = AirflowRest(server.data_dir / "envs" / NAME, env["WebserverUrl"], "3.3.2")
    rest.wait_for_dag("burst")
    status, body = rest.call("PATCH", "/dags/burst", {"is_paused": False})
    assert status == 200, body
    status, run = rest.call("POST", "/dags/burst/dagRuns", {"logical_date": None})
    assert status == 200, run
    run_id = run["dag_run_id"]

    # Watch the pool until the run ends and the pool is back at MinWorkers with nothing draining.
    reached_3_at: float | None = None
    max_workers_seen = 0
    run_state = ""
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        view = workers_view(server, NAME)
        max_workers_seen = max(max_workers_seen, view["CurrentWorkers"])
        if reached_3_at is None and view["CurrentWorkers"] >= 3:
            reached_3_at = time.time()
        try:
            _, dag_run = rest.call("GET", f"/dags/burst/dagRuns/{run_id}")
            run_state = dag_run.get("state", "")
        except requests.RequestException:
            pass  # Airflow's API server is slow while 12 tasks start on a shared machine: ask again
        if run_state in ("success", "failed") and view["CurrentWorkers"] == 1 and view["DrainingWorkers"] == 0 \
                and len(view["Workers"]) == 1:
            break
        time.sleep(2)
    assert run_state == "success", run_state

    _, tis = rest.call("GET", f"/dags/burst/dagRuns/{run_id}/taskInstances")
    instances = tis["task_instances"]
    assert len(instances) == TASKS
    assert {t["state"] for t in instances} == {"success"}
    # No task was killed and retried because of scale-in.
    assert [t["try_number"] for t in instances] == [1] * TASKS

    first_queued = min(_ts(t.get("queued_when")) or _ts(t["start_date"]) for t in instances)
    assert max_workers_seen == 3
    assert reached_3_at is not None and reached_3_at - first_queued <= 60, reached_3_at - first_queued

    # Back to MinWorkers after the burst.
    assert view["CurrentWorkers"] == 1 and view["DrainingWorkers"] == 0, view
    decisions = view["LastDecisions"]
    assert decisions and all({"inputs", "decision", "reason"} <= set(d) for d in decisions)

    # The decision log shows the way up and down, and no worker was ever stopped by force.
    from airdock.local.metrics_collector import SqliteDecisionLog
    from airdock.local.sqlite_db import SqliteDatabase

    db = SqliteDatabase(server.data_dir / "state.db")
    log = SqliteDecisionLog(db).since(NAME, 0)
    actions = [d["decision"]["action"] for d in log]
    assert "scale_out" in actions and "scale_in" in actions
    assert not any(d["decision"]["force_release"] for d in log)
    assert max(d["decision"]["desired"] for d in log) == 3

    # WorkerCount is a metric, sampled at least every 10 s.
    points = SqliteMetrics(db=db).query(NAME, "WorkerCount", 0)
    assert {1.0, 3.0} <= {p.value for p in points}
    gaps = [b.timestamp - a.timestamp for a, b in zip(points, points[1:])]
    assert gaps and max(gaps) <= 10, max(gaps)

    mwaa.delete_environment(Name=NAME)


def test_given_a_scheduled_dag_when_its_next_run_is_due_soon_then_workers_start_before_its_tasks_are_queued(
        server: LiveServer) -> None:
    """Locally the pre-warm horizon is 60 s (a local worker starts in 10-20 s): within a minute
    of the DAG's next run, its 8 tasks count as demand, ceil(8 / 4) = 2 workers, before anything
    is queued — where MWAA waits for the queue."""
    from airdock.aws.worker_pool import UPCOMING_RUNS_SQL
    from airdock.local.metrics_collector import SqliteDecisionLog
    from airdock.local.sqlite_db import SqliteDatabase

    name = "prewarm"
    mwaa = server.client()
    mwaa.create_environment(
        Name=name, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        EnvironmentClass="mw1.micro", AirflowVersion="3.3.2", MinWorkers=1, MaxWorkers=3,
        AirflowConfigurationOptions={"celery.worker_autoscale": "4,4"},
    )
    env = wait_available(mwaa, name)
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    rest = AirflowRest(server.data_dir / "envs" / name, env["WebserverUrl"], "3.3.2")
    rest.wait_for_dag("every_two_minutes")
    status, body = rest.call("PATCH", "/dags/every_two_minutes", {"is_paused": False})
    assert status == 200, body

    decisions = SqliteDecisionLog(SqliteDatabase(server.data_dir / "state.db"))
    since = time.time()
    ahead: dict[str, Any] | None = None
    deadline = time.monotonic() + 300
    while ahead is None and time.monotonic() < deadline:
        for d in decisions.since(name, since):
            i = d["inputs"]
            if i.get("scheduled") == SCHEDULED_TASKS and i["queued"] == 0 and i["running"] == 0:
                ahead = d
        time.sleep(2)
    assert ahead is not None, "no decision saw the scheduled run coming"
    assert ahead["decision"]["desired"] == 2 and "8 scheduled" in ahead["reason"], ahead
    assert workers_view(server, name)["ScheduledTasks"] is not None

    # The AWS adapter's SQL reads the same from a real Airflow 3 metadata database (Postgres).
    found = metadata_query(server.data_dir, name, "3.3.2", UPCOMING_RUNS_SQL, until=time.time() + 3600)
    rows = {r[0]: r for r in found}
    dag_id, due, max_active, tasks = rows["every_two_minutes"]
    assert (max_active, tasks) == (16, SCHEDULED_TASKS) and abs(due - time.time()) < 300
    assert "burst" not in rows  # paused: no run will come

    rest.call("PATCH", "/dags/every_two_minutes", {"is_paused": True})
    mwaa.delete_environment(Name=name)
