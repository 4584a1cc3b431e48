"""A Celery worker's own drain on ECS (images/airflow/entrypoint.py ComponentRun, with
airdock/aws/worker_drain.py): the entrypoint polls the task's drain marker; when it appears, Celery
gets SIGTERM (its warm shutdown: it stops taking messages, its running task ends) and the
entrypoint stays up, drained, until the task is stopped, or starts Celery again when the marker is
gone. Celery is a stand-in process that behaves like one on SIGTERM."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airdock_runtime import drain as worker_drain
from airdock_runtime import entrypoint as entrypoint_module

FAKE_CELERY = """
import os, signal, sys, time
from pathlib import Path
log = Path(os.environ["FAKE_LOG"])
def write(msg):
    with log.open("a") as fh:
        fh.write(msg + "\\n")
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
write("started")  # like Celery's "ready": from here on SIGTERM is a warm shutdown
if os.environ.get("FAKE_EXIT"):
    sys.exit(int(os.environ["FAKE_EXIT"]))
while not stopping:
    time.sleep(0.02)
write("stopped taking tasks")
time.sleep(0.3)  # the task instance it runs goes on to its end
write("task finished")
"""


@pytest.fixture(scope="module")
def entrypoint() -> Any:
    return entrypoint_module


class Worker:
    def __init__(self, entrypoint: Any, tmp: Path, check: Callable[[], bool] | None, **env: str) -> None:
        script = tmp / "celery.py"
        script.write_text(FAKE_CELERY)
        self.log = tmp / "celery.log"
        self.drained_file = tmp / ".airdock-drained"
        self.run = entrypoint.ComponentRun([sys.executable, str(script)], {"FAKE_LOG": str(self.log), **env},
                                           drained=check, poll_s=0.05, drained_file=self.drained_file)
        self.code: list[int] = []
        self.thread = threading.Thread(target=lambda: self.code.append(self.run.run()), daemon=True)
        self.thread.start()

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def wait_for(self, what: Callable[[], bool], timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < end, f"timed out; celery log: {self.lines()}"
            time.sleep(0.02)

    def stop(self) -> int:
        self.run.signal(signal.SIGTERM)  # what ECS sends when the autoscaler stops the task
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.code[0]


def test_given_a_drain_marker_celery_finishes_its_task_and_the_worker_stays_up_drained_until_stopped(
        entrypoint: Any, tmp_path: Path) -> None:
    marker = {"on": False}
    worker = Worker(entrypoint, tmp_path, lambda: marker["on"])
    worker.wait_for(lambda: worker.lines() == ["started"])
    time.sleep(0.2)
    assert worker.lines() == ["started"]  # no marker: nothing happens
    marker["on"] = True
    worker.wait_for(lambda: "task finished" in worker.lines() and worker.drained_file.exists())
    assert worker.lines() == ["started", "stopped taking tasks", "task finished"]
    time.sleep(0.3)
    assert worker.thread.is_alive() and worker.lines().count("started") == 1  # not replaced, not restarted
    assert worker.stop() == 0
    assert not worker.drained_file.exists()


def test_given_a_drained_worker_whose_marker_is_removed_celery_starts_again(entrypoint: Any, tmp_path: Path) -> None:
    marker = {"on": False}
    worker = Worker(entrypoint, tmp_path, lambda: marker["on"])
    worker.wait_for(lambda: worker.lines() == ["started"])
    marker["on"] = True
    worker.wait_for(lambda: worker.drained_file.exists())
    marker["on"] = False
    worker.wait_for(lambda: worker.lines().count("started") == 2)
    assert not worker.drained_file.exists()
    assert worker.stop() == 0
    assert worker.lines()[-1] == "task finished"  # the stop is Celery's warm shutdown again


def test_a_failing_check_neither_drains_a_worker_nor_takes_a_drained_one_back(entrypoint: Any, tmp_path: Path) -> None:
    state = {"ready": False, "answered": False}

    def flaky() -> bool:
        if not state["ready"]:
            raise OSError("database unreachable")  # never drains a running worker
        if state["answered"]:
            raise OSError("database unreachable")  # never takes a drained one back
        state["answered"] = True
        return True

    worker = Worker(entrypoint, tmp_path, flaky)
    worker.wait_for(lambda: worker.lines() == ["started"])
    time.sleep(0.3)
    assert worker.lines() == ["started"]
    state["ready"] = True
    worker.wait_for(lambda: worker.drained_file.exists())
    time.sleep(0.4)  # several failing checks while drained
    assert worker.lines().count("started") == 1 and worker.drained_file.exists()
    assert worker.stop() == 0


def test_without_a_drain_check_the_component_runs_as_before(entrypoint: Any, tmp_path: Path) -> None:
    worker = Worker(entrypoint, tmp_path, None, FAKE_EXIT="3")
    worker.thread.join(60)
    assert worker.code == [3]  # its exit is the entrypoint's
    (tmp_path / "b").mkdir()
    stopped = Worker(entrypoint, tmp_path / "b", None)
    stopped.wait_for(lambda: stopped.lines() == ["started"])
    assert stopped.stop() == 0 and stopped.lines()[-1] == "task finished"
    assert not stopped.drained_file.exists()


def test_only_celery_workers_on_ecs_poll_a_drain_marker(entrypoint: Any) -> None:
    assert entrypoint.worker_drain_check("scheduler", {"AIRDOCK_DRAIN_POLL_S": "15"}) is None
    assert entrypoint.worker_drain_check("celery-worker", {}) is None  # locally
    # On ECS without a task metadata endpoint (not really on ECS): run without, do not fail.
    assert entrypoint.worker_drain_check("celery-worker", {"AIRDOCK_DRAIN_POLL_S": "15",
                                                            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://x"}) is None


# ---- the marker check itself ---------------------------------------------------------------------


class _TaskMetadata(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/c/abc", "Family": "x"}).encode()
        self.send_response(200 if self.path == "/v4/meta/task" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def metadata_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TaskMetadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v4/meta"
    server.shutdown()


class _Cursor:
    def __init__(self, rows: set[str], error: Exception | None) -> None:
        self.rows, self.error, self.found = rows, error, False
        self.executed: list[tuple[str, tuple[str, ...]]] = []

    def execute(self, sql: str, params: tuple[str, ...]) -> None:
        self.executed.append((sql, params))
        if self.error is not None:
            raise self.error
        self.found = params[0] in self.rows

    def fetchone(self) -> tuple[int] | None:
        return (1,) if self.found else None


class _Connection:
    def __init__(self, cursor: _Cursor) -> None:
        self._cursor, self.closed = cursor, False

    def cursor(self) -> _Cursor:
        return self._cursor

    def close(self) -> None:
        self.closed = True


class _UndefinedTable(Exception):
    pgcode = "42P01"


def test_the_check_asks_the_metadata_database_about_its_own_task(metadata_endpoint: str) -> None:
    environ = {"ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint,
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://role:pw@db.example:5432/env_db"}
    check = worker_drain.MetadataDrainCheck.from_environ(environ)
    assert check is not None and check.task_arn == "arn:aws:ecs:us-east-1:123456789012:task/c/abc"
    assert check.database_url == "postgresql://role:pw@db.example:5432/env_db"  # libpq's form
    rows: set[str] = set()
    cursor = _Cursor(rows, None)
    urls: list[str] = []
    connections: list[_Connection] = []

    def connect(url: str) -> _Connection:
        urls.append(url)
        connections.append(_Connection(cursor))
        return connections[-1]

    check = worker_drain.MetadataDrainCheck(environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], check.task_arn, connect)
    assert check() is False
    rows.add(check.task_arn)
    assert check() is True
    assert cursor.executed[-1] == (worker_drain.CHECK_SQL, (check.task_arn,))
    assert all(c.closed for c in connections) and set(urls) == {"postgresql://role:pw@db.example:5432/env_db"}


def test_no_marker_table_yet_means_not_drained_but_other_errors_are_reported() -> None:
    missing = worker_drain.MetadataDrainCheck("postgresql://x", "arn", lambda _u: _Connection(_Cursor(set(), _UndefinedTable())))
    assert missing() is False
    broken = worker_drain.MetadataDrainCheck("postgresql://x", "arn", lambda _u: _Connection(_Cursor(set(), OSError("down"))))
    with pytest.raises(OSError):
        broken()
