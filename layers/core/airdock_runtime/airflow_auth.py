"""Credentials for an environment's Airflow API, made without Airflow or PyJWT installed: the
control plane (InvokeRestApi) and the web front (sign-in) use the same ones.

Airflow 3's API server accepts any HS512 JWT signed with `[api_auth] jwt_secret` whose claims
match what `POST /auth/token` would issue (sub, role, aud="apache-airflow", nbf, iat, exp, jti).
Minting it ourselves saves a login round trip and works for the `_token` UI cookie too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_airflow_jwt(secret: str, *, sub: str = "admin", role: str = "admin",
                     ttl_s: int = 3600, audience: str = "apache-airflow") -> str:
    now = int(time.time())
    header = {"alg": "HS512", "typ": "JWT"}
    claims = {"sub": sub, "role": role, "aud": audience, "iat": now, "nbf": now,
              "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    signing_input = ".".join(_b64url(json.dumps(p, separators=(",", ":")).encode())
                             for p in (header, claims))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64url(sig)}"


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def fab_password(secret: str, username: str) -> str:
    """The password of the FAB user an Airflow role maps to (Airflow 2): derived from the
    environment's token key, so nothing is stored and both the control plane and the web front
    find the same one."""
    return hmac.new(secret.encode(), f"fab-user:{username}".encode(), hashlib.sha256).hexdigest()
