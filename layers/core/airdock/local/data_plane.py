"""The data plane locally: CLI and web login tokens for an environment's web front, and
InvokeRestApi against the environment's own Airflow REST API.

Tokens are minted here with the environment's key (secrets.json, 0600) and verified by the web
front component (images/airflow/web_front.py) with the same key. InvokeRestApi calls Airflow
directly, as the caller's Airflow role: on Airflow 3 with a JWT carrying that role, on Airflow 2
as a FAB user of that role (the admin user for Admin).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airdock_runtime import tokens
from airdock.core.airflow_access import RolePolicy, airflow_identity, airflow_role, iam_identity
from airdock.core.errors import (
    AccessDenied,
    RestApiClientError,
    RestApiServerError,
    ServiceUnavailable,
    ValidationError,
)
from airdock.core.models import InvokeRestApiInput
from airdock.core.ports import Caller, EnvironmentRecord
from airdock_runtime.airflow_auth import basic_auth_header, mint_airflow_jwt

# Airflow 3.3 answers 422 to `POST /dags/{id}/dagRuns` without a `logical_date` key; MWAA's
# provider operator leaves the key out when it is None (see MWAA_FACTS.md), and the real service
# makes that call work, so we add the explicit null.
_TRIGGER_PATH = re.compile(r"^/dags/[^/]+/dagRuns/?$")
_REST_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Target:
    base_url: str
    airflow3: bool
    secrets: dict[str, str]


class LocalDataPlane:
    # Set by the local context: per-access-key policies decide the Airflow role (see _role).
    authorizer: Any | None = None

    def __init__(self, envs_dir: Path, compute: Callable[[], Any], role_policy_file: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.envs_dir = envs_dir
        self._compute = compute
        self.role_policy_file = role_policy_file
        self.clock = clock
        self._fab_users: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- policy and identity

    def role_policy(self) -> RolePolicy:
        """`<data-dir>/airflow-roles.json`, read per call so edits apply without a restart."""
        if not self.role_policy_file.is_file():
            return {}
        try:
            policy = json.loads(self.role_policy_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValidationError(f"{self.role_policy_file.name} is not valid JSON: {exc}") from None
        return policy if isinstance(policy, dict) else {}

    def _role(self, record: EnvironmentRecord, caller: Caller, operation: str = "CreateWebLoginToken") -> str:
        # A key restricted by an IAM-style policy (core/authorization.py) gets the most privileged
        # Airflow role its policy allows on role/{env}/{role}, as MWAA maps IAM to Airflow roles;
        # the root key keeps the airflow-roles.json mapping (Admin by default).
        allowed = self.authorizer.allowed_airflow_roles(caller, record.name, operation) if self.authorizer else None
        if allowed is None:
            return airflow_role(caller, record.name, self.role_policy())
        if not allowed:
            raise self.authorizer.denied_role(caller, record.name, operation)
        return allowed[0]

    # ---------------------------------------------------------------- environment facts

    def _target(self, record: EnvironmentRecord) -> _Target:
        airflow = self._compute().environment(record.name)
        if airflow is not None:
            return _Target(airflow.web_url, airflow.airflow3, dict(airflow.secrets))
        # Not managed by this process yet (a restart is bringing it back): its files say enough.
        env_dir = self.envs_dir / record.name
        try:
            secrets = json.loads((env_dir / "secrets.json").read_text())
            ports = json.loads((env_dir / "ports.json").read_text())
        except (OSError, ValueError):
            raise ServiceUnavailable(f"Environment {record.name} is not running on this Airdock server.") from None
        if "token_key" not in secrets:
            raise ServiceUnavailable(f"Environment {record.name} is restarting; try again in a few seconds.")
        return _Target(f"http://127.0.0.1:{ports['web']}", int(record.environment.AirflowVersion.split(".")[0]) >= 3,
                       secrets)

    def _hostname(self, record: EnvironmentRecord) -> str:
        if not record.environment.WebserverUrl:
            raise ServiceUnavailable(f"Environment {record.name} has no web server yet.")
        return record.environment.WebserverUrl

    # ---------------------------------------------------------------- MWAA operations

    def create_cli_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller)
        target = self._target(record)
        token = tokens.mint_cli_token(target.secrets["token_key"], record.name, iam_identity(caller.principal_arn),
                                      airflow_identity(caller.principal_arn), role, now=self.clock())
        return {"CliToken": token, "WebServerHostname": self._hostname(record)}

    def create_web_login_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller)
        target = self._target(record)
        identity, user = iam_identity(caller.principal_arn), airflow_identity(caller.principal_arn)
        token = tokens.mint_web_token(target.secrets["token_key"], record.name, identity, user, role,
                                      now=self.clock())
        return {"WebToken": token, "WebServerHostname": self._hostname(record), "IamIdentity": identity,
                "AirflowIdentity": user}

    def invoke_rest_api(self, record: EnvironmentRecord, request: InvokeRestApiInput, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller, "InvokeRestApi")
        if role == "Public":
            raise AccessDenied(f"The Airflow role Public may not call the REST API of environment {record.name}.")
        path = _checked_path(request.Path)
        target = self._target(record)
        body: Any = request.Body
        if request.Method in ("GET", "DELETE"):
            # The Amazon provider's hook sends `Body: {}` on every call; Airflow rejects a GET body.
            body = None
        elif target.airflow3 and request.Method == "POST" and _TRIGGER_PATH.match(path):
            body = dict(body or {})
            body.setdefault("logical_date", None)
        prefix = "/api/v2" if target.airflow3 else "/api/v1"
        url = target.base_url + prefix + urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
        query = _query_string(request.QueryParameters)
        if query:
            url += "?" + query
        headers = {"Accept": "application/json",
                   "Authorization": self._authorization(target, role, airflow_identity(caller.principal_arn))}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, payload = _call(url, request.Method, data, headers, record.name)
        if status >= 500:
            raise RestApiServerError(f"The Airflow REST API of {record.name} failed with status {status}.",
                                     RestApiStatusCode=status, RestApiResponse=payload)
        if status >= 400:
            raise RestApiClientError(f"The Airflow REST API of {record.name} refused the request with status {status}.",
                                     RestApiStatusCode=status, RestApiResponse=payload)
        return {"RestApiStatusCode": status, "RestApiResponse": payload if payload is not None else {}}

    # ---------------------------------------------------------------- credentials for Airflow

    def _authorization(self, target: _Target, role: str, user: str) -> str:
        if target.airflow3:
            return "Bearer " + mint_airflow_jwt(target.secrets["jwt_secret"], sub=user, role=role.lower(), ttl_s=300)
        if role == "Admin":
            return basic_auth_header("admin", target.secrets["admin_password"])
        username = f"airdock-{role.lower()}"
        password = _fab_password(target.secrets["token_key"], username)
        self._ensure_fab_user(target, username, password, role)
        return basic_auth_header(username, password)

    def _ensure_fab_user(self, target: _Target, username: str, password: str, role: str) -> None:
        key = (target.base_url, username, role)
        with self._lock:
            if key in self._fab_users:
                return
        admin = {"Authorization": basic_auth_header("admin", target.secrets["admin_password"]),
                 "Content-Type": "application/json", "Accept": "application/json"}
        user = json.dumps({"username": username, "password": password, "email": f"{username}@airdock.invalid",
                           "first_name": username, "last_name": "MWAA", "roles": [{"name": role}]}).encode()
        for base in ("/auth/fab/v1/users", "/api/v1/users"):
            status, _ = _call(target.base_url + base, "POST", user, admin, "")
            if status == 404:
                continue
            if status == 409:
                status, _ = _call(f"{target.base_url}{base}/{username}?update_mask=roles,password", "PATCH",
                                  user, admin, "")
            if status < 300:
                with self._lock:
                    self._fab_users.add(key)
                return
            break
        raise ServiceUnavailable(f"Could not prepare the Airflow user for role {role}.")


def _fab_password(secret: str, username: str) -> str:
    # The same derivation as web_front.fab_password: both sides find the password, none stores it.
    return hmac.new(secret.encode(), f"fab-user:{username}".encode(), hashlib.sha256).hexdigest()


def _checked_path(path: str) -> str:
    if not path.startswith("/") or "?" in path or "#" in path or "\\" in path:
        raise ValidationError("Path must be a path relative to the Airflow REST API root that starts with '/', "
                              "for example /dags/my_dag/dagRuns; put query parameters in QueryParameters.")
    if any(part in ("..", ".") for part in path.split("/")):
        raise ValidationError("Path may not contain '.' or '..' segments.")
    return path


def _query_string(params: dict[str, Any] | None) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (dict, list)):
                item = json.dumps(item)
            pairs.append((key, str(item)))
    return urllib.parse.urlencode(pairs)


def _call(url: str, method: str, data: bytes | None, headers: dict[str, str], name: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=_REST_TIMEOUT_S) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        raise ServiceUnavailable(f"The Airflow web server of environment {name} is not reachable; "
                                 "try again in a few seconds.") from None
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")
