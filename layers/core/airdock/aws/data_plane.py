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
from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.core.airflow_access import RolePolicy
from airdock.core import catalog
from airdock.core.errors import ServiceUnavailable, ValidationError
from airdock.core.ports import AirflowTarget, EnvironmentRecord

# Keys never rotate, but an environment deleted and created again under the same name has new
# ones: a cached key is used for this long.
KEY_CACHE_S = 60


class SecretsManagerKeys:
    """An environment's keys from Secrets Manager, cached briefly (Powertools' parameters)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._provider: parameters.SecretsProvider | None = None

    @property
    def provider(self) -> parameters.SecretsProvider:
        if self._provider is None:  # made on first use: building the service calls nothing
            self._provider = parameters.SecretsProvider(boto3_client=self._client)
        return self._provider

    def secret(self, env_name: str, kind: str) -> dict[str, str]:
        try:
            value = self.provider.get(naming.secret_name(env_name, kind), max_age=KEY_CACHE_S, transform="json")
        except parameters.exceptions.GetParameterError as exc:
            cause = exc.__context__  # Powertools wraps the SDK's error while handling it
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "ResourceNotFoundException":
                raise ServiceUnavailable(f"Environment {env_name} has no web front keys yet; "
                                         "try again when it is AVAILABLE.") from None
            raise
        return dict(value)  # type: ignore[arg-type]

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
