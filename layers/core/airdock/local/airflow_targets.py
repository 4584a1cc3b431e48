"""Where a local environment's Airflow is, and its keys (the data plane's AirflowTargets port), and
who gets which Airflow role (RolePolicySource: `<data-dir>/airflow-roles.json`)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from airdock.core import catalog
from airdock.core.airflow_access import RolePolicy
from airdock.core.errors import ServiceUnavailable, ValidationError
from airdock.core.ports import AirflowTarget, EnvironmentRecord

if TYPE_CHECKING:
    from airdock.local.compute import LocalCompute


class LocalAirflowTargets:
    def __init__(self, envs_dir: Path, compute: "Callable[[], LocalCompute]") -> None:
        self.envs_dir = envs_dir
        self._compute = compute

    def target(self, record: EnvironmentRecord) -> AirflowTarget:
        major = catalog.release(record.environment.AirflowVersion).major
        airflow = self._compute().environment(record.name)
        if airflow is not None:
            return AirflowTarget(airflow.web_url, major, dict(airflow.secrets))
        # Not managed by this process yet (a restart is bringing it back): its files say enough.
        env_dir = self.envs_dir / record.name
        try:
            secrets = json.loads((env_dir / "secrets.json").read_text())
            ports = json.loads((env_dir / "ports.json").read_text())
        except (OSError, ValueError):
            raise ServiceUnavailable(f"Environment {record.name} is not running on this Airdock server.") from None
        if "token_key" not in secrets:
            raise ServiceUnavailable(f"Environment {record.name} is restarting; try again in a few seconds.")
        return AirflowTarget(f"http://127.0.0.1:{ports['web']}", major, secrets)


class FileRolePolicy:
    """`<data-dir>/airflow-roles.json`, read per call so edits apply without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def role_policy(self) -> RolePolicy:
        if not self.path.is_file():
            return {}
        try:
            policy = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValidationError(f"{self.path.name} is not valid JSON: {exc}") from None
        return policy if isinstance(policy, dict) else {}
