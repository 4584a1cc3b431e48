"""MWAA's short-lived data-plane tokens: the CLI token and the web login token.

Format: ``v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "v1." + claims))>``. The key is
per environment (kept with that environment's secrets), so a token minted for one environment
fails the signature check on every other one; the claims name the environment as well, so even a
shared key could not make a token travel.

This module is imported in two places: by the control plane, which mints tokens, and by the
environment's web front (images/airflow/web_front.py), which verifies them inside the Airflow
runtime. The web front runs with nothing but the standard library and Airflow installed, so this
file imports only the standard library and nothing from `airdock` — keep it that way.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

VERSION = "v1"
CLI = "cli"
WEB = "web"
# MWAA: both tokens are valid for 60 seconds.
CLI_TOKEN_TTL_S = 60
WEB_TOKEN_TTL_S = 60
# Tolerated clock difference between the minting control plane and the verifying web front.
CLOCK_LEEWAY_S = 5
AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")

Clock = Callable[[], float]


class TokenError(Exception):
    """A token that must be refused. `status` is what the web front answers (401 or 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TokenClaims:
    kind: str
    environment: str
    iam_identity: str
    airflow_identity: str
    role: str
    issued_at: float
    expires_at: float
    token_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"typ": self.kind, "env": self.environment, "sub": self.iam_identity,
                "aid": self.airflow_identity, "role": self.role, "iat": self.issued_at,
                "exp": self.expires_at, "jti": self.token_id, **({"ext": self.extra} if self.extra else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TokenClaims":
        try:
            return cls(kind=str(data["typ"]), environment=str(data["env"]), iam_identity=str(data["sub"]),
                       airflow_identity=str(data["aid"]), role=str(data["role"]),
                       issued_at=float(data["iat"]), expires_at=float(data["exp"]),
                       token_id=str(data["jti"]), extra=dict(data.get("ext") or {}))
        except (KeyError, TypeError, ValueError):
            raise TokenError("The token is malformed.") from None


def new_key() -> str:
    """A fresh per-environment signing key (256 bits, URL-safe text so it fits a JSON secret)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: str, signing_input: str) -> str:
    return _b64(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())


def mint(key: str, claims: TokenClaims) -> str:
    body = _b64(json.dumps(claims.to_json(), separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{VERSION}.{body}"
    return f"{signing_input}.{_sign(key, signing_input)}"


def mint_cli_token(key: str, environment: str, iam_identity: str, airflow_identity: str, role: str,
                   *, now: float | None = None, ttl_s: int = CLI_TOKEN_TTL_S) -> str:
    issued = time.time() if now is None else now
    return mint(key, TokenClaims(CLI, environment, iam_identity, airflow_identity, role, issued,
                                 issued + ttl_s, secrets.token_hex(16)))


def mint_web_token(key: str, environment: str, iam_identity: str, airflow_identity: str, role: str,
                   *, now: float | None = None, ttl_s: int = WEB_TOKEN_TTL_S) -> str:
    issued = time.time() if now is None else now
    return mint(key, TokenClaims(WEB, environment, iam_identity, airflow_identity, role, issued,
                                 issued + ttl_s, secrets.token_hex(16)))


def verify(key: str, token: str, *, kind: str, environment: str, now: float | None = None,
           leeway_s: float = CLOCK_LEEWAY_S) -> TokenClaims:
    """The claims of a valid token, or TokenError saying why it is refused.

    The signature is checked before anything in the claims is trusted; a wrong environment is
    403 (a valid token, for somewhere else), everything else 401.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenError("The token is malformed.")
    signing_input = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, signing_input), parts[2]):
        raise TokenError("The token signature is invalid: it was not issued for this environment.")
    try:
        data = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("The token is malformed.") from None
    if not isinstance(data, dict):
        raise TokenError("The token is malformed.")
    claims = TokenClaims.from_json(data)
    if claims.kind != kind:
        raise TokenError(f"This is a {claims.kind} token; a {kind} token is required here.")
    if claims.environment != environment:
        raise TokenError(f"The token was issued for environment {claims.environment}, not {environment}.", 403)
    current = time.time() if now is None else now
    if current > claims.expires_at:
        raise TokenError("The token has expired.")
    if claims.issued_at > current + leeway_s:
        raise TokenError("The token is not valid yet.")
    return claims


class UsedTokens(Protocol):
    """Port: the record of one-time tokens already spent.

    Every web front of an environment must share one, or a login token used on one front could be
    replayed on another (on AWS several web-front tasks sit behind the load balancer). Adapters:
    SQLite locally (airdock/local/used_tokens.py), the environment's PostgreSQL metadata database
    on AWS (airdock/aws/used_tokens.py), and MemoryUsedTokens for a lone process;
    tests/aws/test_port_contracts.py holds all to one contract.
    """

    def spend(self, environment: str, token_id: str, expires_at: float, now: float) -> bool:
        """Record `token_id` of `environment` as used until `expires_at`. True the first time;
        False while a record of it exists that has not expired at `now`, whichever process
        made it. Atomic: of concurrent callers with one id, exactly one gets True."""


class MemoryUsedTokens:
    """UsedTokens of one process only: for a web front that has nowhere shared to keep them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], float] = {}

    def spend(self, environment: str, token_id: str, expires_at: float, now: float) -> bool:
        with self._lock:
            self._used = {k: v for k, v in self._used.items() if v >= now}
            if (environment, token_id) in self._used:
                return False
            self._used[(environment, token_id)] = expires_at
            return True


class ReplayGuard:
    """Lets each web login token sign a browser in once, through a shared UsedTokens record."""

    def __init__(self, used: UsedTokens, clock: Clock = time.time) -> None:
        self.used = used
        self.clock = clock

    def use(self, claims: TokenClaims) -> None:
        """Record the token as used, or raise TokenError(403) if it was used before."""
        # Kept past the expiry by the leeway a verifying clock may lag behind the record's.
        if not self.used.spend(claims.environment, claims.token_id, claims.expires_at + CLOCK_LEEWAY_S, self.clock()):
            raise TokenError("This login token was already used; request a new one.", 403)


def offset_clock(offset_file: str | None) -> Clock:
    """Wall-clock time plus the seconds written in `offset_file` (read on every call).

    Lets an end-to-end test age tokens on a running web front without waiting; with no file
    configured this is plain `time.time`.
    """
    if not offset_file:
        return time.time
    path = Path(offset_file)

    def now() -> float:
        try:
            return time.time() + float(path.read_text().strip() or 0)
        except (OSError, ValueError):
            return time.time()

    return now
