"""Workflows port on Step Functions: one state machine per kind, ARNs from the deployment."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3

from airdock.core.ports import WorkflowKind
from airdock.core.timing import WorkflowTimings


class StepFunctionsWorkflows:
    def __init__(self, state_machine_arns: dict[str, str], client: Any | None = None,
                 timings: WorkflowTimings | None = None) -> None:
        self.arns = state_machine_arns
        self.sfn = client or boto3.client("stepfunctions")
        # The ASL reads its step timeouts and health budget from the input (core/timing.py).
        self.timings = timings or WorkflowTimings()

    def start(self, kind: WorkflowKind, name: str, payload: dict[str, Any]) -> str:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:40]
        response = self.sfn.start_execution(
            stateMachineArn=self.arns[kind], name=f"{safe}-{uuid.uuid4().hex[:12]}",
            input=json.dumps({**payload, "Timeouts": self.timings.execution_input()})
        )
        return str(response["executionArn"])
