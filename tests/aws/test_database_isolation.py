"""Environments sharing one database cluster cannot reach each other's metadata, as MWAA gives each
environment a database of its own. Run against a real PostgreSQL (support/postgres.py): the
provisioner's statements (airdock/aws/database.py) go through a stand-in for the RDS Data API that
executes them on that server as a cluster admin shaped like Aurora's master user (CREATEDB and
CREATEROLE, not a superuser), and each environment then connects with the credentials from its own
secret, as its components do."""
from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest
from psycopg2 import errors

from airdock.aws.database import AuroraDatabases, DatabaseCluster


class DataApi:
    """`rds-data` ExecuteStatement on a real server: `:name` parameters, one statement, autocommit
    (the Data API runs each statement outside a transaction unless asked otherwise)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statements: list[str] = []

    def execute_statement(self, *, resourceArn: str, secretArn: str, database: str, sql: str,
                          parameters: list[dict[str, Any]]) -> dict[str, Any]:
        self.statements.append(sql)
        values = {p["name"]: next(iter(p["value"].values())) for p in parameters}
        conn = psycopg2.connect(self.url)
        try:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(re.sub(r":(\w+)", r"%(\1)s", sql), values)
            rows = cur.fetchall() if cur.description else []
        finally:
            conn.close()
        return {"records": [[{"stringValue": str(v)} for v in row] for row in rows]}


class Secrets:
    """Secrets Manager, as far as AuroraDatabases uses it."""

    class exceptions:  # noqa: N801 - botocore's shape
        pass

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803
        from botocore.exceptions import ClientError

        if SecretId not in self.values:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "GetSecretValue")
        return {"SecretString": self.values[SecretId], "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SecretId}-AbCdEf"}

    def create_secret(self, Name: str, SecretString: str, **_: Any) -> dict[str, str]:  # noqa: N803
        self.values[Name] = SecretString
        return {"ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{Name}-AbCdEf"}

    def delete_secret(self, SecretId: str, **_: Any) -> None:  # noqa: N803
        self.values.pop(SecretId, None)


def _libpq(url: str, database: str | None = None, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+psycopg2://", "postgresql://"))
    return (f"postgresql://{user or parts.username}:{password or parts.password}@{parts.hostname}:{parts.port}/"
            f"{database or parts.path.lstrip('/')}")


@pytest.fixture
def cluster(postgres_server: str) -> Iterator[tuple[AuroraDatabases, Secrets, str]]:
    """A cluster admin like Aurora's master user, and AuroraDatabases using it through the Data API."""
    admin_name, admin_password = f"airdock_admin_{secrets.token_hex(3)}", secrets.token_hex(12)
    superuser = psycopg2.connect(_libpq(postgres_server))
    superuser.autocommit = True
    superuser.cursor().execute(f"CREATE ROLE {admin_name} LOGIN CREATEDB CREATEROLE PASSWORD '{admin_password}'")
    superuser.close()
    admin_url = _libpq(postgres_server, "postgres", admin_name, admin_password)
    host = urlsplit(admin_url)
    store = Secrets()
    databases = AuroraDatabases(
        DatabaseCluster(cluster_arn="arn:aws:rds:us-east-1:123456789012:cluster:airdock-metadata",
                        admin_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-admin",
                        host=str(host.hostname), port=int(host.port or 5432)),
        rds_data=DataApi(admin_url), secretsmanager=store)
    yield databases, store, admin_url


def _credentials(store: Secrets, env: str) -> dict[str, Any]:
    return json.loads(store.values[f"airdock/{env}/database"])


def _connect(credentials: dict[str, Any], database: str | None = None) -> Any:
    return psycopg2.connect(host=credentials["host"], port=credentials["port"], user=credentials["username"],
                            password=credentials["password"], dbname=database or credentials["dbname"], connect_timeout=5)


def test_each_environment_reaches_its_own_database_and_no_other(cluster: tuple[AuroraDatabases, Secrets, str]) -> None:
    databases, store, _ = cluster
    tag = secrets.token_hex(3)
    alpha, beta = f"alpha{tag}", f"beta{tag}"
    databases.ensure(alpha)
    databases.ensure(beta)
    databases.ensure(alpha)  # idempotent: a re-run converges, the password stays the secret's
    a, b = _credentials(store, alpha), _credentials(store, beta)

    # Each environment's components use their own database as Airflow does: create, write, read.
    own = _connect(a)
    own.autocommit = True
    own.cursor().execute("CREATE TABLE dag (dag_id text primary key); INSERT INTO dag VALUES ('secret_dag')")
    other = _connect(b)
    other.autocommit = True
    other.cursor().execute("CREATE TABLE dag (dag_id text primary key)")
    other.close()

    # Not the other environment's database ...
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(b, a["dbname"])
    # ... nor its role (which owns that database and its tables) ...
    cur = _connect(b).cursor()
    with pytest.raises(errors.InsufficientPrivilege):
        cur.execute(f'SET ROLE "{a["username"]}"')
    # ... nor new databases or roles of its own making.
    cur = _connect(b)
    cur.autocommit = True
    with pytest.raises(errors.InsufficientPrivilege):
        cur.cursor().execute(f'CREATE DATABASE "sneak_{tag}"')
    with pytest.raises(errors.InsufficientPrivilege):
        cur.cursor().execute(f'CREATE ROLE "sneak_{tag}"')
    with pytest.raises(errors.InsufficientPrivilege):
        cur.cursor().execute(f'GRANT "{a["username"]}" TO CURRENT_USER')
    cur.close()
    own_cur = own.cursor()
    own_cur.execute("SELECT dag_id FROM dag")
    assert own_cur.fetchall() == [("secret_dag",)]
    own.close()


def test_dropping_an_environment_removes_its_database_role_and_secret(cluster: tuple[AuroraDatabases, Secrets, str]) -> None:
    databases, store, admin_url = cluster
    env = f"delta{secrets.token_hex(3)}"
    created = databases.ensure(env)
    credentials = _credentials(store, env)
    databases.drop(env)
    assert f"airdock/{env}/database" not in store.values
    admin = psycopg2.connect(admin_url)
    cur = admin.cursor()
    cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (created.name,))
    assert cur.fetchone() == (0,)
    cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (created.role,))
    assert cur.fetchone() == (0,)
    admin.close()
    with pytest.raises(psycopg2.OperationalError):
        _connect(credentials)
