"""Environment logs by LoggingConfiguration module, and the port that reads them.

MWAA writes each module to its own CloudWatch log group `airflow-{Name}-{Module}`, keeping only
lines at or above the module's LogLevel. Airdock does the same: on AWS into those log groups (the
AWS adapter implements `Logs` with CloudWatch Logs), locally into one file per module (see
airdock.local.logs). Which component feeds which module is decided here, once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Protocol

from airdock.core.models import Environment

# LoggingConfiguration member → MWAA module name (the log group suffix).
MODULES: dict[str, str] = {
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
MODULE_NAMES: tuple[str, ...] = tuple(MODULES.values())
LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "EXCEPTION": "ERROR", "NOTSET": "DEBUG", "TRACE": "DEBUG"}


def log_group_name(environment: str, module: str) -> str:
    return f"airflow-{environment}-{module}"


def module_for(name: str) -> str:
    """A module from a user's spelling: Task, task, TaskLogs, WebServer, webserver, DagProcessing…"""
    wanted = name.lower().removesuffix("logs")
    for member, module in MODULES.items():
        if wanted in (module.lower(), member.lower().removesuffix("logs")):
            return module
    raise ValueError(f"unknown log module {name!r}; one of {', '.join(MODULE_NAMES)}")


# Which module an environment component's own output feeds (the blueprint's component names).
# The triggerer has no module of its own in MWAA's LoggingConfiguration: like MWAA's, its lines go
# to the Scheduler module (it runs deferred tasks the scheduler hands over); the database
# migration's too.
COMPONENT_MODULE: dict[str, str] = {
    "scheduler": "Scheduler", "triggerer": "Scheduler", "migrate": "Scheduler",
    "dag-processor": "DAGProcessing", "webserver": "WebServer", "web-front": "WebServer", "worker": "Worker",
}
# Process names for the same components (Airflow's command names).
_ALIASES_OF_COMPONENTS = {"api-server": "webserver", "celery-worker": "worker"}


def component_module(component: str) -> str | None:
    """Which module a component's output belongs to, from a component or process name such as
    `scheduler-2`, `api-server` or `worker-3` (None: platform plumbing, not Airflow)."""
    base = re.sub(r"-\d+$", "", component)
    return COMPONENT_MODULE.get(_ALIASES_OF_COMPONENTS.get(base, base))


def normalise_level(level: str | None) -> str | None:
    if not level:
        return None
    upper = level.strip().upper()
    upper = _ALIASES.get(upper, upper)
    return upper if upper in LEVELS else None


def at_least(level: str | None, threshold: str) -> bool:
    """Whether a line at `level` belongs in a module whose LogLevel is `threshold`."""
    found = normalise_level(level) or "INFO"
    return LEVELS[found] >= LEVELS[normalise_level(threshold) or "INFO"]


def module_levels(env: Environment) -> dict[str, str]:
    """module → LogLevel for every module (enabled or not: the level also sets Airflow's own)."""
    levels: dict[str, str] = {}
    for member, module in MODULES.items():
        config = getattr(env.LoggingConfiguration, member, None) if env.LoggingConfiguration else None
        levels[module] = normalise_level(config.LogLevel if config else None) or "INFO"
    return levels


def enabled_modules(env: Environment) -> dict[str, str]:
    """module → LogLevel for the modules whose logs are kept (Enabled=True)."""
    enabled: dict[str, str] = {}
    for member, module in MODULES.items():
        config = getattr(env.LoggingConfiguration, member, None) if env.LoggingConfiguration else None
        if config is not None and config.Enabled:
            enabled[module] = normalise_level(config.LogLevel) or "INFO"
    return enabled


@dataclass(frozen=True)
class LogEvent:
    timestamp: float  # epoch seconds when the line was collected (CloudWatch: ingestion time)
    stream: str       # component (scheduler-1, worker-2) or task log path (dag_id=…/attempt=1.log)
    level: str
    message: str


class Logs(Protocol):
    """Read an environment's logs by module: CloudWatch Logs on AWS, files locally."""

    def read(self, environment: str, module: str, *, limit: int = 100) -> list[LogEvent]:
        """The last `limit` events of the module, oldest first."""

    def follow(self, environment: str, module: str, *, poll_s: float = 1.0) -> Iterator[LogEvent]:
        """New events as they arrive (blocks; the caller stops iterating)."""
