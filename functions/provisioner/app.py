"""The provisioning workflows' task steps (each Task state of statemachines/*.asl.json).

Event: {"step": "<name>", "Name": "<environment>", ...}. A failure the user can act on is
re-raised as an exception whose class name is its error code, because Step Functions names a
Lambda error after the exception type: the ASL Catch then hands that code to the mark-failed
step, which stores it as LastUpdate.Error.ErrorCode.
"""
from __future__ import annotations

from typing import Any

from airdock.core import observability
from airdock.core.errors import ProvisioningError
from airdock.core.provisioning import Provisioner
from airdock import wiring


@observability.instrument
def handler(event: dict[str, Any], context: Any, provisioner: Provisioner | None = None) -> dict[str, Any]:
    worker = provisioner or wiring.provisioner()
    try:
        return worker.run(event)
    except ProvisioningError as exc:
        observability.count(observability.PROVISIONING_STEP_FAILURES)
        named = type(exc.code, (ProvisioningError,), {})
        raise named(exc.code, exc.message) from None
    except Exception:
        observability.count(observability.PROVISIONING_STEP_FAILURES)
        raise
