"""Where the local Step Functions engine records its executions, so they survive a restart.

Every execution is recorded before its thread starts and its end when it stops (see
``LocalStepFunctions.resume_unfinished``): the record holds enough to describe the execution
(DescribeExecution) and to run it again from its first state with its original input.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
ABORTED: Final = "ABORTED"


class StepFunctionsError(Exception):
    """Base for errors the local Step Functions adapter raises; ``code`` is the matching AWS error code."""

    code = "StepFunctionsError"


class ExecutionDoesNotExist(StepFunctionsError):
    code = "ExecutionDoesNotExist"


class ExecutionAlreadyExists(StepFunctionsError):
    code = "ExecutionAlreadyExists"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


@dataclass(frozen=True)
class ExecutionRecord:
    """What is stored about one execution (enough to describe it and to re-run it)."""

    execution_arn: str
    state_machine: str  # state machine name (key of LocalStepFunctions.definitions)
    state_machine_arn: str
    name: str
    input: str  # JSON text, exactly as started
    start_date: datetime.datetime
    status: str = RUNNING
    stop_date: datetime.datetime | None = None
    output: str | None = None  # JSON text
    error: str | None = None
    cause: str | None = None


class ExecutionStore(Protocol):
    """Where executions are recorded, so they survive a restart of the local server."""

    def record_start(self, execution: ExecutionRecord) -> None:
        """Insert a new RUNNING execution; raise ExecutionAlreadyExists if the ARN is known."""
        ...

    def record_end(
        self,
        execution_arn: str,
        status: str,
        output: str | None,
        error: str | None,
        cause: str | None,
    ) -> None: ...

    def unfinished(self) -> list[ExecutionRecord]:
        """Executions recorded as started and not ended, oldest first."""
        ...

    def get(self, execution_arn: str) -> ExecutionRecord | None: ...


class SqliteExecutionStore(ExecutionStore):
    """ExecutionStore in a SQLite file (WAL). Safe to share with other tables in ``state.db``.

    One connection guarded by a lock: calls are short and serialising them is simpler and
    cheaper than a connection per call; ``busy_timeout`` covers other connections (e.g. the
    repository adapter) writing to the same file.
    """

    _SCHEMA: Final = """
        CREATE TABLE IF NOT EXISTS sfn_executions (
            execution_arn     TEXT PRIMARY KEY,
            state_machine     TEXT NOT NULL,
            state_machine_arn TEXT NOT NULL,
            name              TEXT NOT NULL,
            input             TEXT NOT NULL,
            status            TEXT NOT NULL,
            start_date        TEXT NOT NULL,
            stop_date         TEXT,
            output            TEXT,
            error             TEXT,
            cause             TEXT
        );
        CREATE INDEX IF NOT EXISTS sfn_executions_status ON sfn_executions (status, start_date);
    """
    _COLUMNS: Final = (
        "execution_arn, state_machine, state_machine_arn, name, input, status, start_date, "
        "stop_date, output, error, cause"
    )

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        # check_same_thread=False: engine threads share it, serialised by self._lock.
        self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an execution recorded as started must survive even an OS crash; the cost
            # (one fsync per start/end) is negligible at workflow rates.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.executescript(self._SCHEMA)

    @staticmethod
    def _row_to_record(row: tuple[Any, ...]) -> ExecutionRecord:
        (arn, sm, sm_arn, name, inpt, status, start, stop, output, error, cause) = row
        return ExecutionRecord(
            execution_arn=arn,
            state_machine=sm,
            state_machine_arn=sm_arn,
            name=name,
            input=inpt,
            status=status,
            start_date=datetime.datetime.fromisoformat(start),
            stop_date=datetime.datetime.fromisoformat(stop) if stop else None,
            output=output,
            error=error,
            cause=cause,
        )

    def record_start(self, execution: ExecutionRecord) -> None:
        e = execution
        try:
            with self._lock:
                self._conn.execute(
                    f"INSERT INTO sfn_executions ({self._COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        e.execution_arn,
                        e.state_machine,
                        e.state_machine_arn,
                        e.name,
                        e.input,
                        e.status,
                        e.start_date.isoformat(),
                        e.stop_date.isoformat() if e.stop_date else None,
                        e.output,
                        e.error,
                        e.cause,
                    ),
                )
        except sqlite3.IntegrityError as ex:
            raise ExecutionAlreadyExists(f"Execution Already Exists: '{e.execution_arn}'") from ex

    def record_end(
        self,
        execution_arn: str,
        status: str,
        output: str | None,
        error: str | None,
        cause: str | None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE sfn_executions SET status=?, stop_date=?, output=?, error=?, cause=? "
                "WHERE execution_arn=?",
                (status, utc_now().isoformat(), output, error, cause, execution_arn),
            )

    def unfinished(self) -> list[ExecutionRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM sfn_executions WHERE status=? ORDER BY start_date",
                (RUNNING,),
            ).fetchall()
        return [self._row_to_record(r) for r in rows]

    def get(self, execution_arn: str) -> ExecutionRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM sfn_executions WHERE execution_arn=?",
                (execution_arn,),
            ).fetchone()
        return self._row_to_record(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


__all__ = [
    "ABORTED",
    "FAILED",
    "RUNNING",
    "SUCCEEDED",
    "TIMED_OUT",
    "ExecutionAlreadyExists",
    "ExecutionDoesNotExist",
    "ExecutionRecord",
    "ExecutionStore",
    "SqliteExecutionStore",
    "StepFunctionsError",
]
