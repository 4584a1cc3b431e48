"""Airflow 3's API server behind the web front, started as its ECS task starts it (the image's
entrypoint with the command and FORWARDED_ALLOW_IPS of the environment's blueprint): a request
that reached the load balancer over HTTPS is HTTPS to Airflow too, so the cookies Airflow sets
itself (its JWT `_token`, e.g. when it refreshes or clears it) are `Secure`. The loopback range
stands for the environment's subnets, where the web front tasks run."""
from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airdock.core.blueprint import Platform, blueprint, new_secret
from airdock.local.airflow_env import entrypoint_argv
from airdock_runtime.tokens import new_key
from airdock.local.runtime import RuntimeCache
from integration.test_local_airflow import _wait, runtime_cache  # noqa: F401
from support.processes import stop_process
from support.records import sample_environment
from support.web_front import serving

pytestmark = pytest.mark.airflow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api_server(tmp_path: Path, runtime_cache: RuntimeCache) -> Iterator[str]:  # noqa: F811
    runtime = runtime_cache.ensure("3.3.2", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    platform = Platform(region="us-east-1", airflow_home=str(tmp_path / "home"),
                        database_url=f"sqlite:///{tmp_path / 'airflow.db'}", broker_url="memory://", result_backend=None,
                        web_bind="127.0.0.1", web_port=port, web_front_bind="127.0.0.1", web_front_port=_free_port(),
                        web_upstream=url, public_url=url, base_path="", execution_api_url=f"{url}/execution/",
                        forwarded_allow_ips="127.0.0.0/8")
    web = blueprint(sample_environment("front", AirflowVersion="3.3.2", AirflowConfigurationOptions={},
                                       LoggingConfiguration={}), platform).component("webserver")
    keys = new_secret("airflow")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **web.environment,
           **{name: keys[ref.key] for name, ref in web.secrets.items() if ref.secret == "airflow"},
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": platform.database_url,
           # SQLite takes no Celery: the executor is irrelevant to what the API server does here.
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRDOCK_AIRFLOW_BIN": str(runtime.airflow)}
    subprocess.run([str(runtime.airflow), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    log = (tmp_path / "api-server.log").open("w")
    proc = subprocess.Popen(entrypoint_argv(runtime.python, *web.entrypoint), env=env, stdout=log,
                            stderr=subprocess.STDOUT)

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
        try:
            return requests.get(url + "/api/v2/monitor/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        _wait(up, 120, "the API server", 0.5)
        yield url
    finally:
        stop_process(proc)
        log.close()


def test_given_an_https_listener_when_airflow_sets_a_cookie_through_the_web_front_then_it_is_secure(
        api_server: str) -> None:
    environ = {"AIRDOCK_ENVIRONMENT_NAME": "analytics", "AIRDOCK_WEB_UPSTREAM": api_server,
               "AIRDOCK_AIRFLOW_MAJOR": "3", "AIRDOCK_TOKEN_KEY": new_key()}
    with serving(environ) as front:
        # Airflow's logout clears its `_token` cookie, Secure exactly when the request is HTTPS.
        https = requests.get(front + "/api/v2/auth/logout", headers={"X-Forwarded-Proto": "https"},
                             allow_redirects=False, timeout=30)
        assert https.status_code == 307
        assert https.headers["Set-Cookie"].startswith("_token=") and "; Secure" in https.headers["Set-Cookie"]
        # An HTTP listener (no X-Forwarded-Proto from the load balancer) stays HTTP.
        plain = requests.get(front + "/api/v2/auth/logout", allow_redirects=False, timeout=30)
        assert plain.status_code == 307 and "Secure" not in plain.headers["Set-Cookie"]
