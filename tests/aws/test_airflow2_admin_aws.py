"""Airflow 2 on AWS, under moto: the FAB `admin` password is part of the environment's Airflow
secret (created once, added to an older secret), handed to the migrate task (which makes the user:
entrypoint.py --migrate) and to the web front, and the control plane reads the same password for
InvokeRestApi — as Admin directly, and to make the user of any other role it signs in as. The
Airflow side is a real HTTP server behaving like Airflow 2 under the environment's path prefix."""
from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airdock.core.models import InvokeRestApiInput
from airdock.core.ports import Caller, EnvironmentRecord
from aws.conftest import ACCOUNT, Stack
from aws.test_adapters import _services, _up, environment
from aws.test_web_front_aws import _container


def _secrets(stack: Stack, service: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in _container(stack, service)["secrets"]}


def _migrate_container(stack: Stack, name: str) -> dict[str, Any]:
    ecs = stack.client("ecs")
    arn = ecs.list_task_definitions(familyPrefix=f"airdock-{name}-migrate")["taskDefinitionArns"][-1]
    return ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]


def _airflow_secret(stack: Stack, name: str = "analytics") -> dict[str, str]:
    return json.loads(stack.client("secretsmanager").get_secret_value(SecretId=f"airdock/{name}/airflow")["SecretString"])


def test_given_airflow2_the_admin_password_goes_to_the_migrate_task_and_the_web_front_only(stack: Stack) -> None:
    _up(stack, environment(stack, AirflowVersion="2.11.0"))
    password = _airflow_secret(stack)["admin_password"]
    assert len(password) == 32
    arn = stack.client("secretsmanager").describe_secret(SecretId="airdock/analytics/airflow")["ARN"]
    services = _services(stack, "analytics")
    assert _secrets(stack, services["web-front"])["AIRDOCK_ADMIN_PASSWORD"] == f"{arn}:admin_password::"
    for component in ("scheduler", "webserver", "worker", "triggerer"):
        assert "AIRDOCK_ADMIN_PASSWORD" not in _secrets(stack, services[component]), component
    migrate = _migrate_container(stack, "analytics")
    assert {s["name"]: s["valueFrom"] for s in migrate["secrets"]}["AIRDOCK_ADMIN_PASSWORD"] == f"{arn}:admin_password::"
    # The image's own entrypoint (not a bare `airflow db migrate`) runs it, so the user is made.
    assert "entryPoint" not in migrate or not migrate["entryPoint"]
    assert migrate["command"] == ["--migrate"]


def _variables(stack: Stack, service: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in _container(stack, service)["environment"]}


def test_given_airflow2_the_webservers_rest_api_takes_basic_auth(stack: Stack) -> None:
    # InvokeRestApi and the web front's sign-in call it as FAB users; Airflow 2's own default
    # would only take the UI's session.
    _up(stack, environment(stack, AirflowVersion="2.11.0"))
    backends = _variables(stack, _services(stack, "analytics")["webserver"])["AIRFLOW__API__AUTH_BACKENDS"].split(",")
    assert backends == ["airflow.api.auth.backend.basic_auth", "airflow.api.auth.backend.session"]


def test_given_airflow3_no_task_gets_an_admin_password(stack: Stack) -> None:
    _up(stack, environment(stack))
    for service in _services(stack, "analytics").values():
        assert "AIRDOCK_ADMIN_PASSWORD" not in _secrets(stack, service)
    assert "AIRDOCK_ADMIN_PASSWORD" not in {s["name"] for s in _migrate_container(stack, "analytics")["secrets"]}


def test_an_airflow_secret_made_before_the_admin_password_gets_one_and_keeps_its_keys(stack: Stack) -> None:
    old = {"fernet_key": "f" * 44, "jwt_secret": "j", "secret_key": "s"}
    stack.client("secretsmanager").create_secret(Name="airdock/analytics/airflow", SecretString=json.dumps(old))
    compute = _up(stack, environment(stack, AirflowVersion="2.11.0"))
    first = _airflow_secret(stack)
    assert {k: first[k] for k in old} == old and len(first["admin_password"]) == 32
    compute.replace(environment(stack, AirflowVersion="2.11.0"), "GRACEFUL", lambda _m: None)
    assert _airflow_secret(stack) == first  # never regenerated


# ---- InvokeRestApi against an Airflow 2 that knows only the admin user at first ----------------


class _Airflow2(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    admin_password = ""
    users: dict[str, str] = {}
    prefix = "/analytics"

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        known = {"admin": self.admin_password, **self.users}
        return name if known.get(name) == password else None

    def do_POST(self) -> None:
        data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path != f"{self.prefix}/auth/fab/v1/users":
            self._reply(404, {"path": self.path})
        elif self._user() != "admin":
            self._reply(401, {"title": "Unauthorized"})
        else:
            self.users[data["username"]] = data["password"]
            self._reply(200, {"username": data["username"], "roles": data["roles"]})

    def do_GET(self) -> None:
        user = self._user()
        if not self.path.startswith(f"{self.prefix}/api/v1/"):
            self._reply(404, {"path": self.path})
        elif user is None:
            self._reply(401, {"title": "Unauthorized"})
        else:
            self._reply(200, {"dags": [], "total_entries": 0, "as": user})


@pytest.fixture
def airflow2() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Airflow2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_invoke_rest_api_on_airflow2_signs_in_as_admin_and_makes_the_users_of_other_roles(
        stack: Stack, airflow2: ThreadingHTTPServer) -> None:
    env = environment(stack, AirflowVersion="2.11.0")
    _up(stack, env)
    _Airflow2.admin_password = _airflow_secret(stack)["admin_password"]  # what the migrate task made
    _Airflow2.users = {}
    url = f"127.0.0.1:{airflow2.server_address[1]}/analytics"
    record = EnvironmentRecord(environment=env.model_copy(update={"Status": "AVAILABLE", "WebserverUrl": url}))
    plane = stack.data_plane({"AKIAOPERATOR": "Op"})
    request = InvokeRestApiInput(Name="analytics", Path="/dags", Method="GET")

    root = Caller(access_key_id="AKIAROOT", principal_arn=f"arn:aws:iam::{ACCOUNT}:root")
    as_admin = plane.invoke_rest_api(record, request, root)
    assert as_admin["RestApiStatusCode"] == 200 and as_admin["RestApiResponse"]["as"] == "admin"

    operator = Caller(access_key_id="AKIAOPERATOR", principal_arn=f"arn:aws:iam::{ACCOUNT}:user/ops")
    as_op = plane.invoke_rest_api(record, request, operator)
    assert as_op["RestApiStatusCode"] == 200 and as_op["RestApiResponse"]["as"] == "airdock-op"
    assert list(_Airflow2.users) == ["airdock-op"]
