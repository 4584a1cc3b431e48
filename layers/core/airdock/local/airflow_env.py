"""One local Airflow environment: the environment's blueprint rendered into supervised processes.

What each component runs (command, variables, Airflow options, log levels) is the blueprint's
(airdock.core.blueprint); this module only places it on this machine: the platform facts (ports,
paths, the environment's own PostgreSQL, its secrets file) and one process per instance, started
through the same entrypoint as the container image, `python -m airdock_runtime.entrypoint`, with
the environment's runtime interpreter.

Layout of `env_dir`: airflow_home/ (AIRFLOW_HOME, shared by every component), pgdata/,
logs/<process>.log, pids/, web_front/ (spent login tokens), tls/ (the web front's certificate from
the local CA), secrets.json (0600), ports.json.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airdock.core import catalog
from airdock.core.blueprint import (DATABASE_SECRET, Blueprint, Component, Platform, SecretRef, Sources,
                                    blueprint)
from airdock.core.models import Environment
from airdock.core.settings import Settings
from airdock.local.embedded_postgres import EmbeddedPostgres, PostgresError
from airdock.local.environment_files import EnvironmentFiles, Ports
from airdock.local.processes import dies_with_caller, reap_orphans
from airdock.local.runtime import Runtime
from airdock.local.supervisor import ComponentSpec, ComponentState, Supervisor
from airdock.local.tls import LocalCertificateAuthority, server_files
from airdock_runtime.airflow_auth import basic_auth_header, mint_airflow_jwt

# Inherited variables that would leak Airdock's own Python or another environment's settings
# into Airflow's processes.
_DROP_ENV_PREFIXES = ("AIRFLOW__", "AIRDOCK_", "PYTHON", "VIRTUAL_ENV", "CONDA_", "UV_")
_DROP_ENV = {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}

WEB_FRONT = "web-front"
POSTGRES = EmbeddedPostgres.NAME


class AirflowEnvError(Exception):
    pass


def entrypoint_argv(python: Path, *args: str) -> list[str]:
    """The component entrypoint run by a runtime's interpreter, as the image runs it. `-P`: the
    working directory (an environment's folder) never shadows an installed module."""
    return [str(python), "-P", "-m", "airdock_runtime.entrypoint", *args]


@dataclass(frozen=True)
class LocalSpec:
    """An environment as this machine runs it: the MWAA resource, where its sources are on disk,
    and local timings."""

    environment: Environment
    sources: Sources = field(default_factory=Sources)
    settings: Settings = field(default_factory=Settings)
    # DAG files saved into the bucket folder reach the DAG folder within this many seconds.
    dag_sync_interval_s: float = 3.0
    # New DAG files are found by a periodic folder scan (Airflow's default: 5 minutes, MWAA's
    # too); locally a short scan makes a saved file show up while you watch.
    dag_scan_interval_s: int = 30
    # Signs the web front's certificate, so it serves https:// (as MWAA clients call it) beside
    # http://; unused when the settings name a certificate of the user's own.
    certificate_authority: LocalCertificateAuthority | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.environment.Name

    @property
    def release(self) -> catalog.AirflowRelease:
        return catalog.release(self.environment.AirflowVersion)


class LocalAirflowEnvironment:
    def __init__(self, env_dir: Path, runtime: Runtime, spec: LocalSpec, *,
                 supervisor: Supervisor | None = None) -> None:
        if runtime.airflow_version != spec.environment.AirflowVersion:
            raise AirflowEnvError(f"runtime is Airflow {runtime.airflow_version}, "
                                  f"the environment wants {spec.environment.AirflowVersion}")
        self.env_dir = Path(env_dir).resolve()
        self.runtime = runtime
        self.spec = spec
        self.home = self.env_dir / "airflow_home"
        self.files = EnvironmentFiles(self.env_dir)
        self._supervisor = supervisor
        self._postgres: EmbeddedPostgres | None = None
        self._lock = threading.RLock()

    # ---- derived facts -----------------------------------------------------------------------

    @property
    def release(self) -> catalog.AirflowRelease:
        return self.spec.release

    @property
    def airflow3(self) -> bool:
        return self.release.major >= 3

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            self._supervisor = Supervisor(self.env_dir)
        return self._supervisor

    @property
    def postgres(self) -> EmbeddedPostgres:
        if self._postgres is None:
            self._postgres = EmbeddedPostgres(self.env_dir, self.supervisor, self.ports.postgres,
                                              self.secrets["db_password"])
        return self._postgres

    @property
    def ports(self) -> Ports:
        return self.files.ports

    @property
    def secrets(self) -> dict[str, str]:
        return self.files.secrets

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    @property
    def front_hostname(self) -> str:
        """host:port of the web front, what MWAA calls the web server hostname."""
        return f"{self.spec.settings.web_hostname}:{self.ports.web_front}"

    @property
    def front_url(self) -> str:
        # With the local CA the front speaks both; links stay http://, which any browser opens.
        scheme = "https" if self.spec.settings.web_tls_cert else "http"
        return f"{scheme}://{self.front_hostname}"

    @property
    def local_tls(self) -> bool:
        """The web front serves HTTPS with a certificate from the local CA (and plain HTTP)."""
        return self.spec.certificate_authority is not None and not self.spec.settings.web_tls_cert

    @property
    def tls_dir(self) -> Path:
        return self.env_dir / "tls"

    def web_front_hostnames(self) -> list[str]:
        """The names clients reach the web front by, which its certificate must carry."""
        return list(dict.fromkeys([self.spec.settings.web_hostname, "127.0.0.1", "localhost"]))

    @property
    def api_prefix(self) -> str:
        return self.release.api_prefix

    @property
    def web_process(self) -> str:
        """The web server's process name: Airflow's command (api-server, or webserver on 2)."""
        return self.release.web_server

    # ---- the blueprint, placed on this machine --------------------------------------------------

    def platform(self, home: Path | None = None) -> Platform:
        home = home or self.home
        ports = self.ports
        sources = self.spec.sources
        return Platform(
            region=self.spec.settings.region,
            airflow_home=str(home),
            database_url=SecretRef(DATABASE_SECRET, "sql_alchemy_conn"),
            broker_url=SecretRef(DATABASE_SECRET, "broker_url"),
            result_backend=SecretRef(DATABASE_SECRET, "result_backend"),
            web_bind="127.0.0.1",
            web_port=ports.web,
            web_front_bind=self.spec.settings.web_bind,
            web_front_port=ports.web_front,
            web_upstream=self.web_url,
            # Links and redirects must name the web front: the browser reaches the UI through it.
            public_url=self.front_url,
            base_path="",
            execution_api_url=f"{self.web_url}/execution/",
            worker_log_port=ports.worker_log,
            trigger_log_port=ports.trigger_log,
            sources=sources,
            shared_home=True,
            requirements_prebuilt=True,
            dag_scan_interval_s=self.spec.dag_scan_interval_s,
            dag_sync_interval_s=self.spec.dag_sync_interval_s,
            used_tokens_dir=str(self.env_dir / "web_front"),
            web_front_environment=self._web_front_settings(),
        )

    def _web_front_settings(self) -> dict[str, str]:
        """Airdock's settings the web front takes on: HTTPS, the CLI endpoint's time limit, and
        the tests' clock."""
        settings = self.spec.settings
        given = {"AIRDOCK_WEB_TLS_CERT": settings.web_tls_cert, "AIRDOCK_WEB_TLS_KEY": settings.web_tls_key,
                 "AIRDOCK_CLI_TIMEOUT": settings.cli_timeout,
                 "AIRDOCK_TOKEN_CLOCK_OFFSET_FILE": settings.token_clock_offset_file}
        if self.local_tls:
            # Issued by write_home() before any component starts.
            cert, key = server_files(self.tls_dir)
            given.update({"AIRDOCK_WEB_TLS_CERT": str(cert), "AIRDOCK_WEB_TLS_KEY": str(key),
                          "AIRDOCK_WEB_TLS_OPTIONAL": "1"})
        return {name: value for name, value in given.items() if value}

    def blueprint(self, home: Path | None = None) -> Blueprint:
        return blueprint(self.spec.environment, self.platform(home))

    def resolve(self, ref: SecretRef) -> str:
        """A secret's value from the environment's secrets file (the database URLs are made from
        its own PostgreSQL's password and port)."""
        if ref.secret == DATABASE_SECRET:
            scheme, database = {"sql_alchemy_conn": ("postgresql+psycopg2", "airflow"),
                                "broker_url": ("sqla+postgresql+psycopg2", "celery"),
                                "result_backend": ("db+postgresql+psycopg2", "celery")}[ref.key]
            return self.postgres.url(scheme, database)
        return self.secrets[ref.key]

    def inherited_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.startswith(_DROP_ENV_PREFIXES)}
        env["PATH"] = f"{self.runtime.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def process_env(self, component: Component) -> dict[str, str]:
        """A component's full environment: what this process inherits, plus the blueprint's
        variables and secrets."""
        return {**self.inherited_env(), **component.environment,
                **{name: self.resolve(ref) for name, ref in component.secrets.items()},
                "AIRDOCK_AIRFLOW_BIN": str(self.runtime.airflow)}

    def _process(self, component: Component, name: str, instance_args: tuple[str, ...] = ()) -> ComponentSpec:
        # stop_target="leader": the entrypoint forwards the signal to Airflow, which shuts down
        # its own children; a group-wide signal would kill task processes outright.
        return ComponentSpec(name=name, argv=entrypoint_argv(self.runtime.python, *component.entrypoint, *instance_args),
                             env=self.process_env(component), cwd=self.env_dir, stop_target="leader",
                             restart=component.restart)

    def process_specs(self, plan: Blueprint | None = None) -> list[ComponentSpec]:
        """Every process of the running environment but workers (scaled on their own): one per
        service, and one per scheduler instance."""
        plan = plan or self.blueprint()
        specs: list[ComponentSpec] = []
        for component in plan.services:
            if component.name == "worker":
                continue
            if component.name == "webserver":
                specs.append(self._process(component, self.web_process))
            elif component.replicas > 1 or component.name == "scheduler":
                specs += [self._process(component, f"{component.name}-{i}") for i in range(1, component.replicas + 1)]
            else:
                specs.append(self._process(component, component.name))
        return specs

    def worker_spec(self, index: int, plan: Blueprint | None = None) -> ComponentSpec:
        worker = (plan or self.blueprint()).component("worker")
        name = f"worker-{index}"
        args = tuple(a.replace("{instance}", name) for a in worker.instance_args)
        return self._process(worker, name, args)

    # ---- lifecycle -----------------------------------------------------------------------------

    def write_home(self) -> None:
        for d in (self.home, self.home / "dags", self.home / "plugins", self.home / "logs", self.env_dir / "logs"):
            d.mkdir(parents=True, exist_ok=True)
        # Settings come from the components' variables. An airflow.cfg written now keeps Airflow
        # from writing its default one while several components start at once.
        cfg = self.home / "airflow.cfg"
        if not cfg.exists():
            cfg.write_text("# Airdock sets every option as an AIRFLOW__SECTION__KEY variable of each component.\n")
        (self.env_dir / "spec.json").write_text(self.spec.environment.model_dump_json(indent=1))
        authority = self.spec.certificate_authority
        if authority is not None and self.local_tls:
            # Kept while it still names this host and this CA signed it; a changed
            # AIRDOCK_WEB_HOSTNAME or a new CA gets a new one at this start.
            authority.server_certificate(self.tls_dir, self.web_front_hostnames())

    def _reap_leftovers(self, progress: Callable[[str], None]) -> None:
        # An operation resumed after the server was SIGKILLed finds the environment's old
        # processes still running (its PostgreSQL holding pgdata's postmaster.pid): they go first.
        if not self.supervisor.names():
            killed = reap_orphans(self.env_dir)
            if killed:
                progress(f"killed {len(killed)} leftover process(es)")

    def create(self, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Files, database, schema. Idempotent: a retried create picks up where it stopped."""
        with self._lock:
            self.env_dir.mkdir(parents=True, exist_ok=True)
            self._reap_leftovers(progress)
            self.write_home()
            progress("initialising PostgreSQL")
            try:
                self.postgres.init()
                self.postgres.start()
            except PostgresError as exc:
                raise AirflowEnvError(str(exc)) from None
            progress("migrating the Airflow metadata database")
            t = time.monotonic()
            self._run_once(self.blueprint().component("migrate"), "db-migrate", timeout_s=900)
            self._schema_file.write_text(self.release.version)
            progress(f"database migrated in {time.monotonic() - t:.1f}s")

    # ---- the metadata database across Airflow versions ------------------------------------------
    # The schema is Airflow's: a version change migrates it forward, or back (with the newer
    # Airflow, which alone knows how to undo its migrations). Before either, the database is copied
    # as it is, so a change that fails half-way can be rolled back to exactly what ran before.

    @property
    def _schema_file(self) -> Path:
        return self.env_dir / "schema-version"

    @property
    def _snapshot(self) -> Path:
        return self.env_dir / "pgdata.snapshot"

    def schema_version(self) -> str | None:
        """The Airflow version whose schema the metadata database has (None: not migrated yet;
        "A->B": a change from A to B began and did not end)."""
        try:
            return self._schema_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def snapshot_marker(self) -> dict[str, str] | None:
        """{"from": version, "to": version} of the change the snapshot was taken for."""
        try:
            marker: dict[str, str] = json.loads((self._snapshot / "airdock-snapshot.json").read_text())
        except (OSError, ValueError):
            return None
        return marker

    def snapshot_database(self, before: str, after: str) -> None:
        """Copy the (stopped) database before moving it from Airflow `before` to `after`."""
        with self._lock:
            if self.supervisor.status(POSTGRES) is not None:
                self.supervisor.stop(POSTGRES)
            shutil.rmtree(self._snapshot, ignore_errors=True)
            tmp = self.env_dir / "pgdata.snapshot.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(self.postgres.pgdata, tmp, symlinks=True)
            (tmp / "airdock-snapshot.json").write_text(json.dumps({"from": before, "to": after}))
            os.replace(tmp, self._snapshot)
            # In between until the migration ends: neither version's schema for sure.
            self._schema_file.write_text(f"{before}->{after}")

    def restore_database(self) -> str:
        """Put the snapshot back (the database stopped); returns the version it belongs to."""
        marker = self.snapshot_marker()
        assert marker is not None, "no snapshot to restore"
        with self._lock:
            if self.supervisor.status(POSTGRES) is not None:
                self.supervisor.stop(POSTGRES)
            failed = self.env_dir / "pgdata.failed"
            shutil.rmtree(failed, ignore_errors=True)
            if self.postgres.pgdata.exists():
                os.replace(self.postgres.pgdata, failed)
            shutil.copytree(self._snapshot, self.postgres.pgdata, symlinks=True)
            (self.postgres.pgdata / "airdock-snapshot.json").unlink(missing_ok=True)
            shutil.rmtree(failed, ignore_errors=True)
            self._schema_file.write_text(marker["from"])
        return marker["from"]

    def downgrade_database(self, target: str, progress: Callable[[str], None] = lambda _m: None) -> None:
        """With this (newer) environment's Airflow, take the schema back to Airflow `target`'s."""
        with self._lock:
            try:
                self.postgres.start()
            except PostgresError as exc:
                raise AirflowEnvError(str(exc)) from None
            progress(f"downgrading the metadata database to Airflow {target}")
            self._run_once(self.blueprint().component("migrate"), "db-migrate", "--downgrade", target, timeout_s=900)
            self._schema_file.write_text(target)

    def start(self, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Start every component (after killing leftovers of a previous, crashed controller)."""
        with self._lock:
            self._reap_leftovers(progress)
            self.write_home()
            try:
                self.postgres.start()
            except PostgresError as exc:
                raise AirflowEnvError(str(exc)) from None
            plan = self.blueprint()
            progress("syncing DAGs and plugins")
            self._prepare_files(plan)
            progress("starting Airflow components")
            running = set(self.supervisor.names())
            for spec in self.process_specs(plan):
                if spec.name not in running or self._stopped(spec.name):
                    self.supervisor.start(spec)
            if self.worker_count() == 0:
                self.set_workers(plan.component("worker").replicas)

    def _run_once(self, component: Component, log_name: str, *args: str, timeout_s: float = 600,
                  env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """A component's entrypoint run to its end (the migration, a DAG sync): a failure is an
        AirflowEnvError with the end of its output, which is also kept in logs/<log_name>.log."""
        argv = entrypoint_argv(self.runtime.python, *(args or component.entrypoint))
        out = subprocess.run(dies_with_caller(argv), env=dict(env or self.process_env(component)), capture_output=True,
                             text=True, timeout=timeout_s, cwd=self.env_dir)
        with open(self.env_dir / "logs" / f"{log_name}.log", "a") as fh:
            fh.write(f"=== {' '.join(args or component.entrypoint)} exit {out.returncode}\n{out.stdout}{out.stderr}")
        if out.returncode != 0:
            tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
            raise AirflowEnvError(f"`{' '.join(args or component.entrypoint)}` failed:\n{tail}")
        return out

    def _prepare_files(self, plan: Blueprint) -> None:
        """DAGs and plugins in place before the components start (the DAG processor keeps the
        DAG folder in step from then on)."""
        syncer = plan.component("dag-processor")
        try:
            self._run_once(syncer, "prepare", "--prepare")
        except AirflowEnvError as exc:
            raise AirflowEnvError(f"preparing DAGs/plugins failed: {exc}") from None

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
            plan = self.blueprint() if count > len(current) else None
            for _ in range(count - len(current)):
                i = next(k for k in range(1, 10_000) if k not in used)
                used.add(i)
                self.supervisor.remove(f"worker-{i}")
                self.supervisor.start(self.worker_spec(i, plan))
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
        try:
            with urllib.request.urlopen(self.web_url + self.release.health_path, timeout=5) as resp:
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

    def check_dags(self, timeout_s: float = 300.0) -> dict[str, Any]:
        """Import this spec's DAGs and plugins in a throw-away process and home, as the DAG
        processor would; returns the entrypoint's report."""
        with tempfile.TemporaryDirectory(prefix="airdock-check-") as tmp:
            processor = self.blueprint(Path(tmp)).component("dag-processor")
            out = subprocess.run(dies_with_caller(entrypoint_argv(self.runtime.python, "--check")),
                                 env=self.process_env(processor), capture_output=True, text=True,
                                 timeout=timeout_s, cwd=tmp)
        try:
            report: dict[str, Any] = json.loads(out.stdout[out.stdout.index("{"):])
        except ValueError:
            report = {"dags": [], "import_errors": {}, "plugin_errors": {},
                      "error": (out.stdout + out.stderr).strip()[-2000:]}
        report["ok"] = out.returncode == 0
        return report

    # ---- stop / destroy ------------------------------------------------------------------------

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop Airflow components in parallel, then the web server, then the database.

        Order matters: on Airflow 3 the triggerer and workers report to the API server while
        they shut down, and with it gone they sit in HTTP retries until SIGKILL.
        """
        with self._lock:
            self.supervisor.stop_all(grace_s, last=(self.web_process, POSTGRES))
        reap_orphans(self.env_dir, grace_s=5)

    def close(self, grace_s: float = 30.0) -> None:
        """Stop for good, as `stop` does, while refusing any start from now on: for the server's
        shutdown, when a recovery or workflow thread may be starting components at this moment.
        Not under self._lock, which such a start holds: its next component start fails instead."""
        self.supervisor.close(grace_s, last=(self.web_process, POSTGRES))
        reap_orphans(self.env_dir, grace_s=5)

    def restart(self, *, runtime: Runtime | None = None, spec: LocalSpec | None = None,
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

