"""The environment blueprint: what every component of an environment runs, decided once for both
platforms (airdock.core.blueprint). Pure: no processes, no AWS."""
from __future__ import annotations

from typing import Any

import pytest

from airdock.core import blueprint as bp
from airdock.core.blueprint import Platform, SecretRef, Sources
from airdock.core.errors import ValidationError
from airdock.core.models import Environment
from airdock.core.rules import check_configuration_options
from support.records import sample_environment


def environment(**overrides: Any) -> Environment:
    fields: dict[str, Any] = {"AirflowVersion": "3.3.2", "AirflowConfigurationOptions": {}, "LoggingConfiguration": {},
                              "Schedulers": 2, "MinWorkers": 1, "MinWebservers": 2, "MaxWebservers": 2}
    fields.update(overrides)
    return sample_environment("analytics", **fields)


def platform(**overrides: Any) -> Platform:
    fields: dict[str, Any] = {
        "region": "eu-west-1", "airflow_home": "/usr/local/airflow",
        "database_url": SecretRef("database", "sql_alchemy_conn"), "broker_url": "sqs://", "result_backend": None,
        "web_bind": "0.0.0.0", "web_port": 8080, "web_front_bind": "0.0.0.0", "web_front_port": 8080,
        "web_upstream": "http://analytics-webserver.internal:8080", "public_url": "https://alb/analytics",
        "base_path": "/analytics", "execution_api_url": "http://analytics-webserver.internal:8080/execution/",
        "sources": Sources(dags="s3://b/dags", startup_script="s3://b/startup.sh", requirements="s3://b/requirements.txt"),
    }
    fields.update(overrides)
    return Platform(**fields)


def test_each_version_runs_its_web_server_and_the_same_layout_of_components() -> None:
    for version, web in (("3.3.2", "api-server"), ("2.11.0", "webserver")):
        plan = bp.blueprint(environment(AirflowVersion=version), platform())
        assert [c.name for c in plan.components] == [
            "webserver", "web-front", "dag-processor", "triggerer", "scheduler", "worker", "migrate"]
        assert plan.component("webserver").entrypoint[0] == web
        assert plan.component("dag-processor").variables()["AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR"] == "True"


def test_replicas_follow_the_environment_and_one_host_runs_one_web_server() -> None:
    env = environment(Schedulers=3, MinWorkers=2, MinWebservers=2)
    apart = {c.name: c.replicas for c in bp.blueprint(env, platform()).components}
    shared = {c.name: c.replicas for c in bp.blueprint(env, platform(shared_home=True)).components}
    assert apart == {"webserver": 2, "web-front": 1, "dag-processor": 1, "triggerer": 1, "scheduler": 3,
                     "worker": 2, "migrate": 1}
    assert shared["webserver"] == 1 and shared["scheduler"] == 3 and shared["worker"] == 2


def test_user_options_win_over_defaults_and_reach_every_component() -> None:
    env = environment(AirflowConfigurationOptions={"core.load_examples": "True", "celery.worker_concurrency": "3",
                                                   "core.default_task_retries": "2"})
    plan = bp.blueprint(env, platform())
    for component in plan.components:
        variables = component.variables()
        assert variables["AIRFLOW__CORE__LOAD_EXAMPLES"] == "True"
        assert variables["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
        assert variables["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "2"


def test_worker_concurrency_is_the_class_default_unless_autoscale_says_otherwise() -> None:
    small = bp.blueprint(environment(EnvironmentClass="mw1.medium"), platform()).options
    assert small["celery.worker_concurrency"] == "10"
    scaled = bp.blueprint(environment(AirflowConfigurationOptions={"celery.worker_autoscale": "7,7"}), platform()).options
    assert scaled["celery.worker_concurrency"] == "7"


def test_platform_owned_options_are_the_platforms_and_the_api_rejects_them() -> None:
    plan = bp.blueprint(environment(), platform())
    assert plan.options["core.executor"] == "CeleryExecutor"
    assert plan.options["core.fernet_key"] == SecretRef("airflow", "fernet_key")
    assert plan.options["database.sql_alchemy_conn"] == SecretRef("database", "sql_alchemy_conn")
    assert plan.options["api.base_url"] == "https://alb/analytics"
    assert plan.options["core.execution_api_server_url"] == "http://analytics-webserver.internal:8080/execution/"
    for option in ("core.executor", "api.secret_key", "core.execution_api_server_url", "database.sql_alchemy_conn"):
        with pytest.raises(ValidationError, match=option):
            check_configuration_options({option: "x"})
    check_configuration_options({"core.load_examples": "False"})  # MWAA accepts it; AWS's samples set it


def test_every_option_is_a_variable_or_a_secret_of_every_component() -> None:
    plan = bp.blueprint(environment(), platform())
    for component in plan.components:
        for option, value in plan.options.items():
            name = "AIRFLOW__" + option.replace(".", "__", 1).upper()
            if isinstance(value, SecretRef):
                assert component.secrets[name] == value, (component.name, name)
                assert name not in component.environment
            else:
                assert component.environment[name] == value, (component.name, name)


def test_the_worker_log_levels_split_task_and_celery_and_a_user_logging_option_wins() -> None:
    logging = {"TaskLogs": {"Enabled": True, "LogLevel": "WARNING"}, "WorkerLogs": {"Enabled": False, "LogLevel": "ERROR"},
               "SchedulerLogs": {"Enabled": True, "LogLevel": "DEBUG"}}
    plan = bp.blueprint(environment(LoggingConfiguration=logging), platform())
    worker = plan.component("worker").variables()
    assert worker["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "WARNING"
    assert worker["AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL"] == "ERROR"
    assert plan.component("triggerer").variables()["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "DEBUG"
    assert plan.component("webserver").variables()["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "INFO"
    assert {c.name: c.log_module for c in plan.components} == {
        "webserver": "WebServer", "web-front": "WebServer", "dag-processor": "DAGProcessing",
        "triggerer": "Scheduler", "scheduler": "Scheduler", "worker": "Worker", "migrate": "Scheduler"}
    mine = bp.blueprint(environment(LoggingConfiguration=logging,
                                    AirflowConfigurationOptions={"logging.logging_level": "CRITICAL"}), platform())
    assert mine.component("worker").variables()["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "CRITICAL"
    assert mine.component("worker").variables()["AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL"] == "ERROR"


def test_mwaas_variables_are_set_in_every_component() -> None:
    plan = bp.blueprint(environment(), platform())
    expected = {"webserver": "webserver", "web-front": "webserver", "dag-processor": "scheduler",
                "triggerer": "scheduler", "scheduler": "scheduler", "worker": "worker", "migrate": "migrate-db"}
    for component in plan.components:
        variables = component.variables()
        assert variables["MWAA_AIRFLOW_COMPONENT"] == expected[component.name]
        assert variables["AIRFLOW_ENV_NAME"] == "analytics"
        assert variables["AWS_DEFAULT_REGION"] == variables["AWS_REGION"] == "eu-west-1"
        assert variables["AIRFLOW_HOME"] == "/usr/local/airflow"


def test_secrets_go_only_where_they_are_needed() -> None:
    for version in ("2.11.0", "3.3.2"):
        plan = bp.blueprint(environment(AirflowVersion=version), platform())
        holders = {name: {c.name for c in plan.components if name in c.secrets}
                   for name in ("AIRDOCK_TOKEN_KEY", "AIRDOCK_ADMIN_PASSWORD", "AIRDOCK_JWT_SECRET")}
        assert holders["AIRDOCK_TOKEN_KEY"] == {"web-front"}
        if version == "2.11.0":
            assert holders["AIRDOCK_ADMIN_PASSWORD"] == {"web-front", "migrate"}
            assert holders["AIRDOCK_JWT_SECRET"] == set()
        else:
            assert holders["AIRDOCK_ADMIN_PASSWORD"] == set()
            assert holders["AIRDOCK_JWT_SECRET"] == {"web-front"}
    made = bp.new_secret("airflow")
    assert set(made) == {"fernet_key", "jwt_secret", "secret_key", "admin_password"}
    assert bp.new_secret("airflow")["fernet_key"] != made["fernet_key"]


def test_sources_the_startup_script_and_requirements_as_mwaa_runs_them() -> None:
    apart = bp.blueprint(environment(), platform())
    for component in apart.components:
        variables = component.variables()
        if component.name == "migrate":  # MWAA's migrate-db runs no startup script and syncs nothing
            assert "AIRDOCK_STARTUP_SCRIPT" not in variables and "AIRDOCK_DAGS_SOURCE" not in variables
            continue
        assert variables["AIRDOCK_STARTUP_SCRIPT"] == "s3://b/startup.sh"
        assert variables["AIRDOCK_DAGS_SOURCE"] == "s3://b/dags"
        assert variables["AIRDOCK_REQUIREMENTS"] == "s3://b/requirements.txt"
    shared = bp.blueprint(environment(), platform(shared_home=True, requirements_prebuilt=True))
    syncing = [c.name for c in shared.components if "AIRDOCK_DAGS_SOURCE" in c.variables()]
    assert syncing == ["dag-processor"]
    assert not any("AIRDOCK_REQUIREMENTS" in c.variables() for c in shared.components)


def test_a_startup_script_may_change_neither_the_platforms_nor_the_users_settings() -> None:
    plan = bp.blueprint(environment(AirflowConfigurationOptions={"core.default_task_retries": "2"}), platform())
    protected = set(plan.component("scheduler").variables()["AIRDOCK_PROTECTED_VARIABLES"].split(","))
    assert {"AIRFLOW__CORE__DEFAULT_TASK_RETRIES", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW_HOME", "MWAA_AIRFLOW_COMPONENT", "AWS_REGION"} <= protected
    assert "AIRFLOW__CORE__LOAD_EXAMPLES" not in protected  # an opinionated default: a script may change it


def test_health_restart_and_drain_policy() -> None:
    plan = bp.blueprint(environment(), platform())
    assert plan.component("webserver").health.args == ("http", "http://127.0.0.1:8080/analytics/api/v2/monitor/health")
    assert plan.component("scheduler").health.args == ("job", "SchedulerJob")
    assert plan.component("web-front").health.args == ("port", "8080")
    worker = plan.component("worker")
    assert worker.health.args == ("celery-worker",) and worker.drains and worker.stop_grace_s == 120
    migrate = plan.component("migrate")
    assert migrate.entrypoint == ("--migrate",) and not migrate.restart and migrate.health is None
    assert [c.name for c in plan.services] == ["webserver", "web-front", "dag-processor", "triggerer", "scheduler", "worker"]


def test_one_host_shapes_workers_and_the_api_server_behind_a_remote_web_front() -> None:
    shared = bp.blueprint(environment(), platform(shared_home=True))
    assert shared.component("worker").entrypoint == ("celery-worker", "--skip-serve-logs")
    assert shared.component("worker").instance_args == ("--celery-hostname", "{instance}@analytics")
    remote = bp.blueprint(environment(), platform(forwarded_allow_ips="10.0.1.0/24,10.0.2.0/24"))
    assert remote.component("webserver").entrypoint == ("api-server", "--proxy-headers")
    assert remote.component("webserver").variables()["FORWARDED_ALLOW_IPS"] == "10.0.1.0/24,10.0.2.0/24"
    assert bp.blueprint(environment(), platform()).component("worker").entrypoint == ("celery-worker",)
