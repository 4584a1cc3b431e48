"""Powertools on Lambda, nothing locally (core/observability.py).

On Lambda the INFO lines of Airdock's own loggers reach the function's log (Lambda's root logger
would drop them), as JSON with the request id, and custom metrics leave as embedded metric format.
Locally the handlers are the plain functions: no wrapper per request, no change to logging.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from airdock.core import observability
from airdock.local.functions import load_function

_ON_LAMBDA = r"""
import logging
from types import SimpleNamespace
from airdock.core.errors import ProvisioningError
from airdock.local.functions import load_function

class Failing:
    def run(self, event):
        logging.getLogger("airdock.core.provisioning").info("[analytics] creating the Celery broker queue")
        raise ProvisioningError("INCOMPATIBLE_NETWORK", "subnets elsewhere")

context = SimpleNamespace(function_name="airdock-provisioner", memory_limit_in_mb=512, aws_request_id="req-123",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:airdock-provisioner")
try:
    load_function("provisioner").handler({"step": "prepare", "Name": "analytics"}, context, provisioner=Failing())
except ProvisioningError as exc:
    print("raised", type(exc).__name__)
"""


def test_on_lambda_airdock_info_lines_and_metrics_reach_the_function_log() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "airdock-provisioner", "POWERTOOLS_SERVICE_NAME": "airdock",
                "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_NAMESPACE": "Airdock",
                # No X-Ray daemon here; the tracer's own switch (the template turns tracing on).
                "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"})
    result = subprocess.run([sys.executable, "-c", _ON_LAMBDA], capture_output=True, text=True, env=env, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    logged = [line for line in lines if "creating the Celery broker queue" in str(line.get("message"))]
    assert logged, result.stdout
    assert logged[0]["level"] == "INFO" and logged[0]["service"] == "airdock"
    assert logged[0]["function_request_id"] == "req-123"
    emf = [line for line in lines if "_aws" in line]
    assert emf, result.stdout
    metrics = {m["Name"] for d in emf[0]["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert observability.PROVISIONING_STEP_FAILURES in metrics
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Airdock"
    assert "raised INCOMPATIBLE_NETWORK" in result.stdout


def test_locally_the_handlers_are_the_plain_functions_and_logging_is_untouched(monkeypatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    def plain(event, context):  # noqa: ANN001, ANN202
        return event

    assert observability.instrument(plain) is plain
    observability.count(observability.API_INTERNAL_ERRORS)  # a no-op, nothing collects it
    assert observability.powertools.cache_info().currsize == 0
    for name in ("api", "provisioner", "autoscaler", "lifecycle"):
        assert not hasattr(load_function(name).handler, "__wrapped__"), name
    assert not any(type(h).__module__.startswith("aws_lambda_powertools") for h in logging.getLogger("airdock").handlers)
