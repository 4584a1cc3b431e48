"""The data plane's ports on AWS (core/data_plane.py does the work, as locally): where an
environment's Airflow is and its keys, read from Secrets Manager instead of its secrets.json:

    token_key     secret `airdock/{Name}/web-front`, key `token_key` (created by EcsCompute at
                  prepare; the web front task gets it as the ECS secret AIRDOCK_TOKEN_KEY)
    jwt_secret    secret `airdock/{Name}/airflow` (Airflow 3's API JWT secret), read only when
                  InvokeRestApi needs it

InvokeRestApi goes through the environment's web front (its WebserverUrl), which proxies to the
Airflow API: the API function runs in the deployment's private subnets (template.yaml), so it
reaches the internal load balancer of PRIVATE_ONLY environments as well as the public one.

    admin_password  secret `airdock/{Name}/airflow` (Airflow 2): the FAB `admin` user the migrate
                  task makes (entrypoint.py --migrate); InvokeRestApi calls as it for Admin, and
                  with it makes the `airdock-{role}` user of any other role

Airflow roles: MWAA maps IAM permissions on `arn:aws:airflow:...:role/{Name}/{Role}`; here the
mapping is the JSON the API function gets as AIRDOCK_AIRFLOW_ROLES (the same shape as local
mode's airflow-roles.json: access key id or principal ARN -> role, or -> {environment|"*": role});
the account's root user is Admin.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.core.airflow_access import RolePolicy
from airdock.core import catalog
from airdock.core.errors import ServiceUnavailable, ValidationError
from airdock.core.ports import AirflowTarget, EnvironmentRecord

# Keys never rotate, but an environment deleted and created again under the same name has new
# ones: a cached key is used for this long.
KEY_CACHE_S = 60.0


class SecretsManagerKeys:
    """An environment's keys from Secrets Manager, cached briefly."""

    def __init__(self, client: Any | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    @property
    def sm(self) -> Any:
        if self._client is None:  # created on first use: building the service calls nothing
            self._client = boto3.client("secretsmanager")
        return self._client

    def secret(self, env_name: str, kind: str) -> dict[str, str]:
        key = (env_name, kind)
        with self._lock:
            cached = self._cache.get(key)
            if cached and self.clock() - cached[0] < KEY_CACHE_S:
                return cached[1]
        try:
            value = json.loads(self.sm.get_secret_value(SecretId=naming.secret_name(env_name, kind))["SecretString"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise ServiceUnavailable(f"Environment {env_name} has no web front keys yet; "
                                         "try again when it is AVAILABLE.") from None
            raise
        with self._lock:
            self._cache[key] = (self.clock(), value)
        return dict(value)

    def token_key(self, env_name: str) -> str:
        """The key the environment's CLI and web login tokens are signed with."""
        return self.secret(env_name, "web-front")["token_key"]


class _Keys(dict):  # type: ignore[type-arg]
    """An AirflowTarget's keys: the token key at once, the Airflow keys when first used."""

    def __init__(self, keys: SecretsManagerKeys, env_name: str) -> None:
        super().__init__(token_key=keys.token_key(env_name))
        self._keys, self._env = keys, env_name

    def __missing__(self, key: str) -> str:
        value = self._keys.secret(self._env, "airflow").get(key)
        if value is None:
            raise KeyError(key)
        self[key] = value
        return value


class SecretsManagerTargets:
    """An environment's Airflow as the API function reaches it: through its web front (its
    WebserverUrl), with its keys from Secrets Manager."""

    def __init__(self, keys: SecretsManagerKeys, https: bool = False) -> None:
        self.keys = keys
        self.https = https

    def target(self, record: EnvironmentRecord) -> AirflowTarget:
        if not record.environment.WebserverUrl:
            raise ServiceUnavailable(f"Environment {record.name} has no web server yet.")
        scheme = "https" if self.https else "http"
        return AirflowTarget(f"{scheme}://{record.environment.WebserverUrl}",
                             catalog.release(record.environment.AirflowVersion).major, _Keys(self.keys, record.name))


class StaticRolePolicy:
    """The AirflowRolePolicy parameter (AIRDOCK_AIRFLOW_ROLES): the same shape as local mode's
    airflow-roles.json."""

    def __init__(self, policy: RolePolicy) -> None:
        self.policy = policy

    @classmethod
    def from_json(cls, raw: str | None) -> "StaticRolePolicy":
        try:
            policy = json.loads(raw or "{}")
        except ValueError as exc:
            raise ValidationError(f"AIRDOCK_AIRFLOW_ROLES is not valid JSON: {exc}") from None
        return cls(policy if isinstance(policy, dict) else {})

    def role_policy(self) -> RolePolicy:
        return self.policy
