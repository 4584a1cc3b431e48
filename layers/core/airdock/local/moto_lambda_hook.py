"""The local Step Functions engine's hold on moto's ASL interpreter: Lambda tasks call Python
callables, and executions run on the engine's own threads.

Moto internals touched -- pin ``moto==5.2.5`` exactly:

* ``moto.stepfunctions.parser.backend.execution.Execution`` is subclassed (``InlineExecution``)
  only to build moto's ``SyncExecutionWorker`` (runs the program in the calling thread) instead of
  ``ExecutionWorker`` (spawns an untracked thread). The engine calls ``Execution.start()`` from a
  thread it owns, so when it returns the final status/output/error/cause are already on the
  ``Execution`` -- no polling, no race, and the end is recorded in the store right there.
* One module attribute is replaced, once, process-wide (``install``):
  ``moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils
  .execute_lambda_function_integration``. Both Lambda task flavours call it through that module
  attribute (``StateTaskLambda`` for a bare function-ARN resource, ``StateTaskServiceLambda`` for
  ``arn:aws:states:::lambda:invoke``). The replacement looks up the engine by the execution's role
  ARN (each engine registers a unique synthetic role ARN, carried by moto into every frame as
  ``env.aws_execution_details.role_arn``, including Map/Parallel branches); for any execution that
  is not ours (e.g. someone else's ``mock_aws`` test) it calls moto's original function unchanged.
  Callable exceptions become moto's ``LambdaFunctionErrorException`` with the payload real Lambda
  returns (``{"errorMessage", "errorType", "requestId", "stackTrace"}``), so the ASL error name is
  the exception class name and the Cause is that JSON text -- exactly as on AWS.
* ``moto.stepfunctions.parser.utils.TMP_THREADS`` (a list moto appends every worker thread to and
  never empties) is pruned of dead threads when an execution starts (``prune_moto_threads``);
  otherwise a long-running ``airdock serve`` with polling loops would accumulate Thread objects
  forever.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import (
    ExecutionWorker,
    SyncExecutionWorker,
)
from moto.stepfunctions.parser.utils import TMP_THREADS

LOG = logging.getLogger(__name__)

#: A Lambda-handler-shaped callable: (event, context) -> JSON-serialisable result.
LambdaCallable = Callable[[Any, Any], Any]

#: Lambda's maximum timeout; the context's remaining time is measured from it because the
#: function's real timeout is not known locally.
_LAMBDA_TIMEOUT_SECONDS: Final = 900


class LambdaTarget(Protocol):
    """What the hook hands a Lambda task of a registered execution to (the engine)."""

    def invoke_lambda(self, parameters: dict) -> dict:
        """Lambda Invoke: ``{"FunctionName", "Payload"}`` in, an InvocationResponse out."""
        ...


# role ARN -> engine. Weak values: an engine that was dropped without close() disappears too.
_TARGETS: weakref.WeakValueDictionary[str, LambdaTarget] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()
_ORIGINAL_INTEGRATION: Callable[..., None] | None = None


def register(role_arn: str, target: LambdaTarget) -> None:
    with _LOCK:
        _TARGETS[role_arn] = target


def unregister(role_arn: str, target: LambdaTarget) -> None:
    with _LOCK:
        if _TARGETS.get(role_arn) is target:
            del _TARGETS[role_arn]


def _hooked_lambda_integration(
    env: Environment, parameters: dict, region: str, state_credentials: Any
) -> None:
    """Replacement for moto's ``execute_lambda_function_integration`` (same signature).

    Contract with moto (both Lambda task flavours): on success push an InvocationResponse-shaped
    dict on ``env.stack``; on a function error raise ``LambdaFunctionErrorException``; on a
    service error raise ``ClientError``.
    """
    target = _TARGETS.get(env.aws_execution_details.role_arn)
    if target is None or env.is_mocked_mode():
        assert _ORIGINAL_INTEGRATION is not None
        _ORIGINAL_INTEGRATION(
            env=env, parameters=parameters, region=region, state_credentials=state_credentials
        )
        return
    env.stack.append(target.invoke_lambda(parameters))


def install() -> None:
    """Idempotently route moto's Lambda task invocations through ``_hooked_lambda_integration``."""
    global _ORIGINAL_INTEGRATION
    with _LOCK:
        current = lambda_eval_utils.execute_lambda_function_integration
        if current is _hooked_lambda_integration:
            return
        _ORIGINAL_INTEGRATION = current
        lambda_eval_utils.execute_lambda_function_integration = _hooked_lambda_integration


def prune_moto_threads() -> None:
    # In-place on moto's module-level list (nothing in moto reads it). A thread appended
    # concurrently between the read and the assignment may be dropped from the list, which is
    # harmless: the list is bookkeeping only.
    TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]


class InlineExecution(Execution):
    """moto Execution whose program runs in the thread that calls ``start()`` (ours)."""

    def _get_start_execution_worker(self) -> ExecutionWorker:
        plain = super()._get_start_execution_worker()
        # Same arguments moto uses, but the Sync worker's start() evaluates inline.
        return SyncExecutionWorker(
            evaluation_details=plain._evaluation_details,
            exec_comm=plain._execution_communication,
            cloud_watch_logging_session=plain._cloud_watch_logging_session,
            activity_store=plain._activity_store,
        )


# ------------------------------------------------------------------- Lambda, for Python callables


def local_function_arn(
    function_name: str, region: str = "us-east-1", account_id: str = "000000000000"
) -> str:
    """ARN used locally for a function, e.g. the ``airdock-provisioner`` substitution."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"


def function_name(function: str) -> str:
    """Function name from a name, partial ARN or full ARN (with or without a qualifier)."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7:
        return parts[6]  # arn:aws:lambda:region:account:function:NAME[:qualifier]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]  # account:function:NAME[:qualifier]
    return parts[0]  # NAME[:qualifier]


@dataclass
class LambdaContext:
    """The subset of Lambda's context object handlers (and Powertools) read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def call_function(
    functions: Mapping[str, LambdaCallable], parameters: dict, region: str, account_id: str
) -> dict:
    """Call the Python callable for one Lambda invocation, Lambda-style."""
    function = str(parameters.get("FunctionName", ""))
    name = function_name(function)
    request_id = str(uuid.uuid4())
    handler = functions.get(name)
    if handler is None:
        raise ClientError(
            {
                "Error": {
                    "Code": "ResourceNotFoundException",
                    "Message": f"Function not found: {function}",
                },
                "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": request_id},
            },
            "Invoke",
        )
    raw = parameters.get("Payload")
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    event = json.loads(raw) if raw else {}
    context = LambdaContext(
        function_name=name,
        invoked_function_arn=function
        if function.startswith("arn:")
        else local_function_arn(name, region, account_id),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{name}",
        _deadline=time.monotonic() + _LAMBDA_TIMEOUT_SECONDS,
    )
    try:
        result = handler(event, context)
        # Round-trip through JSON like Lambda does: the state sees a copy, and a
        # non-serialisable result fails the task as it would on AWS.
        try:
            payload = json.loads(json.dumps(result))
        except (TypeError, ValueError) as ex:
            raise _MarshalError(str(ex)) from ex
    except BaseException as ex:  # noqa: BLE001 - any handler error is a function error
        error_type = (
            "Runtime.MarshalError" if isinstance(ex, _MarshalError) else type(ex).__name__
        )
        body = {
            "errorMessage": str(ex),
            "errorType": error_type,
            "requestId": request_id,
            # Like Lambda: frames from the handler down, not the runtime's (our) frame.
            "stackTrace": traceback.format_tb(
                ex.__traceback__.tb_next if ex.__traceback__ else None
            ),
        }
        LOG.info("function %s raised %s: %s", name, error_type, ex)
        raise lambda_eval_utils.LambdaFunctionErrorException(
            "Unhandled", json.dumps(body)
        ) from ex
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}


class _MarshalError(Exception):
    """A callable returned something JSON cannot encode (Lambda: Runtime.MarshalError)."""
