"""The local MWAA Serverless engine: one Airflow 3.0.6 for the whole installation.

Processes (supervised, restarted when they crash): a PostgreSQL (the metadata database; the
`pgserver` binaries of Airdock's own environment, as for environments), the API
server (one worker), the scheduler with the LocalExecutor (one that lets its idle workers go,
airdock_serverless_engine.executor) and the DAG processor. Every workflow
version is one DAG: a two-line DAG file in the engine's DAGs folder that builds it with
dag-factory from the version's snapshot (`airdock_serverless_engine.loader`). Each task runs in
a process of its own (the task SDK's runner, forked per task), which sets the workflow's
variables and code folder for itself alone.

Why one LocalDagBundle and not a bundle per workflow: bundles are configured when the DAG
processor starts; a version is an immutable DAG of its own anyway, so Airflow's DAG versioning
has nothing to track across updates.

The engine starts with the first deployed version (or at server start when there are
workflows) and stays up; idle it is a few hundred MB (bench/serverless.py measures it).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Callable

import airdock_serverless_engine
from airdock_runtime.airflow_auth import mint_airflow_jwt
from airdock.core.serverless.definition import DefinitionError
from airdock.core.serverless.errors import EngineUnavailable
from airdock.core.serverless.airflow_api import AirflowEngineApi, RunsThroughApi, log_event
from airdock.core.serverless.ports import Deployment
from airdock.local.embedded_postgres import as_postgres_user, postgres_bin_dir
from airdock.local.environment_files import pick_free_port
from airdock.local.serverless.engine_runtime import EngineRuntime, ensure_runtime
from airdock.local.processes import dies_with_caller, reap_orphans, session_members
from airdock.local.supervisor import ComponentSpec, ComponentState, Supervisor

log = logging.getLogger("airdock.serverless.engine")

_DROP_ENV_PREFIXES = ("AIRFLOW__", "AIRDOCK_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "UV_", "AWS_")
_DROP_ENV = {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
DAG_FILE = """# Airflow DAG of an MWAA Serverless workflow version (written by Airdock; do not edit).
from airdock_serverless_engine.loader import load_version

load_version({folder!r}, globals())
"""
CHECK_TIMEOUT_S = 180
COMPONENTS = ("postgres", "api-server", "scheduler", "dag-processor")


def extract_code(code_ref: str | None, target: Path) -> None:
    """Unpack (or copy) a code snapshot into `target` (the snapshot was checked when taken)."""
    target.mkdir(parents=True, exist_ok=True)
    if not code_ref:
        return
    source = Path(code_ref)
    if source.suffix.lower() == ".zip":
        with zipfile.ZipFile(source) as archive:
            archive.extractall(target)
    else:
        shutil.copyfile(source, target / source.name)


class LocalEngine(RunsThroughApi):
    def __init__(self, root: Path, *, runtime_cache: Path, parallelism: int = 32,
                 runtime: Callable[[Path], EngineRuntime] = ensure_runtime) -> None:
        self.root = root
        self.home = root / "home"
        self.dags = root / "dags"
        self.versions = root / "versions"
        self.pgdata = root / "pgdata"
        self.parallelism = parallelism
        self.runtime_cache = runtime_cache
        self._runtime_factory = runtime
        self._runtime: EngineRuntime | None = None
        self._supervisor: Supervisor | None = None
        self._lock = threading.RLock()
        self._starting: threading.Thread | None = None
        self._ready = threading.Event()
        self._closed = False
        self._adopted = False
        self._last_watch = 0.0
        self.last_error: str | None = None

    # ---- files and secrets -------------------------------------------------------------------------

    @property
    def runtime(self) -> EngineRuntime:
        if self._runtime is None:
            self._runtime = self._runtime_factory(self.runtime_cache)
        return self._runtime

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._supervisor = Supervisor(self.root)
        return self._supervisor

    def _private(self, name: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.root / name
        if path.is_file():
            return dict(json.loads(path.read_text()))
        self.root.mkdir(parents=True, exist_ok=True)
        data = make()
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(path.with_suffix(".tmp"), path)
        return data

    @property
    def secrets(self) -> dict[str, str]:
        from base64 import urlsafe_b64encode

        return self._private("secrets.json", lambda: {
            "fernet_key": urlsafe_b64encode(os.urandom(32)).decode(), "jwt_secret": secrets.token_urlsafe(48),
            "secret_key": secrets.token_urlsafe(32), "db_password": secrets.token_urlsafe(24),
            "ui_secret": secrets.token_urlsafe(32)})

    @property
    def ports(self) -> dict[str, int]:
        def pick() -> dict[str, int]:
            api = pick_free_port()
            return {"api": api, "postgres": pick_free_port(avoid={api})}

        return {k: int(v) for k, v in self._private("ports.json", pick).items()}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.startswith(_DROP_ENV_PREFIXES)}
        s, p = self.secrets, self.ports
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{self.runtime.venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(Path(airdock_serverless_engine.__file__).resolve().parent.parent),
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__CORE__EXECUTOR": "airdock_serverless_engine.executor.IdleTrimmingLocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "20",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": s["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airdock_serverless_engine.auth.AirdockAuthManager",
            "AIRDOCK_ENGINE_UI_STATE": str(self.root / "ui-sessions.db"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                f"postgresql+psycopg2://airflow:{s['db_password']}@127.0.0.1:{p['postgres']}/airflow",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "10",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(p["api"]),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": s["secret_key"],
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": s["jwt_secret"],
            # New versions are picked up within a couple of seconds; files never change once
            # written (versions are immutable), so re-parsing them is rare.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "60",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SECRETS__USE_CACHE": "False",
            # dag-factory reports usage to a server on the internet; never from here.
            "DAG_FACTORY_ENABLE_TELEMETRY": "False",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "true",
            "AIRDOCK_ENGINE_UI_SECRET": s["ui_secret"],
        })
        return env

    # ---- versions (deploy / undeploy) ----------------------------------------------------------------

    def _version_dir(self, dag_id: str) -> Path:
        return self.versions / dag_id

    def _write_version(self, folder: Path, dag_yaml: str, code_ref: str | None, environment: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dag.yaml").write_text(dag_yaml)
        fd = os.open(folder / "env.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(environment, handle)
        extract_code(code_ref, folder / "code")

    def check_definition(self, dag_yaml: str, dag_id: str, code_ref: str | None,
                         environment: dict[str, str]) -> list[str]:
        runtime = self.runtime
        with tempfile.TemporaryDirectory(prefix="airdock-sl-check-") as tmp:
            folder = Path(tmp) / "version"
            self._write_version(folder, dag_yaml, code_ref, environment)
            env = {k: v for k, v in self.base_env().items() if not k.startswith("AIRFLOW__DATABASE")}
            env["AIRFLOW_HOME"] = str(Path(tmp) / "home")
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(tmp) / "dags")
            try:
                out = subprocess.run(dies_with_caller([str(runtime.python), "-m", "airdock_serverless_engine.check",
                                                       str(folder)]),
                                     capture_output=True, text=True, env=env, cwd=tmp, timeout=CHECK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise DefinitionError(f"loading the DAG took more than {CHECK_TIMEOUT_S} s") from None
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise DefinitionError(f"the DAG check failed: {(out.stderr or out.stdout).strip()[-500:]}")
        report = json.loads(lines[-1])
        if not report.get("ok"):
            raise DefinitionError(str(report.get("error")))
        return [f"{task}={operator}" for task, operator in report["tasks"].items()]

    def deploy(self, deployment: Deployment) -> None:
        with self._lock:
            folder = self._version_dir(deployment.dag_id)
            dag_file = self.dags / f"{deployment.dag_id}.py"
            if not (folder / "dag.yaml").is_file():
                tmp = folder.with_name(folder.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                self._write_version(tmp, deployment.dag_yaml, deployment.code_ref, deployment.environment)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
            self.dags.mkdir(parents=True, exist_ok=True)
            if not dag_file.is_file():
                tmp_file = dag_file.with_suffix(".tmp")
                tmp_file.write_text(DAG_FILE.format(folder=str(folder)))
                os.replace(tmp_file, dag_file)
        self.ensure_started()

    def undeploy(self, dag_id: str, workflow_id: str, version: str) -> None:
        with self._lock:
            (self.dags / f"{dag_id}.py").unlink(missing_ok=True)
            shutil.rmtree(self._version_dir(dag_id), ignore_errors=True)
            pending = self._pending_deletes()
            pending.add(dag_id)
            self._save_pending(pending)
        if self._ready.is_set():
            self._purge_deleted()

    def _pending_deletes(self) -> set[str]:
        path = self.root / "pending-deletes.json"
        return set(json.loads(path.read_text())) if path.is_file() else set()

    def _save_pending(self, pending: set[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "pending-deletes.json"
        path.with_suffix(".tmp").write_text(json.dumps(sorted(pending)))
        os.replace(path.with_suffix(".tmp"), path)

    def _purge_deleted(self) -> None:
        """Remove deleted versions' DAGs and history from Airflow's database (once it is up)."""
        with self._lock:
            pending = self._pending_deletes()
        done = set()
        for dag_id in pending:
            try:
                deleted = self.rest.delete_dag(dag_id)
            except EngineUnavailable:
                return
            if deleted:
                done.add(dag_id)
                shutil.rmtree(self.home / "logs" / f"dag_id={dag_id}", ignore_errors=True)
        with self._lock:
            self._save_pending(self._pending_deletes() - done)

    # ---- processes ---------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def ensure_started(self) -> None:
        """Start the engine in the background unless it runs or is starting."""
        with self._lock:
            if self._closed or self._ready.is_set() or (self._starting is not None and self._starting.is_alive()):
                return
            self._starting = threading.Thread(target=self._start_until_ready, name="serverless-engine-start",
                                              daemon=True)
            self._starting.start()

    def wait_ready(self, timeout_s: float) -> bool:
        self.ensure_started()
        return self._ready.wait(timeout_s)

    def _start_until_ready(self) -> None:
        delay = 5.0
        while not self._closed:
            try:
                self.start()
                self.last_error = None
                return
            except Exception as exc:  # noqa: BLE001 - reported, then retried
                self.last_error = str(exc)
                log.error("the serverless engine did not start: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, 120)

    def start(self) -> None:
        with self._lock:
            if not self.supervisor.names():
                if self._adoptable():
                    # The server was killed, its engine was not: runs and tasks simply go on.
                    self._adopted = True
                    log.info("the engine left by the previous server is healthy: taken over as it runs")
                    self._ready.set()
                    self._purge_deleted()
                    return
                killed = self._kill_leftovers()
                self._adopted = False
                if killed:
                    log.info("killed %d leftover engine process(es)", len(killed))
            runtime = self.runtime
            for folder in (self.home, self.dags, self.versions, self.home / "logs"):
                folder.mkdir(parents=True, exist_ok=True)
            self._write_private_file(self.home / "passwords.json", json.dumps({"admin": self.secrets["secret_key"]}))
            self._init_postgres(runtime)
            self._start_postgres(runtime)
            self._migrate(runtime)
            running = set(self.supervisor.names())
            for spec in self._component_specs(runtime):
                status = self.supervisor.status(spec.name)
                if spec.name not in running or status is None or status.state in (
                        ComponentState.STOPPED, ComponentState.EXITED, ComponentState.FATAL):
                    self.supervisor.start(spec)
        deadline = time.monotonic() + 300
        while not self._healthy():
            if self._closed or time.monotonic() > deadline:
                raise RuntimeError(f"the engine is not healthy; see the logs in {self.root}")
            time.sleep(0.5)
        self._ready.set()
        log.info("serverless engine ready at %s", self.api_url)
        self._purge_deleted()

    def _adoptable(self) -> bool:
        """An engine a killed server left running: every component's leader alive, the runtime the
        current one, and Airflow healthy."""
        marker = self.root / "migrated"
        if not marker.is_file() or marker.read_text() != self.runtime.venv.name:
            return False
        for name in COMPONENTS:
            try:
                info = json.loads((self.root / "pids" / f"{name}.pid").read_text())
            except (OSError, ValueError):
                return False
            if int(info["pid"]) not in session_members(int(info["pid"]), info.get("start_time")):
                return False
        return self._healthy()

    def watch(self) -> None:
        """For the background loop: an engine taken over from a killed server has no supervisor
        to restart its processes; if it stops being healthy, start a fresh one."""
        now = time.monotonic()
        if not self._adopted or not self._ready.is_set() or now - self._last_watch < 30:
            return
        self._last_watch = now
        if not self._healthy():
            log.warning("the engine taken over from the previous server is not healthy: starting a new one")
            self._ready.clear()
            self.ensure_started()

    def _kill_leftovers(self) -> list[int]:
        """SIGKILL what a previous server left running (it was killed): a task that got SIGTERM
        would report itself FAILED for good (Airflow 3 does not retry a terminated task), while a
        killed one stops heartbeating and Airflow retries it, as after a machine crash."""
        victims: set[int] = set()
        for pidfile in (self.root / "pids").glob("*.pid"):
            try:
                info = json.loads(pidfile.read_text())
                victims.update(session_members(int(info["pid"]), info.get("start_time")))
            except (OSError, ValueError, KeyError):
                continue
        victims.discard(os.getpid())
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return sorted(victims.union(reap_orphans(self.root, grace_s=0)))

    def _write_private_file(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

    def _init_postgres(self, runtime: EngineRuntime) -> None:
        if (self.pgdata / "PG_VERSION").is_file():
            return
        tmp = self.root / "pgdata.init"
        shutil.rmtree(tmp, ignore_errors=True)
        pwfile = self.root / "pgpass.tmp"
        self._write_private_file(pwfile, self.secrets["db_password"] + "\n")
        os.chmod(self.root, 0o755)  # PostgreSQL runs as another user in a user namespace when we are root
        try:
            out = subprocess.run(dies_with_caller(as_postgres_user([
                str(postgres_bin_dir() / "initdb"), "-D", str(tmp), "-U", "airflow", "-E", "UTF8",
                "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync",
                "--no-instructions"])), capture_output=True, text=True, env={**self.base_env(), "LC_ALL": "C"})
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stderr.strip()[-1000:]}")
        os.replace(tmp, self.pgdata)

    def _psql(self, runtime: EngineRuntime, sql: str) -> str:
        out = subprocess.run(dies_with_caller([str(postgres_bin_dir() / "psql"), "-h", "127.0.0.1", "-p",
                                               str(self.ports["postgres"]), "-U", "airflow", "-d", "postgres",
                                               "-v", "ON_ERROR_STOP=1", "-tAc", sql]),
                             capture_output=True, text=True,
                             env={**self.base_env(), "PGPASSWORD": self.secrets["db_password"]})
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def _start_postgres(self, runtime: EngineRuntime) -> None:
        status = self.supervisor.status("postgres")
        if status is None or status.state not in (ComponentState.RUNNING, ComponentState.BACKOFF):
            argv = as_postgres_user([
                str(postgres_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.ports["postgres"]),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=300",
                "-c", "shared_buffers=32MB", "-c", "synchronous_commit=off"])
            self.supervisor.start(ComponentSpec(name="postgres", argv=argv, env=self.base_env(), cwd=self.root,
                                                stop_target="leader", stop_signal=signal.SIGINT))
        deadline = time.monotonic() + 30
        while True:
            try:
                self._psql(runtime, "SELECT 1")
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if "airflow" not in self._psql(runtime, "SELECT datname FROM pg_database").split():
            self._psql(runtime, "CREATE DATABASE airflow")

    def _migrate(self, runtime: EngineRuntime) -> None:
        marker = self.root / "migrated"
        if marker.is_file() and marker.read_text() == runtime.venv.name:
            return
        out = subprocess.run(dies_with_caller([str(runtime.airflow), "db", "migrate"]), capture_output=True,
                             text=True, env=self.base_env(), cwd=self.root, timeout=900)
        (self.root / "logs").mkdir(exist_ok=True)
        (self.root / "logs" / "db-migrate.log").write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError("airflow db migrate failed: " + "\n".join((out.stdout + out.stderr).splitlines()[-10:]))
        marker.write_text(runtime.venv.name)

    def _component_specs(self, runtime: EngineRuntime) -> list[ComponentSpec]:
        airflow = str(runtime.airflow)
        env = self.base_env()
        # stop_target="leader": Airflow shuts its own children down (the scheduler its task
        # processes); a group-wide signal would kill them mid-way.
        return [ComponentSpec(name=name, argv=[airflow, *args], env=env, cwd=self.root, stop_target="leader")
                for name, args in (("api-server", ["api-server"]),
                                   ("scheduler", ["scheduler", "--skip-serve-logs"]),
                                   ("dag-processor", ["dag-processor"]))]

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
                health = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return all((health.get(k) or {}).get("status") == "healthy"
                   for k in ("metadatabase", "scheduler", "dag_processor"))

    def close(self, grace_s: float = 20.0) -> None:
        self._closed = True
        self._ready.clear()
        if self._adopted:
            # Processes of a previous server: not this supervisor's children.
            self._kill_leftovers()
            return
        if self._supervisor is not None:
            # The API server first: tasks the scheduler's shutdown terminates cannot report
            # themselves FAILED then; they stay running in the database and are retried after the
            # next start (Airflow 3 never retries a task that was terminated).
            self._supervisor.stop("api-server", grace_s)
            self._supervisor.close(grace_s, last=("postgres",))

    # ---- the REST API ------------------------------------------------------------------------------

    def _api(self, method: str, path: str, body: Any = None, timeout_s: float = 30.0) -> tuple[int, Any]:
        if not self._ready.is_set():
            self.ensure_started()
            raise EngineUnavailable("the engine is starting")
        token = mint_airflow_jwt(self.secrets["jwt_secret"], sub="admin", role="admin", ttl_s=300)
        request = urllib.request.Request(f"{self.api_url}/api/v2{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except (urllib.error.URLError, OSError) as exc:
            if not self._healthy():
                self._ready.clear()
                self.ensure_started()
            raise EngineUnavailable(f"the engine's API did not answer: {exc}") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    @property
    def rest(self) -> AirflowEngineApi:
        return AirflowEngineApi(lambda method, path, body: self._api(method, path, body))

    # ---- task logs -----------------------------------------------------------------------------------

    def log_path(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
        return self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={try_number}.log"

    def log_stream(self, workflow_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return f"workflow_id={workflow_id}/run_id={run_id}/task_id={task_id}/attempt={try_number}.log"

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        path = self.log_path(dag_id, run_id, task_id, try_number)
        events: list[dict[str, Any]] = []
        if not path.is_file():
            return events
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                events.append({"timestamp": None, "level": "info", "message": line})
                continue
            if not isinstance(record, dict):
                continue
            events.append(log_event(record))
        return events

    def task_error(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
        path = self.log_path(dag_id, run_id, task_id, try_number)
        if not path.is_file():
            return None
        found: str | None = None
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            for error in record.get("error_detail") or []:
                if isinstance(error, dict) and error.get("exc_type"):
                    found = f"{error['exc_type']}: {error.get('exc_value') or ''}".strip()
        return found[:255] if found else None
