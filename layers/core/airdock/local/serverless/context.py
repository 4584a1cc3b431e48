"""MWAA Serverless's part of a local Airdock: its records, sources, engine, service and the
background loop, under `<data-dir>/serverless/`."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airdock.core.ports import SystemClock
from airdock.core.serverless.access import WorkflowAccess
from airdock.core.serverless.errors import EngineUnavailable
from airdock.core.serverless.identifiers import Scope
from airdock.core.serverless.ports import Deployment, EngineRun
from airdock.core.serverless.service import WorkflowService
from airdock.core.serverless.settings import ServerlessSettings
from airdock.core.settings import Settings
from airdock.local.serverless.repository import SqliteWorkflowRepository
from airdock.local.serverless.sources import LocalSources

log = logging.getLogger("airdock.serverless")


class NoEngine:
    """The engine of a control-plane-only server (`airdock serve --control-plane-only`): the API
    and its records work, definitions are checked by the rules but not loaded, and runs stay
    STARTING, as environments stay CREATING there."""

    def check_definition(self, dag_yaml: str, dag_id: str, code_ref: str | None,
                         environment: dict[str, str]) -> list[str]:
        return []

    def deploy(self, deployment: Deployment) -> None:
        return None

    def undeploy(self, dag_id: str, workflow_id: str, version: str) -> None:
        return None

    def _unavailable(self, *_: Any) -> Any:
        raise EngineUnavailable("this server runs without the engine (control-plane-only)")

    trigger = stop = task_xcom = _unavailable

    def observe(self, dag_id: str, run_id: str) -> EngineRun | None:
        return self._unavailable()

    def task_error(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
        return None

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        return []

    def log_stream(self, workflow_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return f"workflow_id={workflow_id}/run_id={run_id}/task_id={task_id}/attempt={try_number}.log"

    def close(self) -> None:
        return None


class ServerlessContext:
    def __init__(self, data_dir: Path, settings: Settings, *, buckets: Any, events: Any, policies: Any,
                 provision: bool) -> None:
        self.root = data_dir / "serverless"
        self.root.mkdir(parents=True, exist_ok=True)
        self.repository = SqliteWorkflowRepository(self.root / "state.db")
        self.sources = LocalSources(buckets, self.root / "snapshots")
        self.provision = provision
        if provision:
            from airdock.local.serverless.engine import LocalEngine

            self.engine: Any = LocalEngine(self.root / "engine", runtime_cache=settings.runtime_cache,
                                           parallelism=settings.serverless_parallelism)
        else:
            self.engine = NoEngine()
        ui = None
        if provision:
            from airdock.local.serverless.ui import LocalUiSessions

            ui = LocalUiSessions(self.engine)
        self.service = WorkflowService(
            repository=self.repository, sources=self.sources, engine=self.engine, events=events,
            clock=SystemClock(), scope=Scope(settings.partition, settings.region, settings.account_id),
            settings=ServerlessSettings.from_settings(settings), access=WorkflowAccess(policies), ui=ui)
        self.interval_s = settings.serverless_interval_s
        self._loop: Any = None

    def start(self) -> None:
        """Bring back the engine if there are workflows, and follow runs and schedules."""
        from airdock.local.metrics_collector import PeriodicTask

        if self.provision and self.repository.count_workflows():
            try:
                self.service.redeploy_all()
            except EngineUnavailable:
                pass
            self.engine.ensure_started()
        interval = self.interval_s
        def tick() -> None:
            if self.provision:
                self.engine.watch()
            self.service.reconcile()

        self._loop = PeriodicTask("serverless-reconcile", interval, tick).start()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
        self.engine.close()
        self.repository.close()
