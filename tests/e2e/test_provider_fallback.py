"""The Airflow Amazon provider's fallback, unchanged, against real local environments (Airflow 3
and Airflow 2): a caller whose key may CreateWebLoginToken but not InvokeRestApi gets MWAA's
"No Airflow role granted in IAM.", and `MwaaHook` then signs in through the web server hostname
(`_get_session_conn`: `https://{WebServerHostname}/pluginsv2/aws_mwaa/login` or `/aws_mwaa/login`)
and calls the REST API there with the session. HTTPS is verified against the local CA that
`airdock serve` made, never switched off.

One provisioning server and one environment per Airflow major version for the module; the
provider runs in its own venv (tests/support/mwaa_access.py), as a user's Airflow would.
"""
from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.live_server import LiveServer
from support.mwaa_access import create, provider_python, seed_bucket, wait_available, wait_dag_visible

pytestmark = pytest.mark.airflow

V3, V2 = "fallback3", "fallback2"
MAJOR = {V3: 3, V2: 2}
DAG = "example_hello"
ROLE_ARN = "arn:aws:airflow:us-east-1:000000000000:role/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-fallback") / "data", provision=True).start()
    seed_bucket(live)
    create(live, V3, "3.3.2")
    create(live, V2, "2.11.0")
    # Build (or find) the provider venv while the environments start.
    threading.Thread(target=provider_python, daemon=True).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def envs(server: LiveServer) -> dict[str, dict[str, Any]]:
    found = {name: wait_available(server, name) for name in (V3, V2)}
    for name in found:
        wait_dag_visible(server, name, DAG)
    return found


@pytest.fixture(scope="module")
def ca_bundle(server: LiveServer) -> Path:
    return server.data_dir / "tls" / "ca.pem"


@pytest.fixture(scope="module")
def web_only_key(server: LiveServer) -> tuple[str, str]:
    """An access key whose policy grants the Op role for web login only: no airflow:InvokeRestApi."""
    policy = server.data_dir.parent / "web-login-only.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken",
         "Resource": [f"{ROLE_ARN}{V3}/Op", f"{ROLE_ARN}{V2}/Op"]}]}))
    out = subprocess.run([sys.executable, "-m", "airdock.cli", "keys", "create", "fallback", "--json",
                          "--policy", str(policy), "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    return created["AccessKeyId"], created["SecretAccessKey"]


def test_serve_made_a_local_ca_printed_its_bundle_and_keeps_its_key_private(
        server: LiveServer, envs: dict[str, dict[str, Any]], ca_bundle: Path) -> None:
    assert f"REQUESTS_CA_BUNDLE={ca_bundle}" in server.log()
    assert stat.S_IMODE((ca_bundle.parent / "ca-key.pem").stat().st_mode) == 0o600
    # MWAA gives a bare host name; clients add the scheme.
    assert all("://" not in env["WebserverUrl"] for env in envs.values())


@pytest.mark.parametrize("name", [V3, V2])
def test_a_web_front_answers_https_verified_by_the_local_ca_and_plain_http_on_one_port(
        server: LiveServer, envs: dict[str, dict[str, Any]], ca_bundle: Path, name: str) -> None:
    token = server.client().create_cli_token(Name=name)
    for url in (f"https://{token['WebServerHostname']}/aws_mwaa/cli", f"http://{token['WebServerHostname']}/aws_mwaa/cli"):
        answer = requests.post(url, data="version", verify=str(ca_bundle), timeout=120,
                               headers={"Authorization": f"Bearer {token['CliToken']}", "Content-Type": "text/plain"})
        assert answer.status_code == 200, (url, answer.text)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{token['WebServerHostname']}/aws_mwaa/aws-console-sso", timeout=30)  # system CAs only


def test_invoke_rest_api_refuses_the_web_login_only_key_in_mwaas_words(
        server: LiveServer, envs: dict[str, dict[str, Any]], web_only_key: tuple[str, str]) -> None:
    client = server.client(key=web_only_key)
    with pytest.raises(client.exceptions.AccessDeniedException) as denied:
        client.invoke_rest_api(Name=V3, Path=f"/dags/{DAG}", Method="GET")
    assert denied.value.response["Error"]["Message"] == "No Airflow role granted in IAM."
    assert client.create_web_login_token(Name=V3)["WebToken"]


PROVIDER_SCRIPT = textwrap.dedent('''
    import json, sys
    from datetime import datetime, timezone

    import requests
    from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook
    from airflow.providers.amazon.aws.sensors.mwaa import MwaaDagRunSensor, MwaaTaskSensor

    env, dag, major = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hook = MwaaHook(aws_conn_id="airdock")
    timeouts = []

    def retried(call):
        # As Airflow would retry the task: the hook gives each request 10 s, which Airflow on a
        # machine this loaded exceeds now and then (its API server stalls while a task starts).
        for attempt in range(4):
            try:
                return call()
            except requests.exceptions.Timeout as exc:
                timeouts.append(str(exc))
        return call()

    # Every call below is InvokeRestApi first; refused, the hook falls back to its web login.
    unpaused = retried(lambda: hook.invoke_rest_api(env_name=env, path=f"/dags/{dag}", method="PATCH",
                                                    body={"is_paused": False}, airflow_version=major))
    triggered = retried(lambda: hook.invoke_rest_api(
        env_name=env, path=f"/dags/{dag}/dagRuns", method="POST",
        body={"logical_date": datetime.now(timezone.utc).isoformat(), "conf": {}}, airflow_version=major))
    run_id = triggered["RestApiResponse"]["dag_run_id"]
    retried(lambda: MwaaTaskSensor(task_id="task", external_env_name=env, external_dag_id=dag, external_dag_run_id=run_id,
                                   external_task_id="flaky", airflow_version=major, aws_conn_id="airdock",
                                   poke_interval=2, timeout=300).execute({}))
    retried(lambda: MwaaDagRunSensor(task_id="run", external_env_name=env, external_dag_id=dag, external_dag_run_id=run_id,
                                     airflow_version=major, aws_conn_id="airdock", poke_interval=2,
                                     timeout=120).execute({}))
    final = retried(lambda: hook.invoke_rest_api(env_name=env, path=f"/dags/{dag}/dagRuns/{run_id}/taskInstances",
                                                 method="GET", airflow_version=major))
    _session, hostname, login = retried(lambda: hook._get_session_conn(env, major))
    print(json.dumps({"paused": unpaused["RestApiResponse"]["is_paused"], "trigger_status": triggered["RestApiStatusCode"],
                      "tasks": {t["task_id"]: t["state"] for t in final["RestApiResponse"]["task_instances"]},
                      "login_url": login.url, "login_status": login.status_code, "cookies": sorted(login.cookies.keys()),
                      "hostname": hostname, "timeouts": timeouts}))
''')


@pytest.mark.parametrize("name", [V3, V2])
def test_the_providers_hook_falls_back_to_the_web_login_and_its_sensors_see_a_dag_run_succeed(
        server: LiveServer, envs: dict[str, dict[str, Any]], web_only_key: tuple[str, str], ca_bundle: Path,
        tmp_path: Path, name: str) -> None:
    python = provider_python()
    key_id, secret = web_only_key
    connection = {"conn_type": "aws", "login": key_id, "password": secret,
                  "extra": {"region_name": "us-east-1", "endpoint_url": server.endpoint,
                            "config_kwargs": {"inject_host_prefix": False}}}
    script = tmp_path / "provider.py"
    script.write_text(PROVIDER_SCRIPT)
    # requests trusts exactly the local CA: the web front's certificate is verified, not waved through.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW_CONN_AIRDOCK": json.dumps(connection), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "REQUESTS_CA_BUNDLE": str(ca_bundle)}
    out = subprocess.run([str(python), str(script), name, DAG, str(MAJOR[name])], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    assert "Trying again by generating local token" in out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["paused"] is False
    assert result["tasks"] == {"hello": "success", "flaky": "success"}
    hostname = envs[name]["WebserverUrl"]
    login_path = "/pluginsv2/aws_mwaa/login" if MAJOR[name] == 3 else "/aws_mwaa/login"
    assert (result["hostname"], result["login_url"], result["login_status"]) == (
        hostname, f"https://{hostname}{login_path}", 200)
    assert result["cookies"] == (["_token"] if MAJOR[name] == 3 else ["session"])


@pytest.mark.parametrize("name", [V3, V2])
def test_a_login_token_spent_by_the_login_endpoint_is_refused_the_second_time(
        server: LiveServer, envs: dict[str, dict[str, Any]], web_only_key: tuple[str, str], ca_bundle: Path,
        name: str) -> None:
    login = server.client(key=web_only_key).create_web_login_token(Name=name)
    path = "/pluginsv2/aws_mwaa/login" if MAJOR[name] == 3 else "/aws_mwaa/login"
    url = f"https://{login['WebServerHostname']}{path}"
    first = requests.post(url, data={"token": login["WebToken"]}, verify=str(ca_bundle), timeout=60)
    assert first.status_code == 200 and "; Secure" in first.headers["Set-Cookie"]
    again = requests.post(url, data={"token": login["WebToken"]}, verify=str(ca_bundle), timeout=60)
    assert again.status_code == 403 and "already used" in again.json()["message"]
    assert requests.get(url, verify=str(ca_bundle), timeout=60).status_code == 405
