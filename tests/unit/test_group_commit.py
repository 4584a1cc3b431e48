"""Specification of group commit (local/group_commit.py): `airdock serve` acknowledges a write
only once an fsync that ran after its commit has returned, and the writes of one turn of the event
loop share that fsync; reads never wait for one."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airdock.core.settings import Settings
from airdock.local.context import LocalContext
from airdock.local.group_commit import GroupCommit
from airdock.local.server import LocalEndpoint
from airdock.local.sqlite_db import SqliteDatabase
from support.raw_http import RecordingTransport, exchange


def test_the_writes_of_one_turn_share_one_fsync_and_each_gets_its_own_result() -> None:
    # Given three writes started in the same turn of the event loop
    log: list[str] = []
    commits = GroupCommit(lambda: log.append("fsync"))

    def work(n: int) -> int:
        log.append(f"write {n}")
        return n

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(commits.write(lambda n=n: work(n)) for n in (1, 2, 3))))

    # When they run
    results = asyncio.run(scenario())
    # Then one fsync followed all three, and each caller got its own write's result
    assert log == ["write 1", "write 2", "write 3", "fsync"]
    assert results == [1, 2, 3]


def test_a_turn_runs_its_reads_before_its_writes() -> None:
    # Given a write and then a read started in the same turn
    log: list[str] = []
    commits = GroupCommit(lambda: log.append("fsync"))

    async def read() -> None:
        log.append("read")

    async def scenario() -> None:
        await asyncio.gather(commits.write(lambda: log.append("write")), read())

    # When the turn runs
    asyncio.run(scenario())
    # Then the read was not held up by the write, which is answered after the fsync anyway
    assert log == ["read", "write", "fsync"]


def test_a_write_after_an_fsync_waits_for_a_new_one() -> None:
    # Given a write already made durable
    syncs: list[int] = []
    commits = GroupCommit(lambda: syncs.append(1))

    async def scenario() -> None:
        await commits.write(lambda: None)
        # When a later write comes
        await commits.write(lambda: None)

    asyncio.run(scenario())
    # Then it is not answered by the earlier fsync
    assert len(syncs) == 2


def test_a_failing_write_fails_alone() -> None:
    # Given two writes of one turn, the first of which raises
    syncs: list[int] = []
    commits = GroupCommit(lambda: syncs.append(1))

    def broken() -> None:
        raise ValueError("broken")

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(commits.write(broken), commits.write(lambda: "ok"), return_exceptions=True))

    # When they run
    first, second = asyncio.run(scenario())
    # Then the first caller gets its error and the second its result, after the fsync
    assert isinstance(first, ValueError) and second == "ok" and syncs == [1]


def test_a_failed_fsync_fails_every_write_waiting_for_it_and_the_next_one_runs_again() -> None:
    # Given a disk whose first fsync fails
    calls: list[int] = []

    def sync() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    commits = GroupCommit(sync)

    async def scenario() -> tuple[list[Any], Any]:
        failed = await asyncio.gather(commits.write(lambda: 1), commits.write(lambda: 2), return_exceptions=True)
        return list(failed), await commits.write(lambda: 3)

    # When two writes wait for it, then a third comes
    failed, later = asyncio.run(scenario())
    # Then both see the error, and the third gets a fresh fsync that succeeds
    assert [type(error) for error in failed] == [OSError, OSError]
    assert later == 3 and len(calls) == 2


def test_sync_needs_no_wal_once_everything_is_checkpointed(tmp_path: Path) -> None:
    # Given a database written with synchronous=NORMAL, then closed (the WAL is checkpointed away)
    db = SqliteDatabase(tmp_path / "state.db", synchronous="NORMAL")
    db.connection().execute("CREATE TABLE t (v TEXT)")
    db.connection().execute("INSERT INTO t VALUES ('x')")
    assert (tmp_path / "state.db-wal").exists()
    db.sync()
    db.close()
    assert not (tmp_path / "state.db-wal").exists()
    # When it is asked to sync again
    db.sync()
    # Then there is nothing to do, and the data is in the database file
    assert sqlite3.connect(tmp_path / "state.db").execute("SELECT v FROM t").fetchall() == [("x",)]


class Endpoint:
    """The local endpoint over a control-plane-only context with group commit, served raw HTTP on
    a recording transport; its fsync notes what was stored and what the client had received."""

    def __init__(self, tmp_path: Path) -> None:
        self.context = LocalContext(tmp_path / "data", Settings(), provision=False, group_commit=True)
        (self.context.data_dir / "buckets" / "dags-bucket" / "dags").mkdir(parents=True)
        self.server = LocalEndpoint(self.context)
        self.transport = RecordingTransport()
        self.seen: list[dict[str, Any]] = []
        self.context.group_commit = GroupCommit(self._sync)

    def _sync(self) -> None:
        rows = sqlite3.connect(self.context.repository.db.path).execute("SELECT name FROM environments").fetchall()
        self.seen.append({"stored": [row[0] for row in rows], "received": b"".join(self.transport.writes)})
        self.context.repository.db.sync()

    def serve(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=f"http://127.0.0.1:8787{path}", data=data,
                             headers={"Content-Type": "application/json"})
        key = self.context.keys.root
        SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "airflow",
                  self.context.settings.region).add_auth(request)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8787\r\ncontent-length: {len(data)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
        self.transport = RecordingTransport()
        asyncio.run(exchange(self.server, head.encode() + b"\r\n" + data, self.transport))
        return b"".join(self.transport.writes)

    def create(self, name: str) -> bytes:
        return self.serve("PUT", f"/environments/{name}", {
            "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r", "SourceBucketArn": "arn:aws:s3:::dags-bucket",
            "DagS3Path": "dags", "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"]}})


@pytest.fixture
def endpoint(tmp_path: Path) -> Endpoint:
    return Endpoint(tmp_path)


def test_a_write_is_answered_only_after_an_fsync_that_follows_its_commit(endpoint: Endpoint) -> None:
    # When an environment is created
    response = endpoint.create("durable")
    # Then it succeeded, and when the fsync ran the record was committed but nothing was sent yet
    assert response.startswith(b"HTTP/1.1 200"), response
    assert endpoint.seen == [{"stored": ["durable"], "received": b""}]


def test_reads_do_not_wait_for_an_fsync(endpoint: Endpoint) -> None:
    # When environments are listed and one is read
    listed = endpoint.serve("GET", "/environments")
    missing = endpoint.serve("GET", "/environments/none")
    # Then they are answered without any fsync
    assert listed.startswith(b"HTTP/1.1 200") and missing.startswith(b"HTTP/1.1 404")
    assert endpoint.seen == []


def test_a_write_whose_fsync_fails_is_an_internal_error_not_a_success(endpoint: Endpoint) -> None:
    endpoint.create("tagged")

    def failing() -> None:
        raise OSError(5, "Input/output error")

    endpoint.context.group_commit = GroupCommit(failing)
    # When a write cannot be made durable
    arn = "arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2Ftagged"
    response = endpoint.serve("POST", f"/tags/{arn}", {"Tags": {"a": "b"}})
    # Then the client is not told it succeeded, and the server goes on answering
    assert response.startswith(b"HTTP/1.1 500"), response
    assert b"InternalServerException" in response
    assert endpoint.serve("GET", "/environments/tagged").startswith(b"HTTP/1.1 200")
