"""A moto 'account' shaped like a deployed Airdock stack: VPC, subnets, ECS cluster, internal ALB
and listener, the Aurora admin secret; plus the environment variables template.yaml gives the
provisioner function, so adapters are built the way `airdock.aws.factory` builds them on AWS."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import json

import boto3
import pytest
from moto import mock_aws

from airdock.airflow_http import UrllibAirflowHttp
from airdock.aws.compute import EcsCompute
from airdock.aws.data_plane import SecretsManagerKeys, SecretsManagerTargets, StaticRolePolicy
from airdock.core.data_plane import AirflowDataPlane
from airdock.aws.factory import ecs_compute, worker_pool
from airdock.aws.metrics import CloudWatchMetrics, ReadYourWritesMetrics
from airdock.aws.worker_pool import EcsWorkerPool
from airdock.core.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real AWS account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "MOTO_ACCOUNT_ID": ACCOUNT,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@dataclass
class Stack:
    environ: dict[str, str]
    clients: dict[str, Any]
    vpc_id: str
    subnets: list[str]
    security_group: str
    # The functions' settings are their variables (`environ`, as template.yaml sets them) at build time.
    # task ARN -> protected, as recorded by the UpdateTaskProtection stand-in below.
    protection: dict[str, bool] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)
        return self.clients[service]

    @property
    def settings(self) -> Settings:
        fields = {name.removeprefix("AIRDOCK_").lower(): value for name, value in self.environ.items()}
        return Settings(**{**fields, "account_id": ACCOUNT, "region": REGION})

    def compute(self) -> EcsCompute:
        for service in ("ecs", "ec2", "ecr", "sqs", "elbv2", "logs", "secretsmanager", "rds-data", "servicediscovery"):
            self.client(service)
        return ecs_compute(self.settings, self.clients)

    def worker_pool(self) -> EcsWorkerPool:
        for service in ("ecs", "sqs", "secretsmanager", "rds-data"):
            self.client(service)
        return worker_pool(self.settings, self.clients)

    def data_plane(self, role_policy: dict[str, Any] | None = None) -> AirflowDataPlane:
        """The API function's data plane, as wiring builds it."""
        return AirflowDataPlane(SecretsManagerTargets(SecretsManagerKeys(self.client("secretsmanager"))),
                                StaticRolePolicy(role_policy or {}), UrllibAirflowHttp())

    def metrics(self) -> ReadYourWritesMetrics:
        """The autoscaler's metrics, as wiring builds them."""
        return ReadYourWritesMetrics(CloudWatchMetrics(self.client("cloudwatch")))


@pytest.fixture
def stack(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # moto 5.2.5's ECS RunTask with awsvpc networking reads NetworkInterface.private_dns_name,
    # which its EC2 model never defines (AttributeError). Supply the name AWS would give.
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if not hasattr(NetworkInterface, "private_dns_name"):
        monkeypatch.setattr(
            NetworkInterface, "private_dns_name",
            property(lambda eni: f"ip-{str(eni.private_ip_address).replace('.', '-')}.ec2.internal"), raising=False,
        )
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        sg = ec2.create_security_group(GroupName="airflow", Description="airflow", VpcId=vpc)["GroupId"]
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="airdock-environments")
        elb = boto3.client("elbv2", region_name=REGION)
        alb = elb.create_load_balancer(Name="airdock-int", Subnets=subnets, Scheme="internal", Type="application")
        lb = alb["LoadBalancers"][0]
        listener = elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]
        sd = boto3.client("servicediscovery", region_name=REGION)
        sd.create_private_dns_namespace(Name="airdock.internal", Vpc=vpc)
        namespace = sd.list_namespaces()["Namespaces"][0]["Id"]
        sm = boto3.client("secretsmanager", region_name=REGION)
        admin = sm.create_secret(Name="rds!cluster-admin", SecretString='{"username":"airdock_admin","password":"x"}')["ARN"]
        environ = {
            "AIRDOCK_ECS_CLUSTER": "airdock-environments",
            "AIRDOCK_AIRFLOW_IMAGE_REPOSITORY": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/airdock-airflow",
            "AIRDOCK_CPU_ARCHITECTURE": "ARM64",
            "AIRDOCK_TASK_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/airdock-task-execution",
            "AIRDOCK_VPC_ID": vpc,
            "AIRDOCK_PRIVATE_LISTENER_ARN": listener,
            "AIRDOCK_PRIVATE_ALB_DNS": lb["DNSName"],
            "AIRDOCK_PUBLIC_LISTENER_ARN": "",
            "AIRDOCK_PUBLIC_ALB_DNS": "",
            "AIRDOCK_LISTENER_HTTPS": "false",
            "AIRDOCK_WEB_DOMAIN": "",
            "AIRDOCK_DB_CLUSTER_ARN": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:airdock-metadata",
            "AIRDOCK_DB_ADMIN_SECRET_ARN": admin,
            "AIRDOCK_DB_HOST": "airdock-metadata.cluster-abc.us-east-1.rds.amazonaws.com",
            "AIRDOCK_LOG_RETENTION_DAYS": "14",
            "AIRDOCK_DISCOVERY_NAMESPACE_ID": namespace,
            "AIRDOCK_DISCOVERY_NAMESPACE": "airdock.internal",
            "AIRDOCK_TABLE_NAME": "airdock-environments",
        }
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.create_repository(repositoryName="airdock-airflow")
        for version in ("3.3.2", "2.11.0"):
            manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "config": {"digest": "sha256:" + version.replace(".", "0").ljust(64, "0")}, "layers": []}
            ecr.put_image(repositoryName="airdock-airflow", imageTag=version, imageManifest=json.dumps(manifest))
        result = Stack(environ=environ, clients={"ec2": ec2, "ecs": ecs, "elbv2": elb, "secretsmanager": sm, "ecr": ecr,
                                "servicediscovery": sd},
                       vpc_id=vpc, subnets=subnets, security_group=sg)

        def update_task_protection(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
            # moto 5.2.5 does not implement UpdateTaskProtection: answer it here (AWS's response
            # shape) and record the state, so tests can assert which tasks are protected.
            body = json.loads(params["body"])
            for arn in body["tasks"]:
                result.protection[arn] = body["protectionEnabled"]
            tasks = [{"taskArn": arn, "protectionEnabled": body["protectionEnabled"]} for arn in body["tasks"]]
            return _Http(), {"protectedTasks": tasks, "failures": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

        ecs.meta.events.register("before-call.ecs.UpdateTaskProtection", update_task_protection)

        def get_task_protection(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
            # Not in moto 5.2.5 either: answered from the state recorded above.
            body = json.loads(params["body"])
            tasks = [{"taskArn": arn, "protectionEnabled": result.protection.get(arn, False)} for arn in body["tasks"]]
            return _Http(), {"protectedTasks": tasks, "failures": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

        ecs.meta.events.register("before-call.ecs.GetTaskProtection", get_task_protection)
        yield result


@pytest.fixture(autouse=True)
def iam_rehearsal(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every AWS call a piece of Airdock makes in this test must be allowed by the policies the
    template gives that piece's role (support/iam_rehearsal.py); a denied call fails the test."""
    from support.iam_rehearsal import default_names, denied_requests, recording, stack_names

    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    with recording() as recorder:
        yield
    if recorder.calls:
        denied, _ = denied_requests(list(recorder.calls), stack_names(stack) if stack else default_names())
        if denied:
            pytest.fail("AWS would deny these calls (IAM, as template.yaml grants it):\n" + "\n".join(denied), pytrace=False)


class _Http:
    status_code = 200
    headers: dict[str, str] = {}


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real PostgreSQL server per test session (support/postgres.py): its admin URL."""
    from support.postgres import running_postgres

    with running_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def metadata_database(postgres_server: str) -> str:
    """A new, empty database on that server, as an environment's AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    names its metadata database on Aurora."""
    import secrets

    import psycopg2

    from airdock_runtime.used_tokens_postgres import libpq_url

    name = f"airdock_db_{secrets.token_hex(4)}"
    admin = psycopg2.connect(libpq_url(postgres_server))
    try:
        admin.autocommit = True
        admin.cursor().execute(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    return postgres_server.rsplit("/", 1)[0] + "/" + name
