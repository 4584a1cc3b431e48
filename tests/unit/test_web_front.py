"""The web front without Airflow: a fake `airflow` executable and a fake upstream web server."""
from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from airdock_runtime import tokens
from support.web_front import load_web_front

ENV = "prod"


web_front = load_web_front()


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
                           "forwarded": self.headers.get("X-Forwarded-For"),
                           "proto": self.headers.get_all("X-Forwarded-Proto"),
                           "host": self.headers.get_all("X-Forwarded-Host")}).encode()
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


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _start_front(tmp: Path, upstream: ThreadingHTTPServer, **extra: str) -> tuple[ThreadingHTTPServer, str, Path]:
    key = tokens.new_key()
    (tmp / "secrets.json").write_text(json.dumps({"token_key": key, "jwt_secret": "jwt", "admin_password": "pw"}))
    offset = tmp / "offset"
    offset.write_text("0")
    config = web_front.Config({
        "AIRDOCK_ENVIRONMENT_NAME": ENV, "AIRDOCK_WEB_FRONT_HOST": "127.0.0.1", "AIRDOCK_WEB_FRONT_PORT": "0",
        "AIRDOCK_WEB_UPSTREAM": f"http://127.0.0.1:{upstream.server_address[1]}",
        "AIRDOCK_SECRETS_FILE": str(tmp / "secrets.json"),
        "AIRDOCK_WEB_STATE_DIR": str(tmp / "state"), "AIRDOCK_TOKEN_CLOCK_OFFSET_FILE": str(offset),
        "AIRDOCK_TOKENS_MODULE": tokens.__file__, **extra,
    })
    server = web_front.WebFront(config).make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, key, offset


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("front")
    upstream = _serve(_Upstream)
    fake_airflow = tmp / "airflow"
    fake_airflow.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n"
                            "print('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    fake_airflow.chmod(0o755)
    server, key, offset = _start_front(tmp, upstream, AIRDOCK_AIRFLOW_BIN=str(fake_airflow))
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


def test_forwarded_proto_and_host_from_the_load_balancer_are_kept_and_sent_once(front: dict[str, Any]) -> None:
    behind_alb = requests.get(front["url"] + "/api/v2/version", timeout=10, headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "airflow.example.com", "X-Forwarded-For": "203.0.113.9"}).json()
    assert behind_alb["proto"] == ["https"] and behind_alb["host"] == ["airflow.example.com"]
    assert behind_alb["forwarded"] == "203.0.113.9, 127.0.0.1"
    direct = requests.get(front["url"] + "/api/v2/version", timeout=10).json()
    assert direct["proto"] == ["http"] and direct["host"] == [front["url"].removeprefix("http://")]


def test_a_sign_in_behind_an_https_load_balancer_sets_a_secure_cookie(front: dict[str, Any]) -> None:
    token = tokens.mint_web_token(front["key"], ENV, "root", "root", "Op")
    answer = requests.post(front["url"] + "/aws_mwaa/aws-console-sso", data={"token": token}, timeout=10,
                           allow_redirects=False, headers={"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303
    assert "; Secure" in answer.headers["Set-Cookie"]


# ---- path routing: the environment lives under /analytics on a shared load balancer host -------

PREFIX = "/analytics"


class _PrefixedAirflow2(BaseHTTPRequestHandler):
    """Airflow 2 with `[webserver] base_url = http://alb/analytics`: everything is under the prefix
    (werkzeug's DispatcherMiddleware answers 404 elsewhere); FAB's user API and login form, which
    FAB rate-limits per client address (AUTH_RATE_LIMIT, 5 per 40 seconds)."""
    protocol_version = "HTTP/1.1"
    users: dict[str, dict[str, Any]] = {}
    logins: list[tuple[float, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == f"{PREFIX}/login/":
            self._answer(200, b'<input id="csrf_token" name="csrf_token" type="hidden" value="csrf-1">',
                         {"Set-Cookie": "session=anonymous; Path=/analytics/"})
        else:
            self._answer(404, json.dumps({"path": self.path}).encode())

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == f"{PREFIX}/auth/fab/v1/users":
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"admin:pw").decode():
                self._answer(401)
                return
            user = json.loads(data)
            self.users[user["username"]] = user
            self._answer(200, data)
        elif self.path == f"{PREFIX}/login/":
            form = dict(pair.split("=", 1) for pair in data.decode().split("&"))
            now = time.monotonic()
            if len([t for t, _ in self.logins if now - t < 40]) >= 5:
                self._answer(429, b"Too Many Requests")
                return
            self.logins.append((now, form["username"]))
            user = self.users.get(form["username"])
            ok = user is not None and user["password"] == form["password"] and form["csrf_token"] == "csrf-1"
            self._answer(302 if ok else 200, b"", {"Location": f"{PREFIX}/home",
                                                    "Set-Cookie": f"session=signed-{form['username']}; Path=/analytics/"})
        else:
            self._answer(404)


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    upstream = _serve(_Upstream)
    server, key, _offset = _start_front(tmp_path_factory.mktemp("prefixed"), upstream, AIRDOCK_WEB_BASE_PATH=PREFIX)
    airflow2 = _serve(_PrefixedAirflow2)
    server2, key2, _ = _start_front(tmp_path_factory.mktemp("prefixed2"), airflow2, AIRDOCK_WEB_BASE_PATH=PREFIX + "/",
                                    AIRDOCK_AIRFLOW_MAJOR="2")
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "key": key,
           "url2": f"http://127.0.0.1:{server2.server_address[1]}", "key2": key2}
    for s in (server, upstream, server2, airflow2):
        s.shutdown()


@pytest.mark.parametrize("path", [f"{PREFIX}/aws_mwaa/aws-console-sso", "/aws_mwaa/aws-console-sso"])
def test_with_a_base_path_the_sign_in_page_posts_under_the_prefix(prefixed: dict[str, Any], path: str) -> None:
    # Both forms reach the page: the prefixed one from the browser, the bare one from the load
    # balancer's health check (or its rewrite of /analytics/aws_mwaa/*).
    page = requests.get(prefixed["url"] + path, timeout=10)
    assert page.status_code == 200
    assert f'action="{PREFIX}/aws_mwaa/aws-console-sso"' in page.text


def test_with_a_base_path_an_airflow3_sign_in_redirects_and_scopes_its_cookie_to_the_prefix(prefixed: dict[str, Any]) -> None:
    token = tokens.mint_web_token(prefixed["key"], ENV, "root", "root", "Admin")
    answer = requests.post(prefixed["url"] + f"{PREFIX}/aws_mwaa/aws-console-sso", data={"token": token},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == f"{PREFIX}/"
    assert f"Path={PREFIX}/;" in answer.headers["Set-Cookie"]
    # A browser sends that cookie to the environment's UI and API (proxied with the prefix, which
    # Airflow serves under its base_url) and to no other environment on the host.
    session = requests.Session()
    session.cookies.update(answer.cookies)
    got = session.get(prefixed["url"] + f"{PREFIX}/api/v2/dags?limit=1", timeout=10).json()
    assert got["path"] == f"{PREFIX}/api/v2/dags?limit=1"
    assert [c.path for c in answer.cookies] == [f"{PREFIX}/"]


def test_with_a_base_path_the_cli_endpoint_answers_under_the_prefix(prefixed: dict[str, Any]) -> None:
    token = tokens.mint_cli_token(prefixed["key"], ENV, "root", "root", "Admin")
    answer = requests.post(prefixed["url"] + f"{PREFIX}/aws_mwaa/cli", data="dags list", timeout=10,
                           headers={"Authorization": "Bearer " + token + "x"})
    # The CLI endpoint checked the token; Airflow (which would answer 201) never saw the request.
    assert answer.status_code == 401 and answer.json()["error"] == "Unauthorized"


def test_with_a_base_path_an_airflow2_sign_in_logs_in_under_the_prefix_and_lands_on_its_home(prefixed: dict[str, Any]) -> None:
    token = tokens.mint_web_token(prefixed["key2"], ENV, "arn:aws:iam::1:user/ana", "ana", "User")
    answer = requests.post(prefixed["url2"] + f"{PREFIX}/aws_mwaa/aws-console-sso", data={"token": token},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"] == f"{PREFIX}/home"
    assert answer.headers["Set-Cookie"].startswith("session=signed-ana;")
    assert f"Path={PREFIX}/;" in answer.headers["Set-Cookie"]
    assert _PrefixedAirflow2.users["ana"]["roles"] == [{"name": "User"}]


def test_a_base_path_that_is_not_a_plain_path_is_refused() -> None:
    assert web_front.base_path("analytics/") == "/analytics"
    assert web_front.base_path("") == ""
    for bad in ('/a"><script>', "/a b", "/a?x=1"):
        with pytest.raises(ValueError, match="AIRDOCK_WEB_BASE_PATH"):
            web_front.base_path(bad)


# ---- the web login for scripts: /aws_mwaa/login (Airflow 2), /pluginsv2/aws_mwaa/login (Airflow 3) ---

AIRFLOW3_LOGIN = "/pluginsv2/aws_mwaa/login"
AIRFLOW2_LOGIN = "/aws_mwaa/login"


def test_the_airflow_3_login_answers_200_with_the_token_cookie_as_the_amazon_provider_reads_it(
        front: dict[str, Any]) -> None:
    token = tokens.mint_web_token(front["key"], ENV, "user/ana", "user/ana", "Op")
    # What MwaaHook._get_session_conn does: a Session posting the form, following redirects.
    session = requests.Session()
    login = session.post(front["url"] + AIRFLOW3_LOGIN, data={"token": token}, timeout=10)
    login.raise_for_status()
    assert login.status_code == 200 and not login.history
    jwt = login.cookies["_token"]
    claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
    assert (claims["sub"], claims["role"], claims["aud"]) == ("user/ana", "op", "apache-airflow")
    assert "Path=/;" in login.headers["Set-Cookie"] and "Secure" not in login.headers["Set-Cookie"]
    # ... then the REST API through the web server hostname with the cookie as a Bearer token.
    got = session.get(front["url"] + "/api/v2/dags", headers={"Authorization": f"Bearer {jwt}"}, timeout=10).json()
    assert got["path"] == "/api/v2/dags" and got["auth"] == f"Bearer {jwt}"


def test_a_login_token_signs_in_once_whichever_sign_in_path_spends_it(front: dict[str, Any]) -> None:
    token = tokens.mint_web_token(front["key"], ENV, "root", "root", "Admin")
    assert requests.post(front["url"] + AIRFLOW3_LOGIN, data={"token": token}, timeout=10).status_code == 200
    again = requests.post(front["url"] + AIRFLOW3_LOGIN, data={"token": token}, timeout=10)
    assert again.status_code == 403 and "already used" in again.json()["message"]
    sso = requests.post(front["url"] + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)
    assert sso.status_code == 403 and "_token" not in sso.cookies
    used_by_sso = tokens.mint_web_token(front["key"], ENV, "root", "root", "Admin")
    requests.post(front["url"] + "/aws_mwaa/aws-console-sso", data={"token": used_by_sso}, allow_redirects=False, timeout=10)
    assert requests.post(front["url"] + AIRFLOW3_LOGIN, data={"token": used_by_sso}, timeout=10).status_code == 403


def _bad_login(front: dict[str, Any], case: str) -> requests.Response:
    url = front["url"] + AIRFLOW3_LOGIN
    valid = tokens.mint_web_token(front["key"], ENV, "root", "root", "Admin")
    if case == "GET":
        return requests.get(url, timeout=10)
    if case == "expired":
        front["offset"].write_text("61")
        try:
            return requests.post(url, data={"token": valid}, timeout=10)
        finally:
            front["offset"].write_text("0")
    forms: dict[str, Any] = {
        "no form": None, "no token field": {"user": "x"}, "empty token": {"token": ""},
        "garbled": {"token": "v1.garbage.sig"}, "not a token at all": {"token": "\u00e9\u00e9\u00e9"},
        "a cli token": {"token": tokens.mint_cli_token(front["key"], ENV, "root", "root", "Admin")},
        "signed by another environment": {"token": tokens.mint_web_token(tokens.new_key(), ENV, "root", "root", "Admin")},
        "issued for another environment": {"token": tokens.mint_web_token(front["key"], "other", "root", "root", "Admin")},
        "the Public role": {"token": tokens.mint_web_token(front["key"], ENV, "root", "root", "Public")},
        "too large": {"token": "x" * 20_000},
    }
    return requests.post(url, data=forms[case], timeout=10)


@pytest.mark.parametrize(("case", "status"), [
    ("GET", 405), ("no form", 400), ("no token field", 400), ("empty token", 400), ("garbled", 401),
    ("not a token at all", 401), ("a cli token", 401), ("expired", 401), ("signed by another environment", 401),
    ("issued for another environment", 403), ("the Public role", 403), ("too large", 413)])
def test_a_login_with_bad_input_is_a_clear_json_error_and_sets_no_cookie(
        front: dict[str, Any], case: str, status: int) -> None:
    answer = _bad_login(front, case)
    assert answer.status_code == status, answer.text
    assert answer.json()["message"]
    assert "Set-Cookie" not in answer.headers
    if case == "GET":
        assert answer.headers["Allow"] == "POST"


def test_the_login_path_of_the_other_airflow_major_version_is_a_404_naming_the_right_one(front: dict[str, Any]) -> None:
    token = tokens.mint_web_token(front["key"], ENV, "root", "root", "Admin")
    answer = requests.post(front["url"] + AIRFLOW2_LOGIN, data={"token": token}, timeout=10)
    assert answer.status_code == 404
    assert AIRFLOW3_LOGIN in answer.json()["message"] and "airflow_version=3" in answer.json()["message"]
    # Refused before the token was looked at: it still signs in where it belongs.
    assert requests.post(front["url"] + AIRFLOW3_LOGIN, data={"token": token}, timeout=10).status_code == 200


def test_with_a_base_path_the_airflow_2_login_answers_the_fab_session_under_the_prefix(prefixed: dict[str, Any]) -> None:
    token = tokens.mint_web_token(prefixed["key2"], ENV, "arn:aws:iam::1:user/bo", "user/bo", "Viewer")
    login = requests.post(prefixed["url2"] + f"{PREFIX}{AIRFLOW2_LOGIN}", data={"token": token}, timeout=10)
    assert login.status_code == 200, login.text
    assert login.cookies["session"] == "signed-user.bo"
    assert f"Path={PREFIX}/;" in login.headers["Set-Cookie"] and "HttpOnly" in login.headers["Set-Cookie"]
    assert _PrefixedAirflow2.users["user.bo"]["roles"] == [{"name": "Viewer"}]
    wrong = requests.post(prefixed["url2"] + f"{PREFIX}{AIRFLOW3_LOGIN}", data={"token": token}, timeout=10)
    assert wrong.status_code == 404 and AIRFLOW2_LOGIN in wrong.json()["message"]


def test_with_a_base_path_the_airflow_3_login_answers_under_the_prefix(prefixed: dict[str, Any]) -> None:
    token = tokens.mint_web_token(prefixed["key"], ENV, "root", "root", "Admin")
    login = requests.post(prefixed["url"] + f"{PREFIX}{AIRFLOW3_LOGIN}", data={"token": token}, timeout=10)
    assert login.status_code == 200 and f"Path={PREFIX}/;" in login.headers["Set-Cookie"]


def test_an_airflow_2_that_refuses_the_sign_in_is_a_502_not_a_500(tmp_path: Path) -> None:
    upstream = _serve(_Upstream)  # not FAB: its login form never sets a session
    server, key, _ = _start_front(tmp_path, upstream, AIRDOCK_AIRFLOW_MAJOR="2")
    try:
        token = tokens.mint_web_token(key, ENV, "root", "root", "Admin")
        answer = requests.post(f"http://127.0.0.1:{server.server_address[1]}{AIRFLOW2_LOGIN}", data={"token": token},
                               timeout=10)
        assert answer.status_code == 502
        assert "Airflow did not accept the sign-in" in answer.json()["message"]
    finally:
        server.shutdown()
        upstream.shutdown()


def test_an_airflow_2_script_polling_through_the_login_is_not_stopped_by_fabs_login_rate_limit(
        prefixed: dict[str, Any]) -> None:
    """MwaaHook's fallback signs in anew for every call; FAB allows its login form 5 posts per
    40 s from one address, and all of the front's come from its own."""
    def login(role: str) -> requests.Response:
        token = tokens.mint_web_token(prefixed["key2"], ENV, "arn:aws:iam::1:user/poller", "user/poller", role)
        return requests.post(prefixed["url2"] + f"{PREFIX}{AIRFLOW2_LOGIN}", data={"token": token}, timeout=10)

    sessions = {login("Op").cookies["session"] for _ in range(8)}
    assert sessions == {"signed-user.poller"}
    assert [user for _, user in _PrefixedAirflow2.logins].count("user.poller") == 1
    # Another role is another sign-in: the user's roles are changed first.
    assert login("Viewer").status_code == 200
    assert _PrefixedAirflow2.users["user.poller"]["roles"] == [{"name": "Viewer"}]
    assert [user for _, user in _PrefixedAirflow2.logins].count("user.poller") == 2
