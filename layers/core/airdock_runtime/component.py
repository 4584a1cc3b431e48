"""A component's Airflow command as a child process, with stop signals forwarded, and a Celery
worker's drain (airdock_runtime.drain) on ECS."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from airdock_runtime.drain import MetadataDrainCheck
from airdock_runtime.errors import log

CELERY_WORKER = ("celery", "worker")


# The image's health check takes a drained worker (Celery stopped on purpose) as healthy.
DRAINED_FILE = ".airdock-drained"
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_drain_check(command: list[str], env: dict[str, str]) -> Any:
    """The drain marker check of a Celery worker on ECS (AIRDOCK_DRAIN_POLL_S is set by its task
    definition), or None: elsewhere workers are drained by whoever runs them (locally Airdock's
    supervisor, by SIGTERM)."""
    if tuple(command[:2]) != CELERY_WORKER or not float(env.get("AIRDOCK_DRAIN_POLL_S") or 0):
        return None
    try:
        check = MetadataDrainCheck.from_environ(env)
    except Exception as exc:  # no task metadata endpoint, no database URL: run without
        log(f"no drain marker check ({exc}); this worker stops taking tasks only when its task stops")
        return None
    if check is None:
        log("no drain marker check (not on ECS); this worker stops taking tasks only when its task stops")
    return check


class ComponentRun:
    """The component's command as a child process, with stop signals forwarded to it only (not to
    our process group): the component decides how to shut down, and a Celery worker finishes its
    running tasks on SIGTERM.

    With `drained` (a Celery worker on ECS, airdock_runtime.drain) the worker's drain marker
    is polled every `poll_s`. Celery's remote control cannot reach a worker on SQS, so the drain
    happens here, in the worker's own task: once marked, Celery gets SIGTERM — its warm shutdown
    stops consuming at once and lets the running task instances finish — and this process stays
    up, drained, instead of exiting (an exit would end the ECS task and make the service start a
    replacement before the autoscaler has released the slot). It exits when it is stopped (the
    autoscaler's release stops the task) and starts Celery again when the marker is gone (the
    worker was taken back). A failing check changes nothing: never drained, or never resumed, on
    a database hiccup."""

    def __init__(self, cmd: list[str], env: dict[str, str], *, drained: Any = None, poll_s: float = 15.0,
                 drained_file: Path | None = None) -> None:
        self.cmd, self.env = cmd, env
        self.drained, self.poll_s, self.drained_file = drained, poll_s, drained_file
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        # Plain attributes, no locks: signal() runs as a signal handler on the main thread.
        self.stopping = False
        self.draining = False

    def signal(self, signum: int) -> None:
        if signum in _STOP_SIGNALS:
            self.stopping = True
        child = self.child
        if child is None:
            self.pending.append(signum)
            return
        if child.returncode is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        while True:
            self.child = subprocess.Popen(self.cmd, env=self.env)
            for signum in self.pending:
                self.child.send_signal(signum)
            self.pending.clear()
            code = self._wait()
            if self.stopping or not self.draining:
                return code
            if not self._stay_drained():
                return 0

    def _check(self) -> bool | None:
        try:
            return bool(self.drained())
        except Exception as exc:  # the database may be briefly unreachable
            log(f"drain marker check failed (will retry): {exc}")
            return None

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            watching = self.drained is not None and not self.draining and not self.stopping
            try:
                return self.child.wait(timeout=self.poll_s if watching else None)
            except subprocess.TimeoutExpired:
                if self._check():
                    log("drain marker found: Celery stops taking tasks (warm shutdown); running tasks finish")
                    self.draining = True
                    self.child.send_signal(signal.SIGTERM)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def _stay_drained(self) -> bool:
        """Drained until stopped (False) or taken back (True)."""
        log("drained: Celery finished its tasks; waiting to be released or taken back")
        if self.drained_file is not None:
            self.drained_file.write_text(f"{time.time():.0f}\n")
        try:
            while not self.stopping:
                self._sleep(self.poll_s)
                if not self.stopping and self._check() is False:
                    log("drain marker gone: the worker is taken back; starting Celery again")
                    self.draining = False
                    return True
            return False
        finally:
            if self.drained_file is not None:
                self.drained_file.unlink(missing_ok=True)
