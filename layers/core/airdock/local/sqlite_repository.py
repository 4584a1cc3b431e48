"""EnvironmentRepository on a local SQLite file (the `state.db` of `airdock serve`).

Optimistic concurrency with single-statement conditional writes: `UPDATE ... WHERE name = ? AND
version = ?` and a rowcount check. Each statement is atomic in SQLite, so racing writers (threads
or processes) cannot both win, and no lock is held between a read and the following write.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.ports import EnvironmentRecord
from airdock.local.sqlite_db import SqliteDatabase

COMPONENT = "environments"

# Append-only: MIGRATIONS[i] takes the schema from version i to i+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS environments (
        name     TEXT PRIMARY KEY,
        version  INTEGER NOT NULL,
        document TEXT NOT NULL
    );
    """,
)


class SqliteEnvironmentRepository:
    """Records as JSON documents (`EnvironmentRecord.model_dump_json()`), keyed by name.

    The `version` column is authoritative; the document carries the same number.
    """

    def __init__(self, path: Path | str | None = None, *, db: SqliteDatabase | None = None) -> None:
        if db is None:
            if path is None:
                raise TypeError("SqliteEnvironmentRepository needs a path or a SqliteDatabase")
            db = SqliteDatabase(path)
        self.db = db
        self.db.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ port

    def put_new(self, record: EnvironmentRecord) -> EnvironmentRecord:
        document, saved = _stored(record, 1)
        try:
            self.db.connection().execute(
                "INSERT INTO environments (name, version, document) VALUES (?, ?, ?)",
                (saved.name, saved.version, document),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(saved.name) from None
        return saved

    def get(self, name: str) -> EnvironmentRecord | None:
        row = self.db.connection().execute(
            "SELECT version, document FROM environments WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        record = EnvironmentRecord.model_validate_json(row[1])
        record.version = row[0]
        return record

    def list_names(self, limit: int, after: str | None = None) -> list[str]:
        if limit <= 0:
            return []
        # TEXT PRIMARY KEY compares with BINARY collation: byte order of UTF-8, the same order
        # DynamoDB gives to a string sort key, so both adapters page identically.
        if after is None:
            rows = self.db.connection().execute(
                "SELECT name FROM environments ORDER BY name LIMIT ?", (limit,)
            )
        else:
            rows = self.db.connection().execute(
                "SELECT name FROM environments WHERE name > ? ORDER BY name LIMIT ?", (after, limit)
            )
        return [row[0] for row in rows]

    def replace(self, record: EnvironmentRecord) -> EnvironmentRecord:
        expected = record.version
        document, saved = _stored(record, expected + 1)
        cursor = self.db.connection().execute(
            "UPDATE environments SET version = ?, document = ? WHERE name = ? AND version = ?",
            (saved.version, document, saved.name, expected),
        )
        if cursor.rowcount != 1:
            raise ConcurrentModification(
                f"Environment {record.name} changed since version {expected} was read (or is gone)."
            )
        return saved

    def delete(self, name: str, version: int) -> None:
        conn = self.db.connection()
        cursor = conn.execute("DELETE FROM environments WHERE name = ? AND version = ?", (name, version))
        if cursor.rowcount == 1:
            return
        # Nothing deleted: either already gone (fine) or changed since it was read (not fine).
        # A record deleted and re-created in between reads as "changed" — also correct.
        if conn.execute("SELECT 1 FROM environments WHERE name = ?", (name,)).fetchone() is not None:
            raise ConcurrentModification(f"Environment {name} changed since version {version} was read.")


def _stored(record: EnvironmentRecord, version: int) -> tuple[str, EnvironmentRecord]:
    """The document to write and the record the caller gets back: read back from that very
    document, so it shares nothing with `record` and equals what `get` will return. (A deep
    `model_copy` costs several times the JSON round trip: half the CPU of a TagResource.)"""
    document = record.model_copy(update={"version": version}).model_dump_json()
    return document, EnvironmentRecord.model_validate_json(document)
