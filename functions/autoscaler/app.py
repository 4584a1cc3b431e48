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
    config = config or autoscaling.AutoscalingConfig.from_environ()
    aws = repository is None or metrics is None or pool is None
    if aws:
        repository, metrics, pool, decisions = _aws_adapters()
        # On AWS nothing else publishes the task metrics: sample them just before deciding.
        from airdock.aws.factory import publish_task_metrics

        publish_task_metrics(repository, metrics, pool, config=config)
    made = autoscaling.tick(repository, metrics, pool, clock or SystemClock(), config, decisions)
    if aws:
        # Markers of released workers go once their tasks have stopped (worker_pool.py).
        from airdock.aws.factory import prune_drain_markers

        prune_drain_markers(repository, pool)
    return {"decisions": [{"environment": d.inputs.environment, "action": d.action, "desired": d.desired,
                           "current": d.current, "reason": d.reason, "errors": list(d.errors)} for d in made]}


def _aws_adapters() -> tuple[EnvironmentRepository, Metrics, WorkerPool, DecisionLog | None]:
    """The AWS adapters: DynamoDB repository, CloudWatch metrics, the ECS worker pool."""
    from airdock.aws import factory
    from airdock.core.settings import settings
    from airdock.wiring import environment_service

    metrics, pool, decisions = factory.build_autoscaler_adapters(settings())
    return environment_service().repository, metrics, pool, decisions
