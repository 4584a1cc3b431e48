"""Runs named components as supervised child processes. Knows nothing about Airflow.

Design points:
- Each component gets its own session/process group, so stopping it reaches every process it
  forked (a Celery pool, gunicorn workers, task runners) and nothing else.
- Every child carries the environment tag and a pid file (processes.py), so a later server finds
  and reaps what this one left behind if it was SIGKILLed.
- A crashed component is restarted with exponential backoff; more than `max_restarts` crashes in
  a minute marks it FATAL (visible in `status()`) instead of spinning forever.
- Components outlive their controller on purpose (a SIGKILLed server's environments keep running
  until the next server reaps and restarts them), but once `close()` began nothing starts any
  more: a start racing a shutdown would leave processes nobody stops.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from airdock.local import processes

log = logging.getLogger(__name__)


class SupervisorClosed(RuntimeError):
    """A start was asked of a supervisor that is closing."""


class ComponentState(str, Enum):
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"      # crashed, waiting to be restarted
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"      # stopped on request
    EXITED = "EXITED"        # ended on its own and is not restarted (restart=False)
    FATAL = "FATAL"          # crashed too often; given up


@dataclass
class ComponentSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None   # full environment; None = inherit ours
    cwd: Path | None = None
    restart: bool = True
    # Who gets the stop signal: "group" (every process) or "leader" (only the process we
    # started). "leader" matters for programs that shut down gracefully by themselves: a Celery
    # worker's pool children reset SIGTERM to the default, so a group-wide SIGTERM would kill the
    # running tasks that a warm shutdown is meant to let finish.
    stop_target: str = "group"
    stop_signal: int = signal.SIGTERM
    max_restarts: int = 5           # per restart_window_s
    restart_window_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0


@dataclass
class ComponentStatus:
    name: str
    state: ComponentState
    pid: int | None
    restarts: int
    last_exit_code: int | None
    started_at: float | None
    message: str = ""


@dataclass
class _Component:
    spec: ComponentSpec
    proc: subprocess.Popen[bytes] | None = None
    state: ComponentState = ComponentState.STOPPED
    restarts: int = 0
    crash_times: deque[float] = field(default_factory=deque)
    last_exit_code: int | None = None
    started_at: float | None = None
    next_start_at: float | None = None
    start_time: str | None = None   # kernel start time of the leader (processes.start_time)
    backoff_s: float = 0.0
    message: str = ""


class Supervisor:
    """Starts, watches, restarts and stops the components of one environment directory."""

    def __init__(self, env_dir: Path, *, poll_interval_s: float = 0.5) -> None:
        self.env_dir = Path(env_dir)
        self.logs_dir = self.env_dir / "logs"
        self.pids_dir = self.env_dir / processes.PIDS_DIR
        self.tag = processes.tag_for(self.env_dir)
        self._components: dict[str, _Component] = {}
        self._lock = threading.RLock()
        self._poll_interval_s = poll_interval_s
        self._closed = threading.Event()
        self._closing = False
        self._monitor = threading.Thread(target=self._run_monitor, name=f"supervisor:{self.env_dir.name}",
                                         daemon=True)
        self._monitor.start()

    # ---- public API -------------------------------------------------------------------------

    def start(self, spec: ComponentSpec) -> ComponentStatus:
        with self._lock:
            if self._closing:
                raise SupervisorClosed(f"not starting {spec.name}: the supervisor of {self.env_dir} is closing")
            comp = self._components.get(spec.name)
            if comp is not None and comp.state in (ComponentState.RUNNING, ComponentState.STOPPING,
                                                   ComponentState.BACKOFF):
                raise ValueError(f"component {spec.name} is already {comp.state.value}")
            comp = _Component(spec=spec)
            self._components[spec.name] = comp
            self._spawn(comp)
            return self._status(comp)

    def stop(self, name: str, grace_s: float = 30.0) -> int | None:
        """Stop signal, then SIGKILL to the whole group after `grace_s`. Returns the exit code."""
        with self._lock:
            comp = self._components.get(name)
            if comp is None:
                return None
            comp.next_start_at = None
            proc = comp.proc
            if proc is None or comp.state not in (ComponentState.RUNNING, ComponentState.STOPPING):
                comp.state = ComponentState.STOPPED
                return comp.last_exit_code
            comp.state = ComponentState.STOPPING
        pgid = proc.pid  # start_new_session: the leader's pid is the group and session id
        start_time = comp.start_time
        if comp.spec.stop_target == "leader":
            processes.kill(proc.pid, comp.spec.stop_signal)
        else:
            processes.killpg(pgid, comp.spec.stop_signal)
        try:
            code = proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("component %s did not stop within %.0fs: SIGKILL", name, grace_s)
            processes.signal_all(processes.session_members(pgid, start_time), signal.SIGKILL)
            code = proc.wait()
        # The leader is gone; anything it left in its session goes with it.
        processes.end_session(pgid, start_time, grace_s=min(grace_s, 5.0))
        with self._lock:
            comp.state = ComponentState.STOPPED
            comp.last_exit_code = code
            comp.proc = None
            self._pidfile(name).unlink(missing_ok=True)
        return code

    def stop_all(self, grace_s: float = 30.0, last: Sequence[str] = ()) -> None:
        """Stop every component in parallel, except those in `last`: after, one by one, in order.

        (A database, say, must outlive its clients' shutdown.)
        """
        first = [n for n in self.names() if n not in last]
        threads = [threading.Thread(target=self.stop, args=(n, grace_s)) for n in first]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in last:
            self.stop(n, grace_s)

    def remove(self, name: str) -> None:
        """Forget a stopped component (e.g. a worker scaled away)."""
        with self._lock:
            comp = self._components.get(name)
            if comp is not None and comp.proc is None:
                del self._components[name]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._components)

    def status(self, name: str) -> ComponentStatus | None:
        with self._lock:
            comp = self._components.get(name)
            return self._status(comp) if comp else None

    def statuses(self) -> dict[str, ComponentStatus]:
        with self._lock:
            return {n: self._status(c) for n, c in self._components.items()}

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def close(self, grace_s: float = 30.0, last: Sequence[str] = ()) -> None:
        """Refuse starts from now on, stop every component (`last` as in stop_all) and the monitor."""
        with self._lock:
            self._closing = True
        self.stop_all(grace_s, last)
        self._closed.set()
        self._monitor.join(timeout=5)

    # ---- internals ----------------------------------------------------------------------------

    def _pidfile(self, name: str) -> Path:
        return self.pids_dir / f"{name}.pid"

    def _status(self, comp: _Component) -> ComponentStatus:
        return ComponentStatus(
            name=comp.spec.name, state=comp.state, pid=comp.proc.pid if comp.proc else None,
            restarts=comp.restarts, last_exit_code=comp.last_exit_code,
            started_at=comp.started_at, message=comp.message,
        )

    def _spawn(self, comp: _Component) -> None:
        spec = comp.spec
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.pids_dir.mkdir(parents=True, exist_ok=True)
        env = dict(spec.env if spec.env is not None else os.environ)
        env[processes.TAG_VAR] = self.tag
        logf = open(self.log_path(spec.name), "ab", buffering=0)
        try:
            logf.write(f"\n=== airdock supervisor: starting {spec.name} at "
                       f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {' '.join(spec.argv)}\n".encode())
            comp.proc = subprocess.Popen(
                list(spec.argv), env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            comp.proc = None
            comp.state = ComponentState.FATAL
            comp.message = f"cannot start: {exc}"
            return
        finally:
            logf.close()
        comp.state = ComponentState.RUNNING
        comp.started_at = time.time()
        comp.next_start_at = None
        comp.message = ""
        pid = comp.proc.pid
        comp.start_time = processes.start_time(pid)
        processes.write_pidfile(self._pidfile(spec.name), pid, comp.start_time, spec.argv, self.tag)

    def _on_exit(self, comp: _Component, code: int) -> None:
        # Called with the lock held, for an exit nobody asked for.
        pid = comp.proc.pid if comp.proc else None
        comp.proc = None
        comp.last_exit_code = code
        self._pidfile(comp.spec.name).unlink(missing_ok=True)
        if pid is not None:
            # Don't leave the crashed component's helpers running.
            threading.Thread(target=processes.end_session, args=(pid, comp.start_time, 5.0),
                             daemon=True).start()
        if not comp.spec.restart:
            comp.state = ComponentState.EXITED
            comp.message = f"exited with code {code}"
            return
        now = time.monotonic()
        comp.crash_times.append(now)
        while comp.crash_times and now - comp.crash_times[0] > comp.spec.restart_window_s:
            comp.crash_times.popleft()
        if len(comp.crash_times) > comp.spec.max_restarts:
            comp.state = ComponentState.FATAL
            comp.message = (f"exited with code {code}; {len(comp.crash_times)} crashes within "
                            f"{comp.spec.restart_window_s:.0f}s, not restarting (see {self.log_path(comp.spec.name)})")
            log.error("component %s: %s", comp.spec.name, comp.message)
            return
        comp.backoff_s = min(comp.spec.backoff_max_s,
                             comp.spec.backoff_initial_s * (2 ** (len(comp.crash_times) - 1)))
        comp.state = ComponentState.BACKOFF
        comp.next_start_at = now + comp.backoff_s
        comp.message = f"exited with code {code}; restarting in {comp.backoff_s:.0f}s"
        log.warning("component %s: %s", comp.spec.name, comp.message)

    def _run_monitor(self) -> None:
        while not self._closed.wait(self._poll_interval_s):
            try:
                self._tick()
            except Exception:  # the monitor must survive anything a tick throws
                log.exception("supervisor monitor tick failed")

    def _tick(self) -> None:
        with self._lock:
            for comp in list(self._components.values()):
                if comp.state == ComponentState.RUNNING and comp.proc is not None:
                    code = comp.proc.poll()
                    if code is not None:
                        self._on_exit(comp, code)
                elif (comp.state == ComponentState.BACKOFF and comp.next_start_at is not None
                      and time.monotonic() >= comp.next_start_at and not self._closing):
                    comp.restarts += 1
                    self._spawn(comp)
