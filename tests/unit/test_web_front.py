"""The web front without Airflow: a fake `airflow` executable and a fake upstream web server."""
from __future__ import annotations

import base64
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from airdock.core import tokens

REPO = Path(__file__).resolve().parents[2]
ENV = "prod"


def _load_web_front() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_front", REPO / "images" / "airflow" / "web_front.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web_front = _load_web_front()


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one\n", b"two\n"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/go":
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/home")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                           "forwarded": self.headers.get("X-Forwarded-For")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("front")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    fake_airflow = tmp / "airflow"
    fake_airflow.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n"
                            "print('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    fake_airflow.chmod(0o755)
    key = tokens.new_key()
    (tmp / "secrets.json").write_text(json.dumps({"token_key": key, "jwt_secret": "jwt"}))
    offset = tmp / "offset"
    offset.write_text("0")
    config = web_front.Config({
        "AIRDOCK_ENVIRONMENT_NAME": ENV, "AIRDOCK_WEB_FRONT_HOST": "127.0.0.1", "AIRDOCK_WEB_FRONT_PORT": "0",
        "AIRDOCK_WEB_UPSTREAM": f"http://127.0.0.1:{upstream.server_address[1]}",
        "AIRDOCK_SECRETS_FILE": str(tmp / "secrets.json"), "AIRDOCK_AIRFLOW_BIN": str(fake_airflow),
        "AIRDOCK_WEB_STATE_DIR": str(tmp / "state"), "AIRDOCK_TOKEN_CLOCK_OFFSET_FILE": str(offset),
        "AIRDOCK_TOKENS_MODULE": tokens.__file__,
    })
    app = web_front.WebFront(config)
    server = app.make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "key": key, "offset": offset}
    server.shutdown()
    upstream.shutdown()


def cli(front: dict[str, Any], command: str, token: str | None = None) -> requests.Response:
    token = token or tokens.mint_cli_token(front["key"], ENV, "root", "root", "Admin")
    return requests.post(front["url"] + "/aws_mwaa/cli", data=command, timeout=10,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})


def test_an_allowed_command_runs_without_a_shell_and_answers_base64_output_even_when_it_fails(front: dict[str, Any]) -> None:
    response = cli(front, "variables set greeting 'hello; $(rm -rf /)'")
    assert response.status_code == 200
    assert json.loads(base64.b64decode(response.json()["stdout"])) == ["variables", "set", "greeting", "hello; $(rm -rf /)"]
    assert base64.b64decode(response.json()["stderr"]) == b"to stderr\n"


@pytest.mark.parametrize("command", ["users list", "db reset", "webserver", "celery worker", "tasks run d t",
                                     "dags show d --save /tmp/x.png", "", "  ", "'open"])
def test_commands_outside_mwaas_allow_list_are_a_400_with_a_message(front: dict[str, Any], command: str) -> None:
    response = cli(front, command)
    assert response.status_code == 400
    assert response.json()["message"]


@pytest.mark.parametrize("command", ["dags list -o json", "airflow dags trigger my_dag --conf '{\"a\": 1}'",
                                     "version", "cheat-sheet", "tasks states-for-dag-run d r", "pools list"])
def test_commands_on_the_allow_list_pass_the_check(command: str) -> None:
    assert web_front.check_command(command)


def test_an_expired_cli_token_is_a_401(front: dict[str, Any]) -> None:
    token = tokens.mint_cli_token(front["key"], ENV, "root", "root", "Admin")
    front["offset"].write_text("61")
    try:
        response = cli(front, "version", token)
    finally:
        front["offset"].write_text("0")
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_a_token_of_another_environment_is_refused(front: dict[str, Any]) -> None:
    assert cli(front, "version", tokens.mint_cli_token(tokens.new_key(), "other", "root", "root", "Admin")).status_code == 401
    assert cli(front, "version", tokens.mint_cli_token(front["key"], "other", "root", "root", "Admin")).status_code == 403


def test_a_web_login_signs_in_once_with_an_airflow_jwt_cookie(front: dict[str, Any]) -> None:
    token = tokens.mint_web_token(front["key"], ENV, "root", "root", "Viewer")
    first = requests.post(front["url"] + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)
    assert first.status_code == 303 and first.headers["Location"] == "/"
    jwt = first.cookies["_token"]
    claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
    assert (claims["sub"], claims["role"], claims["aud"]) == ("root", "viewer", "apache-airflow")
    again = requests.post(front["url"] + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)
    assert again.status_code == 403 and "already used" in again.text


def test_everything_else_is_proxied_with_headers_streaming_and_rewritten_redirects(front: dict[str, Any]) -> None:
    got = requests.get(front["url"] + "/api/v2/dags?limit=1", headers={"Authorization": "Bearer x"}, timeout=10).json()
    assert got["path"] == "/api/v2/dags?limit=1" and got["auth"] == "Bearer x" and got["forwarded"] == "127.0.0.1"
    assert requests.post(front["url"] + "/echo", data=b"payload", timeout=10).content == b"payload"
    assert requests.get(front["url"] + "/stream", timeout=10).text == "one\ntwo\n"
    redirect = requests.get(front["url"] + "/go", allow_redirects=False, timeout=10)
    assert redirect.headers["Location"] == "/home"
