"""Every setting of an Airdock process, read once from its environment (AIRDOCK_*) into one model
and checked at start: a bad value fails the start with the variable named, not a request later.

Which fields a process uses depends on where it runs: the domain reads the account and region;
`airdock serve` the local ones; the Lambda functions the AWS ones (template.yaml sets them). The
composition roots (airdock.local.context, airdock.wiring, the CLI) read the model and hand each
adapter what it needs; nothing else reads the environment.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOME_CACHE = Path.home() / ".cache" / "airdock" / "runtimes"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIRDOCK_", extra="ignore", frozen=True)

    # ---- the domain
    account_id: str = Field(default="000000000000", pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
                        validation_alias=AliasChoices("AIRDOCK_REGION", "AWS_REGION"))
    partition: str = "aws"

    # ---- local mode (`airdock serve`)
    data_dir: Path = Path(".airdock")
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    endpoint_url: str | None = None  # where `airdock pause/resume` find the server (default: 127.0.0.1:port)
    # The root key; otherwise one is made on first start and kept in <data-dir>/credentials.
    access_key_id: str | None = None
    secret_access_key: str | None = None
    events_webhook: str | None = None
    control_plane_only: bool = False
    runtime_cache: Path = _HOME_CACHE
    # Web fronts: the host name clients use (e.g. the name on the TLS certificate), the address
    # they listen on, and HTTPS.
    web_hostname: str = "127.0.0.1"
    web_bind: str = "127.0.0.1"
    web_tls_cert: str | None = None
    web_tls_key: str | None = None
    cli_timeout: str | None = None
    token_clock_offset_file: str | None = None  # tests: seconds added to the web fronts' clock
    # How long a GRACEFUL replacement waits for running tasks before stopping a worker anyway,
    # and how long a pause does (a pause frees the machine now; Airflow retries what was cut off).
    graceful_timeout: float = 12 * 3600.0
    pause_grace: float = 60.0
    lifecycle_interval: float = Field(default=30.0, ge=0.5)
    lifecycle_clock_offset_file: str | None = None
    autoscaler: bool = True
    autoscaler_interval_s: float = 5.0
    metrics_interval_s: float = 5.0
    log_route_interval_s: float = 1.0
    health_metrics_interval_s: float = 15.0
    # The autoscaler's policy (core/autoscaling.py); None: the platform's default.
    autoscaler_stabilization_s: float | None = None
    autoscaler_max_drain_s: float | None = None
    autoscaler_max_metric_age_s: float | None = None
    autoscaler_prewarm_s: float | None = None

    # ---- MWAA Serverless (its quotas: MWAA Serverless's defaults)
    serverless_max_workflows: int = Field(default=100, ge=1)
    serverless_max_versions: int = Field(default=50, ge=1)
    serverless_max_concurrent_runs: int = Field(default=100, ge=1)
    serverless_max_runs_per_workflow: int = Field(default=20, ge=1)
    serverless_parallelism: int = Field(default=32, ge=1)   # the local engine's task slots
    serverless_interval_s: float = Field(default=2.0, gt=0)  # how often runs and schedules are followed
    # On AWS (the MWAA Serverless functions)
    workflows_table: str | None = None
    serverless_bucket: str | None = None
    serverless_engine_url: str | None = None
    serverless_engine_secret: str | None = None

    # ---- on AWS (the Lambda functions; template.yaml)
    table_name: str | None = None
    create_sm_arn: str | None = None
    update_sm_arn: str | None = None
    delete_sm_arn: str | None = None
    lifecycle_function: str | None = None
    event_bus: str = "default"
    listener_https: bool = False
    airflow_roles: str | None = None  # JSON: access key id or principal ARN -> Airflow role
    vpc_id: str | None = None
    private_listener_arn: str | None = None
    private_alb_dns: str | None = None
    public_listener_arn: str | None = None
    public_alb_dns: str | None = None
    web_domain: str | None = None
    db_cluster_arn: str | None = None
    db_admin_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    ecs_cluster: str | None = None
    airflow_image_repository: str | None = None
    task_execution_role_arn: str | None = None
    cpu_architecture: str = "X86_64"
    log_retention_days: int = 30
    discovery_namespace_id: str | None = None
    discovery_namespace: str | None = None
    worker_capacity: str = Field(default="FARGATE", pattern=r"^FARGATE(_SPOT)?$")  # the Celery workers'
    # How long workflow steps, health waits and lifecycle runs may take (core/timing.py); None:
    # the defaults there, which are local mode's.
    step_timeout_s: int | None = Field(default=None, ge=1)
    health_timeout_s: int | None = Field(default=None, ge=1)
    drain_timeout_s: int | None = Field(default=None, ge=0)
    health_poll_s: int | None = Field(default=None, ge=1)
    lifecycle_health_timeout_s: float | None = Field(default=None, gt=0)
    lifecycle_run_s: float | None = Field(default=None, gt=0)
    lifecycle_poll_s: float | None = Field(default=None, gt=0)

    @classmethod
    def from_environ(cls) -> "Settings":
        return cls()

    def required(self, field: str) -> str:
        """A setting this deployment cannot do without (AIRDOCK_<FIELD>)."""
        value = getattr(self, field)
        if value in (None, ""):
            raise RuntimeError(f"environment variable AIRDOCK_{field.upper()} must be set for the AWS backend")
        return str(value)

    def environment_arn(self, name: str) -> str:
        return f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:environment/{name}"

    def name_from_arn(self, arn: str) -> str | None:
        prefix = f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:environment/"
        return arn[len(prefix):] if arn.startswith(prefix) else None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
