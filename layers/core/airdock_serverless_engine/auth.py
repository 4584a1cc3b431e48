"""The engine's auth manager: Airflow's simple auth manager, plus users who see only some workflows.

Airdock's control plane calls the API as `admin` (no restriction). A person comes in through a
CreateAirflowUiUrl link: `/auth/airdock/login?token=...` checks the one-time token (signature,
expiry, never used before, the caller's IP), then signs the browser in with a JWT whose
`workflows` claim lists the workflows the caller may GetWorkflow; every DAG check then allows only
the DAGs of those workflows (`Name-suffix__version`)."""
# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.
import os
import sqlite3
import time
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from airdock_serverless_engine import ui_token

WORKFLOW_ROLE = "USER"  # see and run the DAGs it is given; no connections, variables or config


class AirdockUser(SimpleAuthManagerUser):
    def __init__(self, *, username: str, role: str | None, workflows: list[str] | None = None) -> None:
        super().__init__(username=username, role=role)
        self.workflows = workflows


def workflow_of(dag_id: str) -> str:
    return dag_id.rsplit("__", 1)[0]


def _spend(session_id: str, expires: float) -> bool:
    """Record a token as used; False if it was used before (one-time links)."""
    path = os.environ.get("AIRDOCK_ENGINE_UI_STATE", os.path.join(os.environ.get("AIRFLOW_HOME", "."), "ui.db"))
    with sqlite3.connect(path, timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS used (sid TEXT PRIMARY KEY, expires REAL)")
        db.execute("DELETE FROM used WHERE expires < ?", (time.time(),))
        try:
            db.execute("INSERT INTO used VALUES (?, ?)", (session_id, expires))
        except sqlite3.IntegrityError:
            return False
    return True


class AirdockAuthManager(SimpleAuthManager):
    def deserialize_user(self, token: dict[str, Any]) -> AirdockUser:
        return AirdockUser(username=token["sub"], role=token["role"], workflows=token.get("workflows"))

    def serialize_user(self, user: SimpleAuthManagerUser) -> dict[str, Any]:
        claims = {"sub": user.username, "role": user.role}
        if getattr(user, "workflows", None) is not None:
            claims["workflows"] = list(user.workflows)  # type: ignore[attr-defined]
        return claims

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        allowed = getattr(user, "workflows", None)
        if allowed is None:
            return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        if details is None or getattr(details, "id", None) is None:
            return method == "GET"  # listings: filtered DAG by DAG through the ids below
        return workflow_of(details.id) in allowed and super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details)

    def get_url_login(self, **kwargs: Any) -> str:
        return "/auth/airdock/signed-out"

    def get_fastapi_app(self) -> Any:
        app = super().get_fastapi_app()
        secret = os.environ["AIRDOCK_ENGINE_UI_SECRET"]
        manager = self

        def login(request: Request, token: str) -> RedirectResponse:
            try:
                claims = ui_token.verify(secret, token)
            except ui_token.TokenError as exc:
                raise HTTPException(status_code=403, detail=str(exc)) from None
            if claims.get("ip") and request.client is not None and request.client.host != claims["ip"]:
                raise HTTPException(status_code=403, detail="the sign-in link belongs to another address")
            if not _spend(str(claims["sid"]), float(claims["exp"])):
                raise HTTPException(status_code=403, detail="the sign-in link was used before")
            user = AirdockUser(username=str(claims["sub"]), role=WORKFLOW_ROLE, workflows=list(claims["workflows"]))
            jwt = manager.generate_jwt(user, expiration_time_in_seconds=int(claims["session"]))
            response = RedirectResponse(url="/", status_code=303)
            response.set_cookie("_token", jwt, secure=request.url.scheme == "https", samesite="lax")
            return response

        def signed_out() -> HTMLResponse:
            return HTMLResponse("<p>Signed out. Open a new link from CreateAirflowUiUrl (or the Airdock console).</p>")

        app.add_api_route("/airdock/login", login, methods=["GET"], include_in_schema=False)
        app.add_api_route("/airdock/signed-out", signed_out, methods=["GET"], include_in_schema=False)
        # Before the simple auth manager's catch-all page route.
        routes = app.router.routes
        routes.insert(0, routes.pop())
        routes.insert(0, routes.pop())
        return app
