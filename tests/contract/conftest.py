"""Fixtures for the port contract suites: each port's suite runs against every adapter."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from airdock.aws.dynamodb_repository import DynamoDbEnvironmentRepository
from airdock.core.ports import EnvironmentRepository
from airdock.local.sqlite_repository import SqliteEnvironmentRepository
from support.dynamodb import AtomicRequests, create_table_from_template

ENVIRONMENTS_TABLE = "airdock-environments-test"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real AWS account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def sqlite_repository(sqlite_path: Path) -> Iterator[SqliteEnvironmentRepository]:
    repo = SqliteEnvironmentRepository(sqlite_path)
    yield repo
    repo.close()


@pytest.fixture
def dynamodb_repository(aws_credentials: None) -> Iterator[DynamoDbEnvironmentRepository]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table_from_template(client, "EnvironmentsTable", ENVIRONMENTS_TABLE)
        yield DynamoDbEnvironmentRepository(ENVIRONMENTS_TABLE, client=AtomicRequests(client))


@pytest.fixture(params=["sqlite", "dynamodb"])
def repository(request: pytest.FixtureRequest) -> EnvironmentRepository:
    return request.getfixturevalue(f"{request.param}_repository")
