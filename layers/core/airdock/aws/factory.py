"""AWS adapters for the Lambda functions, configured from the function's environment (the
variables template.yaml sets; each is documented where it is read)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airdock.aws.buckets import S3Buckets
from airdock.airflow_http import UrllibAirflowHttp
from airdock.aws.data_plane import SecretsManagerKeys, SecretsManagerTargets, StaticRolePolicy
from airdock.core.data_plane import AirflowDataPlane
from airdock.aws.dynamodb_repository import DynamoDbEnvironmentRepository
from airdock.aws.events import EventBridgeEvents
from airdock.aws.metrics import CloudWatchMetrics
from airdock.aws.workflows import StepFunctionsWorkflows
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings

if TYPE_CHECKING:
    from airdock.aws.compute import EcsCompute
    from airdock.aws.worker_pool import EcsWorkerPool

STATE_MACHINE_VARIABLES = {
    "create": "AIRDOCK_CREATE_SM_ARN",
    "update": "AIRDOCK_UPDATE_SM_ARN",
    "delete": "AIRDOCK_DELETE_SM_ARN",
}


def _required(name: str, environ: dict[str, str] | None = None) -> str:
    value = (environ if environ is not None else os.environ).get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} must be set for the AWS backend")
    return value


class LambdaLifecycleRunner:
    """LifecycleRunner port on AWS: an asynchronous invocation of the lifecycle function with the
    event `functions/lifecycle/app.py` runs one operation from (`Lifecycle.run` is idempotent, so
    Lambda's own retries of a failed asynchronous invocation are harmless)."""

    def __init__(self, function_name: str, client: Any | None = None) -> None:
        self.function_name = function_name
        self._client = client

    def start(self, operation: str, name: str) -> None:
        import json

        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        event = {"detail-type": "Airdock Lifecycle Operation", "source": "airdock.lifecycle",
                 "detail": {"Operation": operation, "EnvironmentName": name}}
        self._client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=json.dumps(event).encode())


def build_service(settings: Settings) -> EnvironmentService:
    arns = {kind: os.environ[var] for kind, var in STATE_MACHINE_VARIABLES.items() if os.environ.get(var)}
    lifecycle_function = os.environ.get("AIRDOCK_LIFECYCLE_FUNCTION")
    return EnvironmentService(
        repository=DynamoDbEnvironmentRepository(_required("AIRDOCK_TABLE_NAME")),
        buckets=S3Buckets(),
        events=EventBridgeEvents(os.environ.get("AIRDOCK_EVENT_BUS", "default")),
        settings=settings,
        workflows=StepFunctionsWorkflows(arns) if len(arns) == 3 else None,
        metrics=CloudWatchMetrics(),
        # Pause/resume (API) and maintenance (lifecycle schedule) are carried out by the
        # lifecycle function; without it they stay pending, visibly.
        lifecycle=LambdaLifecycleRunner(lifecycle_function) if lifecycle_function else None,
        # CLI/web login tokens signed with each environment's key from Secrets Manager, and
        # InvokeRestApi through the environment's web front (data_plane.py).
        data_plane=AirflowDataPlane(
            SecretsManagerTargets(SecretsManagerKeys(), https=os.environ.get("AIRDOCK_LISTENER_HTTPS", "false").lower() == "true"),
            StaticRolePolicy.from_json(os.environ.get("AIRDOCK_AIRFLOW_ROLES")), UrllibAirflowHttp()),
    )


def compute_from_environ(
    settings: Settings,
    environ: dict[str, str] | None = None,
    clients: dict[str, Any] | None = None,
) -> "EcsCompute":
    """ECS compute from the provisioner's (or lifecycle's) variables. `clients` (service name ->
    boto3 client) lets tests hand in clients bound to moto."""
    from airdock.aws.broker import SqsBroker
    from airdock.aws.compute import EcsCompute
    from airdock.aws.database import AuroraDatabases, DatabaseCluster
    from airdock.aws.discovery import CloudMapDiscovery, DiscoveryConfig
    from airdock.aws.logs import CloudWatchLogGroups
    from airdock.aws.secrets import EnvironmentSecrets
    from airdock.aws.task_definitions import EcsConfig
    from airdock.aws.web import AlbWebAccess, LoadBalancer, WebConfig

    env = environ if environ is not None else dict(os.environ)
    client = _clients(settings, clients if clients is not None else {})
    https = env.get("AIRDOCK_LISTENER_HTTPS", "false").lower() == "true"
    public_listener = env.get("AIRDOCK_PUBLIC_LISTENER_ARN") or ""
    web = AlbWebAccess(
        WebConfig(
            vpc_id=_required("AIRDOCK_VPC_ID", env),
            private=LoadBalancer(_required("AIRDOCK_PRIVATE_LISTENER_ARN", env), _required("AIRDOCK_PRIVATE_ALB_DNS", env), https),
            public=LoadBalancer(public_listener, _required("AIRDOCK_PUBLIC_ALB_DNS", env), https) if public_listener else None,
            domain=env.get("AIRDOCK_WEB_DOMAIN") or None,
        ),
        client=client("elbv2"),
    )
    databases = AuroraDatabases(
        DatabaseCluster(
            cluster_arn=_required("AIRDOCK_DB_CLUSTER_ARN", env),
            admin_secret_arn=_required("AIRDOCK_DB_ADMIN_SECRET_ARN", env),
            host=_required("AIRDOCK_DB_HOST", env),
            port=int(env.get("AIRDOCK_DB_PORT", "5432")),
        ),
        rds_data=client("rds-data"),
        secretsmanager=client("secretsmanager"),
    )
    return EcsCompute(
        EcsConfig(
            cluster=_required("AIRDOCK_ECS_CLUSTER", env),
            image_repository=_required("AIRDOCK_AIRFLOW_IMAGE_REPOSITORY", env),
            task_execution_role_arn=_required("AIRDOCK_TASK_EXECUTION_ROLE_ARN", env),
            region=settings.region,
            account_id=settings.account_id,
            partition=settings.partition,
            cpu_architecture=env.get("AIRDOCK_CPU_ARCHITECTURE", "X86_64"),
        ),
        broker=SqsBroker(client("sqs")),
        databases=databases,
        logs=CloudWatchLogGroups(int(env.get("AIRDOCK_LOG_RETENTION_DAYS", "30")), client("logs")),
        web=web,
        # The private DNS namespace the web front finds the webserver in (discovery.py).
        discovery=CloudMapDiscovery(
            DiscoveryConfig(_required("AIRDOCK_DISCOVERY_NAMESPACE_ID", env), _required("AIRDOCK_DISCOVERY_NAMESPACE", env)),
            client("servicediscovery"),
        ),
        secrets=EnvironmentSecrets(client("secretsmanager"), region=settings.region, account_id=settings.account_id,
                                   partition=settings.partition),
        # Workers are protected and scaled through the autoscaler's pool only.
        workers=worker_pool_from_environ(settings, env, clients),
        ecs=client("ecs"),
        ec2=client("ec2"),
        ecr=client("ecr"),
    )


def _clients(settings: Settings, given: dict[str, Any]) -> Any:
    def client(service: str) -> Any:
        if service not in given:
            import boto3

            given[service] = boto3.client(service, region_name=settings.region)
        return given[service]

    return client


# ---------------------------------------------------------------------------- autoscaler


def worker_pool_from_environ(settings: Settings, environ: dict[str, str] | None = None,
                             clients: dict[str, Any] | None = None) -> "EcsWorkerPool":
    """The ECS worker pool from the autoscaler's (or lifecycle's, or provisioner's) variables:
    AIRDOCK_ECS_CLUSTER and AIRDOCK_DB_CLUSTER_ARN (task counts and drain markers through the RDS
    Data API)."""
    from airdock.aws.worker_pool import EcsWorkerPool, MetadataTaskCounts
    from airdock_runtime.drain import DrainMarkers

    env = environ if environ is not None else dict(os.environ)
    client = _clients(settings, clients if clients is not None else {})
    counts = MetadataTaskCounts(_required("AIRDOCK_DB_CLUSTER_ARN", env), client("rds-data"), client("secretsmanager"))
    return EcsWorkerPool(client("ecs"), _required("AIRDOCK_ECS_CLUSTER", env), task_counts=counts, sqs=client("sqs"),
                         upcoming=counts.upcoming_runs, markers=DrainMarkers(counts.execute))
