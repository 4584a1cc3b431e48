"""What Airdock offers: environment classes, Airflow versions, and the settings it owns.

MWAA's rules that are not in the service model (MWAA_FACTS.md) live here, once.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvironmentClass:
    name: str
    tasks_per_worker: int  # MWAA's default celery.worker_autoscale maximum
    max_schedulers: int
    min_schedulers: int
    max_webservers: int
    min_webservers: int
    default_schedulers: int
    default_webservers: int


ENVIRONMENT_CLASSES: dict[str, EnvironmentClass] = {
    c.name: c
    for c in (
        EnvironmentClass("mw1.micro", 3, 1, 1, 1, 1, 1, 1),
        EnvironmentClass("mw1.small", 5, 5, 2, 5, 2, 2, 2),
        EnvironmentClass("mw1.medium", 10, 5, 2, 5, 2, 2, 2),
        EnvironmentClass("mw1.large", 20, 5, 2, 5, 2, 2, 2),
        EnvironmentClass("mw1.xlarge", 40, 5, 2, 5, 2, 2, 2),
        EnvironmentClass("mw1.2xlarge", 80, 5, 2, 5, 2, 2, 2),
    )
}
DEFAULT_ENVIRONMENT_CLASS = "mw1.small"

# The Airflow versions Airdock can really run (each is installed and tested); the newest is the
# default, as in MWAA. Ordered oldest → newest.
AIRFLOW_VERSIONS: tuple[str, ...] = ("2.11.0", "3.3.2")
DEFAULT_AIRFLOW_VERSION = AIRFLOW_VERSIONS[-1]

# Airflow 2's REST API authentication: basic auth (InvokeRestApi and the web front's sign-in
# call it as FAB users) and the UI's session. Airflow's own default is the session only.
AIRFLOW2_API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"

MAX_WORKERS_QUOTA = 25
DEFAULT_MIN_WORKERS = 1
DEFAULT_MAX_WORKERS = 10
DEFAULT_WEEKLY_MAINTENANCE_WINDOW = "SUN:03:00"
DEFAULT_WEBSERVER_ACCESS_MODE = "PRIVATE_ONLY"
DEFAULT_ENDPOINT_MANAGEMENT = "SERVICE"

# Options Airdock itself sets to wire the environment together; a user value would break it.
BLOCKED_CONFIGURATION_OPTIONS: frozenset[str] = frozenset(
    {
        "core.executor",
        "core.sql_alchemy_conn",
        "database.sql_alchemy_conn",
        "core.fernet_key",
        "core.dags_folder",
        "core.plugins_folder",
        "core.load_examples",
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
        "api_auth.jwt_secret",
        "webserver.secret_key",
        "webserver.web_server_port",
        "webserver.web_server_host",
        "webserver.base_url",
    }
)


def tasks_per_worker(environment_class: str, options: dict[str, str] | None = None) -> int:
    """celery.worker_autoscale "max,min" overrides the class default, as in MWAA."""
    autoscale = (options or {}).get("celery.worker_autoscale")
    if autoscale:
        try:
            return max(1, int(autoscale.split(",")[0]))
        except ValueError:
            pass
    return ENVIRONMENT_CLASSES[environment_class].tasks_per_worker
