"""Compute port on ECS Fargate: each Airflow component of an environment is an ECS service.

Per environment: a task definition per component (sized by environment class, `sizing.py`), one
service per component (scheduler x Schedulers, webserver x MinWebservers, dag-processor and
triggerer x 1 on Airflow 3, Celery workers x the autoscaler's count within MinWorkers..MaxWorkers),
a one-off `airflow db migrate` task, the SQS broker queue (`broker.py`), the metadata database
(`database.py`), the log groups (`logs.py`) and the web access rules (`web.py`). Every container
runs images/airflow's entrypoint, so DAG sync, plugins, requirements, startup script and
configuration options behave as in local mode.

Every method is idempotent (a step re-run after a crash or a Lambda retry converges), and a
failure the user can fix raises `ProvisioningError` saying what to fix.

Scale-in never kills a running task: the autoscaler protects busy worker tasks with ECS task
scale-in protection (`protect_workers`) before it lowers the worker service's desired count, and
ECS deployments (a GRACEFUL update) also wait for protected tasks; a FORCED update lifts the
protection first.

The web front (images/airflow/web_front.py, MWAA's web server hostname) is one more service,
`web-front`: the load balancer's rules for the environment forward to its target group, it owns
`/aws_mwaa/cli` and `/aws_mwaa/aws-console-sso` and proxies everything else to the webserver
service, which it finds by Cloud Map DNS (`discovery.py`). Its token key is the environment's
secret `airdock/{Name}/web-front` (created once, at prepare), given to the task as an ECS secret
and read by the control plane to sign tokens (`data_plane.py`). Spent web login tokens are
recorded in the environment's metadata database (`used_tokens.py`, AIRDOCK_USED_TOKENS_STORE), which
every web-front task reaches with the database secret, so each refuses a replay
(tokens.ReplayGuard) and the user's execution role needs no permission for it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming, sizing
from airdock.aws.broker import SqsBroker
from airdock.aws.database import AuroraDatabases
from airdock.aws.discovery import CloudMapDiscovery
from airdock.aws.logs import COMPONENT_MODULE, CloudWatchLogGroups, enabled_modules
from airdock.aws.web import SSO_HEALTH_PATH, WEB_FRONT_PORT, WEB_PORT, AlbWebAccess
from airdock.core import catalog
from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment
from airdock.core.ports import Health
from airdock_runtime.tokens import new_key as new_token_key

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
AIRFLOW_HOME = "/usr/local/airflow"
CONTAINER = "airflow"
# Worker tasks protected from scale-in for this long per renewal (ECS allows up to 48 h).
PROTECTION_MINUTES = 60
# How often a worker's entrypoint looks for its drain marker (worker_drain.py): a drained worker
# stops taking tasks at most this long after the autoscaler decided so.
DRAIN_POLL_S = 15
# Busy workers during a GRACEFUL maintenance restart: as long as the autoscaler's maximum drain.
RESTART_PROTECTION_MINUTES = 12 * 60
# entrypoint.py's component names.
ENTRYPOINT_COMPONENT = {"scheduler": "scheduler", "dag-processor": "dag-processor", "triggerer": "triggerer",
                        "worker": "celery-worker", "web-front": "web-front"}
WEB_FRONT = "web-front"
# Airflow 3's `api-server` passes uvicorn proxy_headers=False unless given this flag; uvicorn then
# trusts X-Forwarded-Proto/-For from the addresses in FORWARDED_ALLOW_IPS only.
API_SERVER_PROXY_ARGS = ["--proxy-headers"]
_ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)$")


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


def airflow_major(env: Environment) -> int:
    return int(env.AirflowVersion.split(".")[0])


def components(env: Environment) -> list[str]:
    """The services of an environment. Airflow 2's scheduler parses DAGs itself."""
    names = ["scheduler", "webserver", WEB_FRONT, "triggerer", "worker"]
    if airflow_major(env) >= 3:
        names.insert(3, "dag-processor")
    return names


class EcsCompute:
    def __init__(
        self,
        config: EcsConfig,
        *,
        broker: SqsBroker,
        databases: AuroraDatabases,
        logs: CloudWatchLogGroups,
        web: AlbWebAccess,
        discovery: CloudMapDiscovery,
        ecs: Any | None = None,
        ec2: Any | None = None,
        ecr: Any | None = None,
        secretsmanager: Any | None = None,
        record_attributes: Callable[[str, dict[str, str]], None] | None = None,
        busy_workers: Callable[[str], list[str]] | None = None,
    ) -> None:
        """`record_attributes(name, {"CeleryExecutorQueue": arn})` stores resource attributes on
        the environment record (the Compute port has no return channel for them yet)."""
        self.config = config
        self.broker = broker
        self.databases = databases
        self.logs = logs
        self.web = web
        self.discovery = discovery
        self.ecs = ecs or boto3.client("ecs")
        self.ec2 = ec2 or boto3.client("ec2")
        self.ecr = ecr or boto3.client("ecr")
        self.sm = secretsmanager or boto3.client("secretsmanager")
        self.record_attributes = record_attributes
        # Task ARNs of the worker tasks running task instances (EcsWorkerPool.busy_worker_tasks);
        # without it a GRACEFUL restart protects every worker task.
        self.busy_workers = busy_workers

    # ================================================================== Compute port

    def prepare(self, env: Environment, progress: Progress) -> None:
        self._check_network(env)
        progress("creating the Celery broker queue")
        queue = self.broker.ensure(env.Name)
        if self.record_attributes is not None:
            self.record_attributes(env.Name, {"CeleryExecutorQueue": queue.arn})
        progress("creating the metadata database")
        self.databases.ensure(env.Name)
        self._airflow_secret(env.Name)
        self._web_front_secret(env.Name)
        self.discovery.ensure(env.Name)
        self.logs.ensure(env)
        self.web.ensure(env, self._health_path(env))

    def build_runtime(self, env: Environment, progress: Progress) -> None:
        """The runtime is the image (requirements are installed by each container's entrypoint
        at start, as on MWAA): check it exists, register the task definitions, migrate the DB."""
        self._check_image(env)
        progress("registering task definitions")
        definitions = self._register_all(env)
        self._migrate(env, definitions["migrate"], progress)

    def preflight(self, env: Environment, progress: Progress) -> None:
        """New configuration checked without touching the running services: network, image,
        web access mode and task definitions (registering a revision runs nothing)."""
        self._check_network(env)
        self._check_image(env)
        self.web.load_balancer(env)
        progress("pre-flight: registering the new task definitions")
        self._register_all(env)

    def start(self, env: Environment, progress: Progress) -> None:
        # (Also here for resume of an environment created before the web front existed.)
        self._web_front_secret(env.Name)
        definitions = self._register_all(env)
        target_group = self.web.ensure(env, self._health_path(env))
        for component in components(env):
            progress(f"starting {component}")
            self._ensure_service(env, component, definitions[component], self._desired(env, component), target_group)

    def replace(self, env: Environment, strategy: str, progress: Progress, *, new_deployment: bool = False) -> None:
        """`new_deployment`: start new tasks even when no task definition changed (a restart)."""
        self._check_image(env)
        self.broker.ensure(env.Name)
        self.databases.ensure(env.Name)
        self._airflow_secret(env.Name)
        self._web_front_secret(env.Name)
        self.discovery.ensure(env.Name)
        self.logs.ensure(env)
        target_group = self.web.ensure(env, self._health_path(env))
        current = self._describe(env.Name, components(env) + ["dag-processor"])
        definitions = self._register_all(env)
        migrated_from = self._running_airflow_version(current)
        if migrated_from != env.AirflowVersion:
            self._migrate(env, definitions["migrate"], progress)
        if strategy == "FORCED":
            progress("releasing worker scale-in protection (forced update)")
            self.protect_workers(env, self.worker_tasks(env), enabled=False)
        for component in components(env):
            progress(f"updating {component} ({strategy.lower()})")
            self._ensure_service(env, component, definitions[component], self._desired(env, component, current),
                                 target_group, force=strategy == "FORCED" or new_deployment)
        if airflow_major(env) < 3:  # an Airflow 3 -> 2 rollback: no standalone DAG processor
            self._delete_service(env.Name, "dag-processor")

    def health(self, env: Environment) -> Health:
        self._check_migration(env)
        services = self._describe(env.Name, components(env))
        waiting: list[str] = []
        for component in components(env):
            service = services.get(component)
            if service is None or service["status"] != "ACTIVE":
                waiting.append(f"{component}=missing")
                continue
            primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
            if primary.get("rolloutState") == "FAILED":
                raise ProvisioningError(
                    "COMPONENT_FAILED",
                    f"The {component} tasks keep failing to start: {primary.get('rolloutStateReason', '')} "
                    f"See the log group {self.logs.group(env.Name, COMPONENT_MODULE[component])} (enable its logging to see it).",
                )
            desired = int(service.get("desiredCount", 0))
            running = int(service.get("runningCount", 0))
            done = primary.get("rolloutState", "COMPLETED") == "COMPLETED" and len(service.get("deployments", [])) <= 1
            if running < desired or not done:
                waiting.append(f"{component}={running}/{desired}")
        if waiting:
            return Health(False, "waiting for " + ", ".join(waiting))
        return Health(True, "all components running")

    def stop(self, env: Environment) -> None:
        self.protect_workers(env, self.worker_tasks(env), enabled=False)
        for component, service in self._describe(env.Name, components(env) + ["dag-processor"]).items():
            if service["status"] == "ACTIVE" and service.get("desiredCount", 0) > 0:
                self.ecs.update_service(cluster=self.config.cluster, service=service["serviceName"], desiredCount=0)

    def destroy(self, env: Environment) -> None:
        self.stop(env)
        for component in set(components(env)) | {"dag-processor"}:
            self._delete_service(env.Name, component)
        self.discovery.delete(env.Name)
        for task in self._tasks(env.Name, "RUNNING"):
            self.ecs.stop_task(cluster=self.config.cluster, task=task, reason="environment deleted")
        for component in set(components(env)) | {"dag-processor", "migrate"}:
            self._deregister(naming.family(env.Name, component))
        self.web.delete(env.Name)
        self.broker.delete(env.Name)
        self.databases.drop(env.Name)
        self._delete_secret(env.Name, "airflow")
        self._delete_secret(env.Name, "web-front")
        self.logs.delete(env.Name)

    def webserver_hostname(self, env: Environment) -> str | None:
        return self.web.hostname(env)

    # ================================================================== lifecycle (core/lifecycle.py)

    def pause(self, env: Environment) -> None:
        """Every service to zero tasks; services, task definitions, queue, database, secrets and
        log groups stay, so resume is a desired-count change (and no queued message is lost)."""
        self.stop(env)

    def resume(self, env: Environment, progress: Progress) -> None:
        """Desired counts back: Schedulers, MinWebservers, 1 of the rest, MinWorkers (the
        autoscaler takes the workers from there). `start` also recreates anything missing."""
        self.start(env, progress)

    def restart(self, env: Environment, strategy: str, progress: Progress) -> None:
        """A new ECS deployment of every service onto `env` (e.g. a newer patch image), even when
        nothing changed. GRACEFUL: busy workers are protected first, so the deployment replaces
        them only once their tasks have ended (ECS waits for protected tasks; the protection
        outlasts the autoscaler's maximum drain time); other services keep their old tasks until
        the new ones run (minimumHealthyPercent 100). FORCED lifts the protection instead."""
        if strategy != "FORCED":
            busy = self.busy_workers(env.Name) if self.busy_workers is not None else self.worker_tasks(env)
            if busy:
                progress(f"protecting {len(busy)} busy worker(s) until their tasks end")
                self.protect_workers(env, busy, enabled=True, minutes=RESTART_PROTECTION_MINUTES)
        self.replace(env, strategy, progress, new_deployment=True)

    # ================================================================== worker scaling

    def worker_tasks(self, env: Environment) -> list[str]:
        return self._list(serviceName=naming.service_name(env.Name, "worker"))

    def set_worker_count(self, env: Environment, count: int) -> int:
        """Set the worker service's desired count, clamped to MinWorkers..MaxWorkers."""
        count = max(env.MinWorkers, min(count, env.MaxWorkers))
        self.ecs.update_service(cluster=self.config.cluster, service=naming.service_name(env.Name, "worker"),
                                desiredCount=count)
        return count

    def protect_workers(self, env: Environment, task_arns: list[str], enabled: bool = True,
                        minutes: int = PROTECTION_MINUTES) -> None:
        """Set (busy workers) or lift (idle or drained workers) ECS task scale-in protection.
        ECS then never picks a protected task when the desired count drops."""
        for start in range(0, len(task_arns), 10):  # UpdateTaskProtection takes 10 tasks a call
            request: dict[str, Any] = {"cluster": self.config.cluster, "tasks": task_arns[start:start + 10],
                                       "protectionEnabled": enabled}
            if enabled:
                request["expiresInMinutes"] = minutes
            response = self.ecs.update_task_protection(**request)
            for failure in response.get("failures", []):
                if failure.get("reason") != "TASK_NOT_VALID":  # already stopped: nothing to protect
                    log.warning("task protection of %s failed: %s", failure.get("arn"), failure.get("reason"))

    # ================================================================== task definitions

    def image(self, env: Environment) -> str:
        return f"{self.config.image_repository}:{env.AirflowVersion}"

    def _health_path(self, env: Environment) -> str:
        # The load balancer checks the web front itself (its sign-in page answers 200 without
        # Airflow); the webserver's health is its container health check.
        return SSO_HEALTH_PATH

    def _s3(self, env: Environment, key: str | None) -> str | None:
        if not key:
            return None
        bucket = env.SourceBucketArn.split(":::", 1)[1]
        return f"s3://{bucket}/{key.lstrip('/')}"

    def _environment(self, env: Environment, component: str) -> dict[str, str]:
        queue = self.broker.find(env.Name)
        variables: dict[str, str] = {
            "AIRFLOW_HOME": AIRFLOW_HOME,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Components wait for `db migrate` (run beside them) instead of exiting at once.
            "AIRFLOW__DATABASE__CHECK_MIGRATIONS": "True",
            "AIRFLOW__DATABASE__MIGRATION_WAIT_TIMEOUT": "900",
            "AIRFLOW_CONN_AWS_DEFAULT": f"aws://?region_name={self.config.region}",
            "AWS_DEFAULT_REGION": self.config.region,
            "AIRDOCK_ENVIRONMENT_NAME": env.Name,
            "AIRDOCK_CONSTRAINTS": f"/opt/airdock/constraints/airflow-{env.AirflowVersion}-py3.11.txt",
            "AIRDOCK_AIRFLOW_CONFIG_OPTIONS": json.dumps(env.AirflowConfigurationOptions, sort_keys=True),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(
                catalog.tasks_per_worker(env.EnvironmentClass, env.AirflowConfigurationOptions)),
        }
        if component != "migrate":
            variables["AIRDOCK_COMPONENT"] = (
                ENTRYPOINT_COMPONENT.get(component)
                or ("api-server" if airflow_major(env) >= 3 else "webserver")
            )
        for var, key in (("AIRDOCK_DAGS_SOURCE", env.DagS3Path), ("AIRDOCK_PLUGINS_ZIP", env.PluginsS3Path),
                         ("AIRDOCK_REQUIREMENTS", env.RequirementsS3Path),
                         ("AIRDOCK_STARTUP_SCRIPT", env.StartupScriptS3Path)):
            url = self._s3(env, key)
            if url:
                variables[var] = url
        # Pinned object versions (MWAA's *S3ObjectVersion): the entrypoint fetches exactly them.
        for var, version in (("AIRDOCK_PLUGINS_ZIP_VERSION", env.PluginsS3ObjectVersion),
                             ("AIRDOCK_REQUIREMENTS_VERSION", env.RequirementsS3ObjectVersion),
                             ("AIRDOCK_STARTUP_SCRIPT_VERSION", env.StartupScriptS3ObjectVersion)):
            if version:
                variables[var] = version
        if queue is not None:
            variables.update(SqsBroker.celery_environment(queue, self.config.region))
        if component == "worker":
            variables["AIRDOCK_DRAIN_POLL_S"] = str(DRAIN_POLL_S)
        if component == "webserver" and airflow_major(env) >= 3:
            # Airflow 3's API server (uvicorn) believes X-Forwarded-Proto/-For only with
            # --proxy-headers and only from FORWARDED_ALLOW_IPS. Its clients are the web front
            # tasks (their own service, reaching it over the network by Cloud Map), which run in
            # the environment's subnets: trust those, not everyone.
            variables["AIRDOCK_COMPONENT_ARGS"] = json.dumps(API_SERVER_PROXY_ARGS)
            variables["FORWARDED_ALLOW_IPS"] = ",".join(self._subnet_cidrs(env))
        if component == WEB_FRONT:
            # images/airflow/web_front.py's variables; its keys come as secrets (_secrets).
            variables.update({
                "AIRDOCK_WEB_FRONT_HOST": "0.0.0.0",
                "AIRDOCK_WEB_FRONT_PORT": str(WEB_FRONT_PORT),
                "AIRDOCK_WEB_UPSTREAM": f"http://{self.discovery.hostname(env.Name)}:{WEB_PORT}",
                "AIRDOCK_AIRFLOW_MAJOR": str(airflow_major(env)),
                # Spent login tokens go to the metadata database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN,
                # a secret of every component), shared by all web-front tasks: not a task's disk.
                "AIRDOCK_USED_TOKENS_STORE": "metadata-database",
            })
        # Airflow serves its UI and API under the base URL's path (the environment's prefix with
        # path routing); the web front and the entrypoint get that path as AIRDOCK_WEB_BASE_PATH.
        base_url = self.web.base_url(env)
        variables["AIRFLOW__API__BASE_URL" if airflow_major(env) >= 3 else "AIRFLOW__WEBSERVER__BASE_URL"] = base_url
        if airflow_major(env) < 3:
            variables["AIRFLOW__API__AUTH_BACKENDS"] = catalog.AIRFLOW2_API_AUTH_BACKENDS
        variables["AIRDOCK_WEB_BASE_PATH"] = self.web.base_path(env)
        modules = enabled_modules(env)
        level = modules.get(COMPONENT_MODULE[component])
        if level:
            variables["AIRFLOW__LOGGING__LOGGING_LEVEL"] = level
        if "TaskLogs" in modules:
            group = self.logs.group(env.Name, "TaskLogs")
            variables["AIRFLOW__LOGGING__REMOTE_LOGGING"] = "True"
            variables["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] = "aws_default"
            variables["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] = (
                f"cloudwatch://arn:{self.config.partition}:logs:{self.config.region}:{self.config.account_id}:log-group:{group}"
            )
        return variables

    def _secrets(self, env: Environment, component: str) -> list[dict[str, str]]:
        database = self._secret_arn(naming.secret_name(env.Name, "database"))
        airflow = self._secret_arn(naming.secret_name(env.Name, "airflow"))
        front: list[dict[str, str]] = []
        if component == WEB_FRONT:
            # Only the web front gets the token key; it signs browsers in to Airflow 3 with the
            # API's JWT secret, as Airflow's own login does.
            key = self._secret_arn(naming.secret_name(env.Name, "web-front"))
            front = [{"name": "AIRDOCK_TOKEN_KEY", "valueFrom": f"{key}:token_key::"},
                     {"name": "AIRDOCK_JWT_SECRET", "valueFrom": f"{airflow}:jwt_secret::"}]
        if airflow_major(env) < 3 and component in (WEB_FRONT, "migrate"):
            # Airflow 2 (FAB): the migrate task makes the `admin` user with this password
            # (entrypoint.py --migrate, as local mode does); the web front signs browsers in
            # through it, and the control plane reads it for InvokeRestApi (data_plane.py).
            front.append({"name": "AIRDOCK_ADMIN_PASSWORD", "valueFrom": f"{airflow}:admin_password::"})
        return front + [
            {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "valueFrom": f"{database}:sql_alchemy_conn::"},
            {"name": "AIRFLOW__CORE__FERNET_KEY", "valueFrom": f"{airflow}:fernet_key::"},
            {"name": "AIRFLOW__API_AUTH__JWT_SECRET", "valueFrom": f"{airflow}:jwt_secret::"},
            {"name": "AIRFLOW__WEBSERVER__SECRET_KEY", "valueFrom": f"{airflow}:secret_key::"},
        ]

    def _task_definition(self, env: Environment, component: str) -> dict[str, Any]:
        size = sizing.MIGRATE if component == "migrate" else sizing.size(env.EnvironmentClass, component)
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": self.image(env),
            "essential": True,
            # The only container gets all of the task's memory (stated, not implied, so ECS
            # and its emulators agree on the reservation).
            "memory": size.memory,
            "environment": [{"name": k, "value": v} for k, v in sorted(self._environment(env, component).items())],
            "secrets": self._secrets(env, component),
            # A Celery worker's warm shutdown gets Fargate's longest grace; scale-in protection
            # covers tasks longer than that.
            "stopTimeout": 120,
        }
        if component == "migrate":
            # Same image and entrypoint: `airflow db migrate` (idempotent; also upgrades), then
            # Airflow 2's admin user.
            container["command"] = ["--migrate"]
        if component == "webserver":
            container["portMappings"] = [{"containerPort": WEB_PORT, "protocol": "tcp"}]
        if component == WEB_FRONT:
            container["portMappings"] = [{"containerPort": WEB_FRONT_PORT, "protocol": "tcp"}]
            # Alive = accepting connections (the image's health script has no web-front case).
            container["healthCheck"] = {
                "command": ["CMD", "python", "-c",
                            f"import socket; socket.create_connection(('127.0.0.1', {WEB_FRONT_PORT}), 5).close()"],
                "interval": 30, "timeout": 10, "retries": 3, "startPeriod": 120,
            }
        elif component != "migrate":
            container["healthCheck"] = {
                "command": ["CMD", "python", "-m", "airdock_runtime.healthcheck"],
                "interval": 60, "timeout": 30, "retries": 3, "startPeriod": 300,
            }
        member = COMPONENT_MODULE[component]
        if member in enabled_modules(env):
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.logs.group(env.Name, member),
                    "awslogs-region": self.config.region,
                    "awslogs-stream-prefix": component,
                },
            }
        return {
            "family": naming.family(env.Name, component),
            "taskRoleArn": env.ExecutionRoleArn,  # what DAGs run as: the environment's execution role
            "executionRoleArn": self.config.task_execution_role_arn,
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": str(size.cpu),
            "memory": str(size.memory),
            "runtimePlatform": {"cpuArchitecture": self.config.cpu_architecture, "operatingSystemFamily": "LINUX"},
            "containerDefinitions": [container],
        }

    def _register(self, env: Environment, component: str) -> str:
        """Register a revision only when the definition changed (re-runs reuse the latest)."""
        definition = self._task_definition(env, component)
        fingerprint = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:32]
        try:
            latest = self.ecs.describe_task_definition(taskDefinition=definition["family"], include=["TAGS"])
            tags = {t["key"]: t["value"] for t in latest.get("tags", [])}
            if latest["taskDefinition"].get("status") == "ACTIVE" and tags.get("airdock:fingerprint") == fingerprint:
                return str(latest["taskDefinition"]["taskDefinitionArn"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("ClientException", "ClientError", "ResourceNotFoundException"):
                raise
        registered = self.ecs.register_task_definition(
            **definition,
            tags=[{"key": "airdock:environment", "value": env.Name}, {"key": "airdock:fingerprint", "value": fingerprint}],
        )
        return str(registered["taskDefinition"]["taskDefinitionArn"])

    def _register_all(self, env: Environment) -> dict[str, str]:
        return {component: self._register(env, component) for component in components(env) + ["migrate"]}

    def _deregister(self, family: str) -> None:
        for status in ("ACTIVE",):
            request: dict[str, Any] = {"familyPrefix": family, "status": status}
            while True:
                page = self.ecs.list_task_definitions(**request)
                for arn in page.get("taskDefinitionArns", []):
                    if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family:
                        self.ecs.deregister_task_definition(taskDefinition=arn)
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]

    # ================================================================== services and tasks

    def _network(self, env: Environment) -> dict[str, Any]:
        return {"awsvpcConfiguration": {
            "subnets": list(env.NetworkConfiguration.SubnetIds),
            "securityGroups": list(env.NetworkConfiguration.SecurityGroupIds),
            "assignPublicIp": "ENABLED" if self.config.assign_public_ip else "DISABLED",
        }}

    def _desired(self, env: Environment, component: str, current: dict[str, dict[str, Any]] | None = None) -> int:
        if component == "scheduler":
            return env.Schedulers
        if component == "webserver":
            return env.MinWebservers
        if component == WEB_FRONT:
            return 1  # a light proxy; more tasks would be safe, spent login tokens are shared
        if component == "worker":
            # The autoscaler owns the worker count; an update keeps it within the new bounds.
            running = (current or {}).get("worker", {})
            count = int(running.get("desiredCount", env.MinWorkers)) if running.get("status") == "ACTIVE" else env.MinWorkers
            return max(env.MinWorkers, min(count, env.MaxWorkers))
        return 1

    def _describe(self, env_name: str, names: list[str]) -> dict[str, dict[str, Any]]:
        wanted = {naming.service_name(env_name, c): c for c in dict.fromkeys(names)}
        found: dict[str, dict[str, Any]] = {}
        keys = list(wanted)
        for start in range(0, len(keys), 10):  # DescribeServices takes 10 names a call
            response = self.ecs.describe_services(cluster=self.config.cluster, services=keys[start:start + 10])
            for service in response.get("services", []):
                if service.get("status") != "INACTIVE":
                    found[wanted[service["serviceName"]]] = service
        return found

    def _ensure_service(self, env: Environment, component: str, task_definition: str, desired: int,
                        target_group: str, force: bool = False) -> None:
        name = naming.service_name(env.Name, component)
        existing = self._describe(env.Name, [component]).get(component)
        if existing is not None and existing["status"] == "DRAINING":
            from airdock.aws.errors import TransientError

            raise TransientError(f"service {name} is still draining from an earlier delete")
        attachments = self._attachments(env, component, target_group)
        if existing is not None:
            self.ecs.update_service(
                cluster=self.config.cluster, service=name, taskDefinition=task_definition, desiredCount=desired,
                networkConfiguration=self._network(env), forceNewDeployment=force, **attachments,
            )
            return
        request: dict[str, Any] = {
            "cluster": self.config.cluster,
            "serviceName": name,
            "taskDefinition": task_definition,
            "desiredCount": desired,
            "launchType": "FARGATE",
            "networkConfiguration": self._network(env),
            "deploymentConfiguration": {
                # Old tasks stop only when new ones run; the circuit breaker reports a crash loop
                # (health() turns it into COMPONENT_FAILED) and Airdock's workflow rolls back.
                "minimumHealthyPercent": 100 if component != "worker" else 0,
                "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": True, "rollback": False},
            },
            "enableExecuteCommand": False,
            "propagateTags": "SERVICE",
            "tags": [{"key": "airdock:environment", "value": env.Name}, {"key": "airdock:component", "value": component}],
        }
        request.update(attachments)
        if component == WEB_FRONT:
            request["healthCheckGracePeriodSeconds"] = 120
        try:
            self.ecs.create_service(**request)
        except ClientError as exc:
            message = exc.response["Error"].get("Message", "")
            if "subnet" in message.lower() or "security group" in message.lower():
                raise ProvisioningError("INCOMPATIBLE_NETWORK", f"ECS refused the network configuration: {message}") from None
            raise

    def _attachments(self, env: Environment, component: str, target_group: str) -> dict[str, Any]:
        """The web front is in the load balancer's target group; the webserver is in Cloud Map
        (and no longer in the target group: an update moves an older environment's webserver
        out of it)."""
        if component == WEB_FRONT:
            return {"loadBalancers": [{"targetGroupArn": target_group, "containerName": CONTAINER,
                                       "containerPort": WEB_FRONT_PORT}]}
        if component == "webserver":
            return {"loadBalancers": [], "serviceRegistries": [{"registryArn": self.discovery.ensure(env.Name)}]}
        return {}

    def _delete_service(self, env_name: str, component: str) -> None:
        try:
            self.ecs.delete_service(cluster=self.config.cluster, service=naming.service_name(env_name, component), force=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("ServiceNotFoundException", "ServiceNotActiveException"):
                raise

    def _list(self, **filters: Any) -> list[str]:
        arns: list[str] = []
        request: dict[str, Any] = {"cluster": self.config.cluster, **filters}
        while True:
            try:
                page = self.ecs.list_tasks(**request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("ServiceNotFoundException",):
                    return arns
                raise
            arns.extend(page.get("taskArns", []))
            if not page.get("nextToken"):
                return arns
            request["nextToken"] = page["nextToken"]

    def _tasks(self, env_name: str, desired_status: str) -> list[str]:
        return self._list(startedBy=naming.started_by(env_name), desiredStatus=desired_status)

    def _running_airflow_version(self, services: dict[str, dict[str, Any]]) -> str | None:
        scheduler = services.get("scheduler")
        if not scheduler:
            return None
        definition = self.ecs.describe_task_definition(taskDefinition=scheduler["taskDefinition"])["taskDefinition"]
        image = definition["containerDefinitions"][0]["image"]
        return image.rsplit(":", 1)[-1]

    # ================================================================== migration

    def _migrate(self, env: Environment, task_definition: str, progress: Progress) -> None:
        for arn in self._tasks(env.Name, "RUNNING"):
            described = self.ecs.describe_tasks(cluster=self.config.cluster, tasks=[arn])["tasks"]
            if described and described[0].get("taskDefinitionArn") == task_definition:
                return  # an earlier run of this step started it
        progress("migrating the metadata database")
        response = self.ecs.run_task(
            cluster=self.config.cluster, taskDefinition=task_definition, launchType="FARGATE", count=1,
            networkConfiguration=self._network(env), startedBy=naming.started_by(env.Name),
            tags=[{"key": "airdock:environment", "value": env.Name}], propagateTags="TASK_DEFINITION",
        )
        if response.get("failures"):
            reasons = "; ".join(f"{f.get('reason')}: {f.get('detail', '')}" for f in response["failures"])
            raise ProvisioningError("METADATA_DATABASE_FAILED", f"Could not start the database migration task: {reasons}")

    def _check_migration(self, env: Environment) -> None:
        stopped = self._tasks(env.Name, "STOPPED")
        if not stopped:
            return
        tasks = self.ecs.describe_tasks(cluster=self.config.cluster, tasks=stopped[:100])["tasks"]
        migrations = [t for t in tasks if t.get("taskDefinitionArn", "").split("/")[-1].startswith(
            naming.family(env.Name, "migrate") + ":")]
        if not migrations:
            return
        latest = max(migrations, key=lambda t: t.get("createdAt") or 0)
        exit_code = next((c.get("exitCode") for c in latest.get("containers", [])), None)
        if exit_code not in (None, 0):
            raise ProvisioningError(
                "METADATA_DATABASE_FAILED",
                f"`airflow db migrate` failed with exit code {exit_code} ({latest.get('stoppedReason', '')}); "
                "enable SchedulerLogs to see its output.",
            )

    # ================================================================== checks and secrets

    def _subnets(self, env: Environment) -> list[dict[str, Any]]:
        subnets = list(env.NetworkConfiguration.SubnetIds)
        try:
            return list(self.ec2.describe_subnets(SubnetIds=subnets)["Subnets"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                raise ProvisioningError("INCOMPATIBLE_NETWORK", f"Subnets {subnets} were not found: {exc.response['Error'].get('Message', '')}") from None
            raise

    def _subnet_cidrs(self, env: Environment) -> list[str]:
        """The IPv4 and IPv6 ranges of the environment's subnets (where its tasks get addresses)."""
        cidrs: set[str] = set()
        for subnet in self._subnets(env):
            if subnet.get("CidrBlock"):
                cidrs.add(subnet["CidrBlock"])
            cidrs |= {a["Ipv6CidrBlock"] for a in subnet.get("Ipv6CidrBlockAssociationSet", [])
                      if a.get("Ipv6CidrBlock") and a.get("Ipv6CidrBlockState", {}).get("State", "associated") == "associated"}
        return sorted(cidrs)

    def _check_network(self, env: Environment) -> None:
        subnets = list(env.NetworkConfiguration.SubnetIds)
        found = self._subnets(env)
        vpcs = {s["VpcId"] for s in found}
        if vpcs != {self.web.config.vpc_id}:
            raise ProvisioningError(
                "INCOMPATIBLE_NETWORK",
                f"The subnets {subnets} must be in the VPC {self.web.config.vpc_id} this Airdock deployment runs in "
                f"(they are in {sorted(vpcs)}).",
            )

    def _check_image(self, env: Environment) -> None:
        match = _ECR_IMAGE.match(self.config.image_repository)
        if not match:
            return  # not ECR (e.g. a public registry): ECS reports a missing image itself
        try:
            self.ecr.describe_images(repositoryName=match["repo"], registryId=match["account"],
                                     imageIds=[{"imageTag": env.AirflowVersion}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise ProvisioningError(
                    "IMAGE_NOT_FOUND",
                    f"There is no image {self.image(env)}. Build images/airflow/Dockerfile with "
                    f"--build-arg AIRFLOW_VERSION={env.AirflowVersion} and push it with that tag "
                    "(README, 'Deploy to AWS').",
                ) from None
            raise

    def _secret_arn(self, name: str) -> str:
        try:
            return str(self.sm.describe_secret(SecretId=name)["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                # Not created yet (preflight of a brand-new config): the name resolves at run time.
                return f"arn:{self.config.partition}:secretsmanager:{self.config.region}:{self.config.account_id}:secret:{name}"
            raise

    def _airflow_secret(self, env_name: str) -> str:
        """Fernet key, API JWT secret, webserver secret key and (Airflow 2) admin password of the
        environment (created once; rotating the Fernet key would make stored connections
        unreadable)."""
        return self._ensure_secret(env_name, "airflow", f"Airflow keys of Airdock environment {env_name}", lambda: {
            "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "jwt_secret": secrets.token_urlsafe(48),
            "secret_key": secrets.token_urlsafe(48),
            "admin_password": secrets.token_hex(16),
        })

    def _web_front_secret(self, env_name: str) -> str:
        """The key CLI and web login tokens of the environment are signed with (created once: the
        control plane signs with it, the web front verifies with it; core/tokens.py)."""
        return self._ensure_secret(env_name, "web-front", f"Token key of Airdock environment {env_name}'s web front",
                                   lambda: {"token_key": new_token_key()})

    def _ensure_secret(self, env_name: str, kind: str, description: str, make: Callable[[], dict[str, str]]) -> str:
        """The secret's ARN; created with `make()`, or given the keys `make()` has that an older
        secret lacks (existing keys are never changed: an ECS task naming a missing JSON key
        would not start)."""
        name = naming.secret_name(env_name, kind)
        try:
            arn = str(self.sm.describe_secret(SecretId=name)["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        else:
            current = json.loads(self.sm.get_secret_value(SecretId=arn)["SecretString"])
            missing = {k: v for k, v in make().items() if k not in current}
            if missing:
                self.sm.put_secret_value(SecretId=arn, SecretString=json.dumps({**current, **missing}))
            return arn
        try:
            return str(self.sm.create_secret(
                Name=name, SecretString=json.dumps(make()),
                Description=description,
                Tags=[{"Key": "airdock:environment", "Value": env_name}],
            )["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceExistsException":
                return str(self.sm.describe_secret(SecretId=name)["ARN"])
            raise

    def _delete_secret(self, env_name: str, kind: str) -> None:
        try:
            self.sm.delete_secret(SecretId=naming.secret_name(env_name, kind), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
