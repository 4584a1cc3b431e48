"""Into Airflow the way MWAA clients go: the CLI token recipe, InvokeRestApi, the Amazon provider,
and the web login on Airflow 2's FAB UI in headless Chromium (Airflow 3's is test_sso_browser.py).

One provisioning server and one Airflow 3 and one Airflow 2 environment for the module; every
call goes through boto3 and the environments' web fronts, as a user's would.
"""
from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from support.live_server import REPO, LiveServer
from support.mwaa_access import (BUCKET, create, provider_python, run_cli, seed_bucket, sso_url, wait_available,
                                 wait_dag_visible, web_login)

pytestmark = pytest.mark.airflow

V3, V2 = "access3", "access2"
DAG = "example_hello"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clock_offset: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-access") / "data", provision=True,
                      env={"AIRDOCK_TOKEN_CLOCK_OFFSET_FILE": str(clock_offset)}).start()
    seed_bucket(live)
    create(live, V3, "3.3.2")
    create(live, V2, "2.11.0")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def envs(server: LiveServer) -> dict[str, dict[str, Any]]:
    found = {name: wait_available(server, name) for name in (V3, V2)}
    # Warm the provider venv meanwhile: the provider test should not pay for it alone.
    threading.Thread(target=provider_python, daemon=True).start()
    for name in found:
        wait_dag_visible(server, name, DAG)
    return found


def cli_post(hostname: str, token: str, command: str) -> requests.Response:
    return requests.post(f"http://{hostname}/aws_mwaa/cli", data=command, timeout=120,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})


# ---- CLI token ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [V3, V2])
def test_the_documented_cli_token_recipe_lists_triggers_and_sets_variables(
        server: LiveServer, envs: dict[str, dict[str, Any]], name: str) -> None:
    token = server.client().create_cli_token(Name=name)
    assert token["WebServerHostname"] == envs[name]["WebserverUrl"]

    stdout, _ = run_cli(server, name, "dags list")
    assert DAG in stdout

    run_cli(server, name, "variables set airdock_greeting 'hello from the CLI'")
    stdout, _ = run_cli(server, name, "variables get airdock_greeting")
    assert stdout.strip().splitlines()[-1] == "hello from the CLI"

    stdout, stderr = run_cli(server, name, f"dags trigger {DAG}")
    assert "manual__" in stdout + stderr, (stdout, stderr)
    runs = server.client().invoke_rest_api(Name=name, Path=f"/dags/{DAG}/dagRuns", Method="GET")
    assert any(r["run_type"] == "manual" for r in runs["RestApiResponse"]["dag_runs"])


def test_a_failing_command_still_answers_200_with_its_error_in_stderr(
        server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    stdout, stderr = run_cli(server, V3, "variables get airdock_no_such_variable")
    assert "airdock_no_such_variable" in stdout + stderr


@pytest.mark.parametrize("command", ["users create --role Admin -u x -e x -f x -l x -p x", "db reset -y",
                                     "scheduler", "dags list; rm -rf /", "variables export /tmp/x", "", "'unclosed"])
def test_a_command_outside_the_allow_list_is_refused_with_a_clear_4xx(
        server: LiveServer, envs: dict[str, dict[str, Any]], command: str) -> None:
    token = server.client().create_cli_token(Name=V3)
    response = cli_post(token["WebServerHostname"], token["CliToken"], command)
    assert response.status_code == 400, response.text
    assert response.json()["message"]


def test_a_cli_token_61_seconds_old_is_refused(
        server: LiveServer, envs: dict[str, dict[str, Any]], clock_offset: Path) -> None:
    token = server.client().create_cli_token(Name=V3)
    clock_offset.write_text("61")  # the web front's clock, read on every request
    try:
        response = cli_post(token["WebServerHostname"], token["CliToken"], "version")
    finally:
        clock_offset.write_text("0")
    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    assert cli_post(token["WebServerHostname"], token["CliToken"], "version").status_code == 200


def test_a_cli_token_for_one_environment_is_refused_by_another(
        server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    token = server.client().create_cli_token(Name=V3)
    response = cli_post(envs[V2]["WebserverUrl"], token["CliToken"], "dags list")
    assert response.status_code in (401, 403)
    assert "not issued for this environment" in response.json()["message"]


@pytest.mark.parametrize("authorization", ["", "Bearer ", "Bearer garbage", "Basic YWRtaW46YWRtaW4="])
def test_a_missing_or_garbled_cli_token_is_refused(
        server: LiveServer, envs: dict[str, dict[str, Any]], authorization: str) -> None:
    response = requests.post(f"http://{envs[V3]['WebserverUrl']}/aws_mwaa/cli", data="dags list", timeout=30,
                             headers={"Authorization": authorization, "Content-Type": "text/plain"})
    assert response.status_code == 401


def test_a_web_login_token_names_the_caller_as_mwaa_does(server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    login = server.client().create_web_login_token(Name=V3)
    assert login["WebServerHostname"] == envs[V3]["WebserverUrl"]
    assert (login["IamIdentity"], login["AirflowIdentity"]) == ("root", "root")
    assert login["WebToken"].startswith("v1.")


# ---- InvokeRestApi -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [V3, V2])
def test_invoke_rest_api_reads_a_dag_and_sends_query_parameters(
        server: LiveServer, envs: dict[str, dict[str, Any]], name: str) -> None:
    mwaa = server.client()
    dag = mwaa.invoke_rest_api(Name=name, Path=f"/dags/{DAG}", Method="GET", Body={})
    assert dag["RestApiStatusCode"] == 200
    assert dag["RestApiResponse"]["dag_id"] == DAG
    page = mwaa.invoke_rest_api(Name=name, Path="/dags", Method="GET", QueryParameters={"limit": 1})
    assert len(page["RestApiResponse"]["dags"]) == 1


@pytest.mark.parametrize("name", [V3, V2])
def test_invoke_rest_api_on_a_missing_dag_is_a_rest_api_client_exception_with_airflows_404(
        server: LiveServer, envs: dict[str, dict[str, Any]], name: str) -> None:
    with pytest.raises(ClientError) as raised:
        server.client().invoke_rest_api(Name=name, Path="/dags/no_such_dag", Method="GET")
    error = raised.value.response
    assert error["Error"]["Code"] == "RestApiClientException"
    assert error["RestApiStatusCode"] == 404
    assert error["RestApiResponse"]


def test_invoke_rest_api_triggers_a_run_without_a_logical_date_on_airflow_3(
        server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    run = server.client().invoke_rest_api(Name=V3, Path=f"/dags/{DAG}/dagRuns", Method="POST", Body={"conf": {}})
    assert run["RestApiStatusCode"] == 200
    assert run["RestApiResponse"]["dag_run_id"]


def test_invoke_rest_api_refuses_paths_that_leave_the_api(server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(ClientError) as raised:
        server.client().invoke_rest_api(Name=V3, Path="/../../auth/token", Method="GET")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


# ---- the AWS autoscaler's SQL on Airflow 2's schema ---------------------------------------------------

# Its first run is due in 2030: unpaused, it is scheduled demand for the SQL, and never runs here.
FUTURE_DAG = textwrap.dedent('''
    from datetime import datetime
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("future_fanout", start_date=datetime(2030, 1, 1), schedule="@daily", catchup=False) as dag:
        for i in range(3):
            EmptyOperator(task_id=f"t{i}")
''')


def test_the_aws_autoscalers_upcoming_runs_sql_reads_an_airflow_2_metadata_database(
        server: LiveServer, envs: dict[str, dict[str, Any]]) -> None:
    """On AWS the autoscaler reads scheduled demand with one SQL statement through the RDS Data
    API (aws/worker_pool.py); here it runs on the Airflow 2.11 environment's own Postgres."""
    from datetime import datetime, timezone

    from airdock.aws.worker_pool import UPCOMING_RUNS_SQL
    from support.metadata_sql import metadata_query

    (server.bucket(BUCKET) / "dags" / "future_fanout.py").write_text(FUTURE_DAG)
    wait_dag_visible(server, V2, "future_fanout")
    unpaused = server.client().invoke_rest_api(Name=V2, Path="/dags/future_fanout", Method="PATCH",
                                               Body={"is_paused": False})
    assert unpaused["RestApiResponse"]["is_paused"] is False

    rows = {row[0]: row for row in metadata_query(server.data_dir, V2, "2.11.0", UPCOMING_RUNS_SQL,
                                                  until=datetime(2031, 1, 1, tzinfo=timezone.utc).timestamp())}
    # The first daily run of 2030-01-01 may be created once its interval has ended, on 2030-01-02;
    # 16 is Airflow's default max_active_tasks; 3 tasks in the serialized DAG.
    assert rows["future_fanout"] == ["future_fanout", datetime(2030, 1, 2, tzinfo=timezone.utc).timestamp(), 16, 3]


# ---- the Airflow Amazon provider ---------------------------------------------------------------------

PROVIDER_SCRIPT = textwrap.dedent('''
    import json, sys
    from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook
    from airflow.providers.amazon.aws.operators.mwaa import MwaaTriggerDagRunOperator
    from airflow.providers.amazon.aws.sensors.mwaa import MwaaDagRunSensor

    env, dag = sys.argv[1], sys.argv[2]
    hook = MwaaHook(aws_conn_id="airdock")
    dag_info = hook.invoke_rest_api(env_name=env, path=f"/dags/{dag}", method="PATCH", body={"is_paused": False})
    trigger = MwaaTriggerDagRunOperator(task_id="trigger", env_name=env, trigger_dag_id=dag, aws_conn_id="airdock",
                                        wait_for_completion=True, waiter_delay=3, waiter_max_attempts=80)
    triggered = trigger.execute({})
    run_id = triggered["RestApiResponse"]["dag_run_id"]
    sensor = MwaaDagRunSensor(task_id="sense", external_env_name=env, external_dag_id=dag,
                              external_dag_run_id=run_id, aws_conn_id="airdock", poke_interval=2)
    sensed = sensor.poke({})
    final = hook.invoke_rest_api(env_name=env, path=f"/dags/{dag}/dagRuns/{run_id}", method="GET")
    print(json.dumps({"paused": dag_info["RestApiResponse"]["is_paused"], "run_id": run_id, "sensed": sensed,
                      "state": final["RestApiResponse"]["state"]}))
''')


def test_the_amazon_providers_hook_trigger_operator_and_sensor_see_a_dag_run_succeed(
        server: LiveServer, envs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    python = provider_python()
    key_id, secret = server.credentials()
    connection = {"conn_type": "aws", "login": key_id, "password": secret,
                  "extra": {"region_name": "us-east-1", "endpoint_url": server.endpoint,
                            "config_kwargs": {"inject_host_prefix": False}}}
    script = tmp_path / "provider.py"
    script.write_text(PROVIDER_SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW_CONN_AIRDOCK": json.dumps(connection), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([str(python), str(script), V3, DAG], env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["paused"] is False
    assert result["sensed"] is True
    assert result["state"] == "success"


# ---- web login on Airflow 2 (a FAB user signed in server-side) ---------------------------------------

def signed_in_dag_list(browser: Any, login: dict[str, Any], screenshot: str) -> tuple[Any, Any]:
    """Open the SSO link in a fresh browser and wait for Airflow 2's home page to list the DAG."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(sso_url(login))
    page.wait_for_url(lambda url: "/aws_mwaa/" not in url, timeout=30_000)
    page.get_by_role("link", name=DAG, exact=True).first.wait_for(timeout=60_000)
    (REPO / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "artifacts" / screenshot), full_page=True)
    return context, page


def trigger_button_enabled(page: Any) -> bool:
    # Airflow 2 renders the row's trigger button for everyone, with class `disabled` when the
    # signed-in user may not create DAG runs.
    button = page.locator(f'a[aria-label="Trigger DAG"][href*="/{DAG}/"]').first
    return "disabled" not in (button.get_attribute("class") or "").split()


def post_dag_run_from_page(page: Any) -> int:
    """POST a DAG run to Airflow 2's REST API from inside the page, with the browser's session."""
    return int(page.evaluate("""async (dag) => {
        const r = await fetch(`/api/v1/dags/${dag}/dagRuns`, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({})});
        return r.status;
    }""", DAG))


def test_on_airflow_2_the_sso_link_signs_the_browser_into_the_ui_as_the_tokens_fab_user(
        server: LiveServer, envs: dict[str, dict[str, Any]], browser: Any) -> None:
    login = web_login(server, V2)
    context, page = signed_in_dag_list(browser, login, "sso-airflow2-admin-dag-list.png")
    assert urllib.parse.urlsplit(page.url).path == "/home"
    user = page.evaluate("async (name) => (await fetch(`/auth/fab/v1/users/${name}`)).json()", login["AirflowIdentity"])
    assert (user["username"], [r["name"] for r in user["roles"]]) == ("root", ["Admin"])
    assert trigger_button_enabled(page)
    assert post_dag_run_from_page(page) == 200
    context.close()


@pytest.mark.parametrize(("role", "may_trigger"), [("Viewer", False), ("Op", True)])
def test_on_airflow_2_a_viewer_sees_the_dags_but_cannot_trigger_one_while_an_op_can(
        server: LiveServer, envs: dict[str, dict[str, Any]], browser: Any, role: str, may_trigger: bool) -> None:
    login = web_login(server, V2, role=role)
    context, page = signed_in_dag_list(browser, login, f"sso-airflow2-{role.lower()}-dag-list.png")
    assert trigger_button_enabled(page) is may_trigger
    assert post_dag_run_from_page(page) == (200 if may_trigger else 403)
    context.close()
