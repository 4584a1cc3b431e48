"""Local mode and AWS run the same environment: the same environments rendered by both adapters
(local: supervised processes; AWS: ECS task definitions) show the same components, commands,
variables and Airflow options, up to platform values (URLs, ports, paths, where the secrets are).

Both renderers only place the blueprint (airdock.core.blueprint); a renderer that set an option,
a command or a variable of its own, or dropped one, would show here."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airdock.aws.task_definitions import AwsFacts, EcsConfig, platform, task_definitions
from airdock.core.blueprint import Sources, blueprint
from airdock.core.models import Environment
from airdock.local.airflow_env import LocalAirflowEnvironment, LocalSpec
from airdock.local.runtime import Runtime
from support.records import sample_environment

CONFIG = EcsConfig(cluster="c", image_repository="123456789012.dkr.ecr.us-east-1.amazonaws.com/airdock-airflow",
                   task_execution_role_arn="arn:aws:iam::123456789012:role/exec", region="us-east-1",
                   account_id="123456789012")
FACTS = AwsFacts(queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/airdock-e-celery",
                 web_upstream_host="e-webserver.stack.airdock.internal", public_url="https://alb.example/e",
                 base_path="/e", subnet_cidrs=["10.0.1.0/24", "10.0.2.0/24"], drain_poll_s=15)

# Variables only one platform has, and why.
LOCAL_ONLY = {
    "AIRDOCK_AIRFLOW_BIN",       # the runtime venv's airflow (the image has it on PATH)
    "AIRDOCK_WEB_STATE_DIR",     # spent login tokens in a folder shared by one host's web fronts
    "AIRFLOW__CELERY__RESULT_BACKEND",  # Celery's results in the local server's `celery` database
    # A short folder scan, so a DAG file saved into the bucket folder shows while you watch.
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL",
}
AWS_ONLY = {
    "AIRDOCK_USED_TOKENS_STORE",  # ...or in the metadata database, shared by every web-front task
    "AIRDOCK_DRAIN_POLL_S",       # Celery's remote control does not reach a worker on SQS: a marker
    "AIRDOCK_REQUIREMENTS",       # installed at each container's start (locally: in the runtime)
    "AIRDOCK_REQUIREMENTS_VERSION",
    "AIRDOCK_WEB_BASE_PATH",      # path routing on a shared load balancer
    "FORWARDED_ALLOW_IPS",        # the API server behind web fronts on other hosts
    "AIRDOCK_SCHEMA_WAIT_S",      # the migrate task runs beside the services (locally: before)
    "AIRFLOW__LOGGING__REMOTE_LOGGING", "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID",  # TaskLogs to CloudWatch
    "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION",  # the SQS broker
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES",
}
# On one host every component shares the DAG folder, so only the DAG processor syncs it.
SHARED_HOME_SYNC = {"AIRDOCK_DAGS_SOURCE", "AIRDOCK_DAGS_SYNC_INTERVAL", "AIRDOCK_PLUGINS_ZIP",
                    "AIRDOCK_PLUGINS_ZIP_VERSION"}
# Values that are platform facts: addresses, ports, paths, where a source lies, scan intervals.
PLATFORM_VALUES = re.compile(
    r"^(AIRFLOW_HOME|AIRFLOW__CORE__(DAGS|PLUGINS)_FOLDER|AIRFLOW__LOGGING__BASE_LOG_FOLDER|"
    r"AIRFLOW__LOGGING__(WORKER|TRIGGER)_LOG_SERVER_PORT|AIRFLOW__(API|WEBSERVER)__(BASE_URL|HOST|PORT|"
    r"WEB_SERVER_HOST|WEB_SERVER_PORT)|AIRFLOW__CORE__EXECUTION_API_SERVER_URL|AIRFLOW__CELERY__BROKER_URL|"
    r"AIRDOCK_WEB_FRONT_(HOST|PORT)|AIRDOCK_WEB_UPSTREAM|AIRDOCK_WEB_BASE_PATH|AIRDOCK_(DAGS_SOURCE|PLUGINS_ZIP|STARTUP_SCRIPT)|"
    r"AIRDOCK_DAGS_SYNC_INTERVAL|AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL|"
    r"AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL)$")
# Secrets both platforms give; locally the database's are made from its own server's address.
PLATFORM_SECRETS = {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"}
# Arguments of one process among several on one host.
HOST_ARGS = {"--skip-serve-logs"}
# The API server behind web fronts on other hosts believes their X-Forwarded-* (FORWARDED_ALLOW_IPS).
AWS_ARGS = {"--proxy-headers"}


def environments() -> list[Environment]:
    logging = {"TaskLogs": {"Enabled": True, "LogLevel": "WARNING"}, "WorkerLogs": {"Enabled": True, "LogLevel": "ERROR"},
               "SchedulerLogs": {"Enabled": False, "LogLevel": "DEBUG"}, "WebserverLogs": {"Enabled": True, "LogLevel": "INFO"},
               "DagProcessingLogs": {"Enabled": True, "LogLevel": "CRITICAL"}}
    return [
        sample_environment("e", AirflowVersion="3.3.2", EnvironmentClass="mw1.small", LoggingConfiguration=logging,
                           AirflowConfigurationOptions={"core.default_task_retries": "2"}),
        sample_environment("e", AirflowVersion="2.11.0", EnvironmentClass="mw1.large", LoggingConfiguration={},
                           AirflowConfigurationOptions={"celery.worker_autoscale": "7,7", "logging.logging_level": "ERROR"}),
        sample_environment("e", AirflowVersion="3.3.2", EnvironmentClass="mw1.micro", Schedulers=1, MinWorkers=3,
                           LoggingConfiguration=logging, AirflowConfigurationOptions={}),
    ]


def local_rendering(env: Environment, tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """component -> (entrypoint arguments, variables the renderer sets), one entry per component."""
    runtime = Runtime("k", env.AirflowVersion, "3.11", tmp / "venv", tmp / "venv/bin/python", tmp / "venv/bin/airflow")
    # Where LocalCompute finds the environment's bucket objects: files of the bucket folder.
    sources = Sources(dags=str(tmp / env.DagS3Path), plugins=str(tmp / "plugins.zip") if env.PluginsS3Path else None,
                      startup_script=str(tmp / "startup.sh") if env.StartupScriptS3Path else None)
    local = LocalAirflowEnvironment(tmp / "env", runtime, LocalSpec(env, sources))
    inherited = local.inherited_env()
    plan = local.blueprint()
    specs = {s.name: s for s in local.process_specs(plan)}
    specs["worker"] = local.worker_spec(1, plan)
    rendered: dict[str, tuple[list[str], dict[str, str]]] = {}
    for component in plan.components:
        if component.name == "migrate":  # run to its end, with the same environment (airflow_env._run_once)
            spec_env, argv = local.process_env(component), ["x", "-P", "-m", "m", *component.entrypoint]
        else:
            name = {"webserver": local.web_process, "scheduler": "scheduler-1"}.get(component.name, component.name)
            spec_env, argv = dict(specs[name].env or {}), list(specs[name].argv)
        variables = {k: v for k, v in spec_env.items() if inherited.get(k) != v}
        rendered[component.name] = (argv[4:], variables)
    return rendered


def aws_rendering(env: Environment) -> dict[str, tuple[list[str], dict[str, str]]]:
    plan = blueprint(env, platform(env, CONFIG, FACTS))
    arns = {s: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:airdock/e/{s}" for s in ("airflow", "web-front", "database")}
    rendered: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name, definition in task_definitions(plan, env, CONFIG, arns).items():
        container = definition["containerDefinitions"][0]
        variables = {v["name"]: v["value"] for v in container["environment"]}
        variables.update({s["name"]: f"<secret {s['valueFrom']}>" for s in container["secrets"]})
        rendered[name] = (container["command"], variables)
    return rendered


@pytest.mark.parametrize("env", environments(), ids=lambda e: f"{e.AirflowVersion}-{e.EnvironmentClass}")
def test_both_platforms_run_the_same_components_commands_variables_and_options(env: Environment, tmp_path: Path) -> None:
    local, aws = local_rendering(env, tmp_path), aws_rendering(env)
    assert set(local) == set(aws) == {"webserver", "web-front", "dag-processor", "triggerer", "scheduler", "worker", "migrate"}
    for component in aws:
        (local_args, local_vars), (aws_args, aws_vars) = local[component], aws[component]
        instance = [a for a in local_args if a.startswith("worker-")]
        assert ([a for a in local_args if a not in HOST_ARGS and a != "--celery-hostname" and a not in instance]
                == [a for a in aws_args if a not in AWS_ARGS]), component
        only_local = set(local_vars) - set(aws_vars) - LOCAL_ONLY
        only_aws = set(aws_vars) - set(local_vars) - AWS_ONLY
        # A pinned S3 object version is a file of its own locally (LocalBuckets.path).
        only_aws -= {"AIRDOCK_STARTUP_SCRIPT_VERSION", "AIRDOCK_PLUGINS_ZIP_VERSION"}
        if component != "dag-processor":
            only_aws -= SHARED_HOME_SYNC
        assert not only_local and not only_aws, (component, sorted(only_local), sorted(only_aws))
        for name in set(local_vars) & set(aws_vars):
            if PLATFORM_VALUES.match(name) or name in PLATFORM_SECRETS:
                continue
            secret_on_aws = aws_vars[name].startswith("<secret ")
            if secret_on_aws:  # a secret everywhere: locally its value, on AWS where it is kept
                assert local_vars[name] and name not in ("AIRDOCK_PROTECTED_VARIABLES",), (component, name)
                continue
            assert local_vars[name] == aws_vars[name], (component, name, local_vars[name], aws_vars[name])


def test_a_renderer_deciding_an_option_itself_would_be_seen(tmp_path: Path, monkeypatch: Any) -> None:
    env = environments()[0]
    original = LocalAirflowEnvironment.process_env

    def with_own_option(self: LocalAirflowEnvironment, component: Any) -> dict[str, str]:
        return {**original(self, component), "AIRFLOW__CORE__PARALLELISM": "4"}

    monkeypatch.setattr(LocalAirflowEnvironment, "process_env", with_own_option)
    with pytest.raises(AssertionError):
        test_both_platforms_run_the_same_components_commands_variables_and_options(env, tmp_path)
