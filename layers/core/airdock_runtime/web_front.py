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
    POST /aws_mwaa/login               Airflow 2: form field `token` = a web login token, signed in
                                       as the SSO page does; 200 with the `session` cookie
    POST /pluginsv2/aws_mwaa/login     Airflow 3: the same; 200 with the `_token` cookie (the Amazon
                                       provider's MwaaHook sends it back as a Bearer token)
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
    AIRDOCK_WEB_TLS_OPTIONAL      `1`: with the certificate, serve HTTPS and plain HTTP on the one
                                  port, told apart by a connection's first byte
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
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airdock_runtime import tokens
from airdock_runtime.http_proxy import ProxyHandler
from airdock_runtime.cli_commands import CommandRefused, check_command
from airdock_runtime.sign_in_pages import SSO_PATH, error_page, signed_in_page, sso_page
from airdock_runtime.airflow_auth import fab_password, mint_airflow_jwt
from airdock_runtime.used_tokens_postgres import PostgresUsedTokens
from airdock_runtime.used_tokens_sqlite import SqliteUsedTokens

CLI_PATH = "/aws_mwaa/cli"
# Where MWAA's web login for scripts lives, per Airflow major version (the Amazon provider's
# MwaaHook._get_session_conn, and the MWAA user guide's session-token recipe).
LOGIN_PATHS = {2: "/aws_mwaa/login", 3: "/pluginsv2/aws_mwaa/login"}
# Path prefixes of MWAA's own endpoints: answered here, never proxied to Airflow.
MWAA_PREFIXES = ("/aws_mwaa/", "/pluginsv2/aws_mwaa/")
MAX_CLI_BODY = 64 * 1024
MAX_FORM_BODY = 16 * 1024
# FAB rate-limits its login form per client address (5 per 40 s by default), and every Airflow 2
# sign-in of the web front comes from the front's own address: a script polling through the
# Amazon provider's fallback (one web login per call) would soon be refused. So a user's FAB
# session is reused for its next sign-ins with the same role for this long. FAB keeps no session
# state on the server: a reused cookie is as good as a new one.
FAB_SESSION_REUSE_S = 300.0
# A TLS handshake record starts with this byte; an HTTP request line never does.
TLS_HANDSHAKE = b"\x16"
# How long a new connection may take to send its first byte, and then to finish a TLS handshake.
FIRST_BYTE_TIMEOUT_S = 60.0
# AIRDOCK_USED_TOKENS_STORE's value for the environment's metadata database (used_tokens_store).
METADATA_DATABASE = "metadata-database"

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
        self.tls_optional = bool(self.tls_cert) and env.get("AIRDOCK_WEB_TLS_OPTIONAL", "") in ("1", "true", "True")
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
        # username -> (role, session cookie, monotonic time it was made); a lock per username, so
        # concurrent sign-ins of one user share one form login.
        self._fab_sessions: dict[str, tuple[str, str, float]] = {}
        self._fab_locks: dict[str, threading.Lock] = {}
        self._fab_locks_guard = threading.Lock()

    def endpoint(self, path: str) -> str:
        """The MWAA endpoint a request path names, with the environment's prefix taken off; other
        paths are returned as they are (Airflow serves them under the prefix itself)."""
        base = self.config.base_path
        if base and path.startswith(tuple(base + prefix for prefix in MWAA_PREFIXES)):
            return path[len(base):]
        return path

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        # This server speaks HTTP/1.1 only: a client offering h2 must not pick it.
        context.set_alpn_protocols(["http/1.1"])
        return context

    def make_server(self) -> ThreadingHTTPServer:
        front = self

        class Handler(_Handler):
            web = front

        server = _FrontServer((self.config.host, self.config.port), Handler)
        server.tls = self.tls_context()
        server.tls_optional = self.config.tls_optional
        self.server = server
        return server

    def serve(self) -> None:
        server = self.make_server()
        scheme = ("https and http" if self.config.tls_optional else "https") if self.config.tls_cert else "http"
        print(f"[web-front] {self.config.environment}: {scheme} on {self.config.host}:{self.config.port} -> "
              f"{self.config.upstream_origin}", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    # ---- the Airflow side of a login -----------------------------------------------------------

    def upstream(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.config.upstream_host, self.config.upstream_port, timeout=timeout)

    def airflow2_session_cookie(self, username: str, role: str) -> str:
        """A FAB `session` cookie of `username` with `role`: the one made for it within
        FAB_SESSION_REUSE_S, else a new sign-in."""
        with self._fab_locks_guard:
            lock = self._fab_locks.setdefault(username, threading.Lock())
        with lock:
            cached = self._fab_sessions.get(username)
            if cached is not None and cached[0] == role and time.monotonic() - cached[2] < FAB_SESSION_REUSE_S:
                return cached[1]
            session = self._airflow2_sign_in(username, role)
            self._fab_sessions[username] = (role, session, time.monotonic())
            return session

    def _airflow2_sign_in(self, username: str, role: str) -> str:
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


class _FrontServer(ThreadingHTTPServer):
    """The web front's listener. With a certificate it speaks TLS; with `tls_optional` as well as
    plain HTTP on the same port (MWAA clients build https:// URLs themselves, while browsers
    and older scripts keep using http:// locally): a connection whose first byte opens a TLS
    handshake is wrapped, any other is served as it is. Both happen in the connection's own
    thread, so a slow or silent client never holds up the accept loop."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None
    tls_optional = False

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = self._secured(request, client_address)
        if connection is None:
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            if connection is not request:
                # The plain socket was handed over to the TLS one, whose end is ours to close.
                try:
                    connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                connection.close()

    def _secured(self, request: socket.socket, client_address: Any) -> socket.socket | None:
        if self.tls is None:
            return request
        request.settimeout(FIRST_BYTE_TIMEOUT_S)
        if self.tls_optional:
            try:
                first = request.recv(1, socket.MSG_PEEK)
            except OSError:
                return None
            if not first:
                return None
            if first != TLS_HANDSHAKE:
                request.settimeout(None)
                return request
        try:
            connection = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # A client that does not trust the certificate ends here: one line, no traceback.
            sys.stderr.write(f"[web-front] {client_address[0]} TLS handshake failed: {exc}\n")
            return None
        connection.settimeout(None)
        return connection


class _Handler(ProxyHandler):
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
            elif endpoint in LOGIN_PATHS.values():
                self._login(endpoint)
            else:
                self._proxy()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            # The client went away (over TLS it says so as an SSL error): nobody to answer.
            self.close_connection = True
        except Exception as exc:  # the front must answer, never drop the connection silently
            self.log_message("error on %s %s: %r", self.command, path, exc)
            try:
                self._send_json(500, {"error": "InternalError", "message": "The web front failed; see its log."})
            except OSError:
                self.close_connection = True

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
            self._send(405, error_page("Method not allowed", "Open the sign-in link in a browser."),
                       "text/html; charset=utf-8")
            return
        body = self._read_body(MAX_FORM_BODY)
        if body is None:
            self.close_connection = True
            self._send(413, error_page("Sign-in refused", "The request is too large."), "text/html; charset=utf-8")
            return
        try:
            sign_in = self._sign_in(_form_token(body))
        except tokens.TokenError as exc:
            self._send(exc.status, error_page("Sign-in refused", exc.message), "text/html; charset=utf-8")
            return
        except AirflowSignInFailed as exc:
            self._send(502, error_page("Sign-in failed", str(exc)), "text/html; charset=utf-8")
            return
        self.send_response(303)
        self.send_header("Location", sign_in.location)
        self.send_header("Set-Cookie", sign_in.cookie)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- /aws_mwaa/login (Airflow 2), /pluginsv2/aws_mwaa/login (Airflow 3) --------------------

    def _login(self, endpoint: str) -> None:
        """The web login for scripts: the SSO sign-in without a browser. The session comes back on
        a 200 itself, not on a redirect: clients read the cookie from the response they end on
        (`response.cookies[...]`, after requests has followed any redirect)."""
        config = self.web.config
        major = 3 if config.airflow_major >= 3 else 2
        # Refused before the body is read, so the connection closes: what is left of the request
        # would otherwise be taken for the next one.
        closing = {"Connection": "close"}
        if endpoint != LOGIN_PATHS[major]:
            self.close_connection = True
            self._send(404, _json({"error": "NotFound", "message":
                                   f"This environment runs Airflow {major}: sign in at {config.base_path}"
                                   f"{LOGIN_PATHS[major]} (the Amazon provider's MwaaHook: airflow_version={major})."}),
                       "application/json", closing)
            return
        if self.command != "POST":
            self.close_connection = True
            self._send(405, _json({"error": "MethodNotAllowed", "message":
                                   "POST the web login token from CreateWebLoginToken as the form field `token`."}),
                       "application/json", {"Allow": "POST", **closing})
            return
        body = self._read_body(MAX_FORM_BODY)
        if body is None:
            self.close_connection = True
            self._send_json(413, {"error": "PayloadTooLarge", "message": f"The form exceeds {MAX_FORM_BODY} bytes."})
            return
        token = _form_token(body)
        if not token:
            self._send_json(400, {"error": "BadRequest", "message":
                                  "Send the web login token from CreateWebLoginToken as the form field `token` "
                                  "(application/x-www-form-urlencoded)."})
            return
        try:
            sign_in = self._sign_in(token)
        except tokens.TokenError as exc:
            self._send_json(exc.status, {"error": "Unauthorized" if exc.status == 401 else "Forbidden",
                                         "message": exc.message})
            return
        except AirflowSignInFailed as exc:
            self._send_json(502, {"error": "BadGateway", "message": str(exc)})
            return
        self._send(200, signed_in_page(sign_in.location, sign_in.airflow_identity, sign_in.role),
                   "text/html; charset=utf-8", {"Set-Cookie": sign_in.cookie})

    # ---- the sign-in both share ----------------------------------------------------------------

    def _sign_in(self, token: str) -> "SignIn":
        """Verify a web login token, spend it (once, for every web front of the environment), and
        sign its identity into Airflow with its role. TokenError if refused, AirflowSignInFailed
        if Airflow would not take the sign-in."""
        config = self.web.config
        claims = tokens.verify(config.token_key, token, kind=tokens.WEB, environment=config.environment,
                               now=self.web.clock())
        if claims.role == "Public":
            raise tokens.TokenError("The Public role cannot sign in to the Airflow UI.", 403)
        self.web.replays.use(claims)
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
            try:
                session = self.web.airflow2_session_cookie(fab_username(claims.airflow_identity), claims.role)
            except (RuntimeError, OSError) as exc:
                raise AirflowSignInFailed(f"Airflow did not accept the sign-in ({exc}); it may still be starting. "
                                          "Create a new login token and try again.") from None
            cookie = f"session={session}; Path={base}/; HttpOnly; SameSite=Lax{secure}"
            location = f"{base}/home"
        return SignIn(cookie, location, claims.airflow_identity, claims.role)


class AirflowSignInFailed(Exception):
    """Airflow (2) did not take a sign-in the token allowed: an upstream failure, not the client's."""


class SignIn:
    def __init__(self, cookie: str, location: str, airflow_identity: str, role: str) -> None:
        self.cookie = cookie
        self.location = location
        self.airflow_identity = airflow_identity
        self.role = role


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _form_token(body: bytes) -> str:
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return (form.get("token") or [""])[0]


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
