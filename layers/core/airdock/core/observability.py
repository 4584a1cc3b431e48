"""Logs, traces and metrics of the Lambda functions, with Powertools: one place for every function.

On Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) `instrument(handler)` wraps a function's handler:
- Logger: the Powertools logger is the `airdock` logger itself (POWERTOOLS_SERVICE_NAME), so every
  `logging.getLogger("airdock.…")` of the code below it writes JSON lines at POWERTOOLS_LOG_LEVEL
  with the invocation's request id. Lambda's own root logger would drop their INFO lines.
- Tracer: X-Ray segments for the invocation and every boto3 call (the template turns tracing on).
  Responses are not recorded: they carry CLI and web login tokens.
- Metrics: the custom metrics `count()` adds, flushed as CloudWatch embedded metric format at the
  end of the invocation (a log line; no PutMetricData call), namespace POWERTOOLS_METRICS_NAMESPACE.

Locally the same handlers run in-process under load, with the local server's logging: there
`instrument` returns the handler itself and `count` does nothing, so a request pays nothing for
this and nothing Powertools does to loggers (its own handler, root filters) happens locally.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Callable, NamedTuple, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Powertools(NamedTuple):
    logger: Any
    tracer: Any
    metrics: Any


def on_lambda() -> bool:
    # Lambda's own signal, read when a handler module is imported (as Powertools reads it), before
    # and apart from Airdock's settings.
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@lru_cache(maxsize=1)
def powertools() -> Powertools:
    """The function's Logger, Tracer and Metrics (made once per Lambda sandbox). Powertools reads
    its own variables (POWERTOOLS_SERVICE_NAME, _LOG_LEVEL, _METRICS_NAMESPACE; template.yaml)."""
    from aws_lambda_powertools import Logger, Metrics, Tracer

    # Tracer() is disabled by itself outside Lambda and when POWERTOOLS_TRACE_DISABLED is set.
    return Powertools(Logger(), Tracer(), Metrics())


def instrument(handler: F) -> F:
    """`handler` with Powertools' logging context, tracing and metrics on Lambda; itself locally."""
    if not on_lambda():
        return handler
    tools = powertools()
    wrapped = tools.logger.inject_lambda_context(handler, clear_state=True)
    wrapped = tools.tracer.capture_lambda_handler(wrapped, capture_response=False)
    return tools.metrics.log_metrics(wrapped)  # type: ignore[no-any-return]


def count(name: str, value: float = 1.0) -> None:
    """Add `value` to the custom metric `name` (unit Count) of this invocation, on Lambda."""
    if on_lambda():
        from aws_lambda_powertools.metrics import MetricUnit

        powertools().metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# The custom metrics (namespace POWERTOOLS_METRICS_NAMESPACE, dimension service); template.yaml's
# alarms watch some of them, bench/cost.py counts them.
API_INTERNAL_ERRORS = "ApiInternalErrors"  # answers MWAA's InternalServerException (a bug or an outage)
PROVISIONING_STEP_FAILURES = "ProvisioningStepFailures"  # a workflow step raised
LIFECYCLE_OPERATIONS_STARTED = "LifecycleOperationsStarted"  # pause/resume/maintenance started by schedule
COMPONENT_TASK_EXITS = "ComponentTaskExits"  # an environment's Airflow container exited (ECS task event)
WORKER_SCALE_CHANGES = "WorkerScaleChanges"  # the autoscaler changed a worker count
CUSTOM_METRICS = (API_INTERNAL_ERRORS, PROVISIONING_STEP_FAILURES, LIFECYCLE_OPERATIONS_STARTED, COMPONENT_TASK_EXITS,
                  WORKER_SCALE_CHANGES)
