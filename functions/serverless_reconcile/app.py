"""MWAA Serverless's background step (EventBridge `rate(1 minute)` on AWS; a loop locally):
finish deletes, fire due schedules, hand STARTING runs to the engine, follow live runs."""
from __future__ import annotations

from typing import Any

from airdock.core.serverless.service import WorkflowService
from airdock.wiring import workflow_service


def handler(event: dict[str, Any], context: Any, service: WorkflowService | None = None) -> dict[str, Any]:
    (service or workflow_service()).reconcile()
    return {"ok": True}
