"""WorkflowRepository on SQLite (`<data-dir>/serverless/state.db`, its own file so that its
writes, which may run on worker threads, are durable on commit: synchronous=FULL).

Records are JSON documents; the columns beside them are what is looked up or ordered by.
Optimistic concurrency as for environments: `UPDATE ... WHERE record_version = ?`.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.serverless.records import FINAL_RUN_STATES, RunRecord, VersionRecord, WorkflowRecord
from airdock.local.sqlite_db import SqliteDatabase

COMPONENT = "serverless"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS sl_workflows (
        workflow_id    TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        client_token   TEXT UNIQUE,
        record_version INTEGER NOT NULL,
        document       TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sl_versions (
        workflow_id TEXT NOT NULL,
        version     TEXT NOT NULL,
        number      INTEGER NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (workflow_id, version)
    );
    CREATE INDEX IF NOT EXISTS sl_versions_number ON sl_versions (workflow_id, number);
    CREATE TABLE IF NOT EXISTS sl_runs (
        workflow_id    TEXT NOT NULL,
        run_id         TEXT NOT NULL,
        version        TEXT NOT NULL,
        client_token   TEXT,
        active         INTEGER NOT NULL,
        created_at     TEXT NOT NULL,
        record_version INTEGER NOT NULL,
        document       TEXT NOT NULL,
        PRIMARY KEY (workflow_id, run_id),
        UNIQUE (workflow_id, client_token)
    );
    CREATE INDEX IF NOT EXISTS sl_runs_created ON sl_runs (workflow_id, created_at, run_id);
    CREATE INDEX IF NOT EXISTS sl_runs_active ON sl_runs (active);
    """,
)


def _sortable(moment: datetime) -> str:
    """A fixed-width UTC text, so that text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _iso(record: RunRecord) -> str:
    return _sortable(record.created_at)


class SqliteWorkflowRepository:
    def __init__(self, path: Path | str) -> None:
        self.db = SqliteDatabase(path, synchronous="FULL")
        self.db.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    # ---- workflows -------------------------------------------------------------------------------

    def create_workflow(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        saved = workflow.model_copy(update={"record_version": 1})
        try:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO sl_workflows VALUES (?, ?, ?, ?, ?)",
                             (saved.workflow_id, saved.name, saved.client_token, 1, saved.model_dump_json()))
                conn.execute("INSERT INTO sl_versions VALUES (?, ?, ?, ?)",
                             (version.workflow_id, version.version, version.number, version.model_dump_json()))
        except sqlite3.IntegrityError:
            raise AlreadyExists(workflow.name) from None
        return saved

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        row = self.db.connection().execute(
            "SELECT record_version, document FROM sl_workflows WHERE workflow_id = ?", (workflow_id,)).fetchone()
        return _workflow(row)

    def find_workflow(self, *, name: str | None = None, client_token: str | None = None) -> WorkflowRecord | None:
        column, value = ("name", name) if name is not None else ("client_token", client_token)
        row = self.db.connection().execute(
            f"SELECT record_version, document FROM sl_workflows WHERE {column} = ?", (value,)).fetchone()
        return _workflow(row)

    def list_workflows(self, limit: int, after: str | None = None) -> list[WorkflowRecord]:
        rows = self.db.connection().execute(
            "SELECT record_version, document FROM sl_workflows WHERE name > ? ORDER BY name LIMIT ?",
            (after or "", limit)).fetchall()
        return [w for w in map(_workflow, rows) if w is not None]

    def count_workflows(self) -> int:
        return int(self.db.connection().execute("SELECT count(*) FROM sl_workflows").fetchone()[0])

    def put_workflow(self, workflow: WorkflowRecord) -> WorkflowRecord:
        with self.db.transaction() as conn:
            return self._put_workflow(conn, workflow)

    def _put_workflow(self, conn: sqlite3.Connection, workflow: WorkflowRecord) -> WorkflowRecord:
        saved = workflow.model_copy(update={"record_version": workflow.record_version + 1})
        cursor = conn.execute(
            "UPDATE sl_workflows SET record_version = ?, document = ? WHERE workflow_id = ? AND record_version = ?",
            (saved.record_version, saved.model_dump_json(), saved.workflow_id, workflow.record_version))
        if cursor.rowcount != 1:
            raise ConcurrentModification(f"workflow {workflow.workflow_id} changed or is gone")
        return saved

    def add_version(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        with self.db.transaction() as conn:
            saved = self._put_workflow(conn, workflow)
            conn.execute("INSERT INTO sl_versions VALUES (?, ?, ?, ?)",
                         (version.workflow_id, version.version, version.number, version.model_dump_json()))
        return saved

    def get_version(self, workflow_id: str, version: str) -> VersionRecord | None:
        row = self.db.connection().execute(
            "SELECT document FROM sl_versions WHERE workflow_id = ? AND version = ?", (workflow_id, version)).fetchone()
        return VersionRecord.model_validate_json(row[0]) if row else None

    def list_versions(self, workflow_id: str, limit: int, before: int | None = None) -> list[VersionRecord]:
        rows = self.db.connection().execute(
            "SELECT document FROM sl_versions WHERE workflow_id = ? AND number < ? ORDER BY number DESC LIMIT ?",
            (workflow_id, before if before is not None else 2 ** 62, limit)).fetchall()
        return [VersionRecord.model_validate_json(r[0]) for r in rows]

    def delete_version(self, workflow_id: str, version: str) -> None:
        self.db.connection().execute("DELETE FROM sl_versions WHERE workflow_id = ? AND version = ?",
                                     (workflow_id, version))

    def delete_workflow(self, workflow_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sl_runs WHERE workflow_id = ?", (workflow_id,))
            conn.execute("DELETE FROM sl_versions WHERE workflow_id = ?", (workflow_id,))
            conn.execute("DELETE FROM sl_workflows WHERE workflow_id = ?", (workflow_id,))

    # ---- runs ------------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        saved = run.model_copy(update={"record_version": 1})
        try:
            self.db.connection().execute(
                "INSERT INTO sl_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (saved.workflow_id, saved.run_id, saved.version, saved.client_token, int(not saved.final), _iso(saved),
                 1, saved.model_dump_json()))
        except sqlite3.IntegrityError:
            raise AlreadyExists(run.run_id) from None
        return saved

    def get_run(self, workflow_id: str, run_id: str) -> RunRecord | None:
        row = self.db.connection().execute(
            "SELECT record_version, document FROM sl_runs WHERE workflow_id = ? AND run_id = ?",
            (workflow_id, run_id)).fetchone()
        return _run(row)

    def find_run(self, workflow_id: str, client_token: str) -> RunRecord | None:
        row = self.db.connection().execute(
            "SELECT record_version, document FROM sl_runs WHERE workflow_id = ? AND client_token = ?",
            (workflow_id, client_token)).fetchone()
        return _run(row)

    def put_run(self, run: RunRecord) -> RunRecord:
        saved = run.model_copy(update={"record_version": run.record_version + 1})
        cursor = self.db.connection().execute(
            "UPDATE sl_runs SET record_version = ?, active = ?, document = ? "
            "WHERE workflow_id = ? AND run_id = ? AND record_version = ?",
            (saved.record_version, int(not saved.final), saved.model_dump_json(), saved.workflow_id, saved.run_id,
             run.record_version))
        if cursor.rowcount != 1:
            raise ConcurrentModification(f"run {run.run_id} changed or is gone")
        return saved

    def list_runs(self, workflow_id: str, limit: int, after: tuple[str, str] | None = None,
                  version: str | None = None) -> list[RunRecord]:
        sql = "SELECT record_version, document FROM sl_runs WHERE workflow_id = ?"
        args: list[object] = [workflow_id]
        if version is not None:
            sql += " AND version = ?"
            args.append(version)
        if after is not None:
            created = _sortable(datetime.fromisoformat(after[0].replace("Z", "+00:00")))
            sql += " AND (created_at < ? OR (created_at = ? AND run_id < ?))"
            args += [created, created, after[1]]
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT ?"
        args.append(limit)
        return [r for r in map(_run, self.db.connection().execute(sql, args).fetchall()) if r is not None]

    def active_runs(self, workflow_id: str | None = None) -> list[RunRecord]:
        if workflow_id is None:
            rows = self.db.connection().execute(
                "SELECT record_version, document FROM sl_runs WHERE active = 1").fetchall()
        else:
            rows = self.db.connection().execute(
                "SELECT record_version, document FROM sl_runs WHERE active = 1 AND workflow_id = ?",
                (workflow_id,)).fetchall()
        return [r for r in map(_run, rows) if r is not None and r.status not in FINAL_RUN_STATES]

    def delete_runs(self, workflow_id: str, version: str | None = None) -> None:
        if version is None:
            self.db.connection().execute("DELETE FROM sl_runs WHERE workflow_id = ?", (workflow_id,))
        else:
            self.db.connection().execute("DELETE FROM sl_runs WHERE workflow_id = ? AND version = ?",
                                         (workflow_id, version))


def _workflow(row: tuple[int, str] | None) -> WorkflowRecord | None:
    if row is None:
        return None
    return WorkflowRecord.model_validate_json(row[1]).model_copy(update={"record_version": row[0]})


def _run(row: tuple[int, str] | None) -> RunRecord | None:
    if row is None:
        return None
    return RunRecord.model_validate_json(row[1]).model_copy(update={"record_version": row[0]})
