"""UsedTokens (core/tokens.py) on SQLite: spent web login tokens, shared by every process that
opens the same file — locally `envs/<Name>/web_front/used-login-tokens.db`, so any number of web
fronts of the environment (and restarts of one) refuse a replay alike.

The web front loads this file by path inside the Airflow runtime, where neither airdock nor its
dependencies are installed: standard library only, and not airdock's SqliteDatabase. A connection
per call is enough for a sign-in, which is rare.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 30.0
_SCHEMA = """CREATE TABLE IF NOT EXISTS used_tokens (
    environment TEXT NOT NULL,
    token_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (environment, token_id)
)"""
# One statement, so the check and the write are one atomic step for every process: a new id is
# inserted, an expired record is taken over, a live one is left alone (no row changed).
_SPEND = """INSERT INTO used_tokens (environment, token_id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (environment, token_id) DO UPDATE SET expires_at = excluded.expires_at
WHERE used_tokens.expires_at < ?"""


class SqliteUsedTokens:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Private from the start: token ids are not secrets, but nobody else needs to write here.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit: each statement is its own transaction; the timeout waits out other writers.
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def spend(self, environment: str, token_id: str, expires_at: float, now: float) -> bool:
        db = self._connect()
        try:
            spent = db.execute(_SPEND, (environment, token_id, expires_at, now)).rowcount == 1
            db.execute("DELETE FROM used_tokens WHERE expires_at < ?", (now,))
            return spent
        finally:
            db.close()
