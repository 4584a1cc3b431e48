"""MWAA Serverless's AWS adapters, configured from the function's environment (template.yaml sets
each variable: AIRDOCK_WORKFLOWS_TABLE, AIRDOCK_SERVERLESS_BUCKET, AIRDOCK_SERVERLESS_ENGINE_URL,
AIRDOCK_SERVERLESS_ENGINE_SECRET)."""
from __future__ import annotations

import os

from airdock.aws.events import EventBridgeEvents
from airdock.aws.serverless.engine import EcsEngine
from airdock.aws.serverless.repository import DynamoDbWorkflowRepository
from airdock.aws.serverless.sources import S3Sources
from airdock.core.ports import SystemClock
from airdock.core.serverless.access import Unrestricted
from airdock.core.serverless.identifiers import Scope
from airdock.core.serverless.service import WorkflowService
from airdock.core.serverless.settings import ServerlessSettings
from airdock.core.settings import Settings


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} must be set for MWAA Serverless on AWS")
    return value


def build_workflow_service(settings: Settings) -> WorkflowService:
    bucket = _required("AIRDOCK_SERVERLESS_BUCKET")
    engine = EcsEngine(artifacts_bucket=bucket, api_url=_required("AIRDOCK_SERVERLESS_ENGINE_URL"),
                       secret_arn=_required("AIRDOCK_SERVERLESS_ENGINE_SECRET"))
    # IAM decides at the front door, as for MWAA's routes: API Gateway's AWS_IAM authorization
    # (execute-api:Invoke) runs before the function.
    return WorkflowService(repository=DynamoDbWorkflowRepository(_required("AIRDOCK_WORKFLOWS_TABLE")),
                           sources=S3Sources(bucket), engine=engine, events=EventBridgeEvents(),
                           clock=SystemClock(), scope=Scope(settings.partition, settings.region, settings.account_id),
                           settings=ServerlessSettings.from_environ(), access=Unrestricted())
