"""Compute port, locally: each environment is real Apache Airflow run as supervised processes
under `<data-dir>/envs/<Name>/` (see airflow_env.py), its runtime a cached virtualenv."""
from __future__ import annotations

import functools
import os
import shutil
import threading
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, TypeVar

from airdock.core import catalog
from airdock.core.blueprint import Sources
from airdock.core.errors import Interrupted, ProvisioningError
from airdock.core.models import Environment
from airdock.core.settings import Settings
from airdock.core.ports import Health
from airdock.local.airflow_env import AirflowEnvError, LocalAirflowEnvironment, LocalSpec
from airdock.local.buckets import LocalBuckets
from airdock.local.runtime import RuntimeBuildError, RuntimeCache
from airdock.local.runtime import Sources as RuntimeSources  # noqa: I001 - not the blueprint's Sources
from airdock.local.processes import reap_orphans
from airdock.local.supervisor import SupervisorClosed
from airdock.local.tls import LocalCertificateAuthority

Progress = Callable[[str], None]

FORCED_TIMEOUT_S = 10.0


def unsafe_zip_entries(zip_path: Path) -> list[str]:
    """Entries of a zip that would land outside the folder it is unpacked into."""
    root = Path("/plugins-root")
    bad = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            normalised = name.replace("\\", "/")
            target = os.path.normpath(root / normalised)
            if normalised.startswith("/") or (target != str(root) and not target.startswith(str(root) + "/")):
                bad.append(name)
    return bad


F = TypeVar("F", bound=Callable[..., Any])


def _interruptible(method: F) -> F:
    """A step cut off by the server's shutdown is Interrupted (resumed by the next start), not failed."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SupervisorClosed as exc:
            raise Interrupted(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class LocalCompute:
    def __init__(self, data_dir: Path, buckets: LocalBuckets, settings: Settings,
                 runtimes: RuntimeCache | None = None,
                 certificate_authority: LocalCertificateAuthority | None = None) -> None:
        self.envs_dir = data_dir / "envs"
        self.buckets = buckets
        self.settings = settings
        self.certificate_authority = certificate_authority
        self.runtimes = runtimes or RuntimeCache(settings.runtime_cache)
        self._envs: dict[str, LocalAirflowEnvironment] = {}
        self._paused: set[str] = set()  # stopped by pause(); started again by start/replace/restart
        self._lock = threading.RLock()
        self._closed = False  # close() began: no environment starts any more

    # ------------------------------------------------------------------ translation

    def _bucket(self, env: Environment) -> str:
        return env.SourceBucketArn.split(":::", 1)[1]

    def _object(self, env: Environment, key: str | None, version: str | None) -> str | None:
        if not key:
            return None
        path = self.buckets.path(self._bucket(env), key, version)
        if not path.is_file():
            raise ProvisioningError("SOURCE_NOT_FOUND", f"{key} was not found in bucket {self._bucket(env)}.")
        return str(path)

    def requirements(self, env: Environment) -> str | None:
        path = self._object(env, env.RequirementsS3Path, env.RequirementsS3ObjectVersion)
        return Path(path).read_text(encoding="utf-8") if path else None

    def spec(self, env: Environment) -> LocalSpec:
        """The environment as this machine runs it: its bucket's objects are files here (a
        pinned object version is a file of its own), read where they lie."""
        dags = self.buckets.path(self._bucket(env), env.DagS3Path)
        if not dags.exists():
            raise ProvisioningError("SOURCE_NOT_FOUND", f"DagS3Path {env.DagS3Path} was not found in bucket {self._bucket(env)}.")
        sources = Sources(
            dags=str(dags),
            plugins=self._object(env, env.PluginsS3Path, env.PluginsS3ObjectVersion),
            startup_script=self._object(env, env.StartupScriptS3Path, env.StartupScriptS3ObjectVersion),
        )
        return LocalSpec(env, sources, self.settings, certificate_authority=self.certificate_authority)

    def check_plugins(self, env: Environment) -> None:
        """Refuse a plugins.zip with entries that would unpack outside the plugins folder (zip
        slip) before anything is built, with the entry named. The entrypoint refuses it again
        when it unpacks (defence in depth: it also runs on AWS, where this step does not)."""
        path = self._object(env, env.PluginsS3Path, env.PluginsS3ObjectVersion)
        if path is None:
            return
        try:
            bad = unsafe_zip_entries(Path(path))
        except zipfile.BadZipFile:
            raise ProvisioningError("PLUGINS_INVALID", f"{env.PluginsS3Path} is not a zip archive.") from None
        if bad:
            raise ProvisioningError(
                "PLUGINS_INVALID",
                f"{env.PluginsS3Path} has entries that would be written outside the plugins folder "
                f"(absolute paths or '..'): {', '.join(repr(b) for b in bad[:5])}. Rebuild the archive with relative paths.")

    def _runtime(self, env: Environment, progress: Progress) -> Any:
        try:
            plugins = self._object(env, env.PluginsS3Path, env.PluginsS3ObjectVersion)
            sources = RuntimeSources(dags=self.buckets.path(self._bucket(env), env.DagS3Path),
                                     plugins_zip=Path(plugins) if plugins else None)
            return self.runtimes.ensure(env.AirflowVersion, self.requirements(env), progress, sources)
        except RuntimeBuildError as exc:
            raise ProvisioningError("REQUIREMENTS_INSTALL_FAILED", f"Installing requirements failed: {exc}") from None

    def _environment(self, env: Environment, progress: Progress) -> LocalAirflowEnvironment:
        runtime = self._runtime(env, progress)
        return LocalAirflowEnvironment(self.envs_dir / env.Name, runtime, self.spec(env))

    def _current(self, env: Environment, progress: Progress) -> LocalAirflowEnvironment:
        with self._lock:
            self._refuse_if_closed(env.Name)
            current = self._envs.get(env.Name)
            if current is None:
                current = self._envs[env.Name] = self._environment(env, progress)
            return current

    # ------------------------------------------------------------------ Compute port

    def prepare(self, env: Environment, progress: Progress) -> dict[str, str]:
        env_dir = self.envs_dir / env.Name
        env_dir.mkdir(parents=True, exist_ok=True)
        self.spec(env)  # the sources must still be there
        self.check_plugins(env)
        with self._lock:
            managed = env.Name in self._envs
        if not managed:
            # A workflow resumed after a crash: processes of the dead server (its PostgreSQL
            # holding the port, half-started components) must go before anything starts again.
            killed = reap_orphans(env_dir)
            if killed:
                progress(f"stopped {len(killed)} process(es) left by an interrupted run")
        return {}

    @_interruptible
    def build_runtime(self, env: Environment, progress: Progress) -> None:
        airflow = self._current(env, progress)
        try:
            airflow.create(progress)
        except AirflowEnvError as exc:
            raise ProvisioningError("METADATA_DATABASE_FAILED", str(exc)) from None

    @_interruptible
    def start(self, env: Environment, progress: Progress) -> None:
        try:
            self._current(env, progress).start(progress)
        except AirflowEnvError as exc:
            raise ProvisioningError("COMPONENT_START_FAILED", str(exc)) from None

    def health(self, env: Environment) -> Health:
        with self._lock:
            airflow = self._envs.get(env.Name)
        if airflow is None:
            return Health(False, "not started")
        report = airflow.health()
        fatal = {n: c["message"] for n, c in report["components"].items() if c["state"] == "FATAL"}
        if fatal:
            raise ProvisioningError("COMPONENT_FAILED", f"Airflow components keep failing: {fatal}")
        detail = report.get("error") or ", ".join(
            f"{k}={(v or {}).get('status')}" for k, v in (report.get("airflow") or {}).items() if isinstance(v, dict)
        )
        return Health(bool(report["healthy"]), detail)

    def preflight(self, env: Environment, progress: Progress) -> None:
        self.check_plugins(env)
        progress("pre-flight: resolving requirements")
        candidate = self._environment(env, progress)
        with self._lock:
            current = self._envs.get(env.Name)
        if current is not None and _same_code(current, candidate):
            # Only settings changed: the running environment already loads exactly this code,
            # so a throw-away import would prove nothing and cost seconds.
            progress("pre-flight: DAGs, plugins and requirements unchanged")
            return
        progress("pre-flight: loading DAGs and plugins in a throw-away process")
        report = candidate.check_dags()
        if report.get("plugin_errors"):
            raise ProvisioningError("PLUGINS_IMPORT_FAILED", f"Plugins failed to load: {report['plugin_errors']}")
        if not report.get("ok") and report.get("error"):
            raise ProvisioningError("PREFLIGHT_FAILED", f"Loading DAGs failed: {report['error']}")
        if report.get("import_errors"):
            progress(f"pre-flight: DAG import errors (the update proceeds): {report['import_errors']}")

    @_interruptible
    def replace(self, env: Environment, strategy: str, progress: Progress) -> None:
        candidate = self._environment(env, progress)
        with self._lock:
            current = self._envs.get(env.Name)
        # A paused environment runs nothing: even a worker-count change must start it fully.
        if current is not None and env.Name not in self._paused and _same_except_workers(current, candidate):
            progress(f"scaling workers to at least {env.MinWorkers}")
            current.spec = candidate.spec
            current.set_workers(max(env.MinWorkers, min(current.worker_count(), env.MaxWorkers)), wait=False)
            return
        self._swap(env.Name, current, candidate, strategy, progress)

    def _swap(self, name: str, current: LocalAirflowEnvironment | None, candidate: LocalAirflowEnvironment,
              strategy: str, progress: Progress, *, restore: bool = False) -> None:
        """Stop what runs, move the database to the candidate's Airflow (`restore`: put back the
        copy taken before a failed version change instead), start the candidate."""
        # How long a GRACEFUL replacement waits for running tasks before it stops a worker anyway.
        grace = self.settings.graceful_timeout if strategy == "GRACEFUL" else FORCED_TIMEOUT_S
        if current is not None:
            # Workers drain first (warm shutdown) while the API server and database stay up: on
            # Airflow 3 a running task reports to the API server until it finishes.
            progress(f"stopping components ({strategy.lower()})")
            current.stop(grace_s=grace)
        with self._lock:
            self._refuse_if_closed(name)
            self._envs[name] = candidate
            self._paused.discard(name)
        try:
            schema, target = candidate.schema_version(), candidate.release.version
            if schema is not None and "->" in schema and not restore:
                # A version change cut off half-way (a crash): start it again from the copy.
                schema = candidate.restore_database()
            if restore:
                progress(f"restoring the metadata database as it was on Airflow {target}")
                candidate.restore_database()
            elif schema is not None and schema != target:
                progress(f"copying the metadata database before moving it from Airflow {schema} to {target}")
                candidate.snapshot_database(schema, target)
                if catalog.version_order(target) < catalog.version_order(schema):
                    self._with_version(candidate, schema, current, progress).downgrade_database(target, progress)
            # The same Airflow: the schema is current already, and a migration would cost seconds.
            if schema != target or restore:
                candidate.create(progress)
            candidate.start(progress)
        except AirflowEnvError as exc:
            raise ProvisioningError("COMPONENT_START_FAILED", str(exc)) from None

    def _with_version(self, candidate: LocalAirflowEnvironment, version: str, current: LocalAirflowEnvironment | None,
                      progress: Progress) -> LocalAirflowEnvironment:
        """The environment as it runs on Airflow `version` (its files, that version's runtime)."""
        if current is not None and current.release.version == version:
            return current
        env = candidate.spec.environment.model_copy(update={"AirflowVersion": version})
        runtime = self.runtimes.ensure(version, None, progress)
        return LocalAirflowEnvironment(candidate.env_dir, runtime, replace(candidate.spec, environment=env),
                                       supervisor=candidate.supervisor)

    @_interruptible
    def roll_back(self, env: Environment, progress: Progress, *, failed: Environment) -> None:
        """Back onto `env` after a failed update. When the update was a version change, the
        database goes back to the copy taken before it (its marker names the versions, so
        `failed` adds nothing here), with every run it held then."""
        candidate = self._environment(env, progress)
        marker = candidate.snapshot_marker()
        if marker is None or marker["from"] != env.AirflowVersion or candidate.schema_version() in (None, env.AirflowVersion):
            self.replace(env, "FORCED", progress)
            return
        with self._lock:
            current = self._envs.get(env.Name)
        self._swap(env.Name, current, candidate, "FORCED", progress, restore=True)

    @_interruptible
    def restart(self, env: Environment, strategy: str, progress: Progress) -> None:
        """Maintenance: restart every component onto `env` even when nothing changed (a new
        patch release, or the same one: the restart itself is the maintenance)."""
        candidate = self._environment(env, progress)
        with self._lock:
            current = self._envs.get(env.Name)
        self._swap(env.Name, current, candidate, strategy, progress)

    def pause(self, env: Environment) -> None:
        """Stop every process of the environment, PostgreSQL included; keep its files (metadata
        database, logs, secrets, ports), so resume finds all history."""
        with self._lock:
            airflow = self._envs.get(env.Name)
            self._paused.add(env.Name)
        if airflow is not None:
            # A pause frees the machine now: it waits for running tasks only so long (Airflow
            # retries what was cut off).
            airflow.stop(grace_s=self.settings.pause_grace)
        # Also after a restart of Airdock (nothing managed yet): whatever is left must go.
        reap_orphans(self.envs_dir / env.Name)

    @_interruptible
    def resume(self, env: Environment, progress: Progress) -> None:
        self.start(env, progress)
        with self._lock:
            self._paused.discard(env.Name)

    def stop(self, env: Environment) -> None:
        with self._lock:
            airflow = self._envs.get(env.Name)
        if airflow is not None:
            airflow.stop(grace_s=FORCED_TIMEOUT_S)
        else:
            reap_orphans(self.envs_dir / env.Name)

    def destroy(self, env: Environment) -> None:
        with self._lock:
            airflow = self._envs.pop(env.Name, None)
        if airflow is None:
            try:
                airflow = self._environment(env, lambda _m: None)
            except ProvisioningError:
                airflow = None
        if airflow is not None:
            airflow.destroy(grace_s=FORCED_TIMEOUT_S)
        env_dir = self.envs_dir / env.Name
        if env_dir.exists():
            reap_orphans(env_dir)
            shutil.rmtree(env_dir, ignore_errors=True)

    def webserver_hostname(self, env: Environment) -> str | None:
        with self._lock:
            airflow = self._envs.get(env.Name)
        # The web front, not Airflow itself: it owns /aws_mwaa/* and proxies the UI and API.
        return airflow.front_hostname if airflow is not None else None

    # ------------------------------------------------------------------ local lifecycle

    def environment(self, name: str) -> LocalAirflowEnvironment | None:
        with self._lock:
            return self._envs.get(name)

    def _refuse_if_closed(self, name: str) -> None:
        if self._closed:
            raise Interrupted(f"not starting {name}: Airdock is shutting down")

    def close(self) -> None:
        """Stop every environment's processes for the server's shutdown. Starts still under way
        on other threads (a recovery, a workflow step) are refused from now on, so nothing this
        server started outlives it; the next server starts the environments again."""
        with self._lock:
            self._closed = True
            envs = list(self._envs.values())
            self._envs.clear()
        threads = [threading.Thread(target=e.close, kwargs={"grace_s": FORCED_TIMEOUT_S}) for e in envs]
        # And whatever a previous, killed server left running that this one had not taken over
        # yet (a recovery still reaping it, an environment nobody restarts).
        managed = {e.env_dir for e in envs}
        threads += [threading.Thread(target=reap_orphans, args=(d,), kwargs={"grace_s": 5.0})
                    for d in self._env_dirs() if d.resolve() not in managed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _env_dirs(self) -> list[Path]:
        return [d for d in self.envs_dir.iterdir() if d.is_dir()] if self.envs_dir.is_dir() else []

    def worker_pool(self) -> Any:
        """The Celery workers of the environments run here, as the autoscaler's WorkerPool port
        (one instance: it remembers which workers it drains and protects)."""
        with self._lock:
            pool = self.__dict__.get("_worker_pool")
            if pool is None:
                from airdock.local.worker_pool import LocalWorkerPool

                pool = self._worker_pool = LocalWorkerPool(self.environment)
            return pool


def _same_code(current: LocalAirflowEnvironment, candidate: LocalAirflowEnvironment) -> bool:
    """Same runtime (Airflow version + requirements) and the same DAG, plugin and startup sources."""
    return current.runtime.key == candidate.runtime.key and current.spec.sources == candidate.spec.sources


def _same_except_workers(current: LocalAirflowEnvironment, candidate: LocalAirflowEnvironment) -> bool:
    """True when only MinWorkers/MaxWorkers changed: then no component needs a restart, because
    no process runs anything different (the blueprint of every other component is the same)."""
    if current.runtime.key != candidate.runtime.key:
        return False
    ours, theirs = current.blueprint(), candidate.blueprint()
    return [c for c in ours.components if c.name != "worker"] == [c for c in theirs.components if c.name != "worker"] \
        and replace(ours.component("worker"), replicas=0) == replace(theirs.component("worker"), replicas=0)
