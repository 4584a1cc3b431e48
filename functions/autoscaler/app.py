"""The autoscaler: one run over every AVAILABLE environment (core/autoscaling.py does the work).

On AWS: an EventBridge schedule, `rate(1 minute)`. Locally: the server calls this handler every
few seconds (AIRDOCK_AUTOSCALER_INTERVAL_S) with its own Autoscaler, so both run the same code.
Event: the scheduled event (ignored) — the run depends only on the stores' state.
"""
from __future__ import annotations

from typing import Any

from airdock import wiring
from airdock.core import observability
from airdock.core.autoscaling import Autoscaler


@observability.instrument
def handler(event: dict[str, Any], context: Any, autoscaler: Autoscaler | None = None) -> dict[str, Any]:
    made = (autoscaler or wiring.autoscaler()).run()
    changed = sum(1 for d in made if d.desired != d.current)
    if changed:
        observability.count(observability.WORKER_SCALE_CHANGES, changed)
    return {"decisions": [{"environment": d.inputs.environment, "action": d.action, "desired": d.desired,
                           "current": d.current, "reason": d.reason, "errors": list(d.errors)} for d in made]}
