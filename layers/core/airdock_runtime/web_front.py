"""An environment's web front: MWAA's `/aws_mwaa/*` endpoints in front of the Airflow UI and API.

It is one more environment component (`AIRDOCK_COMPONENT=web-front`), started by the same
entrypoint as the scheduler and the API server, locally by Airdock's supervisor and in the
container image on AWS, where the load balancer sends the web server hostname to it. Standard
library only, like the entrypoint: it runs with the Airflow runtime's interpreter.

    POST /aws_mwaa/cli                 Bearer CLI token, text/plain body = an Airflow command
                                       without `airflow` -> {"stdout": b64, "stderr": b64}
    GET  /aws_mwaa/aws-console-sso     the page a web login URL opens; the token is in the URL
                                       fragment, which browsers never send, so the page posts it
    POST /aws_mwaa/aws-console-sso     verify the web login token (once), sign the browser into
                                       Airflow with the token's role, redirect to the UI
    anything else                      reverse-proxied to the Airflow API server / webserver
                                       (streamed; WebSocket upgrades are tunnelled)

Environment variables:
    AIRDOCK_ENVIRONMENT_NAME      the environment tokens must be scoped to (required)
    AIRDOCK_WEB_FRONT_PORT        listening port (required); AIRDOCK_WEB_FRONT_HOST (default 0.0.0.0)
    AIRDOCK_WEB_UPSTREAM          the Airflow web server, e.g. http://127.0.0.1:8080 (required)
    AIRDOCK_WEB_BASE_PATH         the path prefix the environment is served under, e.g. /analytics
                                  when a load balancer routes by path (default: none). Airflow's
                                  base_url must carry the same path: it serves its UI and API
                                  under it, and the front forwards paths unchanged. The MWAA
                                  endpoints answer under it and at the root (health checks, a
                                  load balancer that rewrites the prefix away); the sign-in page
                                  posts to, redirects to and scopes its cookie to the prefix.
    AIRDOCK_AIRFLOW_MAJOR         2 or 3 (default 3): how a browser is signed in
    AIRDOCK_SECRETS_FILE          JSON with token_key, jwt_secret (Airflow 3), admin_password
                                  (Airflow 2); or give them as AIRDOCK_TOKEN_KEY,
                                  AIRDOCK_JWT_SECRET, AIRDOCK_ADMIN_PASSWORD
    AIRDOCK_WEB_TLS_CERT/_KEY     PEM certificate chain and key: serve HTTPS instead of HTTP
    AIRDOCK_WEB_STATE_DIR         where used login-token ids are remembered, in SQLite shared by
                                  every web front given the same folder (default: this process only)
    AIRDOCK_USED_TOKENS_STORE     `metadata-database`: remember them in the environment's metadata
                                  database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) instead (AWS:
                                  shared by every web-front task behind the load balancer)
    AIRDOCK_CLI_TIMEOUT           seconds an Airflow CLI command may run (default 300)
    AIRDOCK_TOKEN_CLOCK_OFFSET_FILE  tests only: seconds added to the clock, read per request
"""
from __future__ import annotations

import base64
import html
import http.client
import json
import os
import re
import select
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airdock_runtime import tokens
from airdock_runtime.airflow_auth import fab_password, mint_airflow_jwt
from airdock_runtime.used_tokens_postgres import PostgresUsedTokens
from airdock_runtime.used_tokens_sqlite import SqliteUsedTokens

CLI_PATH = "/aws_mwaa/cli"
SSO_PATH = "/aws_mwaa/aws-console-sso"
MAX_CLI_BODY = 64 * 1024
MAX_FORM_BODY = 16 * 1024
# AIRDOCK_USED_TOKENS_STORE's value for the environment's metadata database (used_tokens_store).
METADATA_DATABASE = "metadata-database"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade"}

# MWAA's documented CLI allow-list ("Supported CLI commands"): read and operate commands on DAGs,
# tasks, variables, connections and pools, plus informational ones. Nothing that starts a
# component, changes the database schema, manages users or reads/writes local files.
ALLOWED_COMMANDS: frozenset[tuple[str, ...]] = frozenset({
    ("cheat-sheet",), ("version",), ("info",), ("plugins",),
    ("backfill", "create"),
    ("config", "get-value"), ("config", "list"),
    ("connections", "add"), ("connections", "delete"), ("connections", "get"), ("connections", "list"),
    ("dags", "backfill"), ("dags", "delete"), ("dags", "details"), ("dags", "list"),
    ("dags", "list-import-errors"), ("dags", "list-jobs"), ("dags", "list-runs"),
    ("dags", "next-execution"), ("dags", "pause"), ("dags", "report"), ("dags", "show"),
    ("dags", "state"), ("dags", "test"), ("dags", "trigger"), ("dags", "unpause"),
    ("db", "check"), ("jobs", "check"),
    ("pools", "delete"), ("pools", "get"), ("pools", "list"), ("pools", "set"),
    ("providers", "behaviours"), ("providers", "get"), ("providers", "hooks"), ("providers", "links"),
    ("providers", "list"), ("providers", "widgets"),
    ("roles", "create"), ("roles", "list"),
    ("tasks", "clear"), ("tasks", "failed-deps"), ("tasks", "list"), ("tasks", "render"),
    ("tasks", "state"), ("tasks", "states-for-dag-run"), ("tasks", "test"),
    ("variables", "delete"), ("variables", "get"), ("variables", "list"), ("variables", "set"),
})
# Options that would make an allowed command write files in the environment.
_FORBIDDEN_OPTIONS = ("--save", "--imgcat", "--subdir", "-S")


class CommandRefused(Exception):
    pass


def check_command(text: str) -> list[str]:
    """The argv of an allowed Airflow command, or CommandRefused saying why not.

    Split like a shell would (quotes) but never run by one, so `;`, `$(..)` or `|` are just
    characters of an argument.
    """
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise CommandRefused(f"The command could not be parsed: {exc}.") from None
    if argv and argv[0] == "airflow":
        argv = argv[1:]
    if not argv:
        raise CommandRefused("No command given: send an Airflow CLI command such as `dags list` as the body.")
    words = [a for a in argv if not a.startswith("-")]
    head = tuple(words[:2])
    if not (tuple(words[:1]) in ALLOWED_COMMANDS or head in ALLOWED_COMMANDS):
        raise CommandRefused(f"The Airflow CLI command `{' '.join(head) or argv[0]}` is not supported "
                             "by Airdock (MWAA's CLI allow-list).")
    for arg in argv:
        if arg.split("=", 1)[0] in _FORBIDDEN_OPTIONS:
            raise CommandRefused(f"The option {arg.split('=', 1)[0]} is not supported through the CLI endpoint.")
    return argv




def used_tokens_store(config: "Config") -> tokens.UsedTokens:
    """Where spent web login tokens are recorded (tokens.UsedTokens). Every web front of the
    environment must share it, or a token used on one could be replayed on another."""
    if config.used_tokens_store == METADATA_DATABASE:
        return PostgresUsedTokens(config.database_url)
    if config.state_dir:
        return SqliteUsedTokens(config.state_dir / "used-login-tokens.db")
    return tokens.MemoryUsedTokens()




def fab_username(airflow_identity: str) -> str:
    # FAB routes put the user name in the URL path; a '/' would split it.
    return airflow_identity.replace("/", ".")[:64]


_BASE_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def base_path(value: str) -> str:
    """AIRDOCK_WEB_BASE_PATH normalised: '' or '/a[/b...]' without a trailing slash. It ends up
    in HTML, a Location and a cookie, so anything outside plain path characters is refused."""
    path = value.strip().rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    if not _BASE_PATH.match(path):
        raise ValueError(f"AIRDOCK_WEB_BASE_PATH {value!r} is not a plain URL path such as /analytics")
    return path


class Config:
    def __init__(self, env: dict[str, str]) -> None:
        self.environment = env["AIRDOCK_ENVIRONMENT_NAME"]
        self.base_path = base_path(env.get("AIRDOCK_WEB_BASE_PATH", ""))
        self.host = env.get("AIRDOCK_WEB_FRONT_HOST", "0.0.0.0")
        self.port = int(env["AIRDOCK_WEB_FRONT_PORT"])
        upstream = urllib.parse.urlsplit(env["AIRDOCK_WEB_UPSTREAM"])
        self.upstream_host = upstream.hostname or "127.0.0.1"
        self.upstream_port = upstream.port or 80
        self.upstream_origin = f"{upstream.scheme}://{upstream.netloc}"
        self.airflow_major = int(env.get("AIRDOCK_AIRFLOW_MAJOR", "3"))
        file_secrets: dict[str, str] = {}
        if env.get("AIRDOCK_SECRETS_FILE"):
            file_secrets = json.loads(Path(env["AIRDOCK_SECRETS_FILE"]).read_text())
        self.token_key = env.get("AIRDOCK_TOKEN_KEY") or file_secrets["token_key"]
        self.jwt_secret = env.get("AIRDOCK_JWT_SECRET") or file_secrets.get("jwt_secret", "")
        self.admin_password = env.get("AIRDOCK_ADMIN_PASSWORD") or file_secrets.get("admin_password", "")
        self.tls_cert = env.get("AIRDOCK_WEB_TLS_CERT") or None
        self.tls_key = env.get("AIRDOCK_WEB_TLS_KEY") or None
        state = env.get("AIRDOCK_WEB_STATE_DIR")
        self.state_dir = Path(state) if state else None
        self.used_tokens_store = env.get("AIRDOCK_USED_TOKENS_STORE") or None
        if self.used_tokens_store not in (None, METADATA_DATABASE):
            raise ValueError(f"AIRDOCK_USED_TOKENS_STORE {self.used_tokens_store!r}: only {METADATA_DATABASE!r} is known")
        self.database_url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        if self.used_tokens_store == METADATA_DATABASE and not self.database_url:
            raise ValueError(f"AIRDOCK_USED_TOKENS_STORE={METADATA_DATABASE} needs AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        self.cli_timeout_s = float(env.get("AIRDOCK_CLI_TIMEOUT", "300"))
        self.airflow_bin = env.get("AIRDOCK_AIRFLOW_BIN") or str(Path(sys.executable).with_name("airflow"))
        self.clock_offset_file = env.get("AIRDOCK_TOKEN_CLOCK_OFFSET_FILE") or None
        self.cli_env = {k: v for k, v in env.items() if not k.startswith(("AIRDOCK_TOKEN", "AIRDOCK_JWT",
                                                                          "AIRDOCK_ADMIN"))}


class WebFront:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.tokens = tokens
        self.clock = tokens.offset_clock(config.clock_offset_file)
        self.replays = tokens.ReplayGuard(used_tokens_store(config), self.clock)
        self.server: ThreadingHTTPServer | None = None

    @property
    def secure(self) -> bool:
        return bool(self.config.tls_cert)

    def endpoint(self, path: str) -> str:
        """The MWAA endpoint a request path names, with the environment's prefix taken off; other
        paths are returned as they are (Airflow serves them under the prefix itself)."""
        base = self.config.base_path
        if base and path.startswith(base + "/aws_mwaa/"):
            return path[len(base):]
        return path

    def make_server(self) -> ThreadingHTTPServer:
        front = self

        class Handler(_Handler):
            web = front

        server = ThreadingHTTPServer((self.config.host, self.config.port), Handler)
        server.daemon_threads = True
        if self.config.tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
            # Handshake in the connection's own thread, not in the accept loop.
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self.server = server
        return server

    def serve(self) -> None:
        server = self.make_server()
        scheme = "https" if self.secure else "http"
        print(f"[web-front] {self.config.environment}: {scheme}://{self.config.host}:{self.config.port} -> "
              f"{self.config.upstream_origin}", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    # ---- the Airflow side of a login -----------------------------------------------------------

    def upstream(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.config.upstream_host, self.config.upstream_port, timeout=timeout)

    def airflow2_session_cookie(self, username: str, role: str) -> str:
        """Sign in to Airflow 2's FAB UI as `username` (created or given `role` first); returns the
        `session` cookie FAB set."""
        password = fab_password(self.config.token_key, username)
        admin = "Basic " + base64.b64encode(f"admin:{self.config.admin_password}".encode()).decode()
        user = {"username": username, "password": password, "email": f"{username}@airdock.invalid",
                "first_name": username[:64], "last_name": "MWAA", "roles": [{"name": role}]}
        headers = {"Authorization": admin, "Content-Type": "application/json"}
        # Airflow 2 serves everything under its base_url's path (werkzeug's DispatcherMiddleware).
        prefix = self.config.base_path
        status, body = self._request("POST", f"{prefix}/auth/fab/v1/users", json.dumps(user).encode(), headers)
        if status == 404:
            status, body = self._request("POST", f"{prefix}/api/v1/users", json.dumps(user).encode(), headers)
            base = f"{prefix}/api/v1/users"
        else:
            base = f"{prefix}/auth/fab/v1/users"
        if status == 409:
            status, body = self._request(
                "PATCH", f"{base}/{urllib.parse.quote(username, safe='')}?update_mask=roles,password",
                json.dumps({**user}).encode(), headers)
        if status >= 300:
            raise RuntimeError(f"creating the Airflow user failed: {status} {body[:300]!r}")
        conn = self.upstream()
        conn.request("GET", f"{prefix}/login/")
        resp = conn.getresponse()
        page = resp.read().decode(errors="replace")
        cookie = _cookie_value(resp.getheader("Set-Cookie") or "", "session")
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
            re.search(r'id="csrf_token"[^>]*value="([^"]+)"', page)
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrf_token": match.group(1) if match else ""})
        conn.request("POST", f"{prefix}/login/", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                "Cookie": f"session={cookie}"})
        resp = conn.getresponse()
        resp.read()
        session = _cookie_value(resp.getheader("Set-Cookie") or "", "session")
        conn.close()
        if resp.status not in (302, 303) or not session:
            raise RuntimeError(f"the Airflow login form answered {resp.status}")
        return session

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self.upstream()
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def _cookie_value(set_cookie: str, name: str) -> str:
    match = re.search(rf"(?:^|[,\s]){re.escape(name)}=([^;]+)", set_cookie)
    return match.group(1) if match else ""


SSO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Signing in to Apache Airflow</title></head>
<body style="font-family: sans-serif; margin: 3em">
<p id="message">Signing in to Apache Airflow&hellip;</p>
<form id="login" method="post" action="__ACTION__">
<input type="hidden" name="token" id="token"></form>
<script>
(function () {
  // The token travels in the URL fragment, which the browser never sends: hand it over by POST,
  // and drop it from the address bar and history first.
  var token = decodeURIComponent((window.location.hash || "").replace(/^#/, ""));
  history.replaceState(null, "", window.location.pathname + window.location.search);
  if (!token) {
    document.getElementById("message").textContent =
      "This sign-in link carries no token. Create a new one with CreateWebLoginToken.";
    return;
  }
  document.getElementById("token").value = token;
  document.getElementById("login").submit();
})();
</script>
<noscript>Signing in needs JavaScript.</noscript>
</body></html>
"""


def sso_page(base: str) -> bytes:
    # Posted to under the environment's prefix: with path routing the host root is not the
    # environment (nor any environment) on the load balancer.
    return SSO_PAGE.replace("__ACTION__", html.escape(base + SSO_PATH)).encode()


def _error_page(title: str, detail: str) -> bytes:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body style=\"font-family: sans-serif; margin: 3em\"><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(detail)}</p><p>Create a new login link with CreateWebLoginToken "
            f"(for example from the Airdock console) and open it within 60 seconds.</p></body></html>").encode()


class _Handler(BaseHTTPRequestHandler):
    web: WebFront
    protocol_version = "HTTP/1.1"
    server_version = "AirdockWebFront"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"[web-front] {self.address_string()} {format % args}\n")

    # Every method goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        endpoint = self.web.endpoint(path)
        try:
            if endpoint == CLI_PATH:
                self._cli()
            elif endpoint == SSO_PATH:
                self._sso()
            else:
                self._proxy()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # the front must answer, never drop the connection silently
            self.log_message("error on %s %s: %r", self.command, path, exc)
            try:
                self._send_json(500, {"error": "InternalError", "message": "The web front failed; see its log."})
            except OSError:
                self.close_connection = True

    # ---- helpers ---------------------------------------------------------------------------------

    def _read_body(self, limit: int | None = None) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        if limit is not None and length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            n = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if n == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            size += n
            if limit is not None and size > limit:
                return None
            chunks.append(self.rfile.read(n))
            self.rfile.readline(8)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    # ---- /aws_mwaa/cli ---------------------------------------------------------------------------

    def _cli(self) -> None:
        if self.command != "POST":
            self._send_json(405, {"error": "MethodNotAllowed", "message": "POST an Airflow CLI command."})
            return
        body = self._read_body(MAX_CLI_BODY)
        if body is None:
            self.close_connection = True
            self._send_json(413, {"error": "PayloadTooLarge", "message": f"The command exceeds {MAX_CLI_BODY} bytes."})
            return
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            self._send_json(401, {"error": "Unauthorized",
                                  "message": "Send the CLI token from CreateCliToken as `Authorization: Bearer <token>`."})
            return
        tokens = self.web.tokens
        try:
            tokens.verify(self.web.config.token_key, auth[7:].strip(), kind=tokens.CLI,
                          environment=self.web.config.environment, now=self.web.clock())
        except tokens.TokenError as exc:
            self._send_json(exc.status, {"error": "Unauthorized" if exc.status == 401 else "Forbidden",
                                         "message": exc.message})
            return
        try:
            text = body.decode("utf-8")
            argv = check_command(text)
        except UnicodeDecodeError:
            self._send_json(400, {"error": "BadRequest", "message": "The command must be UTF-8 text."})
            return
        except CommandRefused as exc:
            self._send_json(400, {"error": "CommandNotSupported", "message": str(exc)})
            return
        config = self.web.config
        try:
            out = subprocess.run([config.airflow_bin, *argv], env=config.cli_env, capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=config.cli_timeout_s,
                                 cwd=config.cli_env.get("AIRFLOW_HOME") or None)
            stdout, stderr = out.stdout, out.stderr
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout or b""
            stderr = (exc.stderr or b"") + f"\nThe command did not finish within {config.cli_timeout_s:.0f}s.\n".encode()
        # MWAA answers 200 whatever the command's exit code; the outcome is in the output.
        self._send_json(200, {"stdout": base64.b64encode(stdout).decode(),
                              "stderr": base64.b64encode(stderr).decode()})

    # ---- /aws_mwaa/aws-console-sso ---------------------------------------------------------------

    def _sso(self) -> None:
        if self.command in ("GET", "HEAD"):
            self._send(200, sso_page(self.web.config.base_path), "text/html; charset=utf-8",
                       {"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})
            return
        if self.command != "POST":
            self._send(405, _error_page("Method not allowed", "Open the sign-in link in a browser."),
                       "text/html; charset=utf-8")
            return
        body = self._read_body(MAX_FORM_BODY)
        if body is None:
            self.close_connection = True
            self._send(413, _error_page("Sign-in refused", "The request is too large."), "text/html; charset=utf-8")
            return
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        tokens = self.web.tokens
        config = self.web.config
        try:
            claims = tokens.verify(config.token_key, token, kind=tokens.WEB, environment=config.environment,
                                   now=self.web.clock())
            if claims.role == "Public":
                raise tokens.TokenError("The Public role cannot sign in to the Airflow UI.", 403)
            self.web.replays.use(claims)
        except tokens.TokenError as exc:
            self._send(exc.status, _error_page("Sign-in refused", exc.message), "text/html; charset=utf-8")
            return
        secure = "; Secure" if self._scheme() == "https" else ""
        # Scoped to the environment's prefix, as Airflow 3 scopes its own cookies (and Airflow 2's
        # session cookie, through the webserver_config.py the entrypoint writes): environments
        # routed by path share one host, and must not overwrite each other's sign-in.
        base = config.base_path
        if config.airflow_major >= 3:
            jwt = mint_airflow_jwt(config.jwt_secret, sub=claims.airflow_identity, role=claims.role.lower(), ttl_s=12 * 3600)
            # Not HttpOnly: Airflow's UI reads this cookie from JavaScript, as after its own login.
            cookie = f"_token={jwt}; Path={base}/; SameSite=Lax{secure}"
            location = f"{base}/"
        else:
            session = self.web.airflow2_session_cookie(fab_username(claims.airflow_identity), claims.role)
            cookie = f"session={session}; Path={base}/; HttpOnly; SameSite=Lax{secure}"
            location = f"{base}/home"
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Set-Cookie", cookie)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- everything else: the Airflow UI and API -------------------------------------------------

    def _scheme(self) -> str:
        """The scheme the browser used. Behind the load balancer, which terminates TLS and says
        so in X-Forwarded-Proto, that is the header's; directly, this server's own."""
        return self.headers.get("X-Forwarded-Proto") or ("https" if self.web.secure else "http")

    def _forward_headers(self) -> list[tuple[str, str]]:
        connection_tokens = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        out = [(k, v) for k, v in self.headers.items()
               if k.lower() not in _HOP_BY_HOP and k.lower() not in connection_tokens
               and k.lower() not in ("content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")]
        client = self.client_address[0]
        prior = self.headers.get("X-Forwarded-For")
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        # Kept when a proxy in front (the ALB) set them: it knows what the browser used. Each is
        # sent once; two values would leave Airflow to pick one.
        out.append(("X-Forwarded-Proto", self._scheme()))
        out.append(("X-Forwarded-Host", self.headers.get("X-Forwarded-Host") or self.headers.get("Host", "")))
        return out

    def _proxy(self) -> None:
        if "websocket" in self.headers.get("Upgrade", "").lower():
            self._tunnel()
            return
        body = self._read_body()
        conn = self.web.upstream(timeout=300)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self._forward_headers():
                conn.putheader(k, v)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body or None)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            self._send_json(502, {"error": "BadGateway",
                                  "message": f"The Airflow web server is not reachable ({exc.__class__.__name__}); "
                                             "it may still be starting."})
            return
        try:
            self._relay(resp)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        bodyless = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        for k, v in resp.getheaders():
            lower = k.lower()
            if lower in _HOP_BY_HOP or lower == "content-length":
                continue
            if lower == "location" and v.startswith(self.web.config.upstream_origin):
                v = v[len(self.web.config.upstream_origin):] or "/"
            self.send_header(k, v)
        chunked = length is None and not bodyless
        if length is not None:
            self.send_header("Content-Length", length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodyless:
            return
        while True:
            # read1: hand on what arrived, so streamed responses (logs, events) flow as they come.
            data = resp.read1(65536)
            if not data:
                break
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _tunnel(self) -> None:
        """WebSocket: replay the upgrade request upstream, then copy bytes both ways until one side closes."""
        config = self.web.config
        try:
            upstream = socket.create_connection((config.upstream_host, config.upstream_port), timeout=10)
        except OSError:
            self._send_json(502, {"error": "BadGateway", "message": "The Airflow web server is not reachable."})
            return
        head = [f"{self.command} {self.path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        upstream.settimeout(None)
        client = self.connection
        self.close_connection = True
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 300)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


def main() -> int:
    import signal

    front = WebFront(Config(dict(os.environ)))

    def stop(_signum: int, _frame: Any) -> None:
        front.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    front.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
