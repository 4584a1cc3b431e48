"""The steps of the create, update and delete workflows (one Lambda task each in the ASL files).

Each step is idempotent, so a workflow that is started again from its first state after a crash
converges to the same result. Steps read the environment from the repository by name (the
workflow input carries only the name), so a re-run always acts on the current truth.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from airdock.core import status
from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment, LastUpdateShape, UpdateError
from airdock.core.ports import Compute, EnvironmentRecord
from airdock.core.service import EnvironmentService
from airdock.core.timing import WorkflowTimings

log = logging.getLogger(__name__)

Step = Callable[[dict[str, Any]], dict[str, Any]]


class Provisioner:
    def __init__(self, service: EnvironmentService, compute: Compute) -> None:
        self.service = service
        self.compute = compute
        self.steps: dict[str, Step] = {
            "prepare": self.prepare,
            "build_runtime": self.build_runtime,
            "start": self.start,
            "check_health": self.check_health,
            "mark_available": self.mark_available,
            "mark_create_failed": self.mark_create_failed,
            "preflight": self.preflight,
            "apply_update": self.apply_update,
            "mark_update_succeeded": self.mark_update_succeeded,
            "mark_update_rejected": self.mark_update_rejected,
            "roll_back": self.roll_back,
            "mark_rolled_back": self.mark_rolled_back,
            "mark_rollback_failed": self.mark_rollback_failed,
            "stop": self.stop,
            "destroy": self.destroy,
            "forget": self.forget,
            "mark_delete_failed": self.mark_delete_failed,
        }

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        step = event.get("step")
        if step not in self.steps:
            raise ValueError(f"unknown provisioning step {step!r}")
        return self.steps[step](event)

    # ------------------------------------------------------------------ helpers

    def _env(self, event: dict[str, Any]) -> Environment:
        return self.service.record(event["Name"]).environment

    def _progress(self, name: str) -> Callable[[str], None]:
        def report(message: str) -> None:
            log.info("[%s] %s", name, message)
            self.service.update_internal(name, lambda r: setattr(r.environment, "StatusReason", message[:1024]))

        return report

    @staticmethod
    def _error(event: dict[str, Any]) -> tuple[str, str]:
        """Step Functions hands a caught error over as {Error, Cause}; Cause may be the Lambda
        error JSON. Pull out a code and a message a user can act on."""
        import json

        failure = event.get("error") or {}
        code = str(failure.get("Error") or "InternalError")
        cause = failure.get("Cause") or ""
        try:
            parsed = json.loads(cause)
            cause = parsed.get("errorMessage") or cause
            code = parsed.get("errorCode") or code
        except (ValueError, TypeError, AttributeError):
            pass
        return code, str(cause or code)

    # ------------------------------------------------------------------ create

    def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        attributes = self.compute.prepare(env, self._progress(env.Name))
        if attributes:
            def record(stored: EnvironmentRecord) -> None:
                for key, value in attributes.items():
                    setattr(stored.environment, key, value)

            self.service.update_internal(env.Name, record)
        return {}

    def build_runtime(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        self.compute.build_runtime(env, self._progress(env.Name))
        return {}

    def start(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        self.compute.start(env, self._progress(env.Name))
        return {}

    def check_health(self, event: dict[str, Any]) -> dict[str, Any]:
        """One health check of a loop the workflow runs until Airflow is healthy or the budget
        (`budget_s` from the first check, core/timing.py; plus `drain_s` after a GRACEFUL update,
        whose busy workers finish first) is spent. The deadline goes back into the loop's state."""
        record = self.service.record(event["Name"])
        health = self.compute.health(record.environment)
        attempts = int(event.get("attempts", 0)) + 1
        now = self.service.clock.now().timestamp()
        deadline = float(event.get("deadline") or 0)
        if not deadline:
            budget = float(event.get("budget_s", WorkflowTimings.health_s))
            update = record.environment.LastUpdate
            if event.get("drain_s") and update is not None and (update.WorkerReplacementStrategy or "GRACEFUL") == "GRACEFUL":
                budget += float(event["drain_s"])
            deadline = now + budget
        if not health.healthy and now >= deadline:
            raise ProvisioningError("HEALTH_CHECK_TIMEOUT", f"Airflow did not become healthy after {attempts} checks: "
                                    f"{health.detail}")
        return {"healthy": health.healthy, "attempts": attempts, "detail": health.detail, "deadline": deadline}

    def mark_available(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        hostname = self.compute.webserver_hostname(env)

        def finish(record: EnvironmentRecord) -> None:
            record.environment.WebserverUrl = hostname

        self.service.transition(env.Name, status.AVAILABLE, expect=frozenset({status.CREATING}), mutate=finish)
        return {}

    def mark_create_failed(self, event: dict[str, Any]) -> dict[str, Any]:
        code, message = self._error(event)
        name = event["Name"]
        try:
            self.compute.stop(self._env(event))
        except Exception:  # the failure we report matters more than a failing cleanup
            log.exception("stopping %s after a failed create", name)

        def fail(record: EnvironmentRecord) -> None:
            record.environment.LastUpdate = LastUpdateShape(
                Status="FAILED",
                CreatedAt=self.service.clock.now().timestamp(),
                Source="CreateEnvironment",
                Error=UpdateError(ErrorCode=code, ErrorMessage=message[:1024]),
            )

        self.service.transition(name, status.CREATE_FAILED, expect=frozenset({status.CREATING}), mutate=fail)
        return {}

    # ------------------------------------------------------------------ update

    def preflight(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        self.compute.preflight(env, self._progress(env.Name))
        return {}

    def apply_update(self, event: dict[str, Any]) -> dict[str, Any]:
        record = self.service.record(event["Name"])
        strategy = (record.environment.LastUpdate.WorkerReplacementStrategy if record.environment.LastUpdate else None) or "GRACEFUL"
        self.compute.replace(record.environment, strategy, self._progress(record.name))
        return {}

    def mark_update_succeeded(self, event: dict[str, Any]) -> dict[str, Any]:
        env = self._env(event)
        hostname = self.compute.webserver_hostname(env)

        def finish(record: EnvironmentRecord) -> None:
            record.internal.pop("rollback", None)
            record.environment.WebserverUrl = hostname
            if record.environment.LastUpdate:
                record.environment.LastUpdate.Status = "SUCCESS"
                record.environment.LastUpdate.Error = None

        self.service.transition(env.Name, status.AVAILABLE, expect=frozenset({status.UPDATING}), mutate=finish)
        return {}

    def _restore(self, record: EnvironmentRecord, code: str, message: str) -> None:
        previous = record.internal.get("rollback")
        strategy = record.environment.LastUpdate.WorkerReplacementStrategy if record.environment.LastUpdate else None
        if previous:
            restored = Environment.model_validate(previous)
            restored.Tags = record.environment.Tags  # tags changed meanwhile are not part of the update
            record.environment = restored
        record.environment.LastUpdate = self.service.failed_update(code, message, strategy)

    def mark_update_rejected(self, event: dict[str, Any]) -> dict[str, Any]:
        """Pre-flight failed: the running environment was never touched; it stays on the old
        configuration, AVAILABLE, with LastUpdate FAILED explaining why."""
        code, message = self._error(event)
        self.service.transition(
            event["Name"], status.AVAILABLE, expect=frozenset({status.UPDATING}),
            mutate=lambda r: self._restore(r, code, message),
        )
        return {}

    def roll_back(self, event: dict[str, Any]) -> dict[str, Any]:
        code, message = self._error(event)
        record = self.service.transition(
            event["Name"], status.ROLLING_BACK, expect=frozenset({status.UPDATING}),
            mutate=lambda r: r.internal.update(rollback_error={"code": code, "message": message}),
        )
        previous = record.internal.get("rollback")
        target = Environment.model_validate(previous) if previous else record.environment
        self.compute.roll_back(target, self._progress(record.name), failed=record.environment)
        return {}

    def mark_rolled_back(self, event: dict[str, Any]) -> dict[str, Any]:
        def finish(record: EnvironmentRecord) -> None:
            failure = record.internal.pop("rollback_error", {}) or {}
            self._restore(record, failure.get("code", "UPDATE_FAILED"), failure.get("message", "The update failed."))

        self.service.transition(event["Name"], status.AVAILABLE, expect=frozenset({status.ROLLING_BACK}), mutate=finish)
        return {}

    def mark_rollback_failed(self, event: dict[str, Any]) -> dict[str, Any]:
        code, message = self._error(event)

        def fail(record: EnvironmentRecord) -> None:
            first = record.internal.get("rollback_error", {}) or {}
            text = f"{first.get('message', 'The update failed')}; rolling back also failed: {message}"
            strategy = record.environment.LastUpdate.WorkerReplacementStrategy if record.environment.LastUpdate else None
            record.environment.LastUpdate = self.service.failed_update(first.get("code", code), text, strategy)

        self.service.transition(
            event["Name"], status.UPDATE_FAILED, expect=frozenset({status.UPDATING, status.ROLLING_BACK}), mutate=fail
        )
        return {}

    # ------------------------------------------------------------------ delete

    def stop(self, event: dict[str, Any]) -> dict[str, Any]:
        record = self.service.repository.get(event["Name"])
        if record is not None:
            self.compute.stop(record.environment)
        return {}

    def destroy(self, event: dict[str, Any]) -> dict[str, Any]:
        record = self.service.repository.get(event["Name"])
        if record is not None:
            self.compute.destroy(record.environment)
        return {}

    def forget(self, event: dict[str, Any]) -> dict[str, Any]:
        self.service.forget(event["Name"])
        return {}

    def mark_delete_failed(self, event: dict[str, Any]) -> dict[str, Any]:
        code, message = self._error(event)

        def fail(record: EnvironmentRecord) -> None:
            record.environment.LastUpdate = LastUpdateShape(
                Status="FAILED", CreatedAt=self.service.clock.now().timestamp(), Source="DeleteEnvironment",
                Error=UpdateError(ErrorCode=code, ErrorMessage=message[:1024]),
            )

        if self.service.repository.get(event["Name"]) is not None:
            self.service.transition(event["Name"], status.UNAVAILABLE, expect=frozenset({status.DELETING}), mutate=fail)
        return {}
