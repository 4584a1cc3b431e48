"""Metadata databases: one PostgreSQL database and login role per environment in a shared Aurora
PostgreSQL Serverless v2 cluster; the role's credentials live in Secrets Manager.

The statements go through the RDS Data API (`rds-data`), so the provisioner Lambda needs neither a
VPC attachment nor a PostgreSQL driver. Isolation: each environment's role owns its database and
PUBLIC may not connect to it, so one environment cannot read another's metadata.

Every method is idempotent. PostgreSQL has no `CREATE DATABASE IF NOT EXISTS`, and CREATE DATABASE
cannot run in a transaction (so not in a DO block either): existence is checked first, and the
password of an existing role is reset to the stored secret, so a half-finished earlier run
converges.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.aws.errors import TransientError
from airdock.core.errors import ProvisioningError

# Letters and digits only: the password is written into DDL (PostgreSQL cannot bind it), and
# into a URL, so it must need no quoting anywhere.
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class DatabaseCluster:
    cluster_arn: str
    admin_secret_arn: str  # the cluster's master user secret (Aurora-managed or the user's)
    host: str
    port: int = 5432
    admin_database: str = "postgres"


@dataclass(frozen=True)
class Database:
    name: str
    role: str
    secret_arn: str


class AuroraDatabases:
    def __init__(self, cluster: DatabaseCluster, rds_data: Any | None = None, secretsmanager: Any | None = None) -> None:
        self.cluster = cluster
        self.rds_data = rds_data or boto3.client("rds-data")
        self.sm = secretsmanager or boto3.client("secretsmanager")

    # ------------------------------------------------------------------ public

    def ensure(self, env_name: str, tags: dict[str, str] | None = None, kms_key: str | None = None) -> Database:
        """The environment's database, role and credentials secret (encrypted with `kms_key`, the
        environment's KmsKey, when given)."""
        name, role = naming.pg_identifier(env_name, "db"), naming.pg_identifier(env_name, "user")
        credentials = self._credentials(env_name, name, role, tags or {}, kms_key)
        password = credentials["password"]
        if self._exists("SELECT 1 FROM pg_roles WHERE rolname = :name", role):
            self._execute(f'ALTER ROLE "{role}" WITH LOGIN PASSWORD \'{password}\'')
        else:
            self._execute(f'CREATE ROLE "{role}" WITH LOGIN PASSWORD \'{password}\'')
        # The admin must be a member to hand the database to the role (RDS's master is not a
        # superuser).
        self._execute(f'GRANT "{role}" TO CURRENT_USER')
        if not self._exists("SELECT 1 FROM pg_database WHERE datname = :name", name):
            self._execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        self._execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        return Database(name=name, role=role, secret_arn=credentials["arn"])

    def drop(self, env_name: str) -> None:
        name, role = naming.pg_identifier(env_name, "db"), naming.pg_identifier(env_name, "user")
        # FORCE (PostgreSQL 13+) ends the sessions of components that are still shutting down.
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._execute(f'DROP ROLE IF EXISTS "{role}"')
        try:
            self.sm.delete_secret(SecretId=naming.secret_name(env_name, "database"), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise

    # ------------------------------------------------------------------ helpers

    def _credentials(self, env_name: str, database: str, role: str, tags: dict[str, str],
                     kms_key: str | None = None) -> dict[str, str]:
        secret_id = naming.secret_name(env_name, "database")
        try:
            found = self.sm.get_secret_value(SecretId=secret_id)
            value = json.loads(found["SecretString"])
            return {**value, "arn": found["ARN"]}
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        password = "".join(secrets.choice(_ALPHABET) for _ in range(32))
        value = {
            "engine": "postgres",
            "host": self.cluster.host,
            "port": self.cluster.port,
            "dbname": database,
            "username": role,
            "password": password,
            # What the containers read as AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (ECS secrets can
            # select one JSON key of a secret).
            "sql_alchemy_conn": f"postgresql+psycopg2://{role}:{password}@{self.cluster.host}:{self.cluster.port}/{database}",
        }
        try:
            created = self.sm.create_secret(
                Name=secret_id,
                Description=f"Airdock metadata database credentials of environment {env_name}",
                SecretString=json.dumps(value),
                **({"KmsKeyId": kms_key} if kms_key else {}),
                Tags=[{"Key": "airdock:environment", "Value": env_name}] + [{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceExistsException":  # a concurrent run won
                return self._credentials(env_name, database, role, tags, kms_key)
            if exc.response["Error"]["Code"] == "InvalidRequestException" and "deletion" in str(exc):
                raise TransientError(f"secret {secret_id} is still being deleted") from None
            raise
        return {**value, "arn": created["ARN"]}

    def _exists(self, sql: str, name: str) -> bool:
        result = self._execute(sql, [{"name": "name", "value": {"stringValue": name}}])
        return bool(result.get("records"))

    def _execute(self, sql: str, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        try:
            return dict(self.rds_data.execute_statement(
                resourceArn=self.cluster.cluster_arn,
                secretArn=self.cluster.admin_secret_arn,
                database=self.cluster.admin_database,
                sql=sql,
                parameters=parameters or [],
            ))
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            message = exc.response["Error"].get("Message", "")
            if code == "DatabaseResumingException" or "resuming" in message.lower():
                raise TransientError("the metadata database cluster is resuming") from None
            if code in ("ForbiddenException", "AccessDeniedException"):
                raise ProvisioningError(
                    "METADATA_DATABASE_FAILED",
                    "Airdock may not use the metadata database cluster's Data API: enable the Data API "
                    f"(HTTP endpoint) on {self.cluster.cluster_arn} and check its admin secret.",
                ) from None
            raise
