"""What an environment runs, decided once: the blueprint both platforms render.

`blueprint(env, platform)` is a pure function from an environment (its version's catalog entry,
class, configuration options, logging configuration, worker bounds) and the facts of the
platform it runs on (opaque URLs, paths, ports) to, per component: the entrypoint command, its
environment variables (Airflow's options among them, as `AIRFLOW__SECTION__KEY`), the secrets it
gets, its log module and level, health check, restart and drain policy. Local mode renders it
into supervised processes (airdock.local.processes_plan), AWS into ECS task definitions
(airdock.aws.task_definitions); neither decides an option, a command or a log level itself.

Precedence follows MWAA's own image (aws/amazon-mwaa-docker-images, `setup_environment`):
opinionated defaults < the startup script's exports < the user's AirflowConfigurationOptions <
what the platform owns. The startup script runs in the component's container with everything
set, and the variables it may not change are named in AIRDOCK_PROTECTED_VARIABLES.
"""
from __future__ import annotations

import base64
import secrets as secrets_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from airdock.core import catalog
from airdock.core.logs import COMPONENT_MODULE, module_levels
from airdock.core.models import Environment
from airdock_runtime import tokens

# ---- secrets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """A value the platform keeps secret: key `key` of the environment's secret `secret`
    ("airflow", "web-front" or "database"). Local mode resolves it from the environment's 0600
    secrets file; AWS gives it to the container as an ECS secret from Secrets Manager."""

    secret: str
    key: str


Value = str | SecretRef

AIRFLOW_SECRET = "airflow"
WEB_FRONT_SECRET = "web-front"
DATABASE_SECRET = "database"


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets_module.token_bytes(32)).decode()


# The keys Airdock makes for every environment, once (rotating the Fernet key would make stored
# connections unreadable; the others are checked by processes that were given them at start).
# A platform creates each secret with these keys, and adds a key an older secret lacks.
SECRET_KEYS: dict[str, dict[str, Callable[[], str]]] = {
    AIRFLOW_SECRET: {
        "fernet_key": _fernet_key,
        "jwt_secret": lambda: secrets_module.token_urlsafe(48),
        "secret_key": lambda: secrets_module.token_urlsafe(48),
        # Airflow 2 (FAB) and Airflow 3 (simple auth manager): the `admin` user's password.
        "admin_password": lambda: secrets_module.token_hex(16),
    },
    # What CLI and web login tokens are signed with (control plane) and checked with (web front).
    WEB_FRONT_SECRET: {"token_key": tokens.new_key},
}


def new_secret(secret: str) -> dict[str, str]:
    return {key: make() for key, make in SECRET_KEYS[secret].items()}


# ---- platform facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Where the entrypoint fetches the environment's code from: local paths, or s3:// URLs."""

    dags: str | None = None
    plugins: str | None = None
    plugins_version: str | None = None
    requirements: str | None = None
    requirements_version: str | None = None
    startup_script: str | None = None
    startup_script_version: str | None = None


@dataclass(frozen=True)
class Platform:
    """What the platform knows and the blueprint uses without interpreting: addresses, paths,
    ports, and how components share a host."""

    region: str
    airflow_home: str
    database_url: Value                   # the metadata database (SQLAlchemy URL)
    broker_url: Value                     # Celery's broker
    result_backend: Value | None          # Celery's result backend (None: Airflow's default)
    web_bind: str                         # where Airflow's web server listens
    web_port: int
    web_front_bind: str
    web_front_port: int
    web_upstream: str                     # the web server as the web front reaches it
    public_url: str                       # the web front as browsers reach it (Airflow's base_url)
    base_path: str                        # path prefix of public_url ("" or "/NAME")
    execution_api_url: str                # Airflow 3: where task processes reach the API server
    worker_log_port: int = 8793
    trigger_log_port: int = 8794
    sources: Sources = field(default_factory=Sources)
    # Every component of the environment shares one AIRFLOW_HOME on one host (local mode): one DAG
    # syncer for all, one web server and web front process, no log server per worker (task logs
    # are read from the shared folder), instances told apart by name. Otherwise (one container
    # per component, AWS) each container syncs its own copy.
    shared_home: bool = False
    # The runtime already has the user's requirements (local mode builds a venv per
    # requirements.txt); otherwise the entrypoint installs them at start, as MWAA does.
    requirements_prebuilt: bool = False
    # Airflow's broker transport options ([celery_broker_transport_options], e.g. SQS queues).
    broker_transport_options: Mapping[str, str] = field(default_factory=dict)
    # Seconds between scans of the DAG folder for new files (None: Airflow's default, 300 s).
    dag_scan_interval_s: int | None = None
    # Seconds between syncs of the DAG folder from its source.
    dag_sync_interval_s: float = 5.0
    # Worker drain by a marker in the metadata database, polled every so many seconds (ECS,
    # where Celery's remote control does not reach a worker); None: drained by SIGTERM.
    drain_poll_s: float | None = None
    # Where web fronts remember spent login tokens: a folder (SQLite) shared by the web fronts
    # of one host, or None for the metadata database (shared by every web-front task).
    used_tokens_dir: str | None = None
    # Airflow 3's API server behind the web front on another host: the networks whose
    # X-Forwarded-* headers it believes (uvicorn FORWARDED_ALLOW_IPS); None: same host.
    forwarded_allow_ips: str | None = None
    # CloudWatch log group ARN task logs are written to remotely (TaskLogs enabled on AWS).
    task_log_group_arn: str | None = None
    # Variables the platform adds to the web front (e.g. its TLS certificate files).
    web_front_environment: Mapping[str, str] = field(default_factory=dict)
    # The migration runs beside the components rather than before them (ECS: a migrate task
    # started with the services): Airflow's components then wait up to so many seconds for the
    # database's schema to be their Airflow's before they start (None: it already is).
    schema_wait_s: int | None = None


# ---- what the blueprint says ------------------------------------------------------------------

ComponentName = Literal["scheduler", "webserver", "web-front", "dag-processor", "triggerer", "worker", "migrate"]


@dataclass(frozen=True)
class HealthCheck:
    """How to tell the component is healthy: the arguments of `python -m
    airdock_runtime.healthcheck` (exit 0 = healthy), and how long a start may take."""

    args: tuple[str, ...]
    start_period_s: int = 300
    interval_s: int = 60


@dataclass(frozen=True)
class Component:
    name: ComponentName
    # `python -m airdock_runtime.entrypoint <entrypoint...>`
    entrypoint: tuple[str, ...]
    replicas: int
    environment: Mapping[str, str]
    secrets: Mapping[str, SecretRef]
    log_module: str | None               # MWAA module its output feeds (Scheduler, Worker, ...)
    health: HealthCheck | None
    # A service is restarted whenever it stops; a job (the migration) runs once to its end.
    restart: bool = True
    # Seconds a stop waits before killing. A worker's SIGTERM is Celery's warm shutdown: it takes
    # no new task and lets the running ones finish.
    stop_grace_s: int = 30
    drains: bool = False
    port: int | None = None
    # On a shared host, per instance: the argument template naming it ({instance}).
    instance_args: tuple[str, ...] = ()

    def variables(self) -> dict[str, str]:
        """Plain variables only (what is not secret)."""
        return dict(self.environment)


@dataclass(frozen=True)
class Blueprint:
    release: catalog.AirflowRelease
    components: tuple[Component, ...]
    # The Airflow options every component gets, section.option -> value (secret values as refs).
    options: Mapping[str, Value]

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    @property
    def services(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.restart)


# ---- the rules --------------------------------------------------------------------------------

# Options the platform sets to wire the environment together: a user value would break it, so
# CreateEnvironment/UpdateEnvironment reject them. What MWAA blocks, and no more: everything else
# a user sets wins over Airdock's defaults.
PLATFORM_OWNED_OPTIONS: frozenset[str] = frozenset({
    "core.executor",
    "core.sql_alchemy_conn",
    "database.sql_alchemy_conn",
    "core.fernet_key",
    "core.dags_folder",
    "core.plugins_folder",
    "core.execution_api_server_url",
    "celery.broker_url",
    "celery.result_backend",
    "celery.celery_app_name",
    "celery_broker_transport_options.predefined_queues",
    "logging.base_log_folder",
    "logging.worker_log_server_port",
    "logging.trigger_log_server_port",
    "logging.logging_config_class",
    "api.port",
    "api.host",
    "api.base_url",
    "api.secret_key",
    "api_auth.jwt_secret",
    "webserver.secret_key",
    "webserver.web_server_port",
    "webserver.web_server_host",
    "webserver.base_url",
})

# Variables a startup script may not change (MWAA's protected variables, `_is_protected_os_environ`
# in its image), besides the platform-owned options and the user's options.
PROTECTED_VARIABLES: frozenset[str] = frozenset({
    "AIRFLOW_ENV_ID", "AIRFLOW_ENV_NAME", "AIRFLOW_HOME", "AIRFLOW_VERSION", "AWS_DEFAULT_REGION", "AWS_REGION",
    "MWAA_AIRFLOW_COMPONENT", "PYTHONPATH", "PYTHONUNBUFFERED", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_URI_V4", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EXECUTION_ENV",
})

# MWAA_AIRFLOW_COMPONENT as MWAA sets it: its scheduler container also runs the DAG processor
# and the triggerer, its webserver container Airflow's web server (the web front answers the
# MWAA endpoints of that container).
MWAA_COMPONENT: dict[str, str] = {
    "scheduler": "scheduler", "dag-processor": "scheduler", "triggerer": "scheduler",
    "webserver": "webserver", "web-front": "webserver", "worker": "worker", "migrate": "migrate-db",
}

# A task whose worker died (SIGKILL, OOM) stops heartbeating; Airflow fails it (and retries it)
# only after this timeout, 300 s by default. Heartbeats come every 5 s, so a minute is still 12
# missed beats.
TASK_HEARTBEAT_TIMEOUT_S = 60
# A scheduler only fails heartbeat-less tasks it queued itself; those of a scheduler that died
# wait until another adopts them, which it checks every 300 s by default.
ORPHANED_TASKS_CHECK_S = 30
# A Celery worker's warm shutdown: as long as the longest grace a container gets (ECS allows 120 s);
# scale-in protection and draining cover tasks longer than that.
WORKER_STOP_GRACE_S = 120

_JOBS = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob", "dag-processor": "DagProcessorJob"}


def _env_name(option: str) -> str:
    section, _, key = option.partition(".")
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def airflow_options(env: Environment, platform: Platform) -> dict[str, Value]:
    """airflow.cfg of the environment: Airdock's defaults, the user's options, then what the
    platform owns (which the API never lets a user set)."""
    release = catalog.release(env.AirflowVersion)
    home = platform.airflow_home.rstrip("/")
    defaults: dict[str, Value] = {
        "core.load_examples": "False",
        # Many processes per environment, each with a pool: keep pools small.
        "database.sql_alchemy_pool_size": "3",
        "database.sql_alchemy_max_overflow": "7",
        # Components started beside the migration wait for it instead of exiting.
        "database.check_migrations": "True",
        "database.migration_wait_timeout": "900",
        "celery.worker_concurrency": str(catalog.tasks_per_worker(env.EnvironmentClass, env.AirflowConfigurationOptions)),
        "scheduler.orphaned_tasks_check_interval": str(ORPHANED_TASKS_CHECK_S),
        "usage_data_collection.enabled": "False",
    }
    if release.major >= 3:
        defaults.update({
            "scheduler.task_instance_heartbeat_timeout": str(TASK_HEARTBEAT_TIMEOUT_S),
            "api.workers": "1",
            # Airdock signs browsers and API calls in with JWTs of this auth manager's shape.
            "core.simple_auth_manager_users": "admin:admin",
        })
        if platform.dag_scan_interval_s is not None:
            defaults["dag_processor.refresh_interval"] = str(platform.dag_scan_interval_s)
    else:
        defaults.update({
            "scheduler.scheduler_zombie_task_threshold": str(TASK_HEARTBEAT_TIMEOUT_S),
            "webserver.workers": "2",
            # The REST API takes basic auth (InvokeRestApi and the web front's sign-in call it as
            # FAB users) besides the UI's session.
            "api.auth_backends": catalog.AIRFLOW2_API_AUTH_BACKENDS,
        })
        if platform.dag_scan_interval_s is not None:
            defaults["scheduler.dag_dir_list_interval"] = str(platform.dag_scan_interval_s)
    if platform.task_log_group_arn:
        defaults.update({
            "logging.remote_logging": "True",
            "logging.remote_log_conn_id": "aws_default",
            "logging.remote_base_log_folder": f"cloudwatch://{platform.task_log_group_arn}",
        })

    owned: dict[str, Value] = {
        "core.executor": "CeleryExecutor",
        "core.dags_folder": f"{home}/dags",
        "core.plugins_folder": f"{home}/plugins",
        "core.fernet_key": SecretRef(AIRFLOW_SECRET, "fernet_key"),
        "database.sql_alchemy_conn": platform.database_url,
        "celery.broker_url": platform.broker_url,
        "logging.base_log_folder": f"{home}/logs",
        "logging.worker_log_server_port": str(platform.worker_log_port),
        "logging.trigger_log_server_port": str(platform.trigger_log_port),
        "api_auth.jwt_secret": SecretRef(AIRFLOW_SECRET, "jwt_secret"),
        # One layout on both versions: the DAG processor runs apart (Airflow 3 always does).
        "scheduler.standalone_dag_processor": "True",
    }
    if platform.result_backend is not None:
        owned["celery.result_backend"] = platform.result_backend
    for option, value in platform.broker_transport_options.items():
        owned[f"celery_broker_transport_options.{option}"] = value
    if release.major >= 3:
        owned.update({
            "api.host": platform.web_bind,
            "api.port": str(platform.web_port),
            "api.base_url": platform.public_url,
            "api.secret_key": SecretRef(AIRFLOW_SECRET, "secret_key"),
            "core.execution_api_server_url": platform.execution_api_url,
        })
    else:
        owned.update({
            "webserver.web_server_host": platform.web_bind,
            "webserver.web_server_port": str(platform.web_port),
            "webserver.base_url": platform.public_url,
            "webserver.secret_key": SecretRef(AIRFLOW_SECRET, "secret_key"),
        })
    user = {k: v for k, v in env.AirflowConfigurationOptions.items() if k not in PLATFORM_OWNED_OPTIONS}
    return {**defaults, **user, **owned}


def _log_levels(component: str, levels: Mapping[str, str], user: Mapping[str, str]) -> dict[str, str]:
    """Airflow's own logging level for a component, from its module's LogLevel; a user's
    `logging.*` option wins, as in MWAA.

    A Celery worker hosts two modules: its task processes inherit `[logging] logging_level` (the
    Task module's level: the task log in the UI holds exactly what the Task module keeps), its
    own Celery output follows `celery_logging_level` (the Worker module's)."""
    if component == "worker":
        chosen = {"logging.logging_level": levels["Task"], "logging.celery_logging_level": levels["Worker"]}
    else:
        module = COMPONENT_MODULE.get(component)
        chosen = {"logging.logging_level": levels[module]} if module else {}
    return {_env_name(k): v for k, v in chosen.items() if k not in user}



def blueprint(env: Environment, platform: Platform) -> Blueprint:
    release = catalog.release(env.AirflowVersion)
    options = airflow_options(env, platform)
    plain = {_env_name(k): v for k, v in options.items() if isinstance(v, str)}
    secret = {_env_name(k): v for k, v in options.items() if isinstance(v, SecretRef)}
    user = {k: v for k, v in env.AirflowConfigurationOptions.items() if k not in PLATFORM_OWNED_OPTIONS}
    protected = sorted(PROTECTED_VARIABLES | {_env_name(k) for k in user}
                       | {_env_name(k) for k in PLATFORM_OWNED_OPTIONS})
    levels = module_levels(env)
    sources = platform.sources

    def common(component: str) -> dict[str, str]:
        variables = {
            **plain,
            "AIRFLOW_HOME": platform.airflow_home,
            "AIRFLOW_ENV_NAME": env.Name,
            "AIRFLOW_VERSION": release.version,
            "AWS_DEFAULT_REGION": platform.region,
            "AWS_REGION": platform.region,
            # MWAA's opinionated default: boto3's credential chain (the task role) in `aws_default`.
            "AIRFLOW_CONN_AWS_DEFAULT": "aws://",
            "MWAA_AIRFLOW_COMPONENT": MWAA_COMPONENT[component],
            "AIRDOCK_PROTECTED_VARIABLES": ",".join(protected),
            **_log_levels(component, levels, user),
        }
        if platform.schema_wait_s and component not in ("migrate", "web-front"):
            variables["AIRDOCK_SCHEMA_WAIT_S"] = str(platform.schema_wait_s)
        if sources.startup_script and component != "migrate":  # MWAA skips it for migrate-db
            variables["AIRDOCK_STARTUP_SCRIPT"] = sources.startup_script
            if sources.startup_script_version:
                variables["AIRDOCK_STARTUP_SCRIPT_VERSION"] = sources.startup_script_version
        if sources.requirements and not platform.requirements_prebuilt:
            variables["AIRDOCK_REQUIREMENTS"] = sources.requirements
            if sources.requirements_version:
                variables["AIRDOCK_REQUIREMENTS_VERSION"] = sources.requirements_version
        syncs = not platform.shared_home or component == "dag-processor"
        if syncs and component != "migrate":
            if sources.dags:
                variables["AIRDOCK_DAGS_SOURCE"] = sources.dags
                variables["AIRDOCK_DAGS_SYNC_INTERVAL"] = str(platform.dag_sync_interval_s)
            if sources.plugins:
                variables["AIRDOCK_PLUGINS_ZIP"] = sources.plugins
                if sources.plugins_version:
                    variables["AIRDOCK_PLUGINS_ZIP_VERSION"] = sources.plugins_version
        return variables

    def health_job(component: str) -> HealthCheck:
        return HealthCheck(("job", _JOBS[component]))

    web = release.web_server
    web_env = common("webserver")
    web_args: list[str] = []
    if release.major >= 3 and platform.forwarded_allow_ips:
        # The API server (uvicorn) believes X-Forwarded-Proto/-For only with --proxy-headers and
        # only from FORWARDED_ALLOW_IPS: the web fronts' networks, not everyone.
        web_args = ["--proxy-headers"]
        web_env["FORWARDED_ALLOW_IPS"] = platform.forwarded_allow_ips
    if platform.base_path:
        # Airflow 2's webserver scopes its session cookie to the prefix (entrypoint).
        web_env["AIRDOCK_WEB_BASE_PATH"] = platform.base_path

    front_env = {
        **common("web-front"),
        "AIRDOCK_ENVIRONMENT_NAME": env.Name,
        "AIRDOCK_WEB_FRONT_HOST": platform.web_front_bind,
        "AIRDOCK_WEB_FRONT_PORT": str(platform.web_front_port),
        "AIRDOCK_WEB_UPSTREAM": platform.web_upstream,
        "AIRDOCK_WEB_BASE_PATH": platform.base_path,
        "AIRDOCK_AIRFLOW_MAJOR": str(release.major),
        **platform.web_front_environment,
    }
    if platform.used_tokens_dir:
        front_env["AIRDOCK_WEB_STATE_DIR"] = platform.used_tokens_dir
    else:
        front_env["AIRDOCK_USED_TOKENS_STORE"] = "metadata-database"
    # The web front signs browsers in as Airflow's own login would: a JWT of the API's secret
    # (Airflow 3), or the FAB `admin` user's session (Airflow 2). Only it gets the token key, and
    # only it and the migration (which makes that user) get the admin password.
    admin = {"AIRDOCK_ADMIN_PASSWORD": SecretRef(AIRFLOW_SECRET, "admin_password")} if release.major < 3 else {}
    front_secrets = {**secret, "AIRDOCK_TOKEN_KEY": SecretRef(WEB_FRONT_SECRET, "token_key"),
                     **({"AIRDOCK_JWT_SECRET": SecretRef(AIRFLOW_SECRET, "jwt_secret")} if release.major >= 3 else admin)}

    worker_env = common("worker")
    if platform.drain_poll_s:
        worker_env["AIRDOCK_DRAIN_POLL_S"] = str(platform.drain_poll_s)
    worker_args = ["--skip-serve-logs"] if platform.shared_home else []

    migrate_secrets = {**secret, **admin}
    one_host = platform.shared_home

    components = (
        Component("webserver", (web, *web_args), 1 if one_host else env.MinWebservers, web_env, secret,
                  COMPONENT_MODULE["webserver"], HealthCheck(("http", f"http://127.0.0.1:{platform.web_port}"
                                                               f"{platform.base_path}{release.health_path}")),
                  port=platform.web_port),
        Component("web-front", ("web-front",), 1, front_env, front_secrets, COMPONENT_MODULE["web-front"],
                  HealthCheck(("port", str(platform.web_front_port)), start_period_s=120, interval_s=30),
                  port=platform.web_front_port),
        Component("dag-processor", ("dag-processor",), 1, common("dag-processor"), secret,
                  COMPONENT_MODULE["dag-processor"], health_job("dag-processor")),
        Component("triggerer", ("triggerer",), 1, common("triggerer"), secret, COMPONENT_MODULE["triggerer"],
                  health_job("triggerer")),
        Component("scheduler", ("scheduler",), env.Schedulers, common("scheduler"), secret,
                  COMPONENT_MODULE["scheduler"], health_job("scheduler")),
        Component("worker", ("celery-worker", *worker_args), env.MinWorkers, worker_env, secret,
                  COMPONENT_MODULE["worker"], HealthCheck(("celery-worker",)), stop_grace_s=WORKER_STOP_GRACE_S,
                  drains=True, instance_args=("--celery-hostname", f"{{instance}}@{env.Name}") if one_host else ()),
        Component("migrate", ("--migrate",), 1, common("migrate"), migrate_secrets, COMPONENT_MODULE["migrate"],
                  None, restart=False),
    )
    return Blueprint(release, components, options)
