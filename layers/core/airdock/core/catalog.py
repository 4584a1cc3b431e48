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

@dataclass(frozen=True)
class AirflowRelease:
    """An Airflow version Airdock runs, with what depends on it. Each runs on the Python MWAA
    uses for it, from one lock (airdock_runtime/locks) that local runtimes and the image share."""

    version: str
    python: str

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def web_server(self) -> str:
        """The component serving the UI and REST API: Airflow 3's API server, Airflow 2's webserver."""
        return "api-server" if self.major >= 3 else "webserver"

    @property
    def api_prefix(self) -> str:
        return "/api/v2" if self.major >= 3 else "/api/v1"

    @property
    def health_path(self) -> str:
        return "/api/v2/monitor/health" if self.major >= 3 else "/health"

    @property
    def lock(self) -> str:
        return f"airflow-{self.version}-py{self.python}.txt"


# The Airflow versions Airdock can really run (each is installed and tested); the newest is the
# default, as in MWAA. Ordered oldest → newest. Python as in the MWAA User Guide's versions table
# (mwaa-faqs "What Python version can I use?"): 3.11 up to 2.10.3, 3.12 from 2.11.0 on.
RELEASES: dict[str, AirflowRelease] = {
    r.version: r for r in (
        AirflowRelease("2.9.2", "3.11"),
        AirflowRelease("2.10.1", "3.11"),
        AirflowRelease("2.10.3", "3.11"),
        AirflowRelease("2.11.0", "3.12"),
        AirflowRelease("2.11.2", "3.12"),
        AirflowRelease("3.0.6", "3.12"),
        AirflowRelease("3.2.1", "3.12"),
        AirflowRelease("3.3.1", "3.12"),
        # The newest Airflow 3 release, beyond MWAA's list.
        AirflowRelease("3.3.2", "3.12"),
    )
}
AIRFLOW_VERSIONS: tuple[str, ...] = tuple(RELEASES)
DEFAULT_AIRFLOW_VERSION = AIRFLOW_VERSIONS[-1]


def release(version: str) -> AirflowRelease:
    return RELEASES[version]


def version_order(version: str) -> tuple[int, ...]:
    """Sort key of an Airflow version ("2.10.3" < "2.11.0" < "3.0.6")."""
    return tuple(int(part) for part in version.split("."))

# Airflow 2's REST API authentication: basic auth (InvokeRestApi and the web front's sign-in
# call it as FAB users) and the UI's session. Airflow's own default is the session only.
AIRFLOW2_API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"

MAX_WORKERS_QUOTA = 25
DEFAULT_MIN_WORKERS = 1
DEFAULT_MAX_WORKERS = 10
DEFAULT_WEEKLY_MAINTENANCE_WINDOW = "SUN:03:00"
DEFAULT_WEBSERVER_ACCESS_MODE = "PRIVATE_ONLY"
DEFAULT_ENDPOINT_MANAGEMENT = "SERVICE"


def tasks_per_worker(environment_class: str, options: dict[str, str] | None = None) -> int:
    """celery.worker_autoscale "max,min" overrides the class default, as in MWAA."""
    autoscale = (options or {}).get("celery.worker_autoscale")
    if autoscale:
        try:
            return max(1, int(autoscale.split(",")[0]))
        except ValueError:
            pass
    return ENVIRONMENT_CLASSES[environment_class].tasks_per_worker
