"""Sign-in links to the engine's Airflow UI (CreateAirflowUiUrl), for the caller's workflows only.

The link is the engine's `/auth/airdock/login?token=...`: a one-time token signed with a secret the
engine's auth manager shares (airdock_serverless_engine.auth), naming the workflows the caller may
GetWorkflow, the link's expiry, the session's length and the caller's IP."""
from __future__ import annotations

import secrets
import string
import time
from typing import Any
from urllib.parse import quote

from airdock.core.serverless.errors import ConflictError
from airdock_serverless_engine import ui_token

# A link asked for while the engine starts (the first workflow) waits for it, up to this.
UI_WAIT_S = 90
_SESSION_ALPHABET = string.ascii_lowercase + string.digits


class LocalUiSessions:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def create_url(self, principal: str, source_ip: str | None, dag_ids: list[str], expires_in_s: int,
                   session_s: int) -> tuple[str, str]:
        if not self.engine.wait_ready(UI_WAIT_S):
            raise ConflictError("The Airflow UI starts with the first workflow; it is not running yet.",
                                "airflow-ui", "AirflowUi")
        session_id = "".join(secrets.choice(_SESSION_ALPHABET) for _ in range(32))
        workflows = sorted({dag_id.rsplit("__", 1)[0] for dag_id in dag_ids})
        token = ui_token.make(self.engine.secrets["ui_secret"], {
            "sub": principal, "workflows": workflows, "exp": time.time() + expires_in_s, "session": session_s,
            "ip": source_ip, "sid": session_id})
        return f"{self.engine.api_url}/auth/airdock/login?token={quote(token)}", session_id
