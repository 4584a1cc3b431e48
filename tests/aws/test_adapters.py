"""AWS adapters without a local twin, under moto: ECS compute, SQS broker, Aurora databases (Data
API statements recorded), log groups, web access. Each step is idempotent: running it twice
leaves the same resources as running it once."""
from __future__ import annotations

import json
from typing import Any

import pytest

from airdock.aws import naming, sizing
from airdock.aws.broker import SqsBroker
from airdock.aws.database import AuroraDatabases, DatabaseCluster
from airdock.aws.logs import CloudWatchLogGroups
from airdock.aws.web import SSO_HEALTH_PATH
from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment
from aws.conftest import ACCOUNT, REGION, Stack


def environment(stack: Stack, name: str = "analytics", **changes: Any) -> Environment:
    data: dict[str, Any] = {
        "Name": name, "Status": "CREATING", "Arn": f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
        "CreatedAt": 0, "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/airflow-execution",
        "AirflowVersion": "3.3.2", "SourceBucketArn": "arn:aws:s3:::dags-bucket", "DagS3Path": "dags",
        "RequirementsS3Path": "requirements.txt", "EnvironmentClass": "mw1.small", "MaxWorkers": 10, "MinWorkers": 2,
        "NetworkConfiguration": {"SubnetIds": stack.subnets, "SecurityGroupIds": [stack.security_group]},
        "LoggingConfiguration": {"WorkerLogs": {"Enabled": True, "LogLevel": "INFO"}},
        "WeeklyMaintenanceWindowStart": "SUN:03:00", "WebserverAccessMode": "PRIVATE_ONLY",
        "Schedulers": 2, "MinWebservers": 2, "MaxWebservers": 3, "EndpointManagement": "SERVICE",
    }
    data.update(changes)
    return Environment.model_validate(data)


def _services(stack: Stack, name: str) -> dict[str, dict[str, Any]]:
    wanted = {naming.service_name(name, c): c for c in ("scheduler", "webserver", "web-front", "dag-processor", "triggerer",
                                                        "worker")}
    found = stack.client("ecs").describe_services(cluster="airdock-environments", services=list(wanted))["services"]
    return {wanted[s["serviceName"]]: s for s in found if s["status"] == "ACTIVE"}


def _up(stack: Stack, env: Environment, compute: Any | None = None) -> Any:
    compute = compute or stack.compute()
    for step in (compute.prepare, compute.build_runtime, compute.start):
        step(env, lambda _m: None)
    return compute


# ---------------------------------------------------------------------------- sizing


@pytest.mark.parametrize("klass", sorted(sizing.SIZES))
def test_every_component_size_is_a_valid_fargate_combination(klass: str) -> None:
    for component in sizing.COMPONENTS:
        assert sizing.valid_fargate(sizing.size(klass, component)), (klass, component)
    assert sizing.valid_fargate(sizing.MIGRATE)


def test_larger_classes_never_get_smaller_workers() -> None:
    order = ["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"]
    workers = [sizing.size(k, "worker") for k in order]
    assert all(a.cpu <= b.cpu and a.memory <= b.memory for a, b in zip(workers, workers[1:]))


# ---------------------------------------------------------------------------- ECS compute


def test_start_creates_one_service_per_component_with_class_sized_task_definitions(stack: Stack) -> None:
    env = environment(stack)
    _up(stack, env)
    services = _services(stack, "analytics")
    assert {c: s["desiredCount"] for c, s in services.items()} == {
        "scheduler": 2, "webserver": 2, "web-front": 1, "dag-processor": 1, "triggerer": 1, "worker": 2}
    ecs = stack.client("ecs")
    worker = ecs.describe_task_definition(taskDefinition=services["worker"]["taskDefinition"])["taskDefinition"]
    assert (worker["cpu"], worker["memory"]) == ("1024", "2048")
    container = worker["containerDefinitions"][0]
    assert container["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/airdock-airflow:3.3.2"
    assert container["command"] == ["celery-worker"]
    variables = {v["name"]: v["value"] for v in container["environment"]}
    assert variables["MWAA_AIRFLOW_COMPONENT"] == "worker" and variables["AWS_REGION"] == REGION
    assert variables["AIRDOCK_DAGS_SOURCE"] == "s3://dags-bucket/dags"
    assert variables["AIRDOCK_REQUIREMENTS"] == "s3://dags-bucket/requirements.txt"
    assert variables["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "5"
    queues = json.loads(variables["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"])
    assert queues["default"]["url"].endswith(naming.queue_name("analytics"))
    secrets = {s["name"] for s in container["secrets"]}
    assert {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY"} <= secrets
    assert container["logConfiguration"]["options"]["awslogs-group"] == "airflow-analytics-Worker"
    assert worker["taskRoleArn"] == env.ExecutionRoleArn
    # The load balancer sends the environment to its web front; the webserver is in Cloud Map.
    assert services["web-front"]["loadBalancers"][0]["containerPort"] == 8080
    assert not services["webserver"].get("loadBalancers")
    assert services["webserver"]["serviceRegistries"][0]["registryArn"].startswith(
        f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/")


def test_every_step_run_twice_changes_nothing_more(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    ecs = stack.client("ecs")
    revisions = ecs.list_task_definitions(familyPrefix="airdock-analytics")["taskDefinitionArns"]
    _up(stack, env, compute)
    assert ecs.list_task_definitions(familyPrefix="airdock-analytics")["taskDefinitionArns"] == revisions
    assert len(_services(stack, "analytics")) == 6
    assert len(stack.client("elbv2").describe_target_groups()["TargetGroups"]) == 1
    listener = stack.environ["AIRDOCK_PRIVATE_LISTENER_ARN"]
    # `/analytics/*` and `/analytics/aws_mwaa/*` (path routing), both to the web front.
    assert len([r for r in stack.client("elbv2").describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]]) == 2


def test_airflow_2_runs_the_same_layout_with_airflow_2s_webserver(stack: Stack) -> None:
    env = environment(stack, name="legacy", AirflowVersion="2.11.0")
    _up(stack, env)
    services = _services(stack, "legacy")
    assert set(services) == {"scheduler", "webserver", "web-front", "dag-processor", "triggerer", "worker"}
    web = stack.client("ecs").describe_task_definition(taskDefinition=services["webserver"]["taskDefinition"])["taskDefinition"]
    assert web["containerDefinitions"][0]["command"] == ["webserver"]
    variables = {v["name"]: v["value"] for v in web["containerDefinitions"][0]["environment"]}
    assert variables["AIRFLOW__WEBSERVER__BASE_URL"].endswith("/legacy")
    assert "FORWARDED_ALLOW_IPS" not in variables  # uvicorn's; Airflow 2's webserver is gunicorn + Flask


def test_airflow_3s_api_server_trusts_forwarded_headers_only_from_the_environments_subnets(stack: Stack) -> None:
    """The web front forwards the load balancer's X-Forwarded-Proto (https) to the API server over
    the network; uvicorn believes it only with --proxy-headers, from FORWARDED_ALLOW_IPS."""
    env = environment(stack)
    _up(stack, env)
    services = _services(stack, "analytics")
    ecs = stack.client("ecs")

    def variables(component: str) -> dict[str, str]:
        definition = ecs.describe_task_definition(taskDefinition=services[component]["taskDefinition"])["taskDefinition"]
        return {v["name"]: v["value"] for v in definition["containerDefinitions"][0]["environment"]}

    api = variables("webserver")
    definition = ecs.describe_task_definition(taskDefinition=services["webserver"]["taskDefinition"])["taskDefinition"]
    assert definition["containerDefinitions"][0]["command"] == ["api-server", "--proxy-headers"]
    cidrs = {s["CidrBlock"] for s in stack.client("ec2").describe_subnets(SubnetIds=stack.subnets)["Subnets"]}
    assert set(api["FORWARDED_ALLOW_IPS"].split(",")) == cidrs == {"10.1.1.0/24", "10.1.2.0/24"}
    for component in set(services) - {"webserver"}:
        assert "FORWARDED_ALLOW_IPS" not in variables(component), component


def test_workers_are_protected_in_batches_through_the_worker_pool(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    busy = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/airdock-environments/{i:032x}" for i in range(12)]
    compute.workers.protect_tasks(busy, on=True)
    assert stack.protection == {arn: True for arn in busy}  # 12 tasks: two calls of at most 10
    compute.workers.protect_tasks(busy[:3], on=False)
    assert [stack.protection[a] for a in busy[:4]] == [False, False, False, True]


def test_an_update_keeps_the_autoscaled_worker_count_within_the_new_bounds(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    compute.workers.scale_out(env.Name, 5)  # the autoscaler took it from 2 to 7
    compute.replace(environment(stack, MaxWorkers=5, EnvironmentClass="mw1.medium"), "GRACEFUL", lambda _m: None)
    services = _services(stack, "analytics")
    assert services["worker"]["desiredCount"] == 5
    worker = stack.client("ecs").describe_task_definition(taskDefinition=services["worker"]["taskDefinition"])["taskDefinition"]
    assert (worker["cpu"], worker["memory"]) == ("2048", "4096")


def test_a_missing_image_is_reported_with_how_to_build_it(stack: Stack) -> None:
    env = environment(stack, AirflowVersion="2.10.5")
    compute = stack.compute()
    compute.prepare(env, lambda _m: None)
    with pytest.raises(ProvisioningError) as failure:
        compute.build_runtime(env, lambda _m: None)
    assert failure.value.code == "IMAGE_NOT_FOUND"
    assert "AIRFLOW_VERSION=2.10.5" in failure.value.message


def test_public_access_without_a_public_load_balancer_is_an_actionable_error(stack: Stack) -> None:
    env = environment(stack, WebserverAccessMode="PUBLIC_ONLY")
    with pytest.raises(ProvisioningError) as failure:
        stack.compute().prepare(env, lambda _m: None)
    assert failure.value.code == "PUBLIC_ACCESS_UNAVAILABLE"
    assert "PublicSubnetIds" in failure.value.message


def test_a_crash_looping_component_fails_the_health_check(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    real = stack.client("ecs").describe_services

    def failing(**kwargs: Any) -> Any:
        response = real(**kwargs)
        for service in response["services"]:
            if service["serviceName"].endswith("-scheduler"):
                service["deployments"] = [{"status": "PRIMARY", "rolloutState": "FAILED",
                                           "rolloutStateReason": "tasks failed to start"}]
        return response

    monkeypatch.setattr(compute.ecs, "describe_services", failing)
    with pytest.raises(ProvisioningError) as failure:
        compute.health(env)
    assert failure.value.code == "COMPONENT_FAILED"


def test_destroy_removes_everything_and_can_run_again(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    compute.destroy(env)
    compute.destroy(env)
    assert _services(stack, "analytics") == {}
    assert stack.client("ecs").list_task_definitions(familyPrefix="airdock-analytics", status="ACTIVE")["taskDefinitionArns"] == []
    assert not stack.client("elbv2").describe_target_groups().get("TargetGroups")


# ---------------------------------------------------------------------------- SQS broker


def test_the_broker_queue_is_created_once_and_its_arn_is_stable(stack: Stack) -> None:
    broker = SqsBroker(stack.client("sqs"))
    first = broker.ensure("analytics")
    again = broker.ensure("analytics")
    assert first == again
    assert first.arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:airdock-analytics-celery"
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=first.url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "43200"
    broker.delete("analytics")
    broker.delete("analytics")
    assert broker.find("analytics") is None


def test_long_environment_names_still_get_distinct_valid_queue_names() -> None:
    a, b = naming.queue_name("x" * 80), naming.queue_name("x" * 79 + "y")
    assert a != b and len(a) <= 80 and len(b) <= 80
    assert len(naming.target_group_name("x" * 80)) <= 32


# ---------------------------------------------------------------------------- Aurora


class StatementLog:
    """Records the Data API calls a client makes (moto runs no SQL and returns no rows)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.rds-data.ExecuteStatement", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))

    @property
    def sql(self) -> list[str]:
        return [c["sql"] for c in self.calls]


def test_a_database_and_login_role_are_created_per_environment_with_credentials_in_secrets_manager(stack: Stack) -> None:
    rds_data = stack.client("rds-data")
    log = StatementLog(rds_data)
    cluster = DatabaseCluster(cluster_arn=stack.environ["AIRDOCK_DB_CLUSTER_ARN"],
                              admin_secret_arn=stack.environ["AIRDOCK_DB_ADMIN_SECRET_ARN"], host="db.example")
    databases = AuroraDatabases(cluster, rds_data, stack.client("secretsmanager"))
    created = databases.ensure("analytics")

    assert created.name == "airdock_db_analytics" and created.role == "airdock_user_analytics"
    assert all(c["resourceArn"] == cluster.cluster_arn and c["secretArn"] == cluster.admin_secret_arn for c in log.calls)
    secret = json.loads(stack.client("secretsmanager").get_secret_value(SecretId="airdock/analytics/database")["SecretString"])
    password = secret["password"]
    assert log.sql == [
        "SELECT 1 FROM pg_roles WHERE rolname = :name",
        f"CREATE ROLE \"airdock_user_analytics\" WITH LOGIN PASSWORD '{password}'",
        'GRANT "airdock_user_analytics" TO CURRENT_USER',
        "SELECT 1 FROM pg_database WHERE datname = :name",
        'CREATE DATABASE "airdock_db_analytics" OWNER "airdock_user_analytics"',
        'REVOKE ALL ON DATABASE "airdock_db_analytics" FROM PUBLIC',
    ]
    assert log.calls[0]["parameters"] == [{"name": "name", "value": {"stringValue": "airdock_user_analytics"}}]
    assert secret["sql_alchemy_conn"] == f"postgresql+psycopg2://airdock_user_analytics:{password}@db.example:5432/airdock_db_analytics"

    # Again (a retried step): same secret, same password.
    databases.ensure("analytics")
    again = json.loads(stack.client("secretsmanager").get_secret_value(SecretId="airdock/analytics/database")["SecretString"])
    assert again["password"] == password

    log.calls.clear()
    databases.drop("analytics")
    databases.drop("analytics")
    assert log.sql[:2] == ['DROP DATABASE IF EXISTS "airdock_db_analytics" WITH (FORCE)', 'DROP ROLE IF EXISTS "airdock_user_analytics"']
    assert not stack.client("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": ["airdock/analytics/"]}])["SecretList"]


# ---------------------------------------------------------------------------- logs


def test_log_groups_follow_the_logging_configuration_with_retention(stack: Stack) -> None:
    logs = CloudWatchLogGroups(14, stack.client("logs"))
    env = environment(stack, LoggingConfiguration={
        "TaskLogs": {"Enabled": True, "LogLevel": "INFO"}, "WebserverLogs": {"Enabled": False, "LogLevel": "INFO"},
        "DagProcessingLogs": {"Enabled": True, "LogLevel": "ERROR"}})
    assert logs.ensure(env) == logs.ensure(env) == {
        "DAGProcessing": "airflow-analytics-DAGProcessing", "Task": "airflow-analytics-Task"}
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix="airflow-analytics-")["logGroups"]
    assert {(g["logGroupName"], g["retentionInDays"]) for g in groups} == {
        ("airflow-analytics-DAGProcessing", 14), ("airflow-analytics-Task", 14)}
    logs.delete("analytics")
    assert not stack.client("logs").describe_log_groups(logGroupNamePrefix="airflow-analytics-")["logGroups"]


# ---------------------------------------------------------------------------- web access


def test_private_environments_get_a_path_rule_on_the_internal_listener_and_a_hostname(stack: Stack) -> None:
    compute = stack.compute()
    env = environment(stack)
    target_group = compute.web.ensure(env, SSO_HEALTH_PATH)
    elb = stack.client("elbv2")
    group = elb.describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"][0]
    assert (group["TargetType"], group["Port"], group["HealthCheckPath"]) == ("ip", 8080, "/aws_mwaa/aws-console-sso")
    rules = [r for r in elb.describe_rules(ListenerArn=stack.environ["AIRDOCK_PRIVATE_LISTENER_ARN"])["Rules"] if not r["IsDefault"]]
    assert len(rules) == 2
    assert {r["Actions"][0]["TargetGroupArn"] for r in rules} == {target_group}
    assert compute.webserver_hostname(env) == f"{stack.environ['AIRDOCK_PRIVATE_ALB_DNS']}/analytics"
    compute.web.delete("analytics")
    assert [r for r in elb.describe_rules(ListenerArn=stack.environ["AIRDOCK_PRIVATE_LISTENER_ARN"])["Rules"] if not r["IsDefault"]] == []


# ---------------------------------------------------------------------------- the metadata schema


def _migrations(stack: Stack, name: str) -> list[tuple[str, list[str] | None]]:
    """The migrate tasks started for environment `name`: (Airflow image tag, command override)."""
    ecs = stack.client("ecs")
    arns = ecs.list_tasks(cluster="airdock-environments", startedBy=naming.started_by(name))["taskArns"]
    found = []
    for task in ecs.describe_tasks(cluster="airdock-environments", tasks=arns)["tasks"] if arns else []:
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        overrides = task.get("overrides", {}).get("containerOverrides", [])
        found.append((definition["containerDefinitions"][0]["image"].rsplit(":", 1)[1],
                      next((o["command"] for o in overrides if o.get("command")), None)))
    return found


def _images(stack: Stack, name: str) -> set[str]:
    ecs = stack.client("ecs")
    return {ecs.describe_task_definition(taskDefinition=s["taskDefinition"])["taskDefinition"]
            ["containerDefinitions"][0]["image"].rsplit(":", 1)[1] for s in _services(stack, name).values()}


def test_airflows_components_wait_for_their_schema_because_the_migration_runs_beside_them(stack: Stack) -> None:
    _up(stack, environment(stack))
    ecs = stack.client("ecs")
    waits = {}
    for component, service in _services(stack, "analytics").items():
        container = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]["containerDefinitions"][0]
        waits[component] = {v["name"]: v["value"] for v in container["environment"]}.get("AIRDOCK_SCHEMA_WAIT_S")
    assert waits.pop("web-front") is None  # Airdock's code, no Airflow schema
    assert set(waits.values()) == {"900"}
    assert _migrations(stack, "analytics") == [("3.3.2", None)]


def test_an_upgrade_migrates_the_schema_with_the_new_airflow_once(stack: Stack) -> None:
    compute = _up(stack, environment(stack, AirflowVersion="2.11.0"))
    upgraded = environment(stack, AirflowVersion="3.3.2")
    compute.replace(upgraded, "GRACEFUL", lambda _m: None)
    compute.replace(upgraded, "GRACEFUL", lambda _m: None)  # the step again: already on 3.3.2
    assert _migrations(stack, "analytics") == [("2.11.0", None), ("3.3.2", None)]
    assert _images(stack, "analytics") == {"3.3.2"}


def test_rolling_back_a_failed_upgrade_takes_the_schema_down_with_the_newer_airflow(stack: Stack) -> None:
    before = environment(stack, AirflowVersion="2.11.0")
    compute = _up(stack, before)
    failed = environment(stack, AirflowVersion="3.3.2")
    compute.replace(failed, "GRACEFUL", lambda _m: None)
    compute.roll_back(before, lambda _m: None, failed=failed)
    compute.roll_back(before, lambda _m: None, failed=failed)  # a retried step starts no second downgrade
    # Only Airflow 3.3.2 knows how to undo its own migrations; 2.11's `db migrate` is not run on
    # a schema it does not know.
    assert _migrations(stack, "analytics") == [("2.11.0", None), ("3.3.2", None), ("3.3.2", ["--downgrade", "2.11.0"])]
    assert _images(stack, "analytics") == {"2.11.0"}


def test_a_rollback_downgrades_even_when_the_services_never_left_the_old_airflow(stack: Stack) -> None:
    # The upgrade's migrate task may have run although its services were never updated.
    before = environment(stack, AirflowVersion="2.11.0")
    compute = _up(stack, before)
    compute.roll_back(before, lambda _m: None, failed=environment(stack, AirflowVersion="3.3.2"))
    assert _migrations(stack, "analytics") == [("2.11.0", None), ("3.3.2", ["--downgrade", "2.11.0"])]


def test_rolling_back_a_failed_move_to_2_11_migrates_the_schema_forward_again(stack: Stack) -> None:
    before = environment(stack, AirflowVersion="3.3.2")
    compute = _up(stack, before)
    failed = environment(stack, AirflowVersion="2.11.0")
    compute.replace(failed, "GRACEFUL", lambda _m: None)
    compute.roll_back(before, lambda _m: None, failed=failed)
    assert _migrations(stack, "analytics") == [
        ("3.3.2", None), ("3.3.2", ["--downgrade", "2.11.0"]), ("3.3.2", None)]
    assert _images(stack, "analytics") == {"3.3.2"}


def test_a_failed_downgrade_is_reported_by_the_health_check(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    before = environment(stack, AirflowVersion="2.11.0")
    compute = _up(stack, before)
    compute.roll_back(before, lambda _m: None, failed=environment(stack, AirflowVersion="3.3.2"))
    ecs = stack.client("ecs")
    real_list, real_describe = ecs.list_tasks, ecs.describe_tasks

    def stopped(**kwargs: Any) -> Any:
        kwargs.pop("desiredStatus", None)
        return real_list(**kwargs)

    def exited(**kwargs: Any) -> Any:
        # Both tasks have stopped: the creation's migration long ago, the downgrade just now, failed.
        response = real_describe(**kwargs)
        for task in response["tasks"]:
            downgrade = "--downgrade" in json.dumps(task.get("overrides", {}))
            task["createdAt"] = 2_000 if downgrade else 1_000
            task["containers"] = [{"exitCode": 1 if downgrade else 0}]
            task["stoppedReason"] = "Essential container in task exited"
        return response

    monkeypatch.setattr(compute.ecs, "list_tasks", stopped)
    monkeypatch.setattr(compute.ecs, "describe_tasks", exited)
    with pytest.raises(ProvisioningError) as failure:
        compute.health(before)
    assert failure.value.code == "METADATA_DATABASE_FAILED"
    assert "`airflow db downgrade` failed with exit code 1" in failure.value.message
