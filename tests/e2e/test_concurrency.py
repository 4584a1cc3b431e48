"""Races through the real endpoint: many clients changing one environment at the same moment.

The environment is made AVAILABLE by the provisioner's own `mark_available` step (the code the
create workflow runs last), called on the server's data dir with a stub compute that only names
the web server. That is the workflow's real state write — version-checked like every write — minus
starting Airflow, which plays no part in how the API arbitrates concurrent changes. The same race
on a real Airflow environment is in test_reliability.py (marked airflow).
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airdock.core.ports import Health
from airdock.core.provisioning import Provisioner
from airdock.core.settings import Settings
from airdock.local.buckets import LocalBuckets
from airdock.local.sqlite_repository import SqliteEnvironmentRepository
from airdock.core.service import EnvironmentService
from airdock.core.ports import NullEvents
from e2e.conftest import create_request
from support.live_server import LiveServer

PARALLEL = 50


class _NameOnlyCompute:
    def webserver_hostname(self, env: Any) -> str:
        return f"127.0.0.1:1/{env.Name}"

    def health(self, env: Any) -> Health:
        return Health(True)


def make_available(server: LiveServer, name: str) -> None:
    repository = SqliteEnvironmentRepository(Path(server.data_dir) / "state.db")
    service = EnvironmentService(repository, LocalBuckets(Path(server.data_dir) / "buckets"), NullEvents(), Settings())
    Provisioner(service, _NameOnlyCompute()).mark_available({"Name": name})  # type: ignore[arg-type]


def race(calls: list[Any]) -> list[tuple[str, Any]]:
    """Run every call at once (a barrier lines the threads up); return (outcome, value) each."""
    barrier = threading.Barrier(len(calls))

    def one(call: Any) -> tuple[str, Any]:
        barrier.wait()
        try:
            return "ok", call()
        except ClientError as error:
            return error.response["Error"]["Code"], error.response["Error"]["Message"]

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def clients(server: LiveServer, n: int) -> list[Any]:
    # boto3 clients are thread-safe, but one per thread makes the requests truly parallel.
    return [server.client(max_pool_connections=2) for _ in range(n)]


def test_given_50_parallel_updates_of_an_available_environment_then_exactly_one_is_accepted(
        server: LiveServer, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("race-update"))
    make_available(server, "race-update")
    assert mwaa.get_environment(Name="race-update")["Environment"]["Status"] == "AVAILABLE"

    outcomes = race([lambda c=c, i=i: c.update_environment(Name="race-update", MaxWorkers=2 + i % 20)
                     for i, c in enumerate(clients(server, PARALLEL))])
    counts = Counter(kind for kind, _ in outcomes)
    assert counts == {"ok": 1, "ValidationException": PARALLEL - 1}, counts
    env = mwaa.get_environment(Name="race-update")["Environment"]
    assert env["Status"] == "UPDATING" and env["LastUpdate"]["Status"] == "PENDING"
    accepted = [i for i, (kind, _) in enumerate(outcomes) if kind == "ok"][0]
    assert env["MaxWorkers"] == 2 + accepted % 20  # the winner's change, nobody else's


def test_given_50_parallel_creates_of_one_name_then_one_environment_exists(server: LiveServer, mwaa: Any) -> None:
    outcomes = race([lambda c=c, i=i: c.create_environment(**create_request("race-create", MaxWorkers=1 + i % 25))
                     for i, c in enumerate(clients(server, PARALLEL))])
    counts = Counter(kind for kind, _ in outcomes)
    assert counts == {"ok": 1, "ValidationException": PARALLEL - 1}, counts
    assert all("already exists" in message for kind, message in outcomes if kind != "ok")
    listed = [n for page in mwaa.get_paginator("list_environments").paginate() for n in page["Environments"]]
    assert listed.count("race-create") == 1
    accepted = [i for i, (kind, _) in enumerate(outcomes) if kind == "ok"][0]
    assert mwaa.get_environment(Name="race-create")["Environment"]["MaxWorkers"] == 1 + accepted % 25


def test_given_parallel_deletes_and_updates_of_an_available_environment_then_exactly_one_change_wins(
        server: LiveServer, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("race-mixed"))
    make_available(server, "race-mixed")
    calls = [(lambda c=c: c.delete_environment(Name="race-mixed")) if i % 2 else
             (lambda c=c: c.update_environment(Name="race-mixed", MinWorkers=1))
             for i, c in enumerate(clients(server, 20))]
    outcomes = race(calls)
    counts = Counter(kind for kind, _ in outcomes)
    assert counts == {"ok": 1, "ValidationException": 19}, counts
    assert mwaa.get_environment(Name="race-mixed")["Environment"]["Status"] in ("UPDATING", "DELETING")
