"""One SQLite file shared by every local adapter (`<data-dir>/state.db`).

- WAL mode, so readers never block the single writer, and `busy_timeout`, so a writer waits for
  another thread's or process's write instead of failing with "database is locked".
- Autocommit (`isolation_level=None`): every statement is its own transaction unless the caller
  opens one with `transaction()`. Single-statement conditional writes (`UPDATE ... WHERE version=?`)
  are atomic, and no deferred read transaction is ever upgraded to a write (the upgrade is the one
  case where SQLite answers SQLITE_BUSY at once, without honouring busy_timeout).
- One connection per thread (the local server runs handlers on a thread pool), reopened after a
  fork so a child process never shares its parent's connection.
- Schema versions per component in `schema_versions`, so each adapter that keeps tables here
  (environments, workflow executions, metrics, ...) migrates its own tables independently.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DEFAULT_BUSY_TIMEOUT_MS = 30_000


class SqliteDatabase:
    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Open once now so configuration errors surface at construction, not on first request.
        self.connection()

    # ------------------------------------------------------------------ connections

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if os.getpid() != self._pid:
            self._after_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,  # only so close() may run from another thread
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        # journal_mode=WAL is persistent in the file; setting it again is a cheap no-op.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise RuntimeError(f"{self.path}: could not switch SQLite to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _after_fork(self) -> None:
        # Connections inherited from the parent must not be used (nor closed: the parent owns
        # their locks). Forget them and start afresh in this process.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []
        self._pid = os.getpid()

    def close(self) -> None:
        """Close every connection this object opened (call when no thread is using them)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting up to busy_timeout),
        so read-then-write sequences inside it are serialized with every other writer."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ------------------------------------------------------------------ schema

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Bring `component`'s tables to version len(migrations).

        `migrations[i]` is the SQL script taking the schema from version i to i+1; append new
        scripts, never edit old ones. Safe to run from many processes at once: the check and the
        scripts run in one IMMEDIATE transaction. Returns the resulting version.
        """
        target = len(migrations)
        with self.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > target:
                raise RuntimeError(
                    f"{self.path}: schema of {component!r} is at version {current}, newer than this "
                    f"code knows ({target}); upgrade Airdock."
                )
            for script in migrations[current:]:
                # executescript() would COMMIT first; run statements one by one instead so the
                # whole migration stays inside this transaction.
                for statement in _statements(script):
                    conn.execute(statement)
            if current != target:
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, target),
                )
        return target

    def schema_version(self, component: str) -> int:
        row = self.connection().execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchone()
        return row[0] if row else 0

    def sync(self) -> None:
        """Make every transaction committed so far durable. Needed with `synchronous=NORMAL`,
        which leaves WAL commits in the OS page cache until the next checkpoint (see
        group_commit.py); with FULL each commit is already synced."""
        try:
            fd = os.open(self.path.with_name(self.path.name + "-wal"), os.O_RDONLY)
        except FileNotFoundError:  # no WAL: the last checkpoint synced everything into the file
            return
        try:
            # fdatasync, as SQLite itself syncs on Linux: the frames and the file's size, not
            # its timestamps (which would cost a journal commit of the file system per call).
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def journal_mode(self) -> str:
        return str(self.connection().execute("PRAGMA journal_mode").fetchone()[0]).lower()


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (handles ';' inside string literals)."""
    statements: list[str] = []
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    return statements
