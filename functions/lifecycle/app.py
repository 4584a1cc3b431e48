"""Lifecycle function: maintenance windows and pause/resume schedules (EventBridge rules on AWS).

Events it handles (locally the same shapes come from airdock.local.lifecycle_loop):
- EventBridge schedule (`source: aws.events`, `detail-type: Scheduled Event`): decide what is due
  at the event's `time` — the injected clock: a test or a replayed event gives its own time —
  and start it (`Lifecycle.tick`).
- Run one operation (`source: airdock.lifecycle`, `detail-type: Airdock Lifecycle Operation`,
  `detail: {Operation: pause|resume|maintain, EnvironmentName}`): what the LifecycleRunner port
  sends (locally on a thread; on AWS an asynchronous invocation of this function).
Anything else (e.g. ECS task state changes, which need no action yet) is acknowledged and ignored.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from airdock import wiring
from airdock.core.lifecycle import Lifecycle

log = logging.getLogger("airdock.lifecycle")

SCHEDULED = "Scheduled Event"
RUN_OPERATION = "Airdock Lifecycle Operation"


def _event_time(event: dict[str, Any]) -> datetime:
    raw = event.get("time")
    if not raw:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(timezone.utc)


def handler(event: dict[str, Any], context: Any, lifecycle: Lifecycle | None = None) -> dict[str, Any]:
    worker = lifecycle or wiring.lifecycle()
    kind = event.get("detail-type")
    if kind == SCHEDULED:
        started = worker.tick(_event_time(event))
        if started:
            log.info("lifecycle started %s", started)
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
