"""Everything one local Airdock instance owns, built from one data directory."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from airdock.core.provisioning import Provisioner
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings
from airdock.local.buckets import LocalBuckets
from airdock.local.credentials import KeyStore
from airdock.local.data_plane import LocalDataPlane
from airdock.local.events import LocalEventLog
from airdock.local.functions import load_function
from airdock.local.metrics_store import SqliteMetrics
from airdock.local.sqlite_repository import SqliteEnvironmentRepository

log = logging.getLogger("airdock.local")


class LocalContext:
    def __init__(
        self, data_dir: Path, settings: Settings, *, compute: Any | None = None, provision: bool = True
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        (self.data_dir / "buckets").mkdir(exist_ok=True)
        (self.data_dir / "envs").mkdir(exist_ok=True)
        self.settings = settings
        self.keys = KeyStore(self.data_dir, settings.account_id)
        self.repository = SqliteEnvironmentRepository(self.data_dir / "state.db")
        self.metrics = SqliteMetrics(db=self.repository.db)
        self.buckets = LocalBuckets(self.data_dir / "buckets")
        self.events = LocalEventLog(self.data_dir / "events.jsonl", os.environ.get("AIRDOCK_EVENTS_WEBHOOK"))
        self._engine: Any | None = None
        self._compute = compute
        self._workflows: Any | None = None
        self.service = EnvironmentService(
            repository=self.repository,
            buckets=self.buckets,
            events=self.events,
            settings=settings,
            metrics=self.metrics,
            data_plane=LocalDataPlane(self.data_dir / "envs", lambda: self.compute,
                                      self.data_dir / "airflow-roles.json"),
            # Control-plane-only mode (API and state, no Airflow): changes stay pending, visibly.
            workflows=_LazyWorkflows(self) if provision else None,
        )
        self.provision = provision

    @property
    def compute(self) -> Any:
        if self._compute is None:
            from airdock.local.compute import LocalCompute

            self._compute = LocalCompute(self.data_dir, self.buckets)
        return self._compute

    @property
    def engine(self) -> Any:
        """The in-process Step Functions engine (built on first use: importing moto's ASL
        interpreter costs seconds, which plain API calls should not pay)."""
        if self._engine is None:
            from airdock.local.workflows import build_engine

            provisioner = Provisioner(self.service, self.compute)
            function = load_function("provisioner")
            self._engine = build_engine(
                self.data_dir / "workflows.db",
                self.settings.region,
                self.settings.account_id,
                lambda event, context: function.handler(event, context, provisioner=provisioner),
            )
        return self._engine

    def start(self) -> None:
        """Once the server runs: bring back environments and workflows interrupted by a stop or
        a crash."""
        if not self.provision:
            return
        self.compute.recover(self.repository)
        resumed = self.engine.resume_unfinished()
        if resumed:
            log.info("resumed %d interrupted workflow(s)", len(resumed))

    def close(self) -> None:
        """Stop background work and every environment's processes; unfinished workflows are
        resumed, and AVAILABLE environments restarted, by the next start."""
        if self._engine is not None:
            self._engine.close()
        if self._compute is not None:
            self._compute.close()


class _LazyWorkflows:
    def __init__(self, context: LocalContext) -> None:
        self.context = context

    def start(self, kind: str, name: str, payload: dict[str, Any]) -> str:
        from airdock.local.workflows import LocalWorkflows

        return LocalWorkflows(self.context.engine).start(kind, name, payload)  # type: ignore[arg-type]


def control_plane_only() -> bool:
    return os.environ.get("AIRDOCK_CONTROL_PLANE_ONLY", "").lower() in ("1", "true", "yes")


def build_service(settings: Settings) -> EnvironmentService:
    data_dir = Path(os.environ.get("AIRDOCK_DATA_DIR", ".airdock"))
    return LocalContext(data_dir, settings, provision=not control_plane_only()).service
