"""Workflows port on Step Functions: one state machine per kind, ARNs from the deployment."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3

from airdock.core.ports import WorkflowKind


class StepFunctionsWorkflows:
    def __init__(self, state_machine_arns: dict[str, str], client: Any | None = None) -> None:
        self.arns = state_machine_arns
        self.sfn = client or boto3.client("stepfunctions")

    def start(self, kind: WorkflowKind, name: str, payload: dict[str, Any]) -> str:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:40]
        response = self.sfn.start_execution(
            stateMachineArn=self.arns[kind], name=f"{safe}-{uuid.uuid4().hex[:12]}", input=json.dumps(payload)
        )
        return str(response["executionArn"])
