"""MWAA Serverless's AWS adapters, built from the function's settings (template.yaml sets
AIRDOCK_WORKFLOWS_TABLE, AIRDOCK_SERVERLESS_BUCKET, AIRDOCK_SERVERLESS_ENGINE_URL,
AIRDOCK_SERVERLESS_ENGINE_SECRET)."""
from __future__ import annotations

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


def build_workflow_service(settings: Settings) -> WorkflowService:
    bucket = settings.required("serverless_bucket")
    engine = EcsEngine(artifacts_bucket=bucket, api_url=settings.required("serverless_engine_url"),
                       secret_arn=settings.required("serverless_engine_secret"))
    # IAM decides at the front door, as for MWAA's routes: API Gateway's AWS_IAM authorization
    # (execute-api:Invoke) runs before the function.
    return WorkflowService(repository=DynamoDbWorkflowRepository(settings.required("workflows_table")),
                           sources=S3Sources(bucket), engine=engine, events=EventBridgeEvents(),
                           clock=SystemClock(), scope=Scope(settings.partition, settings.region, settings.account_id),
                           settings=ServerlessSettings.from_settings(settings), access=Unrestricted())
