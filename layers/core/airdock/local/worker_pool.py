"""WorkerPool port, locally: the `worker-N` Celery processes of each LocalAirflowEnvironment.

Where the numbers come from, and why:
- queued / running: the scheduler's task-instance states through the environment's REST API
  (`state=queued` / `state=running`, `total_entries`). That is what MWAA's `QueuedTasks` and
  `RunningTasks` count (tasks the executor sent to the broker but no worker started; task
  instances running), it reads the same on Airflow 2 and 3 and on any broker, and the REST API is
  in-process already (an Airflow CLI call would cost 2+ s of start-up per sample).
- busy tasks per worker: the task processes in the worker's process session. Airflow 3's task
  runner titles itself `airflow worker -- <ti id>`, Airflow 2's forked task `airflow task
  supervisor: ...`. Task instances' `hostname` can't tell local workers apart (one machine), and
  Celery's remote control (inspect/cancel_consumer) needs a broker with fanout, which kombu's
  SQLAlchemy transport — the local broker — does not have.
- drain: SIGTERM to the worker, which is Celery's warm shutdown: the consumer is cancelled at once
  (no new task is taken; unacknowledged prefetched messages go back to the queue, Airflow uses
  acks_late), running tasks go on to the end, then the process exits. Exactly "stop consuming,
  finish, go" — without fanout control, and the supervisor does not restart a stopped worker.
- protect: nothing but the autoscaler stops local workers, so protection is a flag kept for the
  API; on AWS it is ECS task scale-in protection.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from airdock.core.ports import UpcomingRun, WorkerInfo
from airdock.local.airflow_env import LocalAirflowEnvironment
from airdock.local.processes import session_members
from airdock.local.supervisor import ComponentState

log = logging.getLogger(__name__)

# Process titles of a running task instance inside a Celery worker (see the module docstring).
TASK_PROCESS_TITLES = (b"airflow worker -- ", b"airflow task supervisor:")
# The worker's own stop timeout is the autoscaler's business (max drain time); this only keeps
# the supervisor's stop thread from waiting forever if the autoscaler is gone.
_STOP_GRACE_S = 13 * 3600.0


class WorkerPoolError(Exception):
    pass


class LocalWorkerPool:
    def __init__(self, environments: Callable[[str], LocalAirflowEnvironment | None],
                 clock: Callable[[], float] = time.time) -> None:
        self._environments = environments
        self._clock = clock
        self._lock = threading.Lock()
        # (environment, worker id) → (pid, since): a reused name is a new process, not the drained one.
        self._draining: dict[tuple[str, str], tuple[int | None, float]] = {}
        self._protected: dict[tuple[str, str], int | None] = {}
        self._task_counts: dict[tuple[str, str], tuple[int, float]] = {}

    def _env(self, environment: str) -> LocalAirflowEnvironment:
        airflow = self._environments(environment)
        if airflow is None:
            raise WorkerPoolError(f"environment {environment} is not running here")
        return airflow

    # ---- reading -----------------------------------------------------------------------------

    def workers(self, environment: str) -> list[WorkerInfo]:
        airflow = self._env(environment)
        statuses = {n: st for n, st in airflow.supervisor.statuses().items() if n.startswith("worker-")}
        out: list[WorkerInfo] = []
        with self._lock:
            for name in sorted(statuses, key=lambda n: int(n.split("-")[1])):
                st = statuses[name]
                key = (environment, name)
                drained = self._draining.get(key)
                if drained is not None and st.pid is not None and drained[0] != st.pid:
                    drained = None  # the name was reused by a new worker
                if st.state in (ComponentState.STOPPED, ComponentState.EXITED, ComponentState.FATAL):
                    state = "stopped"
                elif st.state == ComponentState.STOPPING or drained is not None:
                    state = "draining"
                else:
                    state = "active"
                since = drained[1] if drained is not None else (self._clock() if state == "draining" else None)
                protected = key in self._protected and self._protected[key] in (st.pid, None)
                out.append(WorkerInfo(id=name, busy_tasks=busy_tasks(st.pid) if st.pid else 0, state=state,
                                      protected=protected, started_at=st.started_at,
                                      draining_since=since if state == "draining" else None))
        return out

    def queued_and_running(self, environment: str) -> tuple[int, int]:
        airflow = self._env(environment)
        return _count_tis(airflow, "queued"), _count_tis(airflow, "running")

    def upcoming_runs(self, environment: str, until: float) -> list[UpcomingRun]:
        """Unpaused DAGs whose next run is due before `until`, from the REST API (Airflow 3 calls
        `next_dagrun_create_after` `next_dagrun_run_after`); task counts are cached a minute, as
        a DAG's shape changes only when its file does."""
        airflow = self._env(environment)
        due_field = "next_dagrun_run_after" if airflow.airflow3 else "next_dagrun_create_after"
        runs: list[UpcomingRun] = []
        offset = 0
        while True:
            code, body = airflow.api("GET", f"/dags?paused=false&limit=100&offset={offset}", timeout_s=4)
            if code != 200 or not isinstance(body, dict):
                raise WorkerPoolError(f"listing DAGs answered {code}: {str(body)[:200]}")
            dags = body.get("dags") or []
            for dag in dags:
                due = _epoch(dag.get(due_field))
                if due is None or due > until:
                    continue
                runs.append(UpcomingRun.of(dag["dag_id"], due, self._task_count(airflow, environment, dag["dag_id"]),
                                           dag.get("max_active_tasks")))
            offset += len(dags)
            if not dags or offset >= int(body.get("total_entries", 0)):
                return runs

    def _task_count(self, airflow: LocalAirflowEnvironment, environment: str, dag_id: str) -> int:
        key = (environment, dag_id)
        cached = self._task_counts.get(key)
        if cached is not None and self._clock() - cached[1] < 60:
            return cached[0]
        code, body = airflow.api("GET", f"/dags/{urllib.parse.quote(dag_id, safe='')}/tasks", timeout_s=4)
        if code != 200 or not isinstance(body, dict):
            raise WorkerPoolError(f"listing the tasks of {dag_id} answered {code}: {str(body)[:200]}")
        count = len(body.get("tasks") or [])
        self._task_counts[key] = (count, self._clock())
        return count

    # ---- acting --------------------------------------------------------------------------------

    def scale_out(self, environment: str, count: int) -> list[str]:
        airflow = self._env(environment)
        before = set(airflow.worker_names())
        airflow.set_workers(len(before) + count, wait=False)
        started = sorted(set(airflow.worker_names()) - before)
        log.info("[%s] started workers %s", environment, ", ".join(started))
        return started

    def drain(self, environment: str, worker_id: str) -> None:
        airflow = self._env(environment)
        st = airflow.supervisor.status(worker_id)
        if st is None or st.state not in (ComponentState.RUNNING, ComponentState.BACKOFF):
            return  # already draining, or gone
        with self._lock:
            self._draining[(environment, worker_id)] = (st.pid, self._clock())
        # supervisor.stop blocks until the worker exits (its tasks done): in the background.
        threading.Thread(target=_stop_quietly, args=(airflow, worker_id), daemon=True,
                         name=f"drain-{environment}-{worker_id}").start()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            now = airflow.supervisor.status(worker_id)
            if now is None or now.state != ComponentState.RUNNING:
                break
            time.sleep(0.02)
        log.info("[%s] draining %s (warm shutdown: running tasks finish)", environment, worker_id)

    def resume(self, environment: str, worker_id: str) -> bool:
        # A warm shutdown cannot be called off (and Celery's add_consumer needs broker fanout):
        # the autoscaler starts a new worker instead.
        return False

    def release(self, environment: str, worker_id: str, force: bool = False) -> bool:
        airflow = self._env(environment)
        st = airflow.supervisor.status(worker_id)
        if st is None or st.state in (ComponentState.STOPPED, ComponentState.EXITED, ComponentState.FATAL):
            airflow.supervisor.remove(worker_id)
            self._forget(environment, worker_id)
            return True
        if force and st.pid is not None:
            # Only past the maximum drain time: the worker's tasks die with it.
            log.warning("[%s] %s still busy after the maximum drain time: killing it", environment, worker_id)
            for pid in session_members(st.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return False

    def protect(self, environment: str, worker_id: str, on: bool) -> None:
        airflow = self._env(environment)
        st = airflow.supervisor.status(worker_id)
        with self._lock:
            if on:
                self._protected[(environment, worker_id)] = st.pid if st else None
            else:
                self._protected.pop((environment, worker_id), None)

    def tidy(self, environment: str) -> None:
        """Forget the draining and protection marks of workers whose process is gone (a worker
        that exited or was removed outside the autoscaler's release)."""
        airflow = self._environments(environment)
        present = set(airflow.supervisor.names()) if airflow is not None else set()
        with self._lock:
            for key in [k for k in (*self._draining, *self._protected) if k[0] == environment and k[1] not in present]:
                self._draining.pop(key, None)
                self._protected.pop(key, None)

    def _forget(self, environment: str, worker_id: str) -> None:
        with self._lock:
            self._draining.pop((environment, worker_id), None)
            self._protected.pop((environment, worker_id), None)


def _stop_quietly(airflow: LocalAirflowEnvironment, name: str) -> None:
    try:
        airflow.supervisor.stop(name, grace_s=_STOP_GRACE_S)
    except Exception:
        log.exception("stopping worker %s failed", name)


def busy_tasks(worker_pid: int) -> int:
    """Task instances running in the worker whose supervisor leader is `worker_pid`."""
    count = 0
    for pid in session_members(worker_pid):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(TASK_PROCESS_TITLES):
            count += 1
    return count


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _count_tis(airflow: LocalAirflowEnvironment, state: str) -> int:
    code, body = airflow.api("GET", f"/dags/~/dagRuns/~/taskInstances?state={state}&limit=1", timeout_s=4)
    if code != 200 or not isinstance(body, dict):
        raise WorkerPoolError(f"listing {state} task instances answered {code}: {str(body)[:200]}")
    return int(body.get("total_entries", 0))


def describe_process_titles(worker_pid: int) -> list[str]:
    """The titles in a worker's session (for diagnosing busy-task counts)."""
    titles: list[str] = []
    for pid in session_members(worker_pid):
        try:
            titles.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return titles


__all__: list[Any] = ["LocalWorkerPool", "WorkerPoolError", "busy_tasks"]
