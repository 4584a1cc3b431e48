"""Celery worker autoscaling: the policy, as pure functions, and one tick over all environments.

Policy (DESIGN.md "Autoscaler", MWAA_FACTS.md):
- recommended = clamp(ceil((queued + running) / tasks_per_worker), MinWorkers, MaxWorkers) —
  MWAA's own formula, fed by the same two metrics (`QueuedTasks`, `RunningTasks`).
- Scale-out is immediate: more recommended than active workers starts the difference now.
- Scheduled demand is seen coming: the tasks of unpaused DAGs' next scheduled runs due within
  `prewarm_s` (Airflow's `next_dagrun_create_after`, in the `ScheduledTasks` metric) count as
  queued, so workers are started ahead of a scheduled fan-out instead of after it: a Fargate
  worker needs ~2 minutes to start, which is otherwise queue wait for every task of the burst.
  MWAA reacts to queued tasks only.
- Scale-in waits for a stabilization window (as Kubernetes' HPA does): the target is the highest
  recommendation of the last `scale_in_stabilization_s`, and nothing is removed until the window
  has been observed in full. MWAA instead removes workers only after a steady state of *zero*
  tasks and then all at once; following the load down is where Airdock saves worker time.
- Scale-in never kills a running task: idle workers are picked first; a busy one is protected
  and drained (stops consuming) and released only once it runs nothing, or — the one exception —
  after `max_drain_s` (default 12 h), so a hung task cannot pin a worker forever.

`decide()` is a pure function of its inputs; `tick()` gathers the inputs through the ports
(Metrics, WorkerPool), applies the decision and records it (DecisionLog + a JSON log line). The
inputs are in the record, so a decision can be replayed with `decide(Inputs(**event["inputs"]))`.
The benchmark's simulator (bench/autoscaler.py) runs this very module.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from airdock.core import catalog, status
from airdock.core.settings import Settings
from airdock.core.ports import (Clock, DecisionLog, EnvironmentRepository, MetricPoint, Metrics, SystemClock, UpcomingRun, WorkerInfo, WorkerPool, all_records)

log = logging.getLogger("airdock.autoscaler")

QUEUED = "QueuedTasks"
RUNNING = "RunningTasks"
WORKER_COUNT = "WorkerCount"
# Airdock's own series: the raw recommendation of every tick (the stabilization window reads it
# back, so the policy keeps no state of its own between ticks — a Lambda has none) and the target.
RECOMMENDED = "RecommendedWorkers"
DESIRED = "DesiredWorkers"

# Tasks of scheduled DAG runs due within the pre-warm horizon (Airdock's own metric).
SCHEDULED = "ScheduledTasks"

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
HOLD = "hold"


@dataclass(frozen=True)
class AutoscalingConfig:
    # How long the recommendation must stay below the active count before workers are removed.
    scale_in_stabilization_s: float = 180.0
    # Longest a draining worker may keep running tasks before it is stopped anyway.
    max_drain_s: float = 12 * 3600.0
    # Metrics older than this are not acted on (the collector or CloudWatch has stalled).
    max_metric_age_s: float = 180.0
    # How far ahead scheduled runs count as demand: a worker's start-up (Fargate launch, image,
    # Celery: ~2 min) plus a tick. 0 turns pre-warming off (purely reactive, like MWAA).
    prewarm_s: float = 180.0

    @classmethod
    def from_settings(cls, settings: "Settings", **defaults: float) -> "AutoscalingConfig":
        """AIRDOCK_AUTOSCALER_{STABILIZATION_S,MAX_DRAIN_S,MAX_METRIC_AGE_S,PREWARM_S} over
        `defaults` (the platform's) over the policy's own."""
        base = cls(**defaults)  # type: ignore[arg-type]

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(
            scale_in_stabilization_s=pick(settings.autoscaler_stabilization_s, base.scale_in_stabilization_s),
            max_drain_s=pick(settings.autoscaler_max_drain_s, base.max_drain_s),
            max_metric_age_s=pick(settings.autoscaler_max_metric_age_s, base.max_metric_age_s),
            prewarm_s=pick(settings.autoscaler_prewarm_s, base.prewarm_s),
        )


@dataclass(frozen=True)
class Inputs:
    """Everything one decision depends on (stored with it, for replay)."""

    environment: str
    now: float
    queued: int | None  # None: no fresh metric
    running: int | None
    tasks_per_worker: int
    min_workers: int
    max_workers: int
    workers: tuple[WorkerInfo, ...] = ()
    # (timestamp, recommended workers) of earlier ticks, oldest first, reaching back at least one
    # stabilization window when the history exists.
    recommendations: tuple[tuple[float, int], ...] = ()
    # Tasks of scheduled runs due within the pre-warm horizon (0 when unknown).
    scheduled: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workers"] = [asdict(w) for w in self.workers]
        data["recommendations"] = [list(r) for r in self.recommendations]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Inputs":
        values = dict(data)
        values["workers"] = tuple(WorkerInfo(**w) for w in values.get("workers", ()))
        values["recommendations"] = tuple((float(t), int(v)) for t, v in values.get("recommendations", ()))
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    inputs: Inputs
    action: str                   # scale_out | scale_in | hold
    reason: str
    recommended: int | None       # this tick's raw recommendation (None without metrics)
    desired: int                  # active workers wanted after this decision
    current: int                  # active workers before it
    start: int = 0                # workers to start
    resume: tuple[str, ...] = ()  # draining workers taken back (started anew if the pool cannot)
    drain: tuple[str, ...] = ()   # stop consuming (protected first when busy)
    protect: tuple[str, ...] = ()
    release: tuple[str, ...] = ()         # drained and idle (or already exited): remove
    force_release: tuple[str, ...] = ()   # drained past max_drain_s: stop despite running tasks
    errors: tuple[str, ...] = field(default=())

    @property
    def changes_something(self) -> bool:
        return bool(self.start or self.resume or self.drain or self.protect or self.release or self.force_release)

    def to_event(self) -> dict[str, Any]:
        return {
            "type": "airdock.autoscaler.decision",
            "environment": self.inputs.environment,
            "at": self.inputs.now,
            "inputs": self.inputs.to_dict(),
            "decision": {
                "action": self.action, "recommended": self.recommended, "desired": self.desired,
                "current": self.current, "start": self.start, "resume": list(self.resume),
                "drain": list(self.drain),
                "protect": list(self.protect), "release": list(self.release),
                "force_release": list(self.force_release),
            },
            "reason": self.reason,
            "errors": list(self.errors),
        }


# ---- pure policy ---------------------------------------------------------------------------------

def recommended_workers(queued: int, running: int, tasks_per_worker: int, min_workers: int, max_workers: int) -> int:
    """MWAA's formula: ceil((queued + running) / tasks_per_worker) within [min, max]."""
    needed = math.ceil(max(0, queued + running) / max(1, tasks_per_worker))
    return max(min_workers, min(max_workers, needed))


# A run past its due time that the scheduler has not created within this long is held back (a
# DAG at max_active_runs, a stopped scheduler): not demand that is about to arrive.
OVERDUE_GRACE_S = 60.0


def scheduled_demand(runs: Iterable[UpcomingRun], now: float, horizon_s: float) -> int:
    """Tasks of the scheduled runs due within `horizon_s` from `now` (a horizon of 0: none)."""
    if horizon_s <= 0:
        return 0
    return sum(max(0, r.tasks) for r in runs if now - OVERDUE_GRACE_S <= r.due_at <= now + horizon_s)


def pick_scale_in_victims(active: Iterable[WorkerInfo], count: int) -> list[WorkerInfo]:
    """Which workers to remove: idle ones first, then the least busy; among equals the newest
    (the oldest workers have warm caches and are the likeliest to be mid-way through long work)."""
    ordered = sorted(active, key=lambda w: (w.busy_tasks, -(w.started_at or 0.0), w.id))
    return ordered[: max(0, count)]


def stabilized_target(recommended: int, history: Iterable[tuple[float, int]], now: float,
                      window_s: float) -> tuple[int, float]:
    """The highest recommendation within the window (including this tick's), and how many
    seconds of the window the history covers (scale-in needs the full window observed)."""
    points = list(history)
    in_window = [v for t, v in points if t > now - window_s]
    observed = now - min((t for t, _ in points), default=now)
    return max([recommended, *in_window]), observed


def housekeeping(workers: Iterable[WorkerInfo], now: float, config: AutoscalingConfig
                 ) -> tuple[list[str], list[str]]:
    """Draining workers that run nothing (or exited) are released; those past the maximum drain
    time are force-released. Returns (release, force_release)."""
    release: list[str] = []
    force: list[str] = []
    for w in workers:
        if w.state == "stopped":
            release.append(w.id)
        elif w.state == "draining":
            if w.busy_tasks == 0:
                release.append(w.id)
            elif w.draining_since is not None and now - w.draining_since >= config.max_drain_s:
                force.append(w.id)
    return release, force


def decide(inputs: Inputs, config: AutoscalingConfig) -> Decision:
    """One autoscaling decision; pure (no I/O, no clock)."""
    active = [w for w in inputs.workers if w.state == "active"]
    release, force = housekeeping(inputs.workers, inputs.now, config)
    current = len(active)
    base = dict(inputs=inputs, current=current, release=tuple(release), force_release=tuple(force))
    notes = []
    if force:
        notes.append(f"force-releasing {', '.join(force)}: drained for over {config.max_drain_s:.0f}s")

    def reason(text: str) -> str:
        return "; ".join([text, *notes])

    if inputs.queued is None or inputs.running is None:
        # Without fresh metrics do not guess; only keep MinWorkers/MaxWorkers true.
        if current < inputs.min_workers:
            n = inputs.min_workers - current
            return Decision(action=SCALE_OUT, reason=reason(f"no fresh metrics; {current} active < MinWorkers {inputs.min_workers}"),
                            recommended=None, desired=inputs.min_workers, start=n, **base)
        return Decision(action=HOLD, reason=reason("no fresh QueuedTasks/RunningTasks metrics"),
                        recommended=None, desired=current, **base)

    rec = recommended_workers(inputs.queued + inputs.scheduled, inputs.running, inputs.tasks_per_worker,
                              inputs.min_workers, inputs.max_workers)
    scheduled = f" + {inputs.scheduled} scheduled" if inputs.scheduled else ""
    demand = (f"ceil(({inputs.queued} queued + {inputs.running} running{scheduled}) / {inputs.tasks_per_worker}) "
              f"within [{inputs.min_workers}, {inputs.max_workers}] = {rec}")
    if rec > current:
        # Draining workers come back first: their free slots are there now, a new worker's only
        # after its start-up. The least busy have the most free slots.
        shortfall = rec - current
        back = sorted((w for w in inputs.workers if w.state == "draining" and w.id not in force),
                      key=lambda w: (w.busy_tasks, w.id))[:shortfall]
        resumed = tuple(w.id for w in back)
        base["release"] = tuple(r for r in release if r not in resumed)
        text = f"{demand} > {current} active: scale out now"
        if resumed:
            text += f" (taking back draining {', '.join(resumed)})"
        return Decision(action=SCALE_OUT, reason=reason(text), recommended=rec, desired=rec,
                        start=shortfall - len(resumed), resume=resumed, **base)
    if rec == current:
        return Decision(action=HOLD, reason=reason(f"{demand} = {current} active"), recommended=rec,
                        desired=current, **base)

    window = config.scale_in_stabilization_s
    target, observed = stabilized_target(rec, inputs.recommendations, inputs.now, window)
    # MaxWorkers may have been lowered below the active count: that is not load-driven, so it
    # needs no stabilization.
    if current > inputs.max_workers:
        target = min(target, inputs.max_workers)
    elif observed < window:
        return Decision(action=HOLD, reason=reason(f"{demand} < {current} active, but only {observed:.0f}s of the "
                                                   f"{window:.0f}s stabilization window observed"),
                        recommended=rec, desired=current, **base)
    if target >= current:
        return Decision(action=HOLD, reason=reason(f"{demand} < {current} active, but {target} was recommended "
                                                   f"within the last {window:.0f}s: stabilizing"),
                        recommended=rec, desired=current, **base)
    victims = pick_scale_in_victims(active, current - target)
    busy = tuple(w.id for w in victims if w.busy_tasks > 0)
    picked = ", ".join(f"{w.id} ({w.busy_tasks} busy)" for w in victims)
    return Decision(action=SCALE_IN,
                    reason=reason(f"{demand}, at most {target} within the last {window:.0f}s < {current} active: "
                                  f"drain {picked}" + ("; busy ones are protected and released when their tasks end"
                                                       if busy else "")),
                    recommended=rec, desired=target, drain=tuple(w.id for w in victims), protect=busy, **base)


# ---- one tick over the environments -----------------------------------------------------------------

def latest_value(metrics: Metrics, environment: str, name: str, now: float, max_age_s: float) -> float | None:
    points = metrics.query(environment, name, now - max_age_s, now)
    return points[-1].value if points else None


def gather(environment: str, *, now: float, tasks_per_worker: int, min_workers: int, max_workers: int,
           metrics: Metrics, pool: WorkerPool, config: AutoscalingConfig) -> Inputs:
    queued = latest_value(metrics, environment, QUEUED, now, config.max_metric_age_s)
    running = latest_value(metrics, environment, RUNNING, now, config.max_metric_age_s)
    scheduled = latest_value(metrics, environment, SCHEDULED, now, config.max_metric_age_s)
    # Reach back past the window's start, so "the whole window was observed" can be told.
    history = metrics.query(environment, RECOMMENDED,
                            now - config.scale_in_stabilization_s - config.max_metric_age_s, now)
    return Inputs(
        environment=environment, now=now,
        queued=None if queued is None else int(queued), running=None if running is None else int(running),
        tasks_per_worker=tasks_per_worker, min_workers=min_workers, max_workers=max_workers,
        workers=tuple(pool.workers(environment)),
        recommendations=tuple((p.timestamp, int(p.value)) for p in history),
        scheduled=0 if scheduled is None or config.prewarm_s <= 0 else int(scheduled),
    )


def sample_task_counts(pool: WorkerPool, environment: str, now: float,
                       config: AutoscalingConfig) -> tuple[int, int, int | None]:
    """(queued, running, scheduled) of one environment, as the metrics collectors publish them.
    Queued/running failing is an error for the caller (no fresh metrics: the autoscaler holds);
    scheduled runs are only a head start, so not knowing them gives None and the rest goes on."""
    queued, running = pool.queued_and_running(environment)
    scheduled: int | None = None
    if config.prewarm_s > 0:
        try:
            scheduled = scheduled_demand(pool.upcoming_runs(environment, now + config.prewarm_s), now,
                                         config.prewarm_s)
        except Exception as exc:
            log.debug("no scheduled runs for %s: %s", environment, exc)
    return queued, running, scheduled


def apply(decision: Decision, pool: WorkerPool) -> Decision:
    """Carry a decision out. Each step on its own: one failure must not stop the others (a
    worker that cannot be released must not keep a scale-out from happening)."""
    env = decision.inputs.environment
    errors: list[str] = []
    protected = {w.id for w in decision.inputs.workers if w.protected}

    def attempt(what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # recorded in the decision, retried by the next tick
            errors.append(f"{what}: {exc.__class__.__name__}: {exc}")

    for wid in decision.release:
        attempt(f"release {wid}", pool.release, env, wid)
        if wid in protected:
            attempt(f"unprotect {wid}", pool.protect, env, wid, False)
    for wid in decision.force_release:
        attempt(f"force-release {wid}", pool.release, env, wid, True)
    start = decision.start
    for wid in decision.resume:
        try:
            taken_back = pool.resume(env, wid)
        except Exception as exc:
            errors.append(f"resume {wid}: {exc.__class__.__name__}: {exc}")
            taken_back = False
        if taken_back:
            if wid in protected:
                attempt(f"unprotect {wid}", pool.protect, env, wid, False)
        else:
            start += 1  # this pool cannot take it back: a new worker instead, in this same tick
    if start:
        attempt(f"start {start}", pool.scale_out, env, start)
    for wid in decision.protect:
        attempt(f"protect {wid}", pool.protect, env, wid, True)
    for wid in decision.drain:
        attempt(f"drain {wid}", pool.drain, env, wid)
    if not errors:
        return decision
    from dataclasses import replace

    return replace(decision, errors=tuple(errors))


def step(environment: str, *, tasks_per_worker: int, min_workers: int, max_workers: int, metrics: Metrics,
         pool: WorkerPool, clock: Clock, config: AutoscalingConfig,
         decisions: DecisionLog | None = None) -> Decision:
    """Gather, decide, apply and record for one environment."""
    now = clock.now().timestamp()
    inputs = gather(environment, now=now, tasks_per_worker=tasks_per_worker, min_workers=min_workers,
                    max_workers=max_workers, metrics=metrics, pool=pool, config=config)
    decision = apply(decide(inputs, config), pool)
    points = [MetricPoint(environment, DESIRED, float(decision.desired), now, unit="Count")]
    if decision.recommended is not None:
        points.append(MetricPoint(environment, RECOMMENDED, float(decision.recommended), now, unit="Count"))
    metrics.put(points)
    event = decision.to_event()
    if decisions is not None:
        decisions.record(event)
    level = logging.INFO if decision.changes_something or decision.errors else logging.DEBUG
    log.log(level, "%s", json.dumps(event, sort_keys=True, default=str))
    return decision


def tick(repository: EnvironmentRepository, metrics: Metrics, pool: WorkerPool, clock: Clock,
         config: AutoscalingConfig | None = None, decisions: DecisionLog | None = None) -> list[Decision]:
    """One autoscaler run over every AVAILABLE environment (other states belong to workflows)."""
    config = config or AutoscalingConfig()
    made: list[Decision] = []
    for record in all_records(repository):
        env = record.environment
        if env.Status != status.AVAILABLE:
            continue
        try:
            made.append(step(env.Name, tasks_per_worker=catalog.tasks_per_worker(env.EnvironmentClass,
                                                                                 env.AirflowConfigurationOptions),
                             min_workers=env.MinWorkers, max_workers=env.MaxWorkers, metrics=metrics,
                             pool=pool, clock=clock, config=config, decisions=decisions))
        except Exception:  # one environment's trouble must not stop the others' scaling
            log.exception("autoscaling %s failed", env.Name)
    return made


def describe(environment: str, *, now: float, tasks_per_worker: int, min_workers: int, max_workers: int,
             metrics: Metrics, pool: WorkerPool, decisions: DecisionLog | None, limit: int = 10,
             config: AutoscalingConfig | None = None) -> dict[str, Any]:
    """What the workers API extension shows: current/desired workers, the pool, last decisions."""
    config = config or AutoscalingConfig()
    workers = pool.workers(environment)
    desired = latest_value(metrics, environment, DESIRED, now, max(config.max_metric_age_s, 600.0))
    queued = latest_value(metrics, environment, QUEUED, now, config.max_metric_age_s)
    running = latest_value(metrics, environment, RUNNING, now, config.max_metric_age_s)
    scheduled = latest_value(metrics, environment, SCHEDULED, now, config.max_metric_age_s)
    return {
        "Name": environment,
        "MinWorkers": min_workers,
        "MaxWorkers": max_workers,
        "TasksPerWorker": tasks_per_worker,
        "CurrentWorkers": sum(1 for w in workers if w.state == "active"),
        "DrainingWorkers": sum(1 for w in workers if w.state == "draining"),
        "DesiredWorkers": None if desired is None else int(desired),
        "QueuedTasks": None if queued is None else int(queued),
        "RunningTasks": None if running is None else int(running),
        "ScheduledTasks": None if scheduled is None else int(scheduled),
        "Workers": [
            {"Id": w.id, "State": w.state, "BusyTasks": w.busy_tasks, "Protected": w.protected,
             "StartedAt": w.started_at, "DrainingSince": w.draining_since}
            for w in workers
        ],
        "LastDecisions": decisions.recent(environment, limit) if decisions is not None else [],
    }


def publish_task_metrics(repository: EnvironmentRepository, metrics: Metrics, pool: WorkerPool, now: float,
                         config: AutoscalingConfig) -> int:
    """Sample QueuedTasks/RunningTasks/ScheduledTasks of every AVAILABLE environment into the
    Metrics port, just before deciding (where nothing else publishes them: on AWS). Returns the
    number of points written."""
    points: list[MetricPoint] = []
    for record in all_records(repository):
        name = record.name
        if record.environment.Status != status.AVAILABLE:
            continue
        try:
            queued, running, scheduled = sample_task_counts(pool, name, now, config)
        except Exception as exc:  # the decision then holds (no fresh metrics), as designed
            log.warning("no task counts for %s: %s", name, exc)
            continue
        # Dimension Environment only: the series the Metrics port's query reads.
        points += [MetricPoint(name, QUEUED, float(queued), now, unit="Count"),
                   MetricPoint(name, RUNNING, float(running), now, unit="Count")]
        if scheduled is not None:
            points.append(MetricPoint(name, SCHEDULED, float(scheduled), now, unit="Count"))
    if points:
        metrics.put(points)
    return len(points)


@dataclass
class Autoscaler:
    """One autoscaler run (the autoscaler function's work, on AWS every minute, locally every few
    seconds): decide and act for every AVAILABLE environment, then let the pool tidy up."""

    repository: EnvironmentRepository
    metrics: Metrics
    pool: WorkerPool
    config: AutoscalingConfig
    clock: Clock = field(default_factory=SystemClock)
    decisions: DecisionLog | None = None
    # Sample the task metrics first: where no collector publishes them (AWS).
    samples_metrics: bool = False

    def run(self) -> list[Decision]:
        if self.samples_metrics:
            publish_task_metrics(self.repository, self.metrics, self.pool, self.clock.now().timestamp(), self.config)
        made = tick(self.repository, self.metrics, self.pool, self.clock, self.config, self.decisions)
        for record in all_records(self.repository):
            if record.environment.Status != status.AVAILABLE:
                continue
            try:
                self.pool.tidy(record.name)
            except Exception as exc:  # retried on the next run
                log.warning("worker pool of %s not tidied: %s", record.name, exc)
        return made
