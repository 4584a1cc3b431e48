"""HTTPS on the web front's port: with a certificate from the local CA it speaks TLS and plain HTTP
on the one port (MWAA clients build https:// URLs, everything else keeps http://); with a
certificate the user configured, HTTPS only, as before. Real sockets, real TLS, verified against
the CA bundle (never verify=False)."""
from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from airdock.local.tls import LocalCertificateAuthority
from airdock_runtime import tokens
from support.web_front import load_web_front

ENV = "prod"
web_front = load_web_front()


class _Upstream(BaseHTTPRequestHandler):
    """Answers with what the front forwarded: the scheme it says the client used."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "proto": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificateAuthority:
    ca = LocalCertificateAuthority(tmp_path_factory.mktemp("ca") / "tls")
    ca.ensure()
    return ca


def _front(tmp: Path, authority: LocalCertificateAuthority, **extra: str) -> Iterator[dict[str, Any]]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    cert, key = authority.server_certificate(tmp / "cert", ["127.0.0.1", "localhost"])
    token_key = tokens.new_key()
    (tmp / "secrets.json").write_text(json.dumps({"token_key": token_key, "jwt_secret": "jwt"}))
    server = web_front.WebFront(web_front.Config({
        "AIRDOCK_ENVIRONMENT_NAME": ENV, "AIRDOCK_WEB_FRONT_HOST": "127.0.0.1", "AIRDOCK_WEB_FRONT_PORT": "0",
        "AIRDOCK_WEB_UPSTREAM": f"http://127.0.0.1:{upstream.server_address[1]}",
        "AIRDOCK_SECRETS_FILE": str(tmp / "secrets.json"),
        "AIRDOCK_WEB_TLS_CERT": str(cert), "AIRDOCK_WEB_TLS_KEY": str(key), **extra,
    })).make_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"port": server.server_address[1], "key": token_key, "bundle": str(authority.bundle)}
    server.shutdown()
    server.server_close()
    upstream.shutdown()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, authority: LocalCertificateAuthority) -> Iterator[dict[str, Any]]:
    yield from _front(tmp_path_factory.mktemp("both"), authority, AIRDOCK_WEB_TLS_OPTIONAL="1")


@pytest.fixture(scope="module")
def https_only(tmp_path_factory: pytest.TempPathFactory, authority: LocalCertificateAuthority) -> Iterator[dict[str, Any]]:
    yield from _front(tmp_path_factory.mktemp("only"), authority)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_one_port_serves_https_verified_by_the_local_ca_and_plain_http(both: dict[str, Any], host: str) -> None:
    secure = requests.get(f"https://{host}:{both['port']}/api/v2/dags", verify=both["bundle"], timeout=10)
    assert secure.json() == {"path": "/api/v2/dags", "proto": "https"}
    plain = requests.get(f"http://{host}:{both['port']}/api/v2/dags", timeout=10)
    assert plain.json() == {"path": "/api/v2/dags", "proto": "http"}


def test_keep_alive_connections_of_both_kinds_carry_several_requests(both: dict[str, Any]) -> None:
    for scheme in ("https", "http"):
        session = requests.Session()
        answers = [session.get(f"{scheme}://127.0.0.1:{both['port']}/n/{i}", verify=both["bundle"], timeout=10).json()
                   for i in range(3)]
        assert [a["path"] for a in answers] == ["/n/0", "/n/1", "/n/2"]


def test_a_sign_in_over_https_sets_a_secure_cookie_and_over_http_a_plain_one(both: dict[str, Any]) -> None:
    def login(scheme: str) -> requests.Response:
        token = tokens.mint_web_token(both["key"], ENV, "root", "root", "Admin")
        return requests.post(f"{scheme}://127.0.0.1:{both['port']}/pluginsv2/aws_mwaa/login", data={"token": token},
                             verify=both["bundle"], timeout=10)

    secure, plain = login("https"), login("http")
    assert secure.status_code == plain.status_code == 200
    assert "; Secure" in secure.headers["Set-Cookie"] and "Secure" not in plain.headers["Set-Cookie"]


def test_a_client_that_does_not_trust_the_certificate_is_refused_and_the_front_serves_on(both: dict[str, Any]) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{both['port']}/x", timeout=10)  # the system's CAs only
    assert requests.get(f"https://127.0.0.1:{both['port']}/x", verify=both["bundle"], timeout=10).status_code == 200


def test_a_name_the_certificate_does_not_carry_fails_verification(both: dict[str, Any]) -> None:
    context = ssl.create_default_context(cafile=both["bundle"])
    with socket.create_connection(("127.0.0.1", both["port"]), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="elsewhere.example")


def test_a_connection_that_sends_nothing_holds_up_no_one(both: dict[str, Any]) -> None:
    with socket.create_connection(("127.0.0.1", both["port"]), timeout=10):
        for scheme in ("https", "http"):
            assert requests.get(f"{scheme}://127.0.0.1:{both['port']}/x", verify=both["bundle"], timeout=5).ok


def test_garbage_and_a_half_handshake_get_no_answer_but_break_nothing(both: dict[str, Any]) -> None:
    with socket.create_connection(("127.0.0.1", both["port"]), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello")  # a TLS record header, then nonsense
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := raw.recv(1024):  # at most a TLS alert, then the front hangs up
            answer += chunk
        assert not answer.startswith(b"HTTP")
    with socket.create_connection(("127.0.0.1", both["port"]), timeout=10) as raw:
        raw.sendall(b"\x00\x01garbage\r\n\r\n")  # not TLS, so plain HTTP: a bad request line
        answer = b""
        while chunk := raw.recv(1024):
            answer += chunk
        assert b"400" in answer
    assert requests.get(f"https://127.0.0.1:{both['port']}/x", verify=both["bundle"], timeout=5).ok


def test_with_the_users_own_certificate_the_front_stays_https_only(https_only: dict[str, Any]) -> None:
    secure = requests.get(f"https://127.0.0.1:{https_only['port']}/api/v2/dags", verify=https_only["bundle"], timeout=10)
    assert secure.json()["proto"] == "https"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{https_only['port']}/api/v2/dags", timeout=10)
