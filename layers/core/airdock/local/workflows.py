"""Workflows port, locally: the statemachines/*.asl.json files run in-process by LocalStepFunctions,
their Lambda tasks routed to the provisioner function's own handler."""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import airdock
from airdock.core.ports import WorkflowKind
from airdock.core.timing import WorkflowTimings
from airdock.local.executions import SqliteExecutionStore
from airdock.local.stepfunctions import LocalStepFunctions, substitute

PROVISIONER_FUNCTION = "airdock-provisioner"
STATE_MACHINES: dict[str, str] = {
    "create": "create_environment",
    "update": "update_environment",
    "delete": "delete_environment",
}


def statemachines_dir() -> Path:
    return Path(airdock.__file__).resolve().parents[3] / "statemachines"


def load_definitions(region: str, account_id: str) -> dict[str, str]:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{PROVISIONER_FUNCTION}"
    return {
        name: substitute((statemachines_dir() / f"{name}.asl.json").read_text(encoding="utf-8"), {"ProvisionerFunctionArn": arn})
        for name in STATE_MACHINES.values()
    }


class LocalWorkflows:
    def __init__(self, engine: LocalStepFunctions, timings: WorkflowTimings | None = None) -> None:
        self.engine = engine
        # Local steps block (runtime builds, graceful drains): core/timing.py's defaults.
        self.timings = timings or WorkflowTimings()

    def start(self, kind: WorkflowKind, name: str, payload: dict[str, Any]) -> str:
        # Execution names must be unique per state machine and ≤ 80 chars of [A-Za-z0-9-_].
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:40]
        return self.engine.start_execution(STATE_MACHINES[kind], {**payload, "Timeouts": self.timings.execution_input()},
                                           name=f"{safe}-{uuid.uuid4().hex[:12]}")


def build_engine(db_path: Path, region: str, account_id: str, provisioner_handler: Any) -> LocalStepFunctions:
    return LocalStepFunctions(
        definitions=load_definitions(region, account_id),
        functions={PROVISIONER_FUNCTION: provisioner_handler},
        store=SqliteExecutionStore(db_path),
        region=region,
        account_id=account_id,
    )


def describe(engine: LocalStepFunctions, execution_arn: str) -> dict[str, Any]:
    return json.loads(json.dumps(engine.describe_execution(execution_arn), default=str))
