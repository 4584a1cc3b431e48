"""UsedTokens (core/tokens.py) in the environment's metadata database (PostgreSQL; Aurora on AWS):
spent web login tokens, shared by every web-front task of the environment behind the load
balancer, so a token used on one is refused by all.

Why there: the web-front task runs with the environment's execution role, which is the user's
(it syncs the user's bucket and runs the Airflow CLI on DAG code), and MWAA asks nothing of that
role for web login. The metadata database is the one shared place the task already reaches with
credentials Airdock owns: its `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN` (an ECS secret). The worker
drain marker uses it for the same reason (worker_drain.py).

One table, created on first need (a web front may sign a browser in before anything else wrote
to it). One INSERT is the whole check, atomic for concurrent spenders: a new id is inserted, a
record already past its expiry is taken over, a live one is left alone and nothing is returned.
Expired records are deleted by the sign-in that finds them, so the table stays as small as the
number of tokens minted within a minute or so.

The web-front task loads this file by path (the image copies it beside web_front.py as
`airdock_used_tokens_postgres.py`): nothing from airdock, psycopg2 (Airflow's PostgreSQL driver,
in the image) imported only when a connection is opened.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airdock_runtime import postgres
from airdock_runtime.postgres import UNDEFINED_TABLE, libpq_url

TABLE = "airdock_used_login_tokens"
CREATE_SQL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (environment TEXT NOT NULL, token_id TEXT NOT NULL, "
              "expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (environment, token_id))")
SPEND_SQL = (f"INSERT INTO {TABLE} (environment, token_id, expires_at) VALUES (%s, %s, %s) "
             "ON CONFLICT (environment, token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at "
             f"WHERE {TABLE}.expires_at < %s RETURNING 1")
PRUNE_SQL = f"DELETE FROM {TABLE} WHERE expires_at < %s"
# PostgreSQL error codes: the table is missing; it (or its row type) was created concurrently:
# duplicate_table, duplicate_object, unique_violation (on the catalog), depending on the moment.
_ALREADY_CREATED = {"42P07", "42710", "23505"}



class PostgresUsedTokens:
    def __init__(self, database_url: str, connect: Callable[[str], Any] | None = None) -> None:
        """`database_url`: the environment's SQLAlchemy URL (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)
        or a libpq one. A connection per call: a sign-in is rare, and a held connection would
        count against Aurora's limit for nothing."""
        self.database_url = libpq_url(database_url)
        self._connect = connect

    def connect(self) -> Any:
        return postgres.connect(self.database_url, self._connect)

    def spend(self, environment: str, token_id: str, expires_at: float, now: float) -> bool:
        conn = self.connect()
        try:
            # Each statement its own transaction: the INSERT is atomic by itself, and a failed
            # one (missing table) must not leave a transaction to roll back.
            conn.autocommit = True
            cur = conn.cursor()
            try:
                cur.execute(SPEND_SQL, (environment, token_id, float(expires_at), float(now)))
            except Exception as exc:
                if getattr(exc, "pgcode", None) != UNDEFINED_TABLE:
                    raise
                self._create_table(cur)
                cur.execute(SPEND_SQL, (environment, token_id, float(expires_at), float(now)))
            spent = cur.fetchone() is not None
            cur.execute(PRUNE_SQL, (float(now),))
            return spent
        finally:
            conn.close()

    @staticmethod
    def _create_table(cur: Any) -> None:
        # Two fronts may both find the table missing; IF NOT EXISTS alone does not stop the
        # second CREATE from failing on the catalog's unique index, and either way it exists.
        try:
            cur.execute(CREATE_SQL)
        except Exception as exc:
            if getattr(exc, "pgcode", None) not in _ALREADY_CREATED:
                raise
