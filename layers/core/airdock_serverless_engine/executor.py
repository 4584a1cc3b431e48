"""Airflow's LocalExecutor, minus idle workers.

The LocalExecutor forks a worker process per concurrent task, up to `[core] parallelism`, and
keeps every one of them for good ("shut down workers that have been idle for N seconds" is left
as a future enhancement in its source). After a 50-task fan-out the engine would keep 50 idle
copies of the scheduler. Here, once no task has run or waited for IDLE_S seconds, each worker gets
the same stop message `end()` sends (None), so an idle engine is back to its four processes; the
next task forks a worker again, as the first one did. Each task still runs in a process of its
own (the task SDK's runner, forked by the worker)."""
from __future__ import annotations

import os
import time
from typing import Any

from airflow.executors.local_executor import LocalExecutor

IDLE_S = float(os.environ.get("AIRDOCK_ENGINE_WORKER_IDLE_S", "30"))


class IdleTrimmingLocalExecutor(LocalExecutor):
    _idle_since: float | None = None
    _stopping = 0

    def _check_workers(self) -> None:
        super()._check_workers()
        with self._unread_messages:
            outstanding = self._unread_messages.value
        if outstanding > 0 or self.running or self.queued_tasks:
            self._idle_since = None
            return
        if self._stopping and not self.workers:
            self._stopping = 0
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if self.workers and not self._stopping and now - self._idle_since >= IDLE_S:
            self._stopping = len(self.workers)
            for _ in range(self._stopping):
                self.activity_queue.put(None)

    def queue_workload(self, workload: Any, session: Any = None) -> None:  # type: ignore[override]
        # All workers were idle when told to stop, so each takes its stop message at once; wait
        # for that before queueing, or a task would sit behind a stop message.
        if self._stopping:
            for process in list(self.workers.values()):
                process.join(5)
            self._stopping = 0
        self._idle_since = None
        super().queue_workload(workload, session=session)  # type: ignore[call-arg]
