"""Changing an environment's Airflow version as MWAA changes it, through boto3 and real Airflow:
2.11 to Airflow 3 in place with its DAG run history; a version change that fails half-way rolled
back to a working 2.11 with its history (LastUpdate FAILED with the reason); changes MWAA does not
make refused with its message."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from airdock.local.sample import EXAMPLE_DAG
from support.environments import BUCKET, create, rest, wait_status
from support.live_server import LiveServer

pytestmark = pytest.mark.airflow

NAME = "versions"
# Fails only where Airflow 3's web server would start: the update gets past its pre-flight (which
# imports the DAGs) and the database migration, and fails afterwards.
FAILS_ON_AIRFLOW_3 = """
if [ "${AIRFLOW_VERSION%%.*}" = "3" ] && [ "$MWAA_AIRFLOW_COMPONENT" = "webserver" ]; then
  echo "this startup script refuses Airflow 3" >&2
  exit 7
fi
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-versions") / "data", provision=True,
                      env={"AIRDOCK_AUTOSCALER": "off"}).start()
    bucket = live.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    (bucket / "dags" / "example_hello.py").write_text(EXAMPLE_DAG)
    (bucket / "startup.sh").write_text(FAILS_ON_AIRFLOW_3)
    (bucket / "startup-ok.sh").write_text("export FROM_STARTUP=1\n")
    yield live
    live.stop()


def run_ids(server: LiveServer, env: dict[str, object]) -> set[str]:
    status, body = rest(server, env).call("GET", "/dags/example_hello/dagRuns")
    assert status == 200, body
    return {run["dag_run_id"] for run in body["dag_runs"]}


def test_a_failed_upgrade_rolls_back_to_2_11_with_its_history_then_an_upgrade_to_3_keeps_it(server: LiveServer) -> None:
    mwaa = server.client()
    create(mwaa, NAME, "2.11.0", StartupScriptS3Path="startup.sh")
    env = wait_status(mwaa, NAME, {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    first = rest(server, env).run_dag("example_hello")
    assert first["state"] == "success"

    # Past the pre-flight and the migration, Airflow 3's web server does not start: rolled back.
    mwaa.update_environment(Name=NAME, AirflowVersion="3.3.2")
    env = wait_status(mwaa, NAME, {"AVAILABLE", "UPDATE_FAILED"}, timeout=900)
    assert env["Status"] == "AVAILABLE" and env["AirflowVersion"] == "2.11.0", env
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert env["LastUpdate"]["Error"]["ErrorMessage"], env["LastUpdate"]
    assert first["dag_run_id"] in run_ids(server, env)
    assert rest(server, env).run_dag("example_hello")["state"] == "success"  # and it still works

    # The same upgrade with a startup script that lets it through: Airflow 3 with every run.
    before = run_ids(server, env)
    mwaa.update_environment(Name=NAME, AirflowVersion="3.3.2", StartupScriptS3Path="startup-ok.sh")
    env = wait_status(mwaa, NAME, {"AVAILABLE", "UPDATE_FAILED"}, timeout=900)
    assert env["Status"] == "AVAILABLE" and env["AirflowVersion"] == "3.3.2", env.get("LastUpdate")
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    assert before <= run_ids(server, env)
    assert rest(server, env).run_dag("example_hello")["state"] == "success"


def test_version_changes_mwaa_does_not_make_are_refused_with_its_message(server: LiveServer) -> None:
    mwaa = server.client()
    with pytest.raises(ClientError) as refused:
        mwaa.update_environment(Name=NAME, AirflowVersion="3.0.6")  # 3.3.2 -> 3.0.6: a downgrade within 3
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Airflow version 3.3.2 does not support updates to version 3.0.6." in str(refused.value)
    assert mwaa.get_environment(Name=NAME)["Environment"]["Status"] == "AVAILABLE"
