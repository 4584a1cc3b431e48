"""Connecting to an environment's metadata database (PostgreSQL) from inside the environment."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONNECT_TIMEOUT_S = 10
UNDEFINED_TABLE = "42P01"  # PostgreSQL's error code for a missing table

Connect = Callable[[str], Any]


def libpq_url(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg2://...` (Airflow's) as libpq takes it: `postgresql://...`."""
    scheme, sep, rest = sqlalchemy_url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


def connect(url: str, given: Connect | None = None) -> Any:
    """A connection to `url` (libpq form) with a bounded connect timeout; psycopg2 (Airflow's
    PostgreSQL driver, in every runtime) is imported only here."""
    if given is not None:
        return given(url)
    import psycopg2

    return psycopg2.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
