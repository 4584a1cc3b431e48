"""One-time sign-in tokens for the engine's Airflow UI (CreateAirflowUiUrl).

`{claims}.{HMAC-SHA256}` (both base64url): who (`sub`), which workflows they may see
(`workflows`: `Name-suffix` ids), until when the link may be opened (`exp`), how long the session
lasts (`session`, seconds), the caller's IP (`ip`, optional), a session id (`sid`). Made by the
control plane, checked by the engine's auth manager, with a secret only they share. Standard
library only: the control plane imports it too."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class TokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make(secret: str, claims: dict[str, Any]) -> str:
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())}"


def verify(secret: str, token: str, now: float | None = None) -> dict[str, Any]:
    try:
        body, signature = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise TokenError("the sign-in link is not valid")
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise TokenError("the sign-in link is not valid") from exc
    if not isinstance(claims, dict) or float(claims.get("exp", 0)) < (now or time.time()):
        raise TokenError("the sign-in link has expired")
    return claims
