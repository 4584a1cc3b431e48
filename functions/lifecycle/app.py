"""Lifecycle function: maintenance windows and pause/resume schedules (EventBridge rules on AWS).

Events it handles (locally the same shapes come from airdock.local.lifecycle_loop):
- EventBridge schedule (`source: aws.events`, `detail-type: Scheduled Event`): decide what is due
  at the event's `time` — the injected clock: a test or a replayed event gives its own time —
  and start it (`Lifecycle.tick`).
- Run one operation (`source: airdock.lifecycle`, `detail-type: Airdock Lifecycle Operation`,
  `detail: {Operation: pause|resume|maintain, EnvironmentName}`): what the LifecycleRunner port
  sends (locally on a thread; on AWS an asynchronous invocation of this function).
- An environment's task stopped because its Airflow container exited or never started (`source:
  aws.ecs`, `detail-type: ECS Task State Change`, filtered so by the template's rule): counted as
  the metric ComponentTaskExits, which the template's alarm on restarting components watches (ECS
  restarts the task itself).
Anything else is acknowledged and ignored.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from airdock import wiring
from airdock.core import observability
from airdock.core.lifecycle import Lifecycle

log = logging.getLogger("airdock.lifecycle")

SCHEDULED = "Scheduled Event"
RUN_OPERATION = "Airdock Lifecycle Operation"
TASK_STATE_CHANGE = "ECS Task State Change"


def _event_time(event: dict[str, Any]) -> datetime:
    raw = event.get("time")
    if not raw:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(timezone.utc)


@observability.instrument
def handler(event: dict[str, Any], context: Any, lifecycle: Lifecycle | None = None) -> dict[str, Any]:
    kind = event.get("detail-type")
    if kind == TASK_STATE_CHANGE:
        detail = event.get("detail") or {}
        log.warning("task %s of %s stopped: %s (%s)", detail.get("taskArn"), detail.get("group"),
                    detail.get("stoppedReason"), detail.get("stopCode"))
        observability.count(observability.COMPONENT_TASK_EXITS)
        return {"task_exit": detail.get("group")}
    worker = lifecycle or wiring.lifecycle()
    if kind == SCHEDULED:
        started = worker.tick(_event_time(event))
        if started:
            log.info("lifecycle started %s", started)
            observability.count(observability.LIFECYCLE_OPERATIONS_STARTED, len(started))
        return {"started": started}
    if kind == RUN_OPERATION:
        detail = event.get("detail") or {}
        worker.run(str(detail["Operation"]), str(detail["EnvironmentName"]))
        return {"ran": detail["Operation"], "Name": detail["EnvironmentName"]}
    return {"ignored": kind}


def scheduled_event(now: datetime, region: str = "us-east-1", account: str = "000000000000") -> dict[str, Any]:
    """An EventBridge scheduled event for `now` (what the rule sends every few minutes)."""
    return {
        "version": "0", "id": "airdock-lifecycle-tick", "detail-type": SCHEDULED, "source": "aws.events",
        "account": account, "time": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region, "resources": [], "detail": {},
    }


def operation_event(operation: str, name: str) -> dict[str, Any]:
    return {"detail-type": RUN_OPERATION, "source": "airdock.lifecycle",
            "detail": {"Operation": operation, "EnvironmentName": name}}
