"""Lifecycle operations: weekly maintenance, pause and resume, and the schedules that trigger them.

Two halves, both behind `functions/lifecycle/app.py`:
- `Lifecycle.tick(now)` decides (on AWS an EventBridge schedule rule calls it every few minutes;
  locally a loop every ~30 s). It only *starts* operations: maintenance via a status transition,
  pause/resume through the service's domain operations, so the API and the schedules share one
  path and one set of checks.
- `Lifecycle.run(operation, name)` carries one operation out against the Compute port (started
  asynchronously through the `LifecycleRunner` port: a thread locally; on AWS an asynchronous
  invocation of the lifecycle function with the same event).

Why direct compute calls and not ASL workflows like create/update/delete: each operation is one
compute call plus a health wait, with no rollback to orchestrate; Step Functions would add a state
machine per operation (and deployment surface) for no branching. Durability is kept the same way
the workflows keep it: every step is idempotent and the record says which operation is under way
(`internal["lifecycle"]`), so `recover()` starts an interrupted one again after a restart.

Recovery: when the compute that ran environments is lost (locally: the server that supervised
their processes stopped or was killed), `recover_components` reports each environment that should
be running UNAVAILABLE — MWAA's status for "exists but does not work", which is what it is until its
components are back — and the "recover" operation starts them again and returns it to AVAILABLE
once Airflow is healthy. Meanwhile CLI/web login tokens and InvokeRestApi answer MWAA's
ValidationException (they need AVAILABLE). A recovery that fails leaves it UNAVAILABLE with the
reason; the scheduled tick returns it to AVAILABLE as soon as its components are healthy, and
starts the recovery again every few minutes while they are not.

Statuses (see status.py): maintenance is AVAILABLE → MAINTENANCE → AVAILABLE. A paused environment
is PENDING: MWAA has no "paused" status, and PENDING is the one MWAA status that means "exists,
not running, nothing failed" — UNAVAILABLE would read as a fault, MAINTENANCE would block updates
and deletes, and an unknown status string would break clients that parse MWAA's enum (boto3,
Terraform). StatusReason says "Paused" explicitly.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, Protocol

from airdock.core import catalog, schedules, status
from airdock.core.errors import AirdockError, Interrupted, ValidationError
from airdock.core.models import Environment
from airdock.core.ports import Clock, EnvironmentRecord, Health, SystemClock
from airdock.core.timing import LifecycleTimings

log = logging.getLogger(__name__)

OPERATIONS = ("pause", "resume", "maintain", "recover")
PAUSED_REASON = "Paused by Airdock: no Airflow component runs; metadata and DAG history are kept. Resume to continue."
RECOVERING_REASON = "Recovering: Airdock restarted; starting the Airflow components again"
# Health budgets of the operations without a deployment's LifecycleTimings (core/timing.py).
RESUME_TIMEOUT_S = 120.0
MAINTENANCE_HEALTH_TIMEOUT_S = 300.0
# Recovery starts every environment of the server at once, on a machine that may be busy: be generous.
RECOVER_HEALTH_TIMEOUT_S = 600.0
# A failed recovery is started again by the tick after this long (unless Airflow got healthy anyway).
RECOVER_RETRY_S = 120.0


class LifecycleCompute(Protocol):
    """What lifecycle operations need from the Compute port (on top of health)."""

    def pause(self, env: Environment) -> None:
        """Stop every component (zero compute); keep the metadata database and files."""

    def resume(self, env: Environment, progress: Callable[[str], None]) -> None:
        """Start the components of a paused environment again."""

    def start(self, env: Environment, progress: Callable[[str], None]) -> None:
        """Start whatever of the environment's components is not running (idempotent)."""

    def restart(self, env: Environment, strategy: str, progress: Callable[[str], None]) -> None:
        """Restart every component onto `env` (its AirflowVersion may be a newer patch);
        GRACEFUL lets running tasks finish first."""

    def health(self, env: Environment) -> Health: ...

    def webserver_hostname(self, env: Environment) -> str | None: ...


class LifecycleRunner(Protocol):
    def start(self, operation: str, name: str) -> None:
        """Carry out `Lifecycle.run(operation, name)` asynchronously."""


def newest_patch(version: str) -> str:
    """The newest version Airdock offers with the same major.minor (MWAA patches within a minor)."""
    minor = version.split(".")[:2]
    same = [v for v in catalog.AIRFLOW_VERSIONS if v.split(".")[:2] == minor]
    return max(same, key=lambda v: tuple(int(p) for p in v.split(".")), default=version)


class Lifecycle:
    def __init__(self, service: Any, compute: LifecycleCompute, clock: Clock | None = None,
                 sleep: Callable[[float], None] = time.sleep, timings: LifecycleTimings | None = None) -> None:
        self.service = service
        self.compute = compute
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.timings = timings

    # ------------------------------------------------------------------ deciding

    def tick(self, now: datetime | None = None) -> list[dict[str, str]]:
        """Start whatever is due at `now`; returns what was started, for logs and tests."""
        now = now or self.clock.now()
        started: list[dict[str, str]] = []
        for name in self._names():
            try:
                action = self._evaluate(name, now)
            except AirdockError as exc:  # lost a race with a user's change: next tick decides again
                log.info("lifecycle: %s skipped: %s", name, exc)
                continue
            except Exception:
                log.exception("lifecycle: evaluating %s failed", name)
                continue
            if action:
                started.append({"Name": name, "Action": action})
        return started

    def _evaluate(self, name: str, now: datetime) -> str | None:
        record = self.service.repository.get(name)
        if record is None:
            return None
        env = record.environment
        if env.Status == status.UNAVAILABLE:
            healing = self._heal(record, now)
            if healing or _running(record):
                return healing
        maintenance = record.internal.get("maintenance") or {}
        window = schedules.maintenance_due(env.WeeklyMaintenanceWindowStart or catalog.DEFAULT_WEEKLY_MAINTENANCE_WINDOW,
                                           now, env.CreatedAt, maintenance.get("last"))
        if window is not None and env.Status == status.AVAILABLE:
            self.begin_maintenance(name, window.timestamp())
            return "maintain"
        decision = schedules.schedule_due(env.Tags, now, env.CreatedAt, record.internal.get("schedule_acted"))
        if decision is None:
            return None
        acted = decision.occurrence.timestamp()
        if decision.action == "pause":
            if env.Status == status.PENDING:
                self._mark_acted(name, acted)  # already paused: nothing to do for this occurrence
                return None
            if env.Status not in (status.AVAILABLE, status.UNAVAILABLE):
                return None  # busy (updating, in maintenance…): the next tick tries again
            self.service.pause_environment(name)
        else:
            if env.Status != status.PENDING or _running(record):
                if env.Status == status.AVAILABLE:
                    self._mark_acted(name, acted)
                return None
            self.service.resume_environment(name)
        self._mark_acted(name, acted)
        return decision.action

    def _mark_acted(self, name: str, occurrence: float) -> None:
        self.service.update_internal(name, lambda r: r.internal.update(schedule_acted=occurrence))

    def begin_maintenance(self, name: str, window_start: float) -> None:
        target = newest_patch(self.service.record(name).environment.AirflowVersion)

        def mark(record: EnvironmentRecord) -> None:
            # Recorded at the start: a maintenance that fails is not retried in the same window.
            record.internal["maintenance"] = {"last": window_start, "target": target}
            record.internal["lifecycle"] = {"operation": "maintain", "state": "running", "started": self._now()}
            record.environment.StatusReason = f"Maintenance: graceful restart onto Airflow {target}"

        self.service.transition(name, status.MAINTENANCE, expect=frozenset({status.AVAILABLE}), mutate=mark)
        self.service.start_lifecycle("maintain", name)

    def recover_components(self) -> list[str]:
        """The compute that ran the environments is gone (locally: a new server, whose processes
        it must start again). Every environment that should be running turns UNAVAILABLE with a
        "recover" operation pending, which `recover()` starts. Returns the names."""
        marked: list[str] = []
        for name in self._names():
            record = self.service.repository.get(name)
            if record is None or not _should_run(record):
                continue
            try:
                self._begin_recover(name)
            except (AirdockError, status.IllegalTransition) as exc:  # changed meanwhile: not ours
                log.info("lifecycle: not recovering %s: %s", name, exc)
                continue
            marked.append(name)
        return marked

    def _begin_recover(self, name: str) -> None:
        def mark(record: EnvironmentRecord) -> None:
            record.internal["lifecycle"] = {"operation": "recover", "state": "running", "started": self._now()}
            record.environment.StatusReason = RECOVERING_REASON

        self.service.transition(name, status.UNAVAILABLE, expect=frozenset({status.AVAILABLE, status.UNAVAILABLE}),
                                mutate=mark)

    def _heal(self, record: EnvironmentRecord, now: datetime) -> str | None:
        """An UNAVAILABLE environment left so by a lifecycle operation (not by a failed delete)
        is AVAILABLE again once Airflow is healthy; a failed recovery is retried now and then."""
        last = record.internal.get("lifecycle") or {}
        if last.get("state") != "failed":
            return None  # a running operation decides itself; other causes are not ours to undo
        if self._healthy(record.environment):
            def healed(r: EnvironmentRecord) -> None:
                r.internal["lifecycle"].update(state="done", finished=self._now(), healed=True)

            self.service.transition(record.name, status.AVAILABLE, expect=frozenset({status.UNAVAILABLE}), mutate=healed)
            return "healed"
        if last.get("operation") == "recover" and now.timestamp() - float(last.get("finished") or 0) >= RECOVER_RETRY_S:
            self._begin_recover(record.name)
            self.service.start_lifecycle("recover", record.name)
            return "recover"
        return None

    def _healthy(self, env: Environment) -> bool:
        try:
            return self.compute.health(env).healthy
        except Exception as exc:  # a component gave up (FATAL): not healthy, and the tick goes on
            log.info("lifecycle: %s is not healthy: %s", env.Name, exc)
            return False

    def recover(self) -> list[str]:
        """Start again the operations a stopped or crashed server left half done."""
        resumed: list[str] = []
        for name in self._names():
            record = self.service.repository.get(name)
            if record is not None and _running(record):
                operation = record.internal["lifecycle"]["operation"]
                self.service.start_lifecycle(operation, name)
                resumed.append(f"{operation}:{name}")
        return resumed

    # ------------------------------------------------------------------ doing

    def run(self, operation: str, name: str) -> None:
        steps = {"pause": self._pause, "resume": self._resume, "maintain": self._maintain, "recover": self._recover}
        if operation not in steps:
            raise ValueError(f"unknown lifecycle operation {operation!r}")
        record = self.service.repository.get(name)
        if record is None or not _running(record) or record.internal["lifecycle"]["operation"] != operation:
            return  # finished already, superseded, or the environment is gone: a re-run is a no-op
        try:
            steps[operation](record)
        except _HandOver:
            # This run may wait no longer (on AWS: the Lambda timeout is near); the operation is
            # still running in the record, and a new run picks it up where the wait was.
            log.info("lifecycle %s of %s still waiting for Airflow; continuing in a new run", operation, name)
            self.service.start_lifecycle(operation, name)
        except Interrupted:
            log.info("lifecycle %s of %s interrupted by a shutdown; the next start resumes it", operation, name)
        except Exception as exc:
            log.exception("lifecycle %s of %s failed", operation, name)
            self._fail(name, operation, exc)

    def _pause(self, record: EnvironmentRecord) -> None:
        self.compute.pause(record.environment)

        def done(r: EnvironmentRecord) -> None:
            r.internal["lifecycle"].update(state="done", finished=self._now())
            r.environment.StatusReason = PAUSED_REASON

        self.service.update_internal(record.name, done)

    def _resume(self, record: EnvironmentRecord) -> None:
        env = record.environment
        progress = self._progress(env.Name, "Resuming")
        self.compute.resume(env, progress)
        self._wait_healthy(record, self.timings.resume_s if self.timings else RESUME_TIMEOUT_S, progress)
        self._finish(env.Name, status.PENDING, env)

    def _maintain(self, record: EnvironmentRecord) -> None:
        target = (record.internal.get("maintenance") or {}).get("target") or newest_patch(record.environment.AirflowVersion)
        env = record.environment.model_copy(update={"AirflowVersion": target})
        progress = self._progress(env.Name, "Maintenance")
        self.compute.restart(env, "GRACEFUL", progress)
        self._wait_healthy(record, self.timings.maintenance_s if self.timings else MAINTENANCE_HEALTH_TIMEOUT_S,
                           progress, env)
        self._finish(env.Name, status.MAINTENANCE, env)

    def _recover(self, record: EnvironmentRecord) -> None:
        env = record.environment
        progress = self._progress(env.Name, "Recovering")
        self.compute.start(env, progress)
        self._wait_healthy(record, self.timings.recover_s if self.timings else RECOVER_HEALTH_TIMEOUT_S, progress)
        if self.service.record(env.Name).environment.Status != status.UNAVAILABLE:
            # An update, delete or pause took the environment over meanwhile: it decides now.
            def done(r: EnvironmentRecord) -> None:
                if (r.internal.get("lifecycle") or {}).get("operation") == "recover":
                    r.internal["lifecycle"].update(state="done", finished=self._now())

            self.service.update_internal(env.Name, done)
            return
        self._finish(env.Name, status.UNAVAILABLE, env)

    def _finish(self, name: str, current: str, env: Environment) -> None:
        hostname = self.compute.webserver_hostname(env)

        def done(r: EnvironmentRecord) -> None:
            r.internal["lifecycle"].update(state="done", finished=self._now())
            r.environment.AirflowVersion = env.AirflowVersion
            if hostname:
                r.environment.WebserverUrl = hostname

        self.service.transition(name, status.AVAILABLE, expect=frozenset({current}), mutate=done)

    def _fail(self, name: str, operation: str, exc: Exception) -> None:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__

        def failed(r: EnvironmentRecord) -> None:
            r.internal["lifecycle"].update(state="failed", finished=self._now(), error=message[:1024])
            r.environment.StatusReason = f"{operation.capitalize()} failed: {message}"[:1024]

        try:
            self.service.transition(name, status.UNAVAILABLE, mutate=failed)
        except Exception:  # the environment changed hands (deleted, updated): nothing to report on
            log.exception("recording the failed %s of %s", operation, name)

    def _wait_healthy(self, record: EnvironmentRecord, timeout_s: float, progress: Callable[[str], None],
                      env: Environment | None = None) -> None:
        """Wait until Airflow is healthy, at most `timeout_s` from the operation's start (a run
        that continues an earlier one keeps its deadline); hand over to a new run after
        `timings.per_run_s` of waiting in this one."""
        env = env or record.environment
        started = float((record.internal.get("lifecycle") or {}).get("started") or self._now())
        per_run = self.timings.per_run_s if self.timings else None
        handover = time.monotonic() + per_run if per_run else None
        detail = ""
        while True:
            health = self.compute.health(env)
            if health.healthy:
                return
            detail = health.detail
            if self._now() - started >= timeout_s:
                raise ValidationError(f"Airflow did not become healthy within {timeout_s:.0f}s: {detail}")
            if handover is not None and time.monotonic() >= handover:
                raise _HandOver()
            self.sleep(self.timings.poll_s if self.timings else 1.0)

    def _progress(self, name: str, what: str) -> Callable[[str], None]:
        def report(message: str) -> None:
            log.info("[%s] %s: %s", name, what, message)
            self.service.update_internal(name, lambda r: setattr(r.environment, "StatusReason", f"{what}: {message}"[:1024]))

        return report

    def _names(self) -> list[str]:
        names: list[str] = []
        after: str | None = None
        while True:
            page = self.service.repository.list_names(100, after)
            if not page:
                return names
            names.extend(page)
            after = page[-1]

    def _now(self) -> float:
        return self.service.clock.now().timestamp()


class _HandOver(Exception):
    """This run of an operation has waited as long as one run may."""


def _should_run(record: EnvironmentRecord) -> bool:
    """AVAILABLE, or UNAVAILABLE because an earlier recovery of it failed or was cut off."""
    env = record.environment
    last = record.internal.get("lifecycle") or {}
    return env.Status == status.AVAILABLE or (env.Status == status.UNAVAILABLE and last.get("operation") == "recover")


def _running(record: EnvironmentRecord) -> bool:
    return (record.internal.get("lifecycle") or {}).get("state") == "running"
