"""AWS adapters for the Lambda functions, built from the function's settings (core/settings.py:
the AIRDOCK_* variables template.yaml sets)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airdock.aws.buckets import S3Buckets
from airdock.airflow_http import UrllibAirflowHttp
from airdock.aws.data_plane import SecretsManagerKeys, SecretsManagerTargets, StaticRolePolicy
from airdock.core.data_plane import AirflowDataPlane
from airdock.aws.dynamodb_repository import DynamoDbEnvironmentRepository
from airdock.aws.events import EventBridgeEvents
from airdock.aws.iam import IamRolePassing
from airdock.aws.metrics import CloudWatchMetrics
from airdock.aws.workflows import StepFunctionsWorkflows
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings
from airdock.core.timing import WorkflowTimings

if TYPE_CHECKING:
    from airdock.aws.compute import EcsCompute
    from airdock.aws.worker_pool import EcsWorkerPool

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
    arns = {kind: arn for kind, arn in (("create", settings.create_sm_arn), ("update", settings.update_sm_arn),
                                        ("delete", settings.delete_sm_arn)) if arn}
    lifecycle_function = settings.lifecycle_function
    return EnvironmentService(
        repository=DynamoDbEnvironmentRepository(settings.required("table_name")),
        buckets=S3Buckets(),
        events=EventBridgeEvents(settings.event_bus),
        settings=settings,
        workflows=StepFunctionsWorkflows(arns, timings=WorkflowTimings.from_settings(settings)) if len(arns) == 3 else None,
        metrics=CloudWatchMetrics(),
        # Pause/resume (API) and maintenance (lifecycle schedule) are carried out by the
        # lifecycle function; without it they stay pending, visibly.
        lifecycle=LambdaLifecycleRunner(lifecycle_function) if lifecycle_function else None,
        # CLI/web login tokens signed with each environment's key from Secrets Manager, and
        # InvokeRestApi through the environment's web front (data_plane.py).
        data_plane=AirflowDataPlane(
            SecretsManagerTargets(SecretsManagerKeys(), https=settings.listener_https),
            StaticRolePolicy.from_json(settings.airflow_roles), UrllibAirflowHttp()),
        # The caller must be allowed to pass the environment's execution role (aws/iam.py).
        role_passing=IamRolePassing(settings.account_id),
    )


def ecs_compute(settings: Settings, clients: dict[str, Any] | None = None) -> "EcsCompute":
    """ECS compute from the provisioner's (or lifecycle's) settings. `clients` (service name ->
    boto3 client) lets tests hand in clients bound to moto."""
    from airdock.aws.broker import SqsBroker
    from airdock.aws.compute import EcsCompute
    from airdock.aws.database import AuroraDatabases, DatabaseCluster
    from airdock.aws.discovery import CloudMapDiscovery, DiscoveryConfig
    from airdock.aws.kms import KmsKeys
    from airdock.aws.logs import CloudWatchLogGroups
    from airdock.aws.secrets import EnvironmentSecrets
    from airdock.aws.task_definitions import EcsConfig
    from airdock.aws.web import AlbWebAccess, LoadBalancer, WebConfig

    given = clients if clients is not None else {}
    client = _clients(settings, given)
    required = settings.required
    https = settings.listener_https
    web = AlbWebAccess(
        WebConfig(
            vpc_id=required("vpc_id"),
            private=LoadBalancer(required("private_listener_arn"), required("private_alb_dns"), https),
            public=(LoadBalancer(settings.public_listener_arn, required("public_alb_dns"), https)
                    if settings.public_listener_arn else None),
            domain=settings.web_domain or None,
        ),
        client=client("elbv2"),
    )
    databases = AuroraDatabases(
        DatabaseCluster(
            cluster_arn=required("db_cluster_arn"),
            admin_secret_arn=required("db_admin_secret_arn"),
            host=required("db_host"),
            port=settings.db_port,
        ),
        rds_data=client("rds-data"),
        secretsmanager=client("secretsmanager"),
    )
    return EcsCompute(
        EcsConfig(
            cluster=required("ecs_cluster"),
            image_repository=required("airflow_image_repository"),
            task_execution_role_arn=required("task_execution_role_arn"),
            region=settings.region,
            account_id=settings.account_id,
            partition=settings.partition,
            cpu_architecture=settings.cpu_architecture,
            worker_capacity=settings.worker_capacity,
        ),
        broker=SqsBroker(client("sqs")),
        databases=databases,
        logs=CloudWatchLogGroups(settings.log_retention_days, client("logs")),
        web=web,
        # The private DNS namespace the web front finds the webserver in (discovery.py).
        discovery=CloudMapDiscovery(
            DiscoveryConfig(required("discovery_namespace_id"), required("discovery_namespace")),
            client("servicediscovery"),
        ),
        secrets=EnvironmentSecrets(client("secretsmanager"), region=settings.region, account_id=settings.account_id,
                                   partition=settings.partition),
        # Workers are protected and scaled through the autoscaler's pool only.
        workers=worker_pool(settings, given),
        ecs=client("ecs"),
        ec2=client("ec2"),
        ecr=client("ecr"),
        keys=KmsKeys(settings.region, client("kms")),
    )


def _clients(settings: Settings, given: dict[str, Any]) -> Any:
    def client(service: str) -> Any:
        if service not in given:
            import boto3

            given[service] = boto3.client(service, region_name=settings.region)
        return given[service]

    return client


# ---------------------------------------------------------------------------- autoscaler


def worker_pool(settings: Settings, clients: dict[str, Any] | None = None) -> "EcsWorkerPool":
    """The ECS worker pool from the autoscaler's (or lifecycle's, or provisioner's) settings: the
    ECS cluster and the database cluster (task counts and drain markers through the RDS Data API)."""
    from airdock.aws.worker_pool import EcsWorkerPool, MetadataTaskCounts
    from airdock_runtime.drain import DrainMarkers

    client = _clients(settings, clients if clients is not None else {})
    counts = MetadataTaskCounts(settings.required("db_cluster_arn"), client("rds-data"), client("secretsmanager"))
    return EcsWorkerPool(client("ecs"), settings.required("ecs_cluster"), task_counts=counts, sqs=client("sqs"),
                         upcoming=counts.upcoming_runs, markers=DrainMarkers(counts.execute))
