"""Port contract suites run against the AWS adapter (under moto) and its local twin alike:
Buckets (S3Buckets | LocalBuckets), Events (EventBridgeEvents | LocalEventLog), Metrics
(CloudWatchMetrics | SqliteMetrics) and UsedTokens (PostgresUsedTokens on a real PostgreSQL |
SqliteUsedTokens | MemoryUsedTokens). The same assertions must hold for all."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from airdock.aws.buckets import S3Buckets
from airdock.aws.events import EventBridgeEvents
from airdock.aws.metrics import CloudWatchMetrics
from airdock.core.ports import MetricPoint
from airdock.local.buckets import LocalBuckets
from airdock.local.events import LocalEventLog

REGION = "us-east-1"


@pytest.fixture
def moto_aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


# ---------------------------------------------------------------------------- Buckets


@dataclass
class BucketWorld:
    """A port instance plus the way to put objects behind it (S3 PUT, or a file)."""

    port: Any
    make_bucket: Callable[[str], None]
    put: Callable[[str, str, bytes], str | None]  # returns the new version id, if any


def _s3_world() -> BucketWorld:
    s3 = boto3.client("s3", region_name=REGION)

    def make(bucket: str) -> None:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def put(bucket: str, key: str, body: bytes) -> str | None:
        return s3.put_object(Bucket=bucket, Key=key, Body=body).get("VersionId")

    return BucketWorld(S3Buckets(s3), make, put)


def _local_world(root: Path) -> BucketWorld:
    def make(bucket: str) -> None:
        (root / bucket).mkdir(parents=True)

    def put(bucket: str, key: str, body: bytes) -> str | None:
        path = root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        # The local twin keeps pinned versions beside the object (local/buckets.py).
        version = f"v{len(body)}"
        versions = path.parent / f"{path.name}.versions"
        versions.mkdir(exist_ok=True)
        (versions / version).write_bytes(body)
        return version

    return BucketWorld(LocalBuckets(root), make, put)


@pytest.fixture(params=["s3", "local"])
def buckets(request: pytest.FixtureRequest, tmp_path: Path) -> BucketWorld:
    if request.param == "s3":
        request.getfixturevalue("moto_aws")
        return _s3_world()
    return _local_world(tmp_path / "buckets")


def test_buckets_a_missing_bucket_does_not_exist(buckets: BucketWorld) -> None:
    assert not buckets.port.bucket_exists("airdock-nothing-here")
    assert not buckets.port.prefix_exists("airdock-nothing-here", "dags")
    assert not buckets.port.object_exists("airdock-nothing-here", "requirements.txt")


def test_buckets_objects_and_prefixes_are_found(buckets: BucketWorld) -> None:
    buckets.make_bucket("airdock-src")
    buckets.put("airdock-src", "dags/hello.py", b"# dag\n")
    assert buckets.port.bucket_exists("airdock-src")
    assert buckets.port.prefix_exists("airdock-src", "dags")
    assert buckets.port.prefix_exists("airdock-src", "dags/")
    assert not buckets.port.prefix_exists("airdock-src", "plugins")
    assert buckets.port.object_exists("airdock-src", "dags/hello.py")
    assert not buckets.port.object_exists("airdock-src", "dags/missing.py")


def test_buckets_an_object_version_must_exist_for_that_key(buckets: BucketWorld) -> None:
    buckets.make_bucket("airdock-src")
    version = buckets.put("airdock-src", "requirements.txt", b"boto3\n")
    assert version
    assert buckets.port.object_exists("airdock-src", "requirements.txt", version)
    assert not buckets.port.object_exists("airdock-src", "requirements.txt", "no-such-version")


# ---------------------------------------------------------------------------- Events


@dataclass
class EventWorld:
    port: Any
    delivered: Callable[[], list[dict[str, Any]]]  # what a subscriber received: {detail-type, detail}


def _eventbridge_world() -> EventWorld:
    # A subscriber as users would have one: a rule on the default bus with an SQS target.
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="mwaa-status", EventPattern=json.dumps({"detail-type": ["MWAA Environment Status Change"]}))
    events.put_targets(Rule="mwaa-status", Targets=[{"Id": "q", "Arn": arn}])

    def delivered() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return got
            for message in messages:
                body = json.loads(message["Body"])
                got.append({"detail-type": body["detail-type"], "detail": body["detail"], "resources": body.get("resources", [])})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return EventWorld(EventBridgeEvents(client=events), delivered)


def _local_events_world(path: Path) -> EventWorld:
    log = LocalEventLog(path)

    def delivered() -> list[dict[str, Any]]:
        return [{"detail-type": e["detail-type"], "detail": e["detail"], "resources": e.get("resources", [])} for e in log.read()]

    return EventWorld(log, delivered)


@pytest.fixture(params=["eventbridge", "local"])
def events(request: pytest.FixtureRequest, tmp_path: Path) -> EventWorld:
    if request.param == "eventbridge":
        request.getfixturevalue("moto_aws")
        return _eventbridge_world()
    return _local_events_world(tmp_path / "events.jsonl")


def _status_event(name: str, status: str) -> dict[str, Any]:
    return {
        "version": "0", "source": "aws.airflow", "detail-type": "MWAA Environment Status Change",
        "account": "123456789012", "region": REGION, "time": "2026-01-01T00:00:00Z",
        "resources": [f"arn:aws:airflow:{REGION}:123456789012:environment/{name}"],
        "detail": {"EnvironmentName": name, "Status": status, "PreviousStatus": "CREATING"},
    }


def test_events_a_published_status_change_reaches_a_subscriber_with_its_detail(events: EventWorld) -> None:
    events.port.publish(_status_event("analytics", "AVAILABLE"))
    got = events.delivered()
    assert len(got) == 1
    assert got[0]["detail-type"] == "MWAA Environment Status Change"
    assert got[0]["detail"] == {"EnvironmentName": "analytics", "Status": "AVAILABLE", "PreviousStatus": "CREATING"}
    assert got[0]["resources"] == ["arn:aws:airflow:us-east-1:123456789012:environment/analytics"]


def test_events_are_delivered_in_publication_order(events: EventWorld) -> None:
    for status in ("CREATING", "AVAILABLE", "UPDATING"):
        events.port.publish(_status_event("analytics", status))
    assert [e["detail"]["Status"] for e in events.delivered()] == ["CREATING", "AVAILABLE", "UPDATING"]


# ---------------------------------------------------------------------------- Metrics


@pytest.fixture(params=["cloudwatch", "local"])
def metrics(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "cloudwatch":
        request.getfixturevalue("moto_aws")
        return CloudWatchMetrics(boto3.client("cloudwatch", region_name=REGION))
    from airdock.local.metrics_store import SqliteMetrics

    return SqliteMetrics(tmp_path / "metrics.db")


def test_metrics_points_come_back_per_environment_and_name_oldest_first(metrics: Any) -> None:
    now = float(int(time.time()))
    metrics.put([
        MetricPoint("analytics", "QueuedTasks", 3.0, now - 20, {}, "Count"),
        MetricPoint("analytics", "QueuedTasks", 5.0, now - 10, {}, "Count"),
        MetricPoint("analytics", "RunningTasks", 2.0, now - 10, {}, "Count"),
        MetricPoint("reporting", "QueuedTasks", 9.0, now - 10, {}, "Count"),
    ])
    points = metrics.query("analytics", "QueuedTasks", since=now - 60, until=now)
    assert [(p.timestamp, p.value) for p in points] == [(now - 20, 3.0), (now - 10, 5.0)]
    assert metrics.query("analytics", "QueuedTasks", since=now - 15, until=now)[0].value == 5.0
    assert metrics.names("analytics") == ["QueuedTasks", "RunningTasks"]
    assert metrics.names("nobody") == []


# ---------------------------------------------------------------------------- UsedTokens

SPENT_AT = 1_800_000_000.0


@pytest.fixture(params=["postgres", "local", "memory"])
def used_tokens(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    """A new handle on one shared record per call: another web front (task, process) of the
    environment. A process-local record has one handle only."""
    if request.param == "postgres":
        from airdock_runtime.used_tokens_postgres import PostgresUsedTokens

        url = request.getfixturevalue("metadata_database")  # a new, empty metadata database
        return lambda: PostgresUsedTokens(url)
    if request.param == "local":
        from airdock_runtime.used_tokens_sqlite import SqliteUsedTokens

        return lambda: SqliteUsedTokens(tmp_path / "web_front" / "used-login-tokens.db")
    from airdock_runtime.tokens import MemoryUsedTokens

    only = MemoryUsedTokens()
    return lambda: only


def test_used_tokens_a_token_is_spent_once_whichever_handle_sees_it_again(used_tokens: Callable[[], Any]) -> None:
    first, second = used_tokens(), used_tokens()
    assert first.spend("analytics", "t1", SPENT_AT + 60, SPENT_AT) is True
    assert second.spend("analytics", "t1", SPENT_AT + 60, SPENT_AT + 1) is False
    assert first.spend("analytics", "t1", SPENT_AT + 60, SPENT_AT + 59) is False
    assert second.spend("analytics", "t2", SPENT_AT + 60, SPENT_AT + 1) is True


def test_used_tokens_are_recorded_per_environment(used_tokens: Callable[[], Any]) -> None:
    record = used_tokens()
    assert record.spend("analytics", "t1", SPENT_AT + 60, SPENT_AT) is True
    assert record.spend("reporting", "t1", SPENT_AT + 60, SPENT_AT) is True
    assert record.spend("reporting", "t1", SPENT_AT + 60, SPENT_AT) is False


def test_used_tokens_a_record_past_its_expiry_no_longer_counts(used_tokens: Callable[[], Any]) -> None:
    record = used_tokens()
    assert record.spend("analytics", "t1", SPENT_AT + 60, SPENT_AT) is True
    assert used_tokens().spend("analytics", "t1", SPENT_AT + 200, SPENT_AT + 61) is True
    assert record.spend("analytics", "t1", SPENT_AT + 200, SPENT_AT + 62) is False


def test_used_tokens_of_concurrent_spenders_of_one_token_exactly_one_wins(used_tokens: Callable[[], Any]) -> None:
    handles = [used_tokens() for _ in range(8)]
    start = threading.Barrier(len(handles))
    results: list[bool] = []

    def spend(handle: Any) -> None:
        start.wait()
        results.append(handle.spend("analytics", "raced", SPENT_AT + 60, SPENT_AT))

    threads = [threading.Thread(target=spend, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_postgres_used_tokens_past_their_expiry_are_deleted_by_a_later_sign_in(metadata_database: str) -> None:
    import psycopg2

    from airdock_runtime.used_tokens_postgres import TABLE, PostgresUsedTokens, libpq_url

    record = PostgresUsedTokens(metadata_database)
    assert record.spend("analytics", "old", SPENT_AT + 60, SPENT_AT) is True
    assert record.spend("analytics", "live", SPENT_AT + 120, SPENT_AT + 30) is True
    assert record.spend("analytics", "new", SPENT_AT + 200, SPENT_AT + 61) is True

    conn = psycopg2.connect(libpq_url(metadata_database))
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT token_id FROM {TABLE} ORDER BY token_id")
        assert [row[0] for row in cur.fetchall()] == ["live", "new"]
    finally:
        conn.close()


def test_postgres_used_tokens_refuse_a_database_they_cannot_reach_instead_of_accepting_the_token(
        metadata_database: str) -> None:
    import urllib.parse

    import psycopg2

    from airdock_runtime.used_tokens_postgres import PostgresUsedTokens

    url = urllib.parse.urlsplit(metadata_database)
    wrong_password = url._replace(netloc=f"{url.username}:wrong@{url.hostname}:{url.port}").geturl()
    with pytest.raises(psycopg2.OperationalError):
        PostgresUsedTokens(wrong_password).spend("analytics", "t1", SPENT_AT + 60, SPENT_AT)
