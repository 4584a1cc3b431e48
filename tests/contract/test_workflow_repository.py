"""Contract: every WorkflowRepository adapter (SQLite locally, DynamoDB on AWS, built from
template.yaml's table) keeps workflows, versions and runs the same way."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from airdock.aws.serverless.repository import DynamoDbWorkflowRepository
from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.serverless.records import RunRecord, VersionRecord, WorkflowRecord
from airdock.local.serverless.repository import SqliteWorkflowRepository
from support.dynamodb import AtomicRequests, create_table_from_template

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "dynamodb"])
def repository(request: pytest.FixtureRequest, tmp_path: Path, aws_credentials: None) -> Iterator[Any]:
    if request.param == "sqlite":
        repo = SqliteWorkflowRepository(tmp_path / "state.db")
        yield repo
        repo.close()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table_from_template(client, "WorkflowsTable", "airdock-workflows-test")
        yield DynamoDbWorkflowRepository("airdock-workflows-test", client=AtomicRequests(client))


def workflow(name: str, token: str | None = None) -> WorkflowRecord:
    return WorkflowRecord(workflow_id=f"{name}-abcdefghij", name=name, arn=f"arn:x:workflow/{name}-abcdefghij",
                          created_at=T0, modified_at=T0, latest_version="v1", revision_id="r", client_token=token)


def version(workflow_id: str, number: int) -> VersionRecord:
    return VersionRecord(workflow_id=workflow_id, version=f"v{number}", number=number, dag_id=f"{workflow_id}__v{number}",
                         created_at=T0, modified_at=T0, definition_location={"Bucket": "b", "ObjectKey": "k"},
                         role_arn="r", definition_text="x", dag_yaml="x")


def run(workflow_id: str, run_id: str, minutes: int, status: str = "STARTING", token: str | None = None,
        version_id: str = "v1") -> RunRecord:
    at = T0 + timedelta(minutes=minutes)
    return RunRecord(run_id=run_id, run_uuid="u", workflow_id=workflow_id, version=version_id, dag_id="d",
                     created_at=at, modified_at=at, status=status, client_token=token)


def test_a_workflow_is_stored_with_its_first_version_and_found_by_name_and_token(repository: Any) -> None:
    saved = repository.create_workflow(workflow("alpha", token="t1"), version("alpha-abcdefghij", 1))
    assert saved.record_version == 1
    assert repository.get_workflow("alpha-abcdefghij") == saved
    assert repository.find_workflow(name="alpha") == saved
    assert repository.find_workflow(client_token="t1") == saved
    assert repository.get_version("alpha-abcdefghij", "v1").number == 1
    with pytest.raises(AlreadyExists):
        repository.create_workflow(workflow("alpha").model_copy(update={"workflow_id": "alpha-bbbbbbbbbb"}),
                                   version("alpha-bbbbbbbbbb", 1))
    assert repository.count_workflows() == 1


def test_versions_are_added_with_a_conditional_write_and_listed_newest_first(repository: Any) -> None:
    saved = repository.create_workflow(workflow("beta"), version("beta-abcdefghij", 1))
    newer = repository.add_version(saved.model_copy(update={"latest_version": "v2"}), version("beta-abcdefghij", 2))
    with pytest.raises(ConcurrentModification):
        repository.add_version(saved, version("beta-abcdefghij", 3))
    assert [v.number for v in repository.list_versions("beta-abcdefghij", 10)] == [2, 1]
    assert [v.number for v in repository.list_versions("beta-abcdefghij", 10, before=2)] == [1]
    repository.delete_version("beta-abcdefghij", "v1")
    assert [v.version for v in repository.list_versions("beta-abcdefghij", 10)] == ["v2"]
    assert repository.put_workflow(newer).record_version == newer.record_version + 1


def test_workflows_list_in_name_order_after_a_name(repository: Any) -> None:
    for name in ("c", "a", "b"):
        repository.create_workflow(workflow(name), version(f"{name}-abcdefghij", 1))
    assert [w.name for w in repository.list_workflows(2)] == ["a", "b"]
    assert [w.name for w in repository.list_workflows(10, after="a")] == ["b", "c"]


def test_runs_list_newest_first_by_version_and_active_ones_are_found(repository: Any) -> None:
    repository.create_workflow(workflow("gamma"), version("gamma-abcdefghij", 1))
    wid = "gamma-abcdefghij"
    first = repository.create_run(run(wid, "r1", 1, token="tok"))
    repository.create_run(run(wid, "r2", 2, version_id="v2"))
    repository.create_run(run(wid, "r3", 3, status="SUCCESS"))
    with pytest.raises(AlreadyExists):
        repository.create_run(run(wid, "r4", 4, token="tok"))
    assert repository.find_run(wid, "tok") == first
    assert [r.run_id for r in repository.list_runs(wid, 10)] == ["r3", "r2", "r1"]
    assert [r.run_id for r in repository.list_runs(wid, 1, after=("2026-12-01T00:03:00Z", "r3"))] == ["r2"]
    assert [r.run_id for r in repository.list_runs(wid, 10, version="v2")] == ["r2"]
    assert sorted(r.run_id for r in repository.active_runs()) == ["r1", "r2"]
    done = repository.put_run(first.model_copy(update={"status": "SUCCESS"}))
    with pytest.raises(ConcurrentModification):
        repository.put_run(first)
    assert [r.run_id for r in repository.active_runs(wid)] == ["r2"] and done.record_version == 2
    repository.delete_runs(wid, "v2")
    assert sorted(r.run_id for r in repository.list_runs(wid, 10)) == ["r1", "r3"]


def test_deleting_a_workflow_removes_its_versions_runs_and_claims(repository: Any) -> None:
    repository.create_workflow(workflow("delta", token="t9"), version("delta-abcdefghij", 1))
    repository.create_run(run("delta-abcdefghij", "r1", 1))
    repository.delete_workflow("delta-abcdefghij")
    assert repository.get_workflow("delta-abcdefghij") is None
    assert repository.find_workflow(name="delta") is None and repository.find_workflow(client_token="t9") is None
    assert repository.list_runs("delta-abcdefghij", 10) == [] and repository.active_runs() == []
    repository.create_workflow(workflow("delta"), version("delta-abcdefghij", 1))  # the name is free again
