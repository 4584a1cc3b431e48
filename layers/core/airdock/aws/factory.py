"""AWS adapters for the Lambda functions, configured from the function's environment."""
from __future__ import annotations

import os

from airdock.aws.buckets import S3Buckets
from airdock.aws.dynamodb_repository import DynamoDbEnvironmentRepository
from airdock.aws.events import EventBridgeEvents
from airdock.aws.workflows import StepFunctionsWorkflows
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} must be set for the AWS backend")
    return value


def build_service(settings: Settings) -> EnvironmentService:
    arns = {
        kind: os.environ[var]
        for kind, var in (("create", "AIRDOCK_CREATE_SM_ARN"), ("update", "AIRDOCK_UPDATE_SM_ARN"), ("delete", "AIRDOCK_DELETE_SM_ARN"))
        if os.environ.get(var)
    }
    return EnvironmentService(
        repository=DynamoDbEnvironmentRepository(_required("AIRDOCK_TABLE_NAME")),
        buckets=S3Buckets(),
        events=EventBridgeEvents(os.environ.get("AIRDOCK_EVENT_BUS", "default")),
        settings=settings,
        workflows=StepFunctionsWorkflows(arns) if len(arns) == 3 else None,
    )


def build_compute(settings: Settings) -> object:
    raise RuntimeError(
        "ECS Fargate compute is not part of this deployment yet; the provisioner cannot run on AWS."
    )
