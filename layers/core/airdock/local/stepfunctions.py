"""Run the project's Step Functions ASL files in-process, durably (the local "Workflows" adapter).

The same ``statemachines/*.asl.json`` files run on AWS Step Functions and here. Execution is done
by moto 5.2.5's ASL interpreter (``moto.stepfunctions.parser``, a port of LocalStack's); Lambda
invocations made by Task states are routed to in-process Python callables instead of a Lambda
service. Nothing goes over HTTP and no Docker is needed.

How it is wired (moto internals touched -- pin ``moto==5.2.5`` exactly):

* A private ``StepFunctionsParserBackend(region, account)`` per engine, built directly (NOT taken
  from moto's global ``BackendDict`` and NOT under ``mock_aws``): it validates definitions
  (``create_state_machine`` -> ``AmazonStateLanguageParser``) and holds the ``StateMachine``
  objects. Nothing in botocore is patched, so other boto3 clients in the process are untouched.
* ``moto.stepfunctions.parser.backend.execution.Execution`` is subclassed only to build moto's
  ``SyncExecutionWorker`` (runs the program in the calling thread) instead of ``ExecutionWorker``
  (spawns an untracked thread). We call ``Execution.start()`` from a thread we own, so when it
  returns the final status/output/error/cause are already on the ``Execution`` -- no polling, no
  race, and we record the end in the store right there.
* One module attribute is replaced, once, process-wide:
  ``moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils
  .execute_lambda_function_integration``. Both Lambda task flavours call it through that module
  attribute (``StateTaskLambda`` for a bare function-ARN resource, ``StateTaskServiceLambda`` for
  ``arn:aws:states:::lambda:invoke``). The replacement looks up the engine by the execution's role
  ARN (each engine uses a unique synthetic role ARN, carried by moto into every frame as
  ``env.aws_execution_details.role_arn``, including Map/Parallel branches); for any execution that
  is not ours (e.g. someone else's ``mock_aws`` test) it calls moto's original function unchanged.
  Callable exceptions become moto's ``LambdaFunctionErrorException`` with the payload real Lambda
  returns (``{"errorMessage", "errorType", "requestId", "stackTrace"}``), so the ASL error name is
  the exception class name and the Cause is that JSON text -- exactly as on AWS.
* ``moto.stepfunctions.parser.utils.TMP_THREADS`` (a list moto appends every worker thread to and
  never empties) is pruned of dead threads when we start an execution; otherwise a long-running
  ``airdock serve`` with polling loops would accumulate Thread objects forever.

ASL support measured with this hook (tests/unit/test_local_stepfunctions.py exercises most):

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
Retry/Catch handles -- so ``airdock serve`` may want that logger at CRITICAL; this module logs
function errors itself at INFO.

Durability: moto keeps nothing on disk. Every execution is recorded in an ``ExecutionStore`` before
its thread starts and its end is recorded when it stops; ``resume_unfinished()`` (call on boot)
re-runs every execution recorded as started but not ended from its first state with its original
input, under the same execution ARN. Provisioner steps are idempotent by contract, so completed
steps become no-ops. The definition used on resume is the one loaded now. After ``close()`` no
callable is invoked again by that engine (a late Task fails with ``EngineClosed``, unrecorded).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sqlite3
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import ExecutionStatus, InvalidDefinition
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import (
    ExecutionWorker,
    SyncExecutionWorker,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import TMP_THREADS

LOG = logging.getLogger(__name__)

#: A Lambda-handler-shaped callable: (event, context) -> JSON-serialisable result.
LambdaCallable = Callable[[Any, Any], Any]

RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
ABORTED: Final = "ABORTED"

#: Lambda's maximum timeout; the context's remaining time is measured from it because the
#: function's real timeout is not known locally.
_LAMBDA_TIMEOUT_SECONDS: Final = 900

# AWS execution names: 1-80 chars, none of whitespace, brackets, wildcards, these specials, or
# control characters.
_NAME_RE: Final = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
_PLACEHOLDER_RE: Final = re.compile(r"\$\{([^}]*)\}")


# --------------------------------------------------------------------------------------- errors


class StepFunctionsError(Exception):
    """Base for errors this adapter raises; ``code`` is the matching AWS error code."""

    code = "StepFunctionsError"


class StateMachineDoesNotExist(StepFunctionsError):
    code = "StateMachineDoesNotExist"


class ExecutionDoesNotExist(StepFunctionsError):
    code = "ExecutionDoesNotExist"


class ExecutionAlreadyExists(StepFunctionsError):
    code = "ExecutionAlreadyExists"


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


def local_function_arn(
    function_name: str, region: str = "us-east-1", account_id: str = "000000000000"
) -> str:
    """ARN used locally for a function, e.g. the ``airdock-provisioner`` substitution."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"


# ------------------------------------------------------------------------------------ the store


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


@dataclass(frozen=True)
class ExecutionRecord:
    """What is stored about one execution (enough to describe it and to re-run it)."""

    execution_arn: str
    state_machine: str  # state machine name (key of LocalStepFunctions.definitions)
    state_machine_arn: str
    name: str
    input: str  # JSON text, exactly as started
    start_date: datetime.datetime
    status: str = RUNNING
    stop_date: datetime.datetime | None = None
    output: str | None = None  # JSON text
    error: str | None = None
    cause: str | None = None


class ExecutionStore(Protocol):
    """Where executions are recorded, so they survive a restart of the local server."""

    def record_start(self, execution: ExecutionRecord) -> None:
        """Insert a new RUNNING execution; raise ExecutionAlreadyExists if the ARN is known."""
        ...

    def record_end(
        self,
        execution_arn: str,
        status: str,
        output: str | None,
        error: str | None,
        cause: str | None,
    ) -> None: ...

    def unfinished(self) -> list[ExecutionRecord]:
        """Executions recorded as started and not ended, oldest first."""
        ...

    def get(self, execution_arn: str) -> ExecutionRecord | None: ...


class SqliteExecutionStore(ExecutionStore):
    """ExecutionStore in a SQLite file (WAL). Safe to share with other tables in ``state.db``.

    One connection guarded by a lock: calls are short and serialising them is simpler and
    cheaper than a connection per call; ``busy_timeout`` covers other connections (e.g. the
    repository adapter) writing to the same file.
    """

    _SCHEMA: Final = """
        CREATE TABLE IF NOT EXISTS sfn_executions (
            execution_arn     TEXT PRIMARY KEY,
            state_machine     TEXT NOT NULL,
            state_machine_arn TEXT NOT NULL,
            name              TEXT NOT NULL,
            input             TEXT NOT NULL,
            status            TEXT NOT NULL,
            start_date        TEXT NOT NULL,
            stop_date         TEXT,
            output            TEXT,
            error             TEXT,
            cause             TEXT
        );
        CREATE INDEX IF NOT EXISTS sfn_executions_status ON sfn_executions (status, start_date);
    """
    _COLUMNS: Final = (
        "execution_arn, state_machine, state_machine_arn, name, input, status, start_date, "
        "stop_date, output, error, cause"
    )

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        # check_same_thread=False: engine threads share it, serialised by self._lock.
        self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an execution recorded as started must survive even an OS crash; the cost
            # (one fsync per start/end) is negligible at workflow rates.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.executescript(self._SCHEMA)

    @staticmethod
    def _row_to_record(row: tuple[Any, ...]) -> ExecutionRecord:
        (arn, sm, sm_arn, name, inpt, status, start, stop, output, error, cause) = row
        return ExecutionRecord(
            execution_arn=arn,
            state_machine=sm,
            state_machine_arn=sm_arn,
            name=name,
            input=inpt,
            status=status,
            start_date=datetime.datetime.fromisoformat(start),
            stop_date=datetime.datetime.fromisoformat(stop) if stop else None,
            output=output,
            error=error,
            cause=cause,
        )

    def record_start(self, execution: ExecutionRecord) -> None:
        e = execution
        try:
            with self._lock:
                self._conn.execute(
                    f"INSERT INTO sfn_executions ({self._COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        e.execution_arn,
                        e.state_machine,
                        e.state_machine_arn,
                        e.name,
                        e.input,
                        e.status,
                        e.start_date.isoformat(),
                        e.stop_date.isoformat() if e.stop_date else None,
                        e.output,
                        e.error,
                        e.cause,
                    ),
                )
        except sqlite3.IntegrityError as ex:
            raise ExecutionAlreadyExists(f"Execution Already Exists: '{e.execution_arn}'") from ex

    def record_end(
        self,
        execution_arn: str,
        status: str,
        output: str | None,
        error: str | None,
        cause: str | None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE sfn_executions SET status=?, stop_date=?, output=?, error=?, cause=? "
                "WHERE execution_arn=?",
                (status, _now().isoformat(), output, error, cause, execution_arn),
            )

    def unfinished(self) -> list[ExecutionRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM sfn_executions WHERE status=? ORDER BY start_date",
                (RUNNING,),
            ).fetchall()
        return [self._row_to_record(r) for r in rows]

    def get(self, execution_arn: str) -> ExecutionRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM sfn_executions WHERE execution_arn=?",
                (execution_arn,),
            ).fetchone()
        return self._row_to_record(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# ------------------------------------------------------------------------------ the moto hook

# role ARN -> engine. Weak values: an engine that was dropped without close() disappears too.
_ENGINES: weakref.WeakValueDictionary[str, LocalStepFunctions] = weakref.WeakValueDictionary()
_ENGINES_LOCK = threading.Lock()
_ORIGINAL_INTEGRATION: Callable[..., None] | None = None


def _hooked_lambda_integration(
    env: Environment, parameters: dict, region: str, state_credentials: Any
) -> None:
    """Replacement for moto's ``execute_lambda_function_integration`` (same signature).

    Contract with moto (both Lambda task flavours): on success push an InvocationResponse-shaped
    dict on ``env.stack``; on a function error raise ``LambdaFunctionErrorException``; on a
    service error raise ``ClientError``.
    """
    engine = _ENGINES.get(env.aws_execution_details.role_arn)
    if engine is None or env.is_mocked_mode():
        assert _ORIGINAL_INTEGRATION is not None
        _ORIGINAL_INTEGRATION(
            env=env, parameters=parameters, region=region, state_credentials=state_credentials
        )
        return
    env.stack.append(engine._invoke(parameters, env))


def _install_hook() -> None:
    """Idempotently route moto's Lambda task invocations through ``_hooked_lambda_integration``."""
    global _ORIGINAL_INTEGRATION
    with _ENGINES_LOCK:
        current = lambda_eval_utils.execute_lambda_function_integration
        if current is _hooked_lambda_integration:
            return
        _ORIGINAL_INTEGRATION = current
        lambda_eval_utils.execute_lambda_function_integration = _hooked_lambda_integration


def _prune_moto_threads() -> None:
    # In-place on moto's module-level list (nothing in moto reads it). A thread appended
    # concurrently between the read and the assignment may be dropped from the list, which is
    # harmless: the list is bookkeeping only.
    TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]


def _function_name(function: str) -> str:
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


class _InlineExecution(Execution):
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


@dataclass
class _Running:
    record: ExecutionRecord
    execution: _InlineExecution
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
        _install_hook()
        self.region = region
        self.account_id = account_id
        self._functions = dict(functions)
        self._store = store
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._closed = False
        # A synthetic, unique role: moto carries it into every frame of every execution, which
        # is how the hook finds this engine (see module docstring).
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
        with _ENGINES_LOCK:
            _ENGINES[self._role_arn] = self

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
            start_date=_now(),
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
                env.set_stop(stop_date=_now(), cause="local engine closed", error=None)
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
        _prune_moto_threads()
        machine = self._state_machines[record.state_machine]
        # Same arguments moto's StepFunctionsParserBackend.start_execution passes (its own
        # annotations disagree with what it passes, hence the ignores).
        execution = _InlineExecution(
            name=record.name,
            sm_type=machine.sm_type,  # type: ignore[arg-type]
            role_arn=self._role_arn,
            exec_arn=record.execution_arn,
            account_id=self.account_id,
            region_name=self.region,
            state_machine=machine,  # type: ignore[arg-type]
            start_date=_now(),
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
        # them is refused by _invoke instead of falling through to moto's real boto3 client.
        with self._lock:
            if not (self._closed and not self._running):
                return
        with _ENGINES_LOCK:
            if _ENGINES.get(self._role_arn) is self:
                del _ENGINES[self._role_arn]

    def _invoke(self, parameters: dict, env: Environment) -> dict:
        """Call the Python callable for one Lambda invocation, Lambda-style."""
        function = str(parameters.get("FunctionName", ""))
        name = _function_name(function)
        request_id = str(uuid.uuid4())
        if self._closed:
            # Surfaces as a task failure in an execution that is stopped anyway (not recorded).
            raise EngineClosed("local Step Functions engine is closed")
        handler = self._functions.get(name)
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
            else local_function_arn(name, self.region, self.account_id),
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


__all__ = [
    "ABORTED",
    "FAILED",
    "RUNNING",
    "SUCCEEDED",
    "TIMED_OUT",
    "EngineClosed",
    "ExecutionAlreadyExists",
    "ExecutionDoesNotExist",
    "ExecutionRecord",
    "ExecutionStore",
    "InvalidName",
    "LambdaCallable",
    "LambdaContext",
    "LocalStepFunctions",
    "SqliteExecutionStore",
    "StateMachineDoesNotExist",
    "StepFunctionsError",
    "local_function_arn",
    "substitute",
]
