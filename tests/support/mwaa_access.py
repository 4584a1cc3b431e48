"""Helpers for tests that reach into environments the way MWAA clients do (tokens, REST, UI)."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from airdock.core.settings import Settings
from airdock.local.sample import EXAMPLE_DAG
from support.live_server import LiveServer

BUCKET = "airdock-access"
ROLE = "arn:aws:iam::000000000000:role/airdock-access"
# What uv resolves for Airflow 3.3.2 plus the provider (checked when these pins were chosen).
PROVIDER_PACKAGES = ("apache-airflow==3.3.2", "apache-airflow-providers-amazon==9.39.0")


def seed_bucket(server: LiveServer) -> None:
    dags = server.bucket(BUCKET) / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "example_hello.py").write_text(EXAMPLE_DAG)


def create(server: LiveServer, name: str, version: str) -> None:
    server.client().create_environment(
        Name=name, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        EnvironmentClass="mw1.micro", AirflowVersion=version, MaxWorkers=1,
    )


def wait_available(server: LiveServer, name: str, timeout: float = 600) -> dict[str, Any]:
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    env: dict[str, Any] = {}
    while time.monotonic() < deadline:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] == "AVAILABLE":
            return env
        assert env["Status"] == "CREATING", env.get("LastUpdate")
        time.sleep(2)
    raise TimeoutError(f"{name} stayed {env.get('Status')}:\n{server.log()[-3000:]}")


def run_cli(server: LiveServer, name: str, command: str) -> tuple[str, str]:
    """The AWS-documented recipe: CreateCliToken, POST the command, decode base64 output."""
    token = server.client().create_cli_token(Name=name)
    response = requests.post(
        f"http://{token['WebServerHostname']}/aws_mwaa/cli",
        headers={"Authorization": f"Bearer {token['CliToken']}", "Content-Type": "text/plain"},
        data=command, timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return base64.b64decode(body["stdout"]).decode(), base64.b64decode(body["stderr"]).decode()


def web_login(server: LiveServer, name: str, role: str | None = None) -> dict[str, Any]:
    """CreateWebLoginToken; with `role`, through the real per-key role policy for this one call."""
    policy = server.data_dir / "airflow-roles.json"
    if role is not None:
        policy.write_text(json.dumps({server.credentials()[0]: {name: role}}))
    try:
        return server.client().create_web_login_token(Name=name)
    finally:
        policy.unlink(missing_ok=True)


def sso_url(login: dict[str, Any]) -> str:
    """The link the MWAA console opens: the token rides in the fragment."""
    return f"http://{login['WebServerHostname']}/aws_mwaa/aws-console-sso?login=true#{login['WebToken']}"


def wait_dag_visible(server: LiveServer, name: str, dag_id: str, timeout: float = 180) -> None:
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            mwaa.invoke_rest_api(Name=name, Path=f"/dags/{dag_id}", Method="GET")
            return
        except mwaa.exceptions.RestApiClientException:
            time.sleep(2)
    raise TimeoutError(f"DAG {dag_id} never appeared in {name}")


def provider_python() -> Path:
    """A venv with Airflow and the Amazon provider, cached beside the runtimes and never one of
    them: environments' runtimes are shared and must not change under them."""
    venv = Settings().runtime_cache / ("provider-test-" + "-".join(p.replace("==", "-") for p in PROVIDER_PACKAGES))
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv", path=str(Path(os.sys.executable).parent)) or "uv"
    with open(venv.parent / ".provider-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *PROVIDER_PACKAGES], check=True,
                       env={**os.environ, "VIRTUAL_ENV": ""})
        marker.write_text("ok\n")
    return python
