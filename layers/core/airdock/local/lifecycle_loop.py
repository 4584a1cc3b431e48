"""Lifecycle, locally: the stand-in for the EventBridge rules that call the lifecycle function.

- `LifecycleLoop` sends the lifecycle function a scheduled event every `interval_s` (default 30 s,
  `AIRDOCK_LIFECYCLE_INTERVAL`), with the time of an injectable clock.
- `LocalLifecycleRunner` is the LifecycleRunner port: each operation runs on its own thread, through
  the same function handler and event shape as on AWS. One operation per environment at a time.
- `OffsetClock` lets a test (or a user rehearsing a maintenance window) move the lifecycle clock:
  `AIRDOCK_LIFECYCLE_CLOCK_OFFSET_FILE` names a file holding seconds to add to the real time, read
  on every tick, so a running server can be moved to "the window opens now".
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from airdock.core.lifecycle import Lifecycle
from airdock.core.ports import Clock
from airdock.local.functions import load_function

log = logging.getLogger("airdock.lifecycle")

DEFAULT_INTERVAL_S = 30.0


class OffsetClock:
    def __init__(self, offset_file: Path | None = None) -> None:
        self.offset_file = offset_file

    def now(self) -> datetime:
        offset = 0.0
        if self.offset_file is not None:
            try:
                offset = float(self.offset_file.read_text().strip() or 0)
            except (OSError, ValueError):
                offset = 0.0
        return datetime.now(timezone.utc) + timedelta(seconds=offset)

    @classmethod
    def from_file(cls, path: str | None) -> "OffsetClock":
        return cls(Path(path) if path else None)


class LocalLifecycleRunner:
    def __init__(self, lifecycle: Callable[[], Lifecycle]) -> None:
        # Built lazily: the Lifecycle needs the compute adapter, which the service must not wait for.
        self._lifecycle = lifecycle
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, operation: str, name: str) -> None:
        function = load_function("lifecycle")
        event = function.operation_event(operation, name)

        def run() -> None:
            try:
                function.handler(event, None, lifecycle=self._lifecycle())
            except Exception:
                log.exception("lifecycle %s of %s failed", operation, name)
            finally:
                with self._lock:
                    if self._running.get(name) is threading.current_thread():
                        del self._running[name]

        with self._lock:
            previous = self._running.get(name)
            thread = threading.Thread(target=self._after, args=(previous, run), daemon=True,
                                      name=f"lifecycle-{operation}-{name}")
            self._running[name] = thread
            thread.start()

    @staticmethod
    def _after(previous: threading.Thread | None, run: Callable[[], None]) -> None:
        # Operations on one environment never overlap: a resume waits for the pause before it.
        if previous is not None:
            previous.join()
        run()

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)


class LifecycleLoop:
    def __init__(self, lifecycle: Callable[[], Lifecycle], clock: Clock, interval_s: float = DEFAULT_INTERVAL_S,
                 region: str = "us-east-1", account: str = "000000000000") -> None:
        self._lifecycle = lifecycle
        self.clock = clock
        self.interval_s = interval_s
        self.region = region
        self.account = account
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        lifecycle = self._lifecycle()
        resumed = lifecycle.recover()
        if resumed:
            log.info("resumed interrupted lifecycle operations: %s", resumed)
        self._thread = threading.Thread(target=self._run, daemon=True, name="lifecycle-loop")
        self._thread.start()

    def tick(self) -> dict[str, Any]:
        function = load_function("lifecycle")
        event = function.scheduled_event(self.clock.now(), self.region, self.account)
        return function.handler(event, None, lifecycle=self._lifecycle())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # one failed tick must not end the loop
                log.exception("lifecycle tick failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
