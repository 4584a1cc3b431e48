"""The environment's blueprint rendered as ECS task definitions, one per component.

What each container runs (command, variables, Airflow options, secrets, log level, health check,
stop grace) is the blueprint's (airdock.core.blueprint); this module only says where on AWS: the
platform facts (the SQS queue, the Aurora database secret, Cloud Map and load balancer names,
the subnets' ranges), the image, Fargate sizes (`sizing.py`), secret ARNs and log groups.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airdock.aws import naming, sizing
from airdock.aws.web import WEB_FRONT_PORT, WEB_PORT
from airdock.core.blueprint import DATABASE_SECRET, Blueprint, Component, Platform, SecretRef, Sources
from airdock.core.logs import enabled_modules, log_group_name
from airdock.core.models import Environment

AIRFLOW_HOME = "/usr/local/airflow"
CONTAINER = "airflow"


@dataclass(frozen=True)
class EcsConfig:
    cluster: str
    image_repository: str  # the image for Airflow X is `{image_repository}:{X}`
    task_execution_role_arn: str
    region: str
    account_id: str
    partition: str = "aws"
    cpu_architecture: str = "X86_64"  # or ARM64 (Graviton: ~20 % cheaper; build the image for it)
    assign_public_ip: bool = False
    # FARGATE_SPOT: the Celery workers on Spot capacity (~70 % cheaper; ECS may reclaim one with two
    # minutes' notice, which Celery's warm shutdown and Airflow's task retries absorb).
    worker_capacity: str = "FARGATE"


@dataclass(frozen=True)
class AwsFacts:
    """Where an environment's pieces are on AWS, found or made by the other adapters."""

    queue_url: str | None          # the Celery broker queue (SQS)
    web_upstream_host: str         # the webserver service's Cloud Map name
    public_url: str                # the web front behind the load balancer
    base_path: str                 # "/NAME" with path routing, else ""
    subnet_cidrs: list[str]        # where the environment's tasks (web fronts among them) get addresses
    drain_poll_s: float


# ECS replaces a container whose health check has failed `retries` times after its start period
# (at most 300 s). Before Airflow runs, the entrypoint syncs DAGs and installs requirements.txt,
# which may take 10+ minutes on Fargate, so the checks tolerate SETUP_ALLOWANCE_S in all: ECS's
# most retries, spaced out as needed. A component that crashes exits, which ECS sees at once.
SETUP_ALLOWANCE_S = 1500
# How long a component waits for the migrate task to bring the schema to its Airflow (a first
# `airflow db migrate` on Aurora takes a few minutes; a downgrade, as long). Within the allowance.
SCHEMA_WAIT_S = 900
HEALTH_RETRIES = 10


def ecs_health_timing(start_period_s: int, interval_s: int) -> dict[str, int]:
    start = min(start_period_s, 300)
    interval = min(300, max(interval_s, -(-(SETUP_ALLOWANCE_S - start) // HEALTH_RETRIES)))
    return {"interval": interval, "timeout": 30, "retries": HEALTH_RETRIES, "startPeriod": start}

def s3_url(env: Environment, key: str | None) -> str | None:
    if not key:
        return None
    bucket = env.SourceBucketArn.split(":::", 1)[1]
    return f"s3://{bucket}/{key.lstrip('/')}"


def platform(env: Environment, config: EcsConfig, facts: AwsFacts) -> Platform:
    import json

    upstream = f"http://{facts.web_upstream_host}:{WEB_PORT}"
    options: dict[str, str] = {"region": config.region}
    if facts.queue_url is not None:
        options["predefined_queues"] = json.dumps({"default": {"url": facts.queue_url}})
    group = None
    if "Task" in enabled_modules(env):
        group = (f"arn:{config.partition}:logs:{config.region}:{config.account_id}:log-group:"
                 f"{log_group_name(env.Name, 'Task')}")
    return Platform(
        region=config.region,
        airflow_home=AIRFLOW_HOME,
        database_url=SecretRef(DATABASE_SECRET, "sql_alchemy_conn"),
        broker_url="sqs://",
        result_backend=None,
        web_bind="0.0.0.0",
        web_port=WEB_PORT,
        web_front_bind="0.0.0.0",
        web_front_port=WEB_FRONT_PORT,
        web_upstream=upstream,
        public_url=facts.public_url,
        base_path=facts.base_path,
        execution_api_url=f"{upstream}{facts.base_path}/execution/",
        sources=Sources(
            dags=s3_url(env, env.DagS3Path),
            plugins=s3_url(env, env.PluginsS3Path), plugins_version=env.PluginsS3ObjectVersion,
            requirements=s3_url(env, env.RequirementsS3Path), requirements_version=env.RequirementsS3ObjectVersion,
            startup_script=s3_url(env, env.StartupScriptS3Path),
            startup_script_version=env.StartupScriptS3ObjectVersion,
        ),
        broker_transport_options=options,
        drain_poll_s=facts.drain_poll_s,
        forwarded_allow_ips=",".join(facts.subnet_cidrs) or None,
        task_log_group_arn=group,
        schema_wait_s=SCHEMA_WAIT_S,
    )


def image(config: EcsConfig, env: Environment) -> str:
    return f"{config.image_repository}:{env.AirflowVersion}"


def task_definition(component: Component, env: Environment, config: EcsConfig, secret_arns: dict[str, str]) -> dict[str, Any]:
    """The ECS task definition of one component. `secret_arns`: secret name -> its ARN."""
    size = sizing.size(env.EnvironmentClass, component.name)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image(config, env),
        "essential": True,
        # The only container gets all of the task's memory (stated, not implied, so ECS and its
        # emulators agree on the reservation).
        "memory": size.memory,
        "command": list(component.entrypoint),
        "environment": [{"name": k, "value": v} for k, v in sorted(component.environment.items())],
        "secrets": [{"name": name, "valueFrom": f"{secret_arns[ref.secret]}:{ref.key}::"}
                    for name, ref in sorted(component.secrets.items())],
        # ECS allows at most 120 s between SIGTERM and SIGKILL.
        "stopTimeout": min(component.stop_grace_s, 120),
    }
    if component.port is not None:
        container["portMappings"] = [{"containerPort": component.port, "protocol": "tcp"}]
    if component.health is not None:
        container["healthCheck"] = {
            "command": ["CMD", "python", "-m", "airdock_runtime.healthcheck", *component.health.args],
            **ecs_health_timing(component.health.start_period_s, component.health.interval_s),
        }
    level = enabled_modules(env).get(component.log_module or "")
    if level is not None and component.log_module is not None:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group_name(env.Name, component.log_module),
                "awslogs-region": config.region,
                "awslogs-stream-prefix": component.name,
            },
        }
    return {
        "family": naming.family(env.Name, component.name),
        "taskRoleArn": env.ExecutionRoleArn,  # what DAGs run as: the environment's execution role
        "executionRoleArn": config.task_execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(size.cpu),
        "memory": str(size.memory),
        "runtimePlatform": {"cpuArchitecture": config.cpu_architecture, "operatingSystemFamily": "LINUX"},
        "containerDefinitions": [container],
    }


def task_definitions(plan: Blueprint, env: Environment, config: EcsConfig,
                     secret_arns: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {c.name: task_definition(c, env, config, secret_arns) for c in plan.components}
