"""The data plane: CLI and web login tokens for an environment's web front, and InvokeRestApi
against the environment's Airflow REST API, as MWAA offers them.

Tokens are signed with the environment's key and verified by its web front
(airdock_runtime.web_front) with the same key. InvokeRestApi calls Airflow as the caller's Airflow
role: on Airflow 3 with a JWT carrying that role, on Airflow 2 as a FAB user of that role (the
admin user for Admin). Where the environment's Airflow is and what its keys are is a platform's
answer (the AirflowTargets port: its local files, or Secrets Manager and its web front on AWS);
which role a caller gets is the RolePolicySource's, or the authorizer's per-key policies.
"""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airdock.core.airflow_access import airflow_identity, airflow_role, iam_identity
from airdock.core.errors import AccessDenied, RestApiClientError, RestApiServerError, ServiceUnavailable, ValidationError
from airdock.core.models import InvokeRestApiInput
from airdock.core.ports import AirflowHttp, AirflowTarget, AirflowTargets, Caller, EnvironmentRecord, RolePolicySource
from airdock_runtime import tokens
from airdock_runtime.airflow_auth import basic_auth_header, fab_password, mint_airflow_jwt

if TYPE_CHECKING:
    from airdock.core.authorization import Authorizer

# Airflow 3.3 answers 422 to `POST /dags/{id}/dagRuns` without a `logical_date` key; MWAA's
# provider operator leaves the key out when it is None (see MWAA_FACTS.md), and the real service
# makes that call work, so we add the explicit null.
_TRIGGER_PATH = re.compile(r"^/dags/[^/]+/dagRuns/?$")


class AirflowDataPlane:
    def __init__(self, targets: AirflowTargets, roles: RolePolicySource, http: AirflowHttp, *,
                 authorizer: "Authorizer | None" = None, clock: Callable[[], float] = time.time) -> None:
        self.targets = targets
        self.roles = roles
        self.http = http
        # Per-key IAM-style policies decide the Airflow role where the deployment evaluates them
        # itself (local mode); else the role policy does.
        self.authorizer = authorizer
        self.clock = clock
        self._fab_users: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def _role(self, record: EnvironmentRecord, caller: Caller, operation: str = "CreateWebLoginToken") -> str:
        # A key restricted by an IAM-style policy (core/authorization.py) gets the most privileged
        # Airflow role its policy allows on role/{env}/{role}, as MWAA maps IAM to Airflow roles;
        # otherwise the role policy decides (Admin for the account's root by default).
        allowed = self.authorizer.allowed_airflow_roles(caller, record.name, operation) if self.authorizer else None
        if allowed is None:
            return airflow_role(caller, record.name, self.roles.role_policy(), operation)
        if not allowed:
            assert self.authorizer is not None
            raise self.authorizer.denied_role(caller, record.name, operation)
        return allowed[0]

    @staticmethod
    def _hostname(record: EnvironmentRecord) -> str:
        if not record.environment.WebserverUrl:
            raise ServiceUnavailable(f"Environment {record.name} has no web server yet.")
        return record.environment.WebserverUrl

    # ---------------------------------------------------------------- MWAA operations

    def create_cli_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller)
        target = self.targets.target(record)
        token = tokens.mint_cli_token(target.keys["token_key"], record.name, iam_identity(caller.principal_arn),
                                      airflow_identity(caller.principal_arn), role, now=self.clock())
        return {"CliToken": token, "WebServerHostname": self._hostname(record)}

    def create_web_login_token(self, record: EnvironmentRecord, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller)
        target = self.targets.target(record)
        identity, user = iam_identity(caller.principal_arn), airflow_identity(caller.principal_arn)
        token = tokens.mint_web_token(target.keys["token_key"], record.name, identity, user, role, now=self.clock())
        return {"WebToken": token, "WebServerHostname": self._hostname(record), "IamIdentity": identity,
                "AirflowIdentity": user}

    def invoke_rest_api(self, record: EnvironmentRecord, request: InvokeRestApiInput, caller: Caller) -> dict[str, Any]:
        role = self._role(record, caller, "InvokeRestApi")
        if role == "Public":
            raise AccessDenied(f"The Airflow role Public may not call the REST API of environment {record.name}.")
        path = _checked_path(request.Path)
        target = self.targets.target(record)
        body: Any = request.Body
        if request.Method in ("GET", "DELETE"):
            # The Amazon provider's hook sends `Body: {}` on every call; Airflow rejects a GET body.
            body = None
        elif target.major >= 3 and request.Method == "POST" and _TRIGGER_PATH.match(path):
            body = dict(body or {})
            body.setdefault("logical_date", None)
        prefix = "/api/v2" if target.major >= 3 else "/api/v1"
        url = target.base_url + prefix + urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
        query = _query_string(request.QueryParameters)
        if query:
            url += "?" + query
        headers = {"Accept": "application/json",
                   "Authorization": self._authorization(record, target, role, airflow_identity(caller.principal_arn))}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, payload = self.http.call(url, request.Method, data, headers, record.name)
        if status >= 500:
            raise RestApiServerError(f"The Airflow REST API of {record.name} failed with status {status}.",
                                     RestApiStatusCode=status, RestApiResponse=payload)
        if status >= 400:
            raise RestApiClientError(f"The Airflow REST API of {record.name} refused the request with status {status}.",
                                     RestApiStatusCode=status, RestApiResponse=payload)
        return {"RestApiStatusCode": status, "RestApiResponse": payload if payload is not None else {}}

    # ---------------------------------------------------------------- credentials for Airflow

    def _authorization(self, record: EnvironmentRecord, target: AirflowTarget, role: str, user: str) -> str:
        if target.major >= 3:
            return "Bearer " + mint_airflow_jwt(target.keys["jwt_secret"], sub=user, role=role.lower(), ttl_s=300)
        if role == "Admin":
            return basic_auth_header("admin", target.keys["admin_password"])
        username = f"airdock-{role.lower()}"
        # Derived as the web front derives it: both sides find the password, none stores it.
        password = fab_password(target.keys["token_key"], username)
        self._ensure_fab_user(record, target, username, password, role)
        return basic_auth_header(username, password)

    def _ensure_fab_user(self, record: EnvironmentRecord, target: AirflowTarget, username: str, password: str,
                         role: str) -> None:
        key = (target.base_url, username, role)
        with self._lock:
            if key in self._fab_users:
                return
        admin = {"Authorization": basic_auth_header("admin", target.keys["admin_password"]),
                 "Content-Type": "application/json", "Accept": "application/json"}
        user = json.dumps({"username": username, "password": password, "email": f"{username}@airdock.invalid",
                           "first_name": username, "last_name": "MWAA", "roles": [{"name": role}]}).encode()
        for base in ("/auth/fab/v1/users", "/api/v1/users"):
            status, _ = self.http.call(target.base_url + base, "POST", user, admin, record.name)
            if status == 404:
                continue
            if status == 409:
                status, _ = self.http.call(f"{target.base_url}{base}/{username}?update_mask=roles,password", "PATCH",
                                           user, admin, record.name)
            if status < 300:
                with self._lock:
                    self._fab_users.add(key)
                return
            break
        raise ServiceUnavailable(f"Could not prepare the Airflow user for role {role}.")


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
