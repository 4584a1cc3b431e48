"""Compute port on ECS Fargate: each Airflow component of an environment is an ECS service.

What each component runs is the environment's blueprint (airdock.core.blueprint), rendered into
task definitions by `task_definitions.py`; this module runs them: one service per component
(replicas as the blueprint says; workers then follow the autoscaler within MinWorkers..
MaxWorkers), a one-off migration task, the SQS broker queue (`broker.py`), the metadata database
(`database.py`), the secrets (`secrets.py`), the log groups (`logs.py`), Cloud Map
(`discovery.py`) and the web access rules (`web.py`), after the checks of `preflight.py`.

Every method is idempotent (a step re-run after a crash or a Lambda retry converges), and a
failure the user can fix raises `ProvisioningError` saying what to fix.

Scale-in never kills a running task, and workers are protected and scaled through the worker pool
only (`worker_pool.py`, the autoscaler's): ECS deployments (a GRACEFUL update, the maintenance
restart) wait for protected tasks; a FORCED update lifts the protection first.

The web front (airdock_runtime.web_front, MWAA's web server hostname) is one more service,
`web-front`: the load balancer's rules for the environment forward to its target group, it owns
`/aws_mwaa/cli` and `/aws_mwaa/aws-console-sso` and proxies everything else to the webserver
service, which it finds by Cloud Map DNS. Its token key is the environment's secret
`airdock/{Name}/web-front`, read by the control plane to sign tokens (the data plane).
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Callable

from botocore.exceptions import ClientError

from airdock.aws import naming, preflight
from airdock.aws.broker import SqsBroker
from airdock.aws.database import AuroraDatabases
from airdock.aws.discovery import CloudMapDiscovery
from airdock.aws.errors import TransientError
from airdock.aws.kms import KmsKeys
from airdock.aws.logs import CloudWatchLogGroups
from airdock.aws.secrets import EnvironmentSecrets
from airdock.aws.task_definitions import CONTAINER, AwsFacts, EcsConfig, image, platform, task_definitions
from airdock.aws.web import SSO_HEALTH_PATH, WEB_FRONT_PORT, AlbWebAccess
from airdock.aws.worker_pool import EcsWorkerPool
from airdock.core import catalog
from airdock.core.blueprint import Blueprint, blueprint
from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment
from airdock.core.ports import Health

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
# How often a worker's entrypoint looks for its drain marker (airdock_runtime.drain): a drained
# worker stops taking tasks at most this long after the autoscaler decided so.
DRAIN_POLL_S = 15
# Busy workers during a GRACEFUL maintenance restart: as long as the autoscaler's maximum drain.
RESTART_PROTECTION_MINUTES = 12 * 60
WEB_FRONT = "web-front"
MIGRATE = "migrate"
MOVE_TAG = "airdock:schema-move"
# Components of environments made by earlier Airdock versions that may still have a service.
_EVERY_SERVICE = ("scheduler", "webserver", WEB_FRONT, "dag-processor", "triggerer", "worker")


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
        secrets: EnvironmentSecrets,
        workers: EcsWorkerPool,
        ecs: Any,
        ec2: Any,
        ecr: Any,
        keys: KmsKeys | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.databases = databases
        self.logs = logs
        self.web = web
        self.discovery = discovery
        self.secrets = secrets
        self.workers = workers
        self.ecs = ecs
        self.ec2 = ec2
        self.ecr = ecr
        # The environment's KmsKey, checked and resolved to its ARN (kms.py); without it, or
        # without a KmsKey, data at rest is encrypted with AWS managed keys.
        self.keys = keys

    # ================================================================== the blueprint on ECS

    def blueprint(self, env: Environment) -> Blueprint:
        queue = self.broker.find(env.Name)
        facts = AwsFacts(
            queue_url=queue.url if queue is not None else None,
            web_upstream_host=self.discovery.hostname(env.Name),
            public_url=self.web.base_url(env),
            base_path=self.web.base_path(env),
            subnet_cidrs=preflight.subnet_cidrs(self.ec2, env),
            drain_poll_s=DRAIN_POLL_S,
        )
        return blueprint(env, platform(env, self.config, facts))

    def image(self, env: Environment) -> str:
        return image(self.config, env)

    def _key(self, env: Environment) -> str | None:
        return self.keys.resolve(env.KmsKey) if self.keys is not None else None

    # ================================================================== Compute port

    def prepare(self, env: Environment, progress: Progress) -> dict[str, str]:
        preflight.check_network(self.ec2, env, self.web.config.vpc_id)
        key = self._key(env)
        progress("creating the Celery broker queue")
        queue = self.broker.ensure(env.Name, kms_key=key)
        progress("creating the metadata database")
        self.databases.ensure(env.Name, kms_key=key)
        self.secrets.ensure(env.Name, kms_key=key)
        self.discovery.ensure(env.Name)
        self.logs.ensure(env, kms_key=key)
        self.web.ensure(env, SSO_HEALTH_PATH)
        return {"CeleryExecutorQueue": queue.arn}

    def build_runtime(self, env: Environment, progress: Progress) -> None:
        """The runtime is the image (requirements are installed by each container's entrypoint
        at start, as on MWAA): check it exists, register the task definitions, migrate the DB."""
        preflight.check_image(self.ecr, self.config.image_repository, env)
        progress("registering task definitions")
        definitions = self._register_all(env)
        self._move_schema(env, None, definitions, progress)

    def preflight(self, env: Environment, progress: Progress) -> None:
        """New configuration checked without touching the running services: network, image,
        web access mode and task definitions (registering a revision runs nothing)."""
        preflight.check_network(self.ec2, env, self.web.config.vpc_id)
        preflight.check_image(self.ecr, self.config.image_repository, env)
        self._key(env)
        self.web.load_balancer(env)
        progress("pre-flight: registering the new task definitions")
        self._register_all(env)

    def start(self, env: Environment, progress: Progress) -> None:
        # (Also here for resume of an environment created before a secret key existed.)
        self.secrets.ensure(env.Name, kms_key=self._key(env))
        plan = self.blueprint(env)
        definitions = self._register_all(env, plan)
        target_group = self.web.ensure(env, SSO_HEALTH_PATH)
        for component in plan.services:
            progress(f"starting {component.name}")
            self._ensure_service(env, component.name, definitions[component.name],
                                 self._desired(env, plan, component.name), target_group)

    def replace(self, env: Environment, strategy: str, progress: Progress, *, new_deployment: bool = False,
                schema_from: str | None = None) -> None:
        """`new_deployment`: start new tasks even when no task definition changed (a restart).
        `schema_from`: the Airflow whose schema the database may be on (default: the running
        scheduler's)."""
        preflight.check_image(self.ecr, self.config.image_repository, env)
        key = self._key(env)
        self.broker.ensure(env.Name, kms_key=key)
        self.databases.ensure(env.Name, kms_key=key)
        self.secrets.ensure(env.Name, kms_key=key)
        self.discovery.ensure(env.Name)
        self.logs.ensure(env, kms_key=key)
        target_group = self.web.ensure(env, SSO_HEALTH_PATH)
        plan = self.blueprint(env)
        current = self._describe(env.Name, list(_EVERY_SERVICE))
        definitions = self._register_all(env, plan)
        self._move_schema(env, schema_from or self._running_airflow_version(current), definitions, progress)
        if strategy == "FORCED":
            progress("releasing worker scale-in protection (forced update)")
            self.workers.protect_all(env.Name, on=False)
        for component in plan.services:
            progress(f"updating {component.name} ({strategy.lower()})")
            self._ensure_service(env, component.name, definitions[component.name],
                                 self._desired(env, plan, component.name, current), target_group,
                                 force=strategy == "FORCED" or new_deployment)

    def roll_back(self, env: Environment, progress: Progress, *, failed: Environment) -> None:
        """Back onto `env` after the update to `failed` failed, FORCED. An update to another
        Airflow may have moved the database (its migrate task may even have run with the
        services still on `env`), so the schema goes back to `env`'s Airflow whatever the
        update got to: from a newer Airflow by that Airflow's own `airflow db downgrade` (only
        it knows how to undo its migrations, as in MWAA's images), from an older one by
        `airflow db migrate`. Both leave a database already on `env`'s schema as it is."""
        moved = failed.AirflowVersion if failed.AirflowVersion != env.AirflowVersion else None
        self.replace(env, "FORCED", progress, schema_from=moved)

    def health(self, env: Environment) -> Health:
        self._check_migration(env)
        names = [c.name for c in self.blueprint(env).services]
        services = self._describe(env.Name, names)
        waiting: list[str] = []
        for component in names:
            service = services.get(component)
            if service is None or service["status"] != "ACTIVE":
                waiting.append(f"{component}=missing")
                continue
            primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
            if primary.get("rolloutState") == "FAILED":
                raise ProvisioningError(
                    "COMPONENT_FAILED",
                    f"The {component} tasks keep failing to start: {primary.get('rolloutStateReason', '')} "
                    f"See its log group in CloudWatch (enable its module's logging to see it).",
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
        self.workers.protect_all(env.Name, on=False)
        for service in self._describe(env.Name, list(_EVERY_SERVICE)).values():
            if service["status"] == "ACTIVE" and service.get("desiredCount", 0) > 0:
                self.ecs.update_service(cluster=self.config.cluster, service=service["serviceName"], desiredCount=0)

    def destroy(self, env: Environment) -> None:
        self.stop(env)
        for component in _EVERY_SERVICE:
            self._delete_service(env.Name, component)
        self.discovery.delete(env.Name)
        for task in self._tasks(env.Name, "RUNNING"):
            self.ecs.stop_task(cluster=self.config.cluster, task=task, reason="environment deleted")
        for component in (*_EVERY_SERVICE, MIGRATE):
            self._deregister(naming.family(env.Name, component))
        self.web.delete(env.Name)
        self.broker.delete(env.Name)
        self.databases.drop(env.Name)
        self.secrets.delete(env.Name)
        self.logs.delete(env.Name)

    def webserver_hostname(self, env: Environment) -> str | None:
        return self.web.hostname(env)

    # ================================================================== lifecycle (core/lifecycle.py)

    def pause(self, env: Environment) -> None:
        """Every service to zero tasks; services, task definitions, queue, database, secrets and
        log groups stay, so resume is a desired-count change (and no queued message is lost)."""
        self.stop(env)

    def resume(self, env: Environment, progress: Progress) -> None:
        """Desired counts back (the blueprint's replicas; the autoscaler takes the workers from
        there). `start` also recreates anything missing."""
        self.start(env, progress)

    def restart(self, env: Environment, strategy: str, progress: Progress) -> None:
        """A new ECS deployment of every service onto `env` (e.g. a newer patch image), even when
        nothing changed. GRACEFUL: busy workers are protected first, so the deployment replaces
        them only once their tasks have ended (ECS waits for protected tasks; the protection
        outlasts the autoscaler's maximum drain time); other services keep their old tasks until
        the new ones run (minimumHealthyPercent 100). FORCED lifts the protection instead."""
        if strategy != "FORCED":
            busy = self.workers.busy_worker_tasks(env.Name)
            if busy:
                progress(f"protecting {len(busy)} busy worker(s) until their tasks end")
                self.workers.protect_tasks(busy, on=True, minutes=RESTART_PROTECTION_MINUTES)
        self.replace(env, strategy, progress, new_deployment=True)

    # ================================================================== task definitions

    def _register(self, definition: dict[str, Any], env_name: str) -> str:
        """Register a revision only when the definition changed (re-runs reuse the latest)."""
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
            tags=[{"key": "airdock:environment", "value": env_name}, {"key": "airdock:fingerprint", "value": fingerprint}],
        )
        return str(registered["taskDefinition"]["taskDefinitionArn"])

    def _register_all(self, env: Environment, plan: Blueprint | None = None) -> dict[str, str]:
        definitions = task_definitions(plan or self.blueprint(env), env, self.config, self.secrets.arns(env.Name))
        return {name: self._register(definition, env.Name) for name, definition in definitions.items()}

    def _deregister(self, family: str) -> None:
        for page in self.ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE"):
            for arn in page.get("taskDefinitionArns", []):
                if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family:
                    self.ecs.deregister_task_definition(taskDefinition=arn)

    # ================================================================== services and tasks

    def _network(self, env: Environment) -> dict[str, Any]:
        return {"awsvpcConfiguration": {
            "subnets": list(env.NetworkConfiguration.SubnetIds),
            "securityGroups": list(env.NetworkConfiguration.SecurityGroupIds),
            "assignPublicIp": "ENABLED" if self.config.assign_public_ip else "DISABLED",
        }}

    def _desired(self, env: Environment, plan: Blueprint, component: str,
                 current: dict[str, dict[str, Any]] | None = None) -> int:
        replicas = plan.component(component).replicas
        if component == "worker":
            # The autoscaler owns the worker count; an update keeps it within the new bounds.
            running = (current or {}).get("worker", {})
            count = int(running.get("desiredCount", replicas)) if running.get("status") == "ACTIVE" else replicas
            return max(env.MinWorkers, min(count, env.MaxWorkers))
        return replicas

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
        if component == "worker" and self.config.worker_capacity == "FARGATE_SPOT":
            del request["launchType"]
            request["capacityProviderStrategy"] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
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
        try:
            for page in self.ecs.get_paginator("list_tasks").paginate(cluster=self.config.cluster, **filters):
                arns.extend(page.get("taskArns", []))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ServiceNotFoundException":
                raise
        return arns

    def _tasks(self, env_name: str, desired_status: str) -> list[str]:
        return self._list(startedBy=naming.started_by(env_name), desiredStatus=desired_status)

    def _running_airflow_version(self, services: dict[str, dict[str, Any]]) -> str | None:
        scheduler = services.get("scheduler")
        if not scheduler:
            return None
        definition = self.ecs.describe_task_definition(taskDefinition=scheduler["taskDefinition"])["taskDefinition"]
        container_image = definition["containerDefinitions"][0]["image"]
        return str(container_image.rsplit(":", 1)[-1])

    # ================================================================== migration

    def _move_schema(self, env: Environment, schema_from: str | None, definitions: dict[str, str],
                     progress: Progress) -> None:
        """Start the task that brings the database from `schema_from`'s schema (None: none yet,
        or unknown) to `env`'s Airflow's. It runs beside the services, which wait for the schema
        before they start (the blueprint's schema wait); `health` reports it if it fails."""
        target = env.AirflowVersion
        if schema_from == target:
            return  # the same Airflow: nothing to migrate, and a migration would cost a task
        if schema_from is not None and catalog.version_order(schema_from) > catalog.version_order(target):
            newer = env.model_copy(update={"AirflowVersion": schema_from})
            rendered = task_definitions(self.blueprint(newer), newer, self.config, self.secrets.arns(env.Name))
            definition = self._register(rendered[MIGRATE], env.Name)
            self._run_migration(env, definition, ["--downgrade", target], f"{schema_from}->{target}", progress,
                                f"taking the metadata database back from Airflow {schema_from} to {target}")
        else:
            self._run_migration(env, definitions[MIGRATE], None, f"{schema_from or ''}->{target}", progress,
                                "migrating the metadata database")

    def _run_migration(self, env: Environment, task_definition: str, command: list[str] | None, move: str,
                       progress: Progress, what: str) -> None:
        """`move` ("FROM->TO") tags the task: a re-run of the step finds it running (task
        definition revisions do not tell: both Airflows' migrate definitions share a family)."""
        running = self._tasks(env.Name, "RUNNING")
        for start in range(0, len(running), 100):
            described = self.ecs.describe_tasks(cluster=self.config.cluster, tasks=running[start:start + 100],
                                                include=["TAGS"])["tasks"]
            if any({"key": MOVE_TAG, "value": move} in task.get("tags", []) for task in described):
                return  # an earlier run of this step started it
        progress(what)
        overrides = {"containerOverrides": [{"name": CONTAINER, "command": command}]} if command else {}
        response = self.ecs.run_task(
            cluster=self.config.cluster, taskDefinition=task_definition, launchType="FARGATE", count=1,
            networkConfiguration=self._network(env), startedBy=naming.started_by(env.Name),
            tags=[{"key": "airdock:environment", "value": env.Name}, {"key": MOVE_TAG, "value": move}],
            overrides=overrides,
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
            command = "downgrade" if (_command_override(latest) or ["--migrate"])[0] == "--downgrade" else "migrate"
            raise ProvisioningError(
                "METADATA_DATABASE_FAILED",
                f"`airflow db {command}` failed with exit code {exit_code} ({latest.get('stoppedReason', '')}); "
                "enable SchedulerLogs to see its output.",
            )


def _command_override(task: dict[str, Any]) -> list[str] | None:
    for container in task.get("overrides", {}).get("containerOverrides", []):
        if container.get("command"):
            return list(container["command"])
    return None
