"""Reach an environment's own Airflow REST API from a test, as an admin inside the environment."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from airdock_runtime.airflow_auth import basic_auth_header, mint_airflow_jwt


class AirflowRest:
    def __init__(self, env_dir: Path, hostname: str, airflow_version: str) -> None:
        secrets = json.loads((env_dir / "secrets.json").read_text())
        self.base = f"http://{hostname}"
        self.v3 = int(airflow_version.split(".")[0]) >= 3
        self.prefix = "/api/v2" if self.v3 else "/api/v1"
        self.headers = {
            "Authorization": f"Bearer {mint_airflow_jwt(secrets['jwt_secret'], sub='admin', role='admin')}"
            if self.v3 else basic_auth_header("admin", secrets["admin_password"])
        }

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(method, self.base + self.prefix + path, json=body, headers=self.headers, timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _ = self.call("GET", f"/dags/{dag_id}")
            if status == 200:
                return
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} never appeared")

    def run_dag(self, dag_id: str, timeout: float = 240) -> dict[str, Any]:
        """Unpause, trigger and wait for the run to finish; returns the run and its task instances."""
        self.wait_for_dag(dag_id)
        status, body = self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        assert status == 200, body
        trigger: dict[str, Any] = {"logical_date": None} if self.v3 else {}
        status, run = self.call("POST", f"/dags/{dag_id}/dagRuns", trigger)
        assert status == 200, run
        run, instances = self.wait_run(dag_id, run["dag_run_id"], timeout)
        run["task_instances"] = {t["task_id"]: t for t in instances}
        return run

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Wait (up to `timeout`) for a DAG run to end; returns the run as last seen and its task
        instances — the caller asserts on the state."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            _, run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run.get("state") in ("success", "failed"):
                break
            time.sleep(2)
        _, tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return run, tis["task_instances"]
