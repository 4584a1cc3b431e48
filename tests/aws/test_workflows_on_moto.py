"""The statemachines/*.asl.json files, run by the local ASL engine, with the provisioner wired to
the AWS adapters (DynamoDB, S3, EventBridge, ECS, SQS, Aurora Data API, Secrets Manager, logs,
ALB) all backed by moto: a create ends AVAILABLE with everything created, a delete removes it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airdock.aws import naming
from airdock.aws.buckets import S3Buckets
from airdock.aws.dynamodb_repository import DynamoDbEnvironmentRepository
from airdock.aws.events import EventBridgeEvents
from airdock.core.models import CreateEnvironmentInput
from airdock.core.provisioning import Provisioner
from airdock.core.service import EnvironmentService
from airdock.local.functions import load_function
from airdock.local.workflows import LocalWorkflows, build_engine
from support.dynamodb import AtomicRequests, create_table_from_template
from aws.conftest import ACCOUNT, REGION, Stack

BUCKET = "airdock-aws-test-dags"


@pytest.fixture
def deployment(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # moto's ECS reports this many running tasks per service, so deployments complete.
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "25")
    dynamodb = stack.client("dynamodb")
    create_table_from_template(dynamodb, "EnvironmentsTable", "airdock-environments")
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="dags/hello.py", Body=b"# a DAG\n")
    service = EnvironmentService(
        repository=DynamoDbEnvironmentRepository("airdock-environments", client=AtomicRequests(dynamodb)),
        buckets=S3Buckets(s3),
        events=EventBridgeEvents(client=stack.client("events")),
        settings=stack.settings,
    )

    compute = stack.compute()
    provisioner = Provisioner(service, compute)
    function = load_function("provisioner")
    engine = build_engine(tmp_path / "workflows.db", REGION, ACCOUNT,
                          lambda event, context: function.handler(event, context, provisioner=provisioner))
    service.workflows = LocalWorkflows(engine)
    yield service, engine
    engine.close()


def _request(name: str, subnets: list[str], security_groups: list[str]) -> CreateEnvironmentInput:
    return CreateEnvironmentInput.model_validate({
        "Name": name,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/airflow-execution",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": subnets, "SecurityGroupIds": security_groups},
        "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"},
                                 "SchedulerLogs": {"Enabled": True, "LogLevel": "WARNING"}},
    }, strict=False)


def _wait(service: EnvironmentService, engine: Any, name: str) -> None:
    record = service.repository.get(name)
    assert record is not None
    execution = record.internal.get("execution") or record.internal.get("execution_arn")
    if execution:
        engine.wait(execution, timeout=120)
        return
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = service.repository.get(name)
        if current is None or current.environment.Status not in ("CREATING", "UPDATING", "DELETING", "ROLLING_BACK"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{name} is still {current.environment.Status if current else None}")


def test_given_the_aws_adapters_when_the_create_workflow_runs_then_the_environment_is_available_on_ecs(
    deployment: Any, stack: Stack
) -> None:
    service, engine = deployment
    request = _request("analytics", stack.subnets, [stack.security_group])
    service.create_environment(request)
    _wait(service, engine, "analytics")

    env = service.record("analytics").environment
    assert env.Status == "AVAILABLE", (env.LastUpdate, env.StatusReason)
    ecs = stack.client("ecs")
    services = ecs.describe_services(
        cluster="airdock-environments",
        services=[naming.service_name("analytics", c)
                  for c in ("scheduler", "webserver", "web-front", "dag-processor", "triggerer", "worker")],
    )["services"]
    desired = {s["serviceName"].removeprefix("airdock-analytics-"): s["desiredCount"] for s in services}
    assert desired == {"scheduler": 2, "webserver": 2, "web-front": 1, "dag-processor": 1, "triggerer": 1, "worker": 1}
    front = next(s for s in services if s["serviceName"].endswith("web-front"))
    groups = stack.client("elbv2").describe_target_groups()["TargetGroups"]
    assert front["loadBalancers"][0]["targetGroupArn"] == groups[0]["TargetGroupArn"]
    assert stack.client("secretsmanager").describe_secret(SecretId="airdock/analytics/web-front")["Name"]
    assert [s["Name"] for s in stack.client("servicediscovery").list_services()["Services"]] == ["analytics-webserver"]
    queue = stack.client("sqs").get_queue_url(QueueName=naming.queue_name("analytics"))["QueueUrl"]
    arn = stack.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert env.CeleryExecutorQueue == arn
    assert env.WebserverUrl and env.WebserverUrl.endswith("/analytics")
    groups = {g["logGroupName"] for g in stack.client("logs").describe_log_groups(logGroupNamePrefix="airflow-analytics-")["logGroups"]}
    assert groups == {"airflow-analytics-Task", "airflow-analytics-Scheduler"}
    assert stack.client("secretsmanager").describe_secret(SecretId="airdock/analytics/database")["Name"]

    service.delete_environment("analytics")
    _wait(service, engine, "analytics")

    assert service.repository.get("analytics") is None
    left = ecs.describe_services(cluster="airdock-environments", services=[naming.service_name("analytics", "scheduler")])["services"]
    assert all(s["status"] == "INACTIVE" for s in left)
    assert not [u for u in stack.client("sqs").list_queues().get("QueueUrls", []) if "analytics" in u]
    assert not stack.client("elbv2").describe_target_groups().get("TargetGroups")
    assert not stack.client("logs").describe_log_groups(logGroupNamePrefix="airflow-analytics-")["logGroups"]
    secrets = stack.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in secrets if s["Name"].startswith("airdock/analytics/")]
    front = ecs.describe_services(cluster="airdock-environments", services=[naming.service_name("analytics", "web-front")])
    assert all(s["status"] == "INACTIVE" for s in front["services"])
    assert stack.client("servicediscovery").list_services()["Services"] == []
    assert not [r for r in stack.client("elbv2").describe_rules(ListenerArn=stack.environ["AIRDOCK_PRIVATE_LISTENER_ARN"])["Rules"]
                if not r["IsDefault"]]


def test_given_subnets_outside_the_deployments_vpc_when_created_then_it_fails_with_an_actionable_error(
    deployment: Any, stack: Stack
) -> None:
    service, engine = deployment
    ec2 = stack.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=other, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    request = _request("elsewhere", subnets, [stack.security_group])
    service.create_environment(request)
    _wait(service, engine, "elsewhere")

    env = service.record("elsewhere").environment
    assert env.Status == "CREATE_FAILED"
    assert env.LastUpdate and env.LastUpdate.Error
    assert env.LastUpdate.Error.ErrorCode == "INCOMPATIBLE_NETWORK"
    assert stack.vpc_id in (env.LastUpdate.Error.ErrorMessage or "")
