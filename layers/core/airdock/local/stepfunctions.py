"""Run the project's Step Functions ASL files in-process, durably (the local "Workflows" adapter).

The same ``statemachines/*.asl.json`` files run on AWS Step Functions and here. Execution is done
by moto 5.2.5's ASL interpreter (``moto.stepfunctions.parser``, a port of LocalStack's); Lambda
invocations made by Task states are routed to in-process Python callables instead of a Lambda
service. Nothing goes over HTTP and no Docker is needed.

How it is wired: a private ``StepFunctionsParserBackend(region, account)`` per engine, built
directly (NOT taken from moto's global ``BackendDict`` and NOT under ``mock_aws``), validates
definitions (``create_state_machine`` -> ``AmazonStateLanguageParser``) and holds the
``StateMachine`` objects; nothing in botocore is patched, so other boto3 clients in the process are
untouched. How executions run on our threads and Lambda tasks reach Python callables (the moto
internals touched; pin ``moto==5.2.5`` exactly) is ``moto_lambda_hook.py``; where executions are
recorded is ``executions.py``.

ASL support measured with the hook (tests/unit/test_local_stepfunctions.py exercises most):

* Task, both forms work locally and on AWS:
  - ``"Resource": "arn:aws:lambda:...:function:NAME"`` -> state result is the function's return.
  - ``"Resource": "arn:aws:states:::lambda:invoke"`` with ``Parameters: {"FunctionName": ...,
    "Payload.$": "$"}`` -> result is the invocation response ``{"StatusCode", "ExecutedVersion",
    "Payload"}`` (AWS adds SdkHttpMetadata/SdkResponseMetadata), so use
    ``"ResultSelector": {"Payload.$": "$.Payload"}`` or ``OutputPath: "$.Payload"``. Either form is
    fine for Airdock; the bare-ARN form is simpler and needs no ResultSelector.
  - Parameters / ResultSelector with ``.$`` keys, ResultPath, InputPath, OutputPath, intrinsic
    functions (``States.Format`` etc.), ``$$`` context object.
  - Retry (``ErrorEquals`` on exception class names, ``States.ALL``, ``States.TaskFailed``;
    IntervalSeconds/BackoffRate/MaxAttempts are honoured with real sleeps -- a retry sleep cannot be
    interrupted by ``close()``), Catch with ``ResultPath`` (gets ``{"Error", "Cause"}``).
  - ``TimeoutSeconds`` on a Task -> ``States.Timeout`` (the callable's thread keeps running; Python
    threads cannot be killed).
* Choice, Wait (``Seconds``/``SecondsPath``; long "wait then poll again" loops work, a Wait is
  interrupted by ``close()``), Pass, Fail, Succeed, Map (inline ItemProcessor/Iterator,
  MaxConcurrency), Parallel.
* Not supported locally (moto): JSONata query language, ``.sync`` integrations (ecs:runTask.sync,
  states:startExecution.sync:2), Map ItemReader/ResultWriter (would need S3). Other service
  integrations (``aws-sdk:*``, sqs, sns, dynamodb...) are NOT routed here: moto would create a real
  boto3 client pointed at ``localhost:<moto server port>``; keep our ASL to JSONPath + Lambda tasks.

Differences from AWS to know about: a Task naming a function that is not in ``functions`` fails
with ``Lambda.ResourceNotFoundException`` under ``lambda:invoke`` but with error ``Exception`` under
the bare-ARN form (moto's mapping); Lambda service errors (``Lambda.ServiceException`` & co., worth a
Retry on AWS) never happen locally; the Lambda context's remaining time counts down from 900 s.
moto logs every failure event at ERROR on ``moto.stepfunctions.parser`` -- including ones a
Retry/Catch handles -- so ``airdock serve`` may want that logger at CRITICAL; the hook logs
function errors itself at INFO.

Durability: moto keeps nothing on disk. Every execution is recorded in an ``ExecutionStore`` before
its thread starts and its end is recorded when it stops; ``resume_unfinished()`` (call on boot)
re-runs every execution recorded as started but not ended from its first state with its original
input, under the same execution ARN. Provisioner steps are idempotent by contract, so completed
steps become no-ops. The definition used on resume is the one loaded now. After ``close()`` no
callable is invoked again by that engine (a late Task fails with ``EngineClosed``, unrecorded).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from moto.stepfunctions.parser.api import ExecutionStatus, InvalidDefinition
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from airdock.local import moto_lambda_hook
from airdock.local.executions import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionRecord,
    ExecutionStore,
    StepFunctionsError,
    utc_now,
)
from airdock.local.moto_lambda_hook import InlineExecution, LambdaCallable, local_function_arn

LOG = logging.getLogger(__name__)

# AWS execution names: 1-80 chars, none of whitespace, brackets, wildcards, these specials, or
# control characters.
_NAME_RE: Final = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
_PLACEHOLDER_RE: Final = re.compile(r"\$\{([^}]*)\}")


# --------------------------------------------------------------------------------------- errors


class StateMachineDoesNotExist(StepFunctionsError):
    code = "StateMachineDoesNotExist"


class InvalidName(StepFunctionsError):
    code = "InvalidName"


class EngineClosed(StepFunctionsError):
    code = "EngineClosed"


# ---------------------------------------------------------------------------------- definitions


def substitute(asl_text: str, substitutions: dict[str, str]) -> str:
    """Apply SAM/CloudFormation ``DefinitionSubstitutions``: replace each ``${Name}``.

    Replacement is textual, like CloudFormation's, so the values must not need JSON escaping
    (ARNs and names don't). A placeholder without a value raises ``ValueError`` -- stricter than
    deploying, but a typo here should fail the local run instead of reaching a Task as a literal.
    """
    missing: set[str] = set()

    def _one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            missing.add(key)
            return match.group(0)
        return substitutions[key]

    text = _PLACEHOLDER_RE.sub(_one, asl_text)
    if missing:
        raise ValueError(f"no substitution for placeholder(s): {', '.join(sorted(missing))}")
    return text


@dataclass
class _Running:
    record: ExecutionRecord
    execution: InlineExecution
    done: threading.Event
    thread: threading.Thread | None = None


# --------------------------------------------------------------------------------- the engine


class LocalStepFunctions:
    """Runs ASL state machines in-process; Lambda tasks call Python callables.

    Thread-safe. Each execution runs on its own daemon thread (moto adds a few helper threads
    per state). Executions are recorded in ``store``; see ``resume_unfinished``.
    """

    def __init__(
        self,
        definitions: dict[str, str],
        functions: dict[str, LambdaCallable],
        store: ExecutionStore,
        region: str = "us-east-1",
        account_id: str = "000000000000",
    ) -> None:
        """``definitions``: state machine name -> ASL JSON text (after ``substitute``).
        ``functions``: Lambda function name -> callable; a Task whose resource/FunctionName names
        an unknown function fails with ``Lambda.ResourceNotFoundException``."""
        moto_lambda_hook.install()
        self.region = region
        self.account_id = account_id
        self._functions = dict(functions)
        self._store = store
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._closed = False
        # A synthetic, unique role: moto carries it into every frame of every execution, which
        # is how the hook finds this engine (see moto_lambda_hook.py).
        self._role_arn = f"arn:aws:iam::{account_id}:role/airdock-local-sfn-{uuid.uuid4().hex}"
        # Private backend (not moto's global BackendDict): invisible to any mock_aws.
        self._backend = StepFunctionsParserBackend(region_name=region, account_id=account_id)
        self._state_machines: dict[str, Any] = {}  # name -> moto StateMachine
        for name, text in definitions.items():
            try:
                self._state_machines[name] = self._backend.create_state_machine(
                    name=name, definition=text, roleArn=self._role_arn
                )
            except InvalidDefinition as ex:
                raise ValueError(f"invalid ASL for state machine {name!r}: {ex}") from ex
        moto_lambda_hook.register(self._role_arn, self)

    # ------------------------------------------------------------------------------ public API

    def state_machine_arn(self, state_machine: str) -> str:
        return self._machine(state_machine).arn

    def start_execution(self, state_machine: str, input: dict, name: str | None = None) -> str:
        """Start an execution and return its ARN.

        Like AWS (STANDARD): the same name and input as a RUNNING execution returns that
        execution's ARN; a name already used otherwise raises ExecutionAlreadyExists.
        """
        if self._closed:
            raise EngineClosed("engine is closed")
        machine = self._machine(state_machine)
        name = name or str(uuid.uuid4())
        if not _NAME_RE.match(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        input_text = json.dumps(input)  # also rejects non-JSON input early
        arn = f"arn:aws:states:{self.region}:{self.account_id}:execution:{state_machine}:{name}"
        record = ExecutionRecord(
            execution_arn=arn,
            state_machine=state_machine,
            state_machine_arn=machine.arn,
            name=name,
            input=input_text,
            start_date=utc_now(),
        )
        with self._lock:
            existing = self._store.get(arn)
            if existing is not None:
                if existing.status == RUNNING and json.loads(existing.input) == input:
                    return arn
                raise ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'")
            # Recorded before the thread starts: a crash from here on is resumed on boot.
            self._store.record_start(record)
            self._launch(record)
        return arn

    def describe_execution(self, execution_arn: str) -> dict:
        """DescribeExecution-shaped dict; output/error/cause/stopDate only when set (like AWS)."""
        record = self._store.get(execution_arn)
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        out: dict[str, Any] = {
            "executionArn": record.execution_arn,
            "stateMachineArn": record.state_machine_arn,
            "name": record.name,
            "status": record.status,
            "startDate": record.start_date,
            "input": record.input,
        }
        for key, value in (
            ("stopDate", record.stop_date),
            ("output", record.output),
            ("error", record.error),
            ("cause", record.cause),
        ):
            if value is not None:
                out[key] = value
        return out

    def wait(self, execution_arn: str, timeout: float) -> dict:
        """Block until the execution is no longer RUNNING; return ``describe_execution``.

        Raises TimeoutError if it is still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = self._running.get(execution_arn)
            remaining = deadline - time.monotonic()
            if running is not None:
                running.done.wait(max(0.0, remaining))
            description = self.describe_execution(execution_arn)
            if description["status"] != RUNNING:
                return description
            if time.monotonic() >= deadline:
                raise TimeoutError(f"execution still RUNNING after {timeout}s: {execution_arn}")
            if running is None:
                # Not run by this engine (e.g. not resumed yet, or another process): poll.
                time.sleep(min(0.05, max(0.0, remaining)))

    def resume_unfinished(self) -> list[str]:
        """Re-run, from the first state with the original input, every execution recorded as
        started but not ended (call once on boot). Returns the ARNs started again."""
        if self._closed:
            raise EngineClosed("engine is closed")
        resumed: list[str] = []
        for record in self._store.unfinished():
            if record.state_machine not in self._state_machines:
                # Left RUNNING (not failed) so it resumes once the definition is back.
                LOG.warning(
                    "cannot resume %s: state machine %r is not defined",
                    record.execution_arn,
                    record.state_machine,
                )
                continue
            with self._lock:
                if record.execution_arn in self._running:
                    continue
                self._launch(record)
            LOG.info("resumed execution %s", record.execution_arn)
            resumed.append(record.execution_arn)
        return resumed

    def close(self, join_timeout: float = 1.0) -> None:
        """Stop running executions WITHOUT recording an end, so they resume on the next boot.

        Wait states are interrupted; a callable that is executing cannot be (Python threads
        cannot be killed): it finishes in the background, its result is discarded and no later
        state runs. Threads are joined for at most ``join_timeout`` seconds in total.
        """
        with self._lock:
            self._closed = True
            running = list(self._running.values())
        for r in running:
            env = r.execution.exec_worker.env if r.execution.exec_worker else None
            if env is not None:
                env.set_stop(stop_date=utc_now(), cause="local engine closed", error=None)
        deadline = time.monotonic() + join_timeout
        for r in running:
            if r.thread is not None:
                r.thread.join(max(0.0, deadline - time.monotonic()))
        self._maybe_unregister()

    # ------------------------------------------------------------------------------- internals

    def _machine(self, state_machine: str) -> Any:
        try:
            return self._state_machines[state_machine]
        except KeyError:
            raise StateMachineDoesNotExist(
                f"State Machine Does Not Exist: '{state_machine}'"
            ) from None

    def _launch(self, record: ExecutionRecord) -> None:
        """Start a thread running ``record`` (caller holds self._lock)."""
        moto_lambda_hook.prune_moto_threads()
        machine = self._state_machines[record.state_machine]
        # Same arguments moto's StepFunctionsParserBackend.start_execution passes (its own
        # annotations disagree with what it passes, hence the ignores).
        execution = InlineExecution(
            name=record.name,
            sm_type=machine.sm_type,  # type: ignore[arg-type]
            role_arn=self._role_arn,
            exec_arn=record.execution_arn,
            account_id=self.account_id,
            region_name=self.region,
            state_machine=machine,  # type: ignore[arg-type]
            start_date=utc_now(),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=record.input,
        )
        running = _Running(record=record, execution=execution, done=threading.Event())
        running.thread = threading.Thread(
            target=self._run,
            args=(running,),
            name=f"sfn:{record.state_machine}:{record.name}",
            daemon=True,  # never blocks interpreter exit; unfinished work resumes on boot
        )
        self._running[record.execution_arn] = running
        running.thread.start()

    def _run(self, running: _Running) -> None:
        execution = running.execution
        arn = running.record.execution_arn
        output: str | None = None
        error: str | None = None
        cause: str | None = None
        try:
            if self._closed:
                # close() raced with _launch: do not start (it stays RUNNING in the store).
                raise EngineClosed("local Step Functions engine is closed")
            # Inline (SyncExecutionWorker): returns when the program has ended, with the result
            # reflected on `execution`. moto's Program catches exceptions from states and turns
            # them into FAILED/States.Runtime, so this rarely raises.
            execution.start()
            status = (execution.exec_status or ExecutionStatus.FAILED).value
            if status == SUCCEEDED:
                output = to_json_str(execution.output, separators=(",", ":"))
            error, cause = execution.error, execution.cause
        except BaseException as ex:  # noqa: BLE001 - the engine thread must never die silently
            LOG.exception("local Step Functions engine failed on %s", arn)
            status, error, cause = FAILED, "States.Runtime", f"{type(ex).__name__}: {ex}"
        try:
            with self._lock:
                closed = self._closed
            if closed:
                # Simulated/real shutdown: leave it RUNNING in the store so it resumes.
                LOG.info("engine closed; not recording end of %s (%s)", arn, status)
            else:
                self._store.record_end(arn, status, output, error, cause)
        except Exception:
            LOG.exception("could not record end of %s", arn)
        finally:
            with self._lock:
                if self._running.get(arn) is running:
                    del self._running[arn]
            running.done.set()
            self._maybe_unregister()

    def _maybe_unregister(self) -> None:
        # A closed engine stays registered while its threads run, so a late Lambda call from
        # them is refused by invoke_lambda instead of falling through to moto's real boto3 client.
        with self._lock:
            if not (self._closed and not self._running):
                return
        moto_lambda_hook.unregister(self._role_arn, self)

    def invoke_lambda(self, parameters: dict) -> dict:
        """A Lambda task of one of this engine's executions (called by moto_lambda_hook)."""
        if self._closed:
            # Surfaces as a task failure in an execution that is stopped anyway (not recorded).
            raise EngineClosed("local Step Functions engine is closed")
        return moto_lambda_hook.call_function(self._functions, parameters, self.region, self.account_id)


__all__ = [
    "EngineClosed",
    "InvalidName",
    "LocalStepFunctions",
    "StateMachineDoesNotExist",
    "local_function_arn",
    "substitute",
]
