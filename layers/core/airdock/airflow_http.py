"""Calls to an environment's Airflow REST API over HTTP (the AirflowHttp port), the same for
local mode (Airflow on this machine) and AWS (through the environment's web front)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from airdock.core.errors import ServiceUnavailable

REST_TIMEOUT_S = 60.0


class UrllibAirflowHttp:
    def __init__(self, timeout_s: float = REST_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def call(self, url: str, method: str, data: bytes | None, headers: dict[str, str],
             environment: str) -> tuple[int, Any]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            raise ServiceUnavailable(f"The Airflow web server of environment {environment} is not reachable; "
                                     "try again in a few seconds.") from None
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")
