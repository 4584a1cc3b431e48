"""The autoscaler: one run over every AVAILABLE environment (core/autoscaling.py does the work).

On AWS: an EventBridge schedule, `rate(1 minute)`. Locally: LocalContext calls this handler every
few seconds (AIRDOCK_AUTOSCALER_INTERVAL_S) with its own adapters injected, so both run the same
code. Event: the scheduled event (ignored) — the run depends only on the stores' state.
"""
from __future__ import annotations

from typing import Any

from airdock.core import autoscaling
from airdock.core.ports import Clock, DecisionLog, EnvironmentRepository, Metrics, SystemClock, WorkerPool


def handler(event: dict[str, Any], context: Any, *, repository: EnvironmentRepository | None = None,
            metrics: Metrics | None = None, pool: WorkerPool | None = None, decisions: DecisionLog | None = None,
            clock: Clock | None = None, config: autoscaling.AutoscalingConfig | None = None) -> dict[str, Any]:
    if repository is None or metrics is None or pool is None:
        repository, metrics, pool, decisions = _aws_adapters()
        # On AWS nothing else publishes QueuedTasks/RunningTasks: sample them just before deciding.
        from airdock.aws.factory import publish_task_metrics

        publish_task_metrics(repository, metrics, pool)
    made = autoscaling.tick(repository, metrics, pool, clock or SystemClock(),
                            config or autoscaling.AutoscalingConfig.from_environ(), decisions)
    return {"decisions": [{"environment": d.inputs.environment, "action": d.action, "desired": d.desired,
                           "current": d.current, "reason": d.reason, "errors": list(d.errors)} for d in made]}


def _aws_adapters() -> tuple[EnvironmentRepository, Metrics, WorkerPool, DecisionLog | None]:
    """The AWS adapters: DynamoDB repository, CloudWatch metrics, the ECS worker pool.

    The ECS side provides `airdock.aws.factory.build_autoscaler_adapters(settings)` returning
    (metrics, pool, decisions) — see the WorkerPool port in core/ports.py for the contract.
    """
    from airdock.aws import factory
    from airdock.core.settings import settings
    from airdock.wiring import environment_service

    build = getattr(factory, "build_autoscaler_adapters", None)
    if build is None:
        raise RuntimeError("airdock.aws.factory.build_autoscaler_adapters is not implemented yet: the ECS "
                           "worker pool (WorkerPool port) and a DecisionLog are needed on AWS")
    metrics, pool, decisions = build(settings())
    return environment_service().repository, metrics, pool, decisions
