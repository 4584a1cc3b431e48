"""How long the workflows and lifecycle operations may take, per deployment.

The same ASL files and lifecycle code run locally and on AWS, but their steps do not take the same
time. Locally a step runs in-process and blocks: building a runtime installs Airflow (up to an hour),
a GRACEFUL update waits for busy workers (up to 12 hours) inside the step. On AWS a step is one
Lambda invocation of a few AWS calls (the function's timeout bounds it), and the waiting happens in
the state machine's health loop: a Fargate start pulls the image and may install requirements for
10+ minutes, then waits for `airflow db migrate`; a GRACEFUL update waits for the protected busy
workers ECS keeps until their tasks end.

`WorkflowTimings` travel in each execution's input (`Timeouts`), added by the Workflows adapter of
the deployment: the ASL reads its Task `TimeoutSecondsPath`, Wait `SecondsPath` and the health
budget from there. `LifecycleTimings` bound the lifecycle's health waits; on AWS an operation that
outlasts one Lambda invocation continues in the next one (`per_run_s`). The AWS values are settings
(core/settings.py) that template.yaml gives the functions, where a test checks them against the
Lambda timeouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airdock.core.settings import Settings


@dataclass(frozen=True)
class WorkflowTimings:
    step_s: int = 3600  # any step (Task TimeoutSeconds)
    build_s: int = 3600  # build_runtime, preflight, roll_back: locally they build runtimes
    update_s: int = 43200  # apply_update: locally a GRACEFUL update drains busy workers inside it
    health_s: int = 600  # from the components' start until Airflow must be healthy
    drain_s: int = 0  # added to health_s after a GRACEFUL update (busy workers finishing first)
    poll_s: int = 2  # between two health checks

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkflowTimings":
        """AWS: every step is one Lambda invocation, so one step timeout (AIRDOCK_STEP_TIMEOUT_S)."""
        step = settings.step_timeout_s
        return cls(step_s=step or cls.step_s, build_s=step or cls.build_s, update_s=step or cls.update_s,
                   health_s=settings.health_timeout_s or cls.health_s,
                   drain_s=settings.drain_timeout_s if settings.drain_timeout_s is not None else cls.drain_s,
                   poll_s=settings.health_poll_s or cls.poll_s)

    def execution_input(self) -> dict[str, Any]:
        """What the ASL files read as `$.Timeouts`."""
        return {"Step": self.step_s, "Build": self.build_s, "Update": self.update_s, "Health": self.health_s,
                "Drain": self.drain_s, "Poll": self.poll_s}


@dataclass(frozen=True)
class LifecycleTimings:
    """A deployment's; without one, Lifecycle uses its module's defaults (local mode)."""

    resume_s: float = 120.0  # a resumed environment must be healthy within this
    maintenance_s: float = 300.0  # ... a maintenance restart
    recover_s: float = 600.0  # ... a recovery (every environment of a restarted server at once)
    poll_s: float = 1.0
    # How long one run of an operation may wait before it hands over to a new run (on AWS: a new
    # asynchronous invocation, before the Lambda timeout); None: one run waits it all out.
    per_run_s: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "LifecycleTimings":
        health = settings.lifecycle_health_timeout_s
        return cls(resume_s=health or cls.resume_s, maintenance_s=health or cls.maintenance_s,
                   recover_s=health or cls.recover_s, poll_s=settings.lifecycle_poll_s or cls.poll_s,
                   per_run_s=settings.lifecycle_run_s)
