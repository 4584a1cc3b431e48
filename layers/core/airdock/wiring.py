"""Composition root on AWS: which adapters back the domain in a Lambda function.

Each function's handler asks here for the domain object it drives (the service, the provisioner,
the autoscaler run, the lifecycle), built once per Lambda container from the function's
environment variables (template.yaml sets them). Local mode never comes here: `airdock serve`
composes its own adapters (airdock.local.context) and hands the handlers the same domain objects.
"""
from __future__ import annotations

from functools import lru_cache

from airdock.core.autoscaling import Autoscaler, AutoscalingConfig
from airdock.core.lifecycle import Lifecycle
from airdock.core.provisioning import Provisioner
from airdock.core.serverless.service import WorkflowService
from airdock.core.service import EnvironmentService
from airdock.core.settings import settings
from airdock.core.timing import LifecycleTimings


# The AWS adapters are imported on first use: local mode loads the same handlers (and so this
# module) without ever building them.


@lru_cache(maxsize=1)
def environment_service() -> EnvironmentService:
    from airdock.aws import factory

    return factory.build_service(settings())


@lru_cache(maxsize=1)
def provisioner() -> Provisioner:
    from airdock.aws import factory

    return Provisioner(environment_service(), factory.ecs_compute(settings()))


@lru_cache(maxsize=1)
def autoscaler() -> Autoscaler:
    from airdock.aws import factory
    from airdock.aws.metrics import CloudWatchMetrics, ReadYourWritesMetrics

    # On AWS nothing else publishes the task metrics: the run samples them before deciding.
    # Decisions are not stored on AWS yet: each is a JSON log line in the function's log group.
    return Autoscaler(environment_service().repository, ReadYourWritesMetrics(CloudWatchMetrics()),
                      factory.worker_pool(settings()), AutoscalingConfig.from_settings(settings()),
                      samples_metrics=True)


@lru_cache(maxsize=1)
def lifecycle() -> Lifecycle:
    from airdock.aws import factory

    # A resume or restart on Fargate may outlast one invocation: it continues in the next one.
    return Lifecycle(environment_service(), factory.ecs_compute(settings()),
                     timings=LifecycleTimings.from_settings(settings()))


@lru_cache(maxsize=1)
def workflow_service() -> WorkflowService:
    """MWAA Serverless's service (local mode passes its own to the handler)."""
    from airdock.aws.serverless.factory import build_workflow_service

    return build_workflow_service(settings())
