"""Sign-in links to the engine's Airflow UI (CreateAirflowUiUrl), for the caller's workflows only."""
from __future__ import annotations

from typing import Any

from airdock.core.serverless.errors import ConflictError


class LocalUiSessions:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def create_url(self, principal: str, source_ip: str | None, dag_ids: list[str], expires_in_s: int,
                   session_s: int) -> tuple[str, str]:
        raise ConflictError("The Airflow UI is not available yet.", "airflow-ui", "AirflowUi")
