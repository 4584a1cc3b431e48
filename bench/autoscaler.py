"""Worker autoscaling: MWAA's published policy vs Airdock's, replayed over one bursty trace.

Run: `.venv/bin/python bench/autoscaler.py [--seed N] [--hours H]`. Prints worker-minutes, p95
queue wait and tasks killed for each policy; the last line is
`autoscaler: worker-minutes ratio R, p95 wait ratio W, killed K` (ratios Airdock/MWAA, K = tasks
Airdock killed).

The trace (seeded, default seed 7, 8 hours): DAG fan-outs — bursts of 15–80 tasks arriving at once,
their start times 15–45 min apart — plus a trickle of single background tasks (Poisson, 1 per
8 min on average). The fan-outs are runs of scheduled DAGs: Airflow's scheduler knows each one's
time (`dag.next_dagrun_create_after`) and task count ahead, as it does for any DAG with a
schedule; the trickle is unscheduled (sensors, manual triggers) and is never known ahead. The
table also shows Airdock with the fan-outs treated as unscheduled (pre-warm off): purely
reactive, like MWAA. Task durations are log-normal (median 3 min, sigma 1.0, capped at 60 min): most
tasks are short, a few run long — the long tail that keeps workers alive after a burst.

The environment: mw1.small (5 tasks per worker), MinWorkers 1, MaxWorkers 10. Both policies run
on the same simulated Fargate/Celery world, stepped every 5 s:
- a new worker takes 120 s to start (Fargate launch + image + Celery start) and is billed from
  its launch; a worker is billed until it is gone;
- a worker with a free slot takes the oldest queued task (Celery's prefetch of 1, acks_late);
  among several free workers one is chosen at random (seeded), as whichever polls first wins;
- metrics are CloudWatch's: one point per 1-minute period (its Maximum of QueuedTasks and
  RunningTasks), available at the end of the period, and a decision once a minute — for both:
  MWAA's published timing, and Airdock's autoscaler function on EventBridge `rate(1 minute)`
  (template.yaml). Airdock's point also carries ScheduledTasks: the tasks of scheduled runs due
  within the pre-warm horizon (AutoscalingConfig.prewarm_s, 180 s = a worker's start-up + a tick).

(a) MWAA, as published (docs.aws.amazon.com/mwaa/latest/userguide/mwaa-autoscaling.html,
"Configuring Amazon MWAA automatic scaling"; MWAA_FACTS.md):
- required = ceil((running + queued) / tasks per worker); if required > current, add workers up
  to it (bounded by MaxWorkers). Workers are never removed while any task is queued or running.
- "When that number is zero, Amazon MWAA removes additional workers, downscaling back to the
  min-workers value" — all extra workers at once. The docs put the whole scale-in at "two to five
  minutes" (metrics delivery, detecting a steady state of zero tasks, removing the Fargate
  workers); modelled as: 2 consecutive zero periods, then the workers are removed 60 s later.
- "workers that are set for deletion [may] pick up those tasks before the worker containers are
  removed ... tasks running on the downscaled workers are deleted and marked as failed": workers
  set for deletion keep consuming; tasks on them when they go are killed. A killed task is
  retried after Airflow's default retry_delay (300 s) and queues again (assumption: the DAG has
  retries; without them the task simply fails).
(b) Airdock: `airdock.core.autoscaling.step()` — the autoscaler's own code — through a simulated
WorkerPool port, with the default AutoscalingConfig (3-minute stabilization window, 3-minute
pre-warm horizon, 12 h maximum drain); the scheduled demand is computed by the same
`autoscaling.scheduled_demand()` the metrics collectors use. Draining workers take no new tasks
and are released once they run nothing.

Queue wait of a task = time it spent queued before the attempt that completed (arrival or
re-queue → start), including the retry delay after a kill. p95 is over all tasks.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from airdock.core import autoscaling  # noqa: E402
from airdock.core.memory import InMemoryDecisionLog, InMemoryMetrics  # noqa: E402
from airdock.core.ports import MetricPoint, UpcomingRun, WorkerInfo  # noqa: E402

DT = 5.0
PERIOD = 60.0
# Airdock on AWS decides once a minute too (EventBridge rate(1 minute) in template.yaml).
AIRDOCK_PERIOD = 60.0
STARTUP_S = 120.0
TASKS_PER_WORKER = 5
MIN_WORKERS, MAX_WORKERS = 1, 10
RETRY_DELAY_S = 300.0
MWAA_ZERO_PERIODS = 2
MWAA_REMOVAL_S = 60.0
ENV = "bench"


@dataclass
class Task:
    id: int
    arrival: float
    duration: float
    queued_at: float = 0.0   # arrival, or the time its retry became due
    waited: float = 0.0      # queued time before earlier (killed) attempts
    started: float | None = None
    done: float | None = None
    kills: int = 0
    run: str | None = None   # the scheduled DAG run it belongs to


@dataclass
class Worker:
    id: str
    launched: float
    ready_at: float
    tasks: dict[int, float] = field(default_factory=dict)  # task id → end time
    draining_since: float | None = None
    protected: bool = False
    doomed_at: float | None = None  # MWAA: set for deletion, removed at this time

    def consumes(self, now: float) -> bool:
        return now >= self.ready_at and self.draining_since is None and len(self.tasks) < TASKS_PER_WORKER


def trace(seed: int, hours: float) -> list[tuple[float, float, str | None]]:
    """(arrival, duration, DAG run) triples, sorted by arrival; the DAG run is None for the
    unscheduled trickle."""
    rng = random.Random(seed)
    end = hours * 3600
    arrivals: list[tuple[float, float, str | None]] = []

    def duration() -> float:
        return min(3600.0, 180.0 * math.exp(rng.gauss(0, 1.0)))

    t = rng.uniform(60, 600)
    while t < end:
        run = f"fanout@{t:.0f}"
        arrivals += [(t, duration(), run) for _ in range(rng.randint(15, 80))]
        t += rng.uniform(15 * 60, 45 * 60)
    t = rng.expovariate(1 / 480)
    while t < end:
        arrivals.append((t, duration(), None))
        t += rng.expovariate(1 / 480)
    return sorted(arrivals, key=lambda a: (a[0], a[1]))


class World:
    """Tasks, a FIFO queue, workers, billing; the policy under test acts on `self.workers`."""

    def __init__(self, seed: int, hours: float) -> None:
        self.rng = random.Random(seed * 1000 + 1)
        self.now = 0.0
        self.end = hours * 3600
        self.pending = [Task(i, a, d, queued_at=a, run=r) for i, (a, d, r) in enumerate(trace(seed, hours))]
        self.tasks = list(self.pending)
        self.queue: list[Task] = []
        self.retries: list[Task] = []
        self.by_id = {t.id: t for t in self.tasks}
        self.workers: dict[str, Worker] = {}
        self.worker_seconds = 0.0
        self.killed = 0
        self._next_worker = 1
        self.period_max = (0, 0)
        for _ in range(MIN_WORKERS):
            self.add_worker(ready=True)

    def add_worker(self, ready: bool = False) -> str:
        wid = f"worker-{self._next_worker}"
        self._next_worker += 1
        self.workers[wid] = Worker(wid, self.now, self.now if ready else self.now + STARTUP_S)
        return wid

    def remove_worker(self, wid: str) -> None:
        w = self.workers.pop(wid)
        for tid in w.tasks:  # still running: killed, retried later
            task = self.by_id[tid]
            task.kills += 1
            task.started = None
            task.queued_at = self.now + RETRY_DELAY_S
            self.retries.append(task)
            self.killed += 1

    def running(self) -> int:
        return sum(len(w.tasks) for w in self.workers.values())

    def step(self) -> None:
        """Advance DT: arrivals, completions, dispatch, billing."""
        self.now += DT
        while self.pending and self.pending[0].arrival <= self.now:
            self.queue.append(self.pending.pop(0))
        due = [t for t in self.retries if t.queued_at <= self.now]
        if due:
            self.retries = [t for t in self.retries if t.queued_at > self.now]
            self.queue += due
            self.queue.sort(key=lambda t: t.queued_at)
        for w in self.workers.values():
            for tid, end in list(w.tasks.items()):
                if end <= self.now:
                    del w.tasks[tid]
                    self.by_id[tid].done = end
        while self.queue:
            free = [w for w in self.workers.values() if w.consumes(self.now)]
            if not free:
                break
            w = self.rng.choice(free)
            task = self.queue.pop(0)
            task.waited += self.now - task.queued_at
            task.started = self.now
            w.tasks[task.id] = self.now + task.duration
        self.worker_seconds += DT * len(self.workers)
        q, r = len(self.queue), self.running()
        self.period_max = (max(self.period_max[0], q), max(self.period_max[1], r))

    def finished(self) -> bool:
        return self.now >= self.end and not self.pending and not self.queue and not self.retries and self.running() == 0

    def results(self) -> dict[str, float]:
        waits = sorted(t.waited for t in self.tasks)
        p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
        return {"worker_minutes": self.worker_seconds / 60, "p95_wait_s": p95, "killed": self.killed,
                "tasks": len(self.tasks), "unfinished": sum(t.done is None for t in self.tasks)}


def run(policy: str, seed: int, hours: float, prewarm: bool = True) -> dict[str, float]:
    world = World(seed, hours)
    metrics = InMemoryMetrics()
    decisions = InMemoryDecisionLog()
    pool = SimPool(world)
    clock = SimClock(world)
    config = autoscaling.AutoscalingConfig() if prewarm else autoscaling.AutoscalingConfig(prewarm_s=0)
    zero_periods = 0
    period = PERIOD if policy == "mwaa" else AIRDOCK_PERIOD
    next_period = period
    while not world.finished() and world.now < world.end + 48 * 3600:
        world.step()
        if policy == "mwaa":
            for wid in [w.id for w in world.workers.values() if w.doomed_at is not None and w.doomed_at <= world.now]:
                world.remove_worker(wid)
        if world.now + 1e-9 < next_period:
            continue
        next_period += period
        queued, running = world.period_max  # the period's Maximum, published at its end
        world.period_max = (len(world.queue), world.running())
        if policy == "mwaa":
            zero_periods = zero_periods + 1 if queued + running == 0 else 0
            live = [w for w in world.workers.values() if w.doomed_at is None]
            required = autoscaling.recommended_workers(queued, running, TASKS_PER_WORKER, MIN_WORKERS, MAX_WORKERS)
            if required > len(live):
                for _ in range(required - len(live)):
                    world.add_worker()
            elif zero_periods >= MWAA_ZERO_PERIODS and len(live) > MIN_WORKERS:
                # Fargate picks which tasks to stop: not necessarily idle ones.
                for w in world.rng.sample(live, len(live) - MIN_WORKERS):
                    w.doomed_at = world.now + MWAA_REMOVAL_S
        else:
            at = SimPool.EPOCH + world.now
            scheduled = autoscaling.scheduled_demand(pool.upcoming_runs(ENV, at + config.prewarm_s), at,
                                                     config.prewarm_s)
            metrics.put([MetricPoint(ENV, autoscaling.QUEUED, queued, at),
                         MetricPoint(ENV, autoscaling.RUNNING, running, at),
                         MetricPoint(ENV, autoscaling.SCHEDULED, scheduled, at)])
            autoscaling.step(ENV, tasks_per_worker=TASKS_PER_WORKER, min_workers=MIN_WORKERS,
                             max_workers=MAX_WORKERS, metrics=metrics, pool=pool, clock=clock, config=config,
                             decisions=decisions)
    return world.results()


class SimClock:
    def __init__(self, world: World) -> None:
        self.world = world

    def now(self) -> datetime:
        return datetime.fromtimestamp(1_700_000_000 + self.world.now, timezone.utc)


class SimPool:
    """The WorkerPool port over the simulated world (times shifted like SimClock's)."""

    EPOCH = 1_700_000_000

    def __init__(self, world: World) -> None:
        self.world = world

    def workers(self, environment: str) -> list[WorkerInfo]:
        return [WorkerInfo(w.id, len(w.tasks), "draining" if w.draining_since is not None else "active", w.protected,
                           self.EPOCH + w.launched,
                           None if w.draining_since is None else self.EPOCH + w.draining_since)
                for w in self.world.workers.values()]

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        return len(self.world.queue), self.world.running()

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        """The scheduled fan-outs not yet arrived and due by `until`: what Airflow's `dag` table
        (`next_dagrun_create_after`, the DAG's task count) tells ahead of time."""
        runs: dict[str, list[Task]] = {}
        for task in self.world.pending:
            if self.EPOCH + task.arrival > until:
                break
            if task.run is not None:
                runs.setdefault(task.run, []).append(task)
        return [UpcomingRun(run, self.EPOCH + tasks[0].arrival, len(tasks)) for run, tasks in runs.items()]

    def scale_out(self, environment: str, count: int) -> list[str]:
        return [self.world.add_worker() for _ in range(count)]

    def drain(self, environment: str, worker_id: str) -> None:
        self.world.workers[worker_id].draining_since = self.world.now

    def resume(self, environment: str, worker_id: str) -> bool:
        w = self.world.workers.get(worker_id)
        if w is None:
            return False
        w.draining_since = None  # Celery add_consumer: it takes tasks again at once
        return True

    def release(self, environment: str, worker_id: str, force: bool = False) -> bool:
        w = self.world.workers.get(worker_id)
        if w is None:
            return True
        if w.tasks and not force:
            return False
        self.world.remove_worker(worker_id)
        return True

    def protect(self, environment: str, worker_id: str, on: bool) -> None:
        self.world.workers[worker_id].protected = on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=8.0)
    args = parser.parse_args()
    mwaa = run("mwaa", args.seed, args.hours)
    airdock = run("airdock", args.seed, args.hours)
    reactive = run("airdock", args.seed, args.hours, prewarm=False)
    print(f"trace: seed {args.seed}, {args.hours:g} h, {int(mwaa['tasks'])} tasks; mw1.small (5 tasks/worker), "
          f"workers {MIN_WORKERS}..{MAX_WORKERS}")
    print(f"{'policy':20} {'worker-min':>11} {'p95 wait s':>11} {'killed':>7} {'unfinished':>11}")
    rows = (("MWAA", mwaa), ("Airdock", airdock), ("Airdock, no pre-warm", reactive))
    for name, r in rows:
        print(f"{name:20} {r['worker_minutes']:11.1f} {r['p95_wait_s']:11.1f} {int(r['killed']):7d} {int(r['unfinished']):11d}")
    ratio = airdock["worker_minutes"] / mwaa["worker_minutes"]
    wait_ratio = airdock["p95_wait_s"] / mwaa["p95_wait_s"] if mwaa["p95_wait_s"] else (1.0 if not airdock["p95_wait_s"] else math.inf)
    print(f"autoscaler: worker-minutes ratio {ratio:.2f}, p95 wait ratio {wait_ratio:.2f}, killed {int(airdock['killed'])}")


if __name__ == "__main__":
    main()
