"""Specification of the worker autoscaling policy (core/autoscaling.py, issue 7)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import pytest

from airdock.core.settings import Settings

from airdock.core import autoscaling as a
from airdock.core.memory import InMemoryDecisionLog, InMemoryMetrics
from airdock.core.ports import MetricPoint, UpcomingRun, WorkerInfo

CONFIG = a.AutoscalingConfig(scale_in_stabilization_s=120, max_drain_s=12 * 3600, max_metric_age_s=60)


def worker(i: int, busy: int = 0, state: str = "active", started: float = 0.0, since: float | None = None,
           protected: bool = False) -> WorkerInfo:
    return WorkerInfo(id=f"worker-{i}", busy_tasks=busy, state=state, started_at=started,  # type: ignore[arg-type]
                      draining_since=since, protected=protected)


def inputs(queued: int, running: int, workers: list[WorkerInfo], *, now: float = 1000.0, tpw: int = 5,
           lo: int = 1, hi: int = 10, history: list[tuple[float, int]] | None = None) -> a.Inputs:
    return a.Inputs(environment="env", now=now, queued=queued, running=running, tasks_per_worker=tpw,
                    min_workers=lo, max_workers=hi, workers=tuple(workers),
                    recommendations=tuple(history if history is not None else []))


def steady(value: int, now: float = 1000.0, span: float = 200.0, step: float = 5.0) -> list[tuple[float, int]]:
    """A history that recommended `value` at every tick over the last `span` seconds."""
    t, out = now - span, []
    while t < now:
        out.append((t, value))
        t += step
    return out


# ---- the formula and its clamp ---------------------------------------------------------------

@pytest.mark.parametrize("queued,running,tpw,lo,hi,expected", [
    (0, 0, 5, 1, 10, 1),      # nothing to do: MinWorkers
    (0, 0, 5, 2, 10, 2),
    (3, 2, 5, 1, 10, 1),      # 5 tasks fit one worker
    (3, 3, 5, 1, 10, 2),      # 6 tasks need two: ceil
    (12, 0, 4, 1, 3, 3),      # the e2e burst
    (100, 50, 5, 1, 10, 10),  # MaxWorkers caps
    (12, 0, 3, 1, 3, 3),      # mw1.micro would want 4; clamped to 3
])
def test_recommended_workers_is_ceil_of_demand_clamped_to_min_and_max(queued: int, running: int, tpw: int, lo: int,
                                                                       hi: int, expected: int) -> None:
    assert a.recommended_workers(queued, running, tpw, lo, hi) == expected


# ---- scale-out ---------------------------------------------------------------------------------

def test_scale_out_is_immediate_without_any_history() -> None:
    d = a.decide(inputs(queued=18, running=2, workers=[worker(1, busy=2)]), CONFIG)
    assert (d.action, d.desired, d.start) == (a.SCALE_OUT, 4, 3)
    assert "scale out now" in d.reason


def test_scale_out_counts_only_active_workers_and_takes_draining_ones_back_before_starting_new_ones() -> None:
    d = a.decide(inputs(queued=10, running=8, workers=[worker(1, busy=5), worker(2, busy=3, state="draining", since=990)]),
                 CONFIG)
    assert (d.action, d.desired, d.resume, d.start) == (a.SCALE_OUT, 4, ("worker-2",), 2)


def test_below_min_workers_is_repaired_even_without_metrics() -> None:
    d = a.decide(replace(inputs(0, 0, [], lo=2), queued=None, running=None), CONFIG)
    assert (d.action, d.start) == (a.SCALE_OUT, 2)


def test_without_fresh_metrics_nothing_is_removed() -> None:
    d = a.decide(replace(inputs(0, 0, [worker(1), worker(2), worker(3)], history=steady(1)), queued=None, running=None),
                 CONFIG)
    assert (d.action, d.drain) == (a.HOLD, ())
    assert "no fresh" in d.reason


# ---- stabilization window ----------------------------------------------------------------------

def test_scale_in_waits_until_the_whole_window_has_been_observed() -> None:
    d = a.decide(inputs(0, 0, [worker(1), worker(2)], history=steady(1, span=60)), CONFIG)
    assert d.action == a.HOLD and "only 60s of the 120s" in d.reason


def test_scale_in_waits_while_a_higher_recommendation_is_inside_the_window() -> None:
    history = steady(1, span=200)
    history = [(t, 2 if 1000 - 30 <= t < 1000 - 25 else v) for t, v in history]  # a blip 30 s ago
    d = a.decide(inputs(0, 0, [worker(1), worker(2)], history=history), CONFIG)
    assert d.action == a.HOLD and "stabilizing" in d.reason


def test_scale_in_to_the_highest_recommendation_of_the_window_once_it_is_stable() -> None:
    history = [(t, 4 if t <= 1000 - 125 else 2) for t, _ in steady(0, span=200)]  # 4 just before the window
    d = a.decide(inputs(0, 0, [worker(i) for i in range(1, 5)], history=history), CONFIG)
    assert (d.action, d.desired, len(d.drain)) == (a.SCALE_IN, 2, 2)


def test_lowering_max_workers_scales_in_without_waiting_for_the_window() -> None:
    d = a.decide(inputs(50, 0, [worker(i, busy=5) for i in range(1, 6)], hi=3, history=[]), CONFIG)
    assert (d.action, d.desired, len(d.drain)) == (a.SCALE_IN, 3, 2)


# ---- which workers go, and how ---------------------------------------------------------------------

def test_idle_workers_are_picked_first_then_the_least_busy() -> None:
    workers = [worker(1, busy=3, started=10), worker(2, busy=0, started=20), worker(3, busy=1, started=30),
               worker(4, busy=0, started=40)]
    d = a.decide(inputs(0, 4, workers, history=steady(1)), CONFIG)
    assert d.desired == 1
    assert d.drain == ("worker-4", "worker-2", "worker-3")   # idle (newest first), then least busy


def test_busy_victims_are_protected_and_drained_never_released() -> None:
    workers = [worker(1, busy=2), worker(2, busy=1)]
    d = a.decide(inputs(0, 3, workers, history=steady(1)), CONFIG)
    assert d.action == a.SCALE_IN
    assert d.drain == ("worker-2",) and d.protect == ("worker-2",)
    assert d.release == () and d.force_release == ()


def test_a_draining_worker_is_released_only_when_its_tasks_are_done() -> None:
    busy = a.decide(inputs(0, 1, [worker(1), worker(2, busy=1, state="draining", since=900)], history=steady(1)), CONFIG)
    assert busy.release == () and busy.force_release == ()
    done = a.decide(inputs(0, 0, [worker(1), worker(2, busy=0, state="draining", since=900)], history=steady(1)), CONFIG)
    assert done.release == ("worker-2",)


def test_exited_workers_are_released() -> None:
    d = a.decide(inputs(0, 0, [worker(1), worker(2, state="stopped")], history=steady(1)), CONFIG)
    assert d.release == ("worker-2",)


def test_busy_draining_worker_is_force_released_only_after_the_maximum_drain_time() -> None:
    config = replace(CONFIG, max_drain_s=3600)
    before = a.decide(inputs(0, 1, [worker(1), worker(2, busy=1, state="draining", since=1000 - 3599)]), config)
    assert before.force_release == ()
    after = a.decide(inputs(0, 1, [worker(1), worker(2, busy=1, state="draining", since=1000 - 3600)]), config)
    assert after.force_release == ("worker-2",)
    assert "drained for over 3600s" in after.reason


def test_default_maximum_drain_time_is_12_hours() -> None:
    assert a.AutoscalingConfig().max_drain_s == 12 * 3600
    assert a.AutoscalingConfig.from_settings(Settings(autoscaler_max_drain_s=60)).max_drain_s == 60


# ---- scheduled runs: workers started before the fan-out arrives ---------------------------------

def test_tasks_of_a_scheduled_run_due_soon_count_as_demand_before_anything_is_queued() -> None:
    d = a.decide(replace(inputs(queued=0, running=0, workers=[worker(1)]), scheduled=20), CONFIG)
    assert (d.action, d.desired, d.start) == (a.SCALE_OUT, 4, 3)
    assert "20 scheduled" in d.reason


def test_scheduled_demand_keeps_warm_workers_from_being_scaled_in_between_runs() -> None:
    warm = [worker(i) for i in (1, 2, 3, 4)]
    idle = inputs(queued=0, running=0, workers=warm, history=steady(1))
    assert a.decide(idle, CONFIG).action == a.SCALE_IN
    assert a.decide(replace(idle, scheduled=20), CONFIG).action == a.HOLD


@pytest.mark.parametrize("due_in,counted", [
    (-a.OVERDUE_GRACE_S - 1, False),  # long overdue: a blocked DAG, not demand about to arrive
    (-5, True),                       # due a moment ago, the scheduler is about to create it
    (0, True),
    (179, True),
    (181, False),                     # beyond the horizon: too early to start workers for it
])
def test_scheduled_demand_counts_runs_due_within_the_prewarm_horizon(due_in: float, counted: bool) -> None:
    runs = [UpcomingRun("etl", 1000.0 + due_in, 12)]
    assert a.scheduled_demand(runs, 1000.0, 180.0) == (12 if counted else 0)


def test_scheduled_demand_adds_up_runs_and_a_zero_horizon_turns_it_off() -> None:
    runs = [UpcomingRun("a", 1010.0, 12), UpcomingRun("b", 1100.0, 30)]
    assert a.scheduled_demand(runs, 1000.0, 180.0) == 42
    assert a.scheduled_demand(runs, 1000.0, 0.0) == 0


def test_a_runs_width_is_its_task_count_bounded_by_max_active_tasks() -> None:
    assert UpcomingRun.of("wide", 0.0, task_count=80, max_active_tasks=16).tasks == 16
    assert UpcomingRun.of("narrow", 0.0, task_count=5, max_active_tasks=16).tasks == 5
    assert UpcomingRun.of("unbounded", 0.0, task_count=30, max_active_tasks=None).tasks == 30


def test_prewarm_horizon_defaults_to_a_fargate_start_up_and_is_configurable() -> None:
    assert a.AutoscalingConfig().prewarm_s == 180
    assert a.AutoscalingConfig.from_settings(Settings(autoscaler_prewarm_s=0)).prewarm_s == 0


def test_decisions_recorded_before_scheduled_demand_existed_still_replay() -> None:
    old = inputs(queued=7, running=0, workers=[worker(1)]).to_dict()
    del old["scheduled"]
    assert a.Inputs.from_dict(old).scheduled == 0


# ---- a tick through the ports, with an injected clock --------------------------------------------

@dataclass
class FakeClock:
    t: float

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, timezone.utc)


@dataclass
class FakePool:
    busy: dict[str, int] = field(default_factory=lambda: {"worker-1": 0})
    draining: dict[str, float] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)
    killed: list[str] = field(default_factory=list)
    clock: FakeClock | None = None

    def workers(self, environment: str) -> list[WorkerInfo]:
        return [WorkerInfo(w, b, "draining" if w in self.draining else "active", w in self.protected,
                           float(w.split("-")[1]), self.draining.get(w)) for w, b in self.busy.items()]

    upcoming: list[UpcomingRun] = field(default_factory=list)

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        return 0, sum(self.busy.values())

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        return [r for r in self.upcoming if r.due_at <= until]

    def scale_out(self, environment: str, count: int) -> list[str]:
        new = [f"worker-{len(self.busy) + i + 1}" for i in range(count)]
        self.busy.update({w: 0 for w in new})
        return new

    def drain(self, environment: str, worker_id: str) -> None:
        assert self.clock is not None
        self.draining[worker_id] = self.clock.t

    def release(self, environment: str, worker_id: str, force: bool = False) -> bool:
        if self.busy[worker_id]:
            assert force, "released a worker that runs tasks"
            self.killed.append(worker_id)
        del self.busy[worker_id]
        self.draining.pop(worker_id, None)
        return True

    def protect(self, environment: str, worker_id: str, on: bool) -> None:
        (self.protected.add if on else self.protected.discard)(worker_id)


def test_step_scales_out_at_once_scales_in_after_the_window_and_never_kills_a_busy_worker() -> None:
    clock = FakeClock(10_000.0)
    pool = FakePool(clock=clock)
    metrics, log = InMemoryMetrics(), InMemoryDecisionLog()

    def run(queued: int, running: int) -> a.Decision:
        metrics.put([MetricPoint("env", a.QUEUED, queued, clock.t), MetricPoint("env", a.RUNNING, running, clock.t)])
        return a.step("env", tasks_per_worker=4, min_workers=1, max_workers=3, metrics=metrics, pool=pool,
                      clock=clock, config=CONFIG, decisions=log)

    assert run(12, 0).start == 2 and len(pool.busy) == 3
    pool.busy.update({"worker-1": 4, "worker-2": 4, "worker-3": 4})
    clock.t += 5
    assert run(0, 12).action == a.HOLD
    pool.busy.update({"worker-1": 1, "worker-2": 1, "worker-3": 1})   # the tail: one long task each
    for _ in range(int(CONFIG.scale_in_stabilization_s // 5) - 1):   # inside the window: hold
        clock.t += 5
        assert run(0, 3).action == a.HOLD
    clock.t += 10
    d = run(0, 3)
    assert d.action == a.SCALE_IN and d.drain == ("worker-3", "worker-2") and d.protect == ("worker-3", "worker-2")
    assert pool.protected == {"worker-2", "worker-3"}
    clock.t += 5
    pool.busy["worker-2"] = 0
    run(0, 2)                                       # worker-2's task ended: released; worker-3 still runs
    assert set(pool.busy) == {"worker-1", "worker-3"}
    pool.busy["worker-3"] = 0
    clock.t += 5
    run(0, 1)
    assert set(pool.busy) == {"worker-1"} and pool.killed == [] and not pool.protected
    assert log.recent("env", 1)[0]["decision"]["release"] == ["worker-3"]


def test_every_decision_is_recorded_with_its_inputs_and_replays_to_the_same_decision() -> None:
    clock = FakeClock(5_000.0)
    pool, metrics, log = FakePool(clock=clock), InMemoryMetrics(), InMemoryDecisionLog()
    metrics.put([MetricPoint("env", a.QUEUED, 7, clock.t), MetricPoint("env", a.RUNNING, 0, clock.t)])
    a.step("env", tasks_per_worker=5, min_workers=1, max_workers=5, metrics=metrics, pool=pool, clock=clock,
           config=CONFIG, decisions=log)
    event = log.recent("env")[0]
    assert {"inputs", "decision", "reason", "at", "environment"} <= set(event)
    replayed = a.decide(a.Inputs.from_dict(event["inputs"]), CONFIG)
    assert replayed.to_event()["decision"] == event["decision"]
    assert metrics.query("env", a.DESIRED, 0)[-1].value == 2


def test_a_tick_starts_workers_for_a_scheduled_run_from_the_collected_scheduled_tasks_metric() -> None:
    clock = FakeClock(20_000.0)
    pool = FakePool(clock=clock, upcoming=[UpcomingRun("nightly", clock.t + 120, 14), UpcomingRun("later", clock.t + 900, 50)])
    metrics = InMemoryMetrics()
    queued, running, scheduled = a.sample_task_counts(pool, "env", clock.t, a.AutoscalingConfig())
    assert (queued, running, scheduled) == (0, 0, 14)  # "later" is beyond the 180 s horizon
    metrics.put([MetricPoint("env", a.QUEUED, queued, clock.t), MetricPoint("env", a.RUNNING, running, clock.t),
                 MetricPoint("env", a.SCHEDULED, scheduled, clock.t)])
    d = a.step("env", tasks_per_worker=5, min_workers=1, max_workers=10, metrics=metrics, pool=pool, clock=clock,
               config=CONFIG)
    assert (d.action, d.inputs.scheduled, len(pool.busy)) == (a.SCALE_OUT, 14, 3)
    # With pre-warming off the same metric is ignored.
    off = a.gather("env", now=clock.t, tasks_per_worker=5, min_workers=1, max_workers=10, metrics=metrics,
                   pool=pool, config=replace(CONFIG, prewarm_s=0))
    assert off.scheduled == 0


def test_not_knowing_the_schedule_does_not_stop_the_task_counts() -> None:
    class NoSchedule(FakePool):
        def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
            raise ConnectionError("metadata database unreachable")

    assert a.sample_task_counts(NoSchedule(), "env", 0.0, a.AutoscalingConfig()) == (0, 0, None)
