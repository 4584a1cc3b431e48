"""Airdock entrypoint for every Airflow component, in the container image and in local mode.

Standard library only (boto3 is imported only when a source is an s3:// URL), so the same file
runs as the image's ENTRYPOINT and as the command Airdock's local supervisor starts, with the
Airflow runtime's interpreter. What it does, in MWAA's order:

1. sync the DAG folder from its source into $AIRFLOW_HOME/dags (and keep syncing in the
   background while the component runs);
2. unpack plugins.zip into $AIRFLOW_HOME/plugins (entries escaping the folder are refused);
3. install requirements.txt (container mode; locally the runtime venv already has them);
4. set each AirflowConfigurationOptions entry `section.key` as `AIRFLOW__SECTION__KEY`;
5. run the startup script with bash and take over the variables it exports;
6. run the component as a child, forward SIGTERM/SIGINT/SIGHUP to it, exit with its code.

Environment variables:
    AIRFLOW_HOME                     required; dags/ and plugins/ live under it
    AIRDOCK_COMPONENT                scheduler | api-server | webserver | dag-processor |
                                     triggerer | celery-worker (alias: worker) | web-front
                                     (see web_front.py for its variables); may instead be
                                     given as the first argument
    AIRDOCK_COMPONENT_ARGS           JSON list of extra arguments for the component's command
    AIRDOCK_DAGS_SOURCE              local directory or s3://bucket/prefix; unset = no DAG sync
    AIRDOCK_DAGS_SYNC_INTERVAL       seconds between background syncs (default 5; 0 = once)
    AIRDOCK_PLUGINS_ZIP              path or s3://bucket/key of plugins.zip
    AIRDOCK_PLUGINS_ZIP_VERSION      S3 object version of it (PluginsS3ObjectVersion); likewise
                                     AIRDOCK_REQUIREMENTS_VERSION, AIRDOCK_STARTUP_SCRIPT_VERSION.
                                     Only for s3:// sources; unset = the latest version
    AIRDOCK_REQUIREMENTS             path or s3://bucket/key of requirements.txt (pip-installed
                                     before start; leave unset when the venv already has them)
    AIRDOCK_CONSTRAINTS              optional pip constraints file for that install
    AIRDOCK_STARTUP_SCRIPT           path or s3://bucket/key of a bash startup script
    AIRDOCK_STARTUP_TIMEOUT          seconds (default 300, MWAA's limit)
    AIRDOCK_AIRFLOW_CONFIG_OPTIONS   JSON object {"section.key": "value", ...}
    AIRDOCK_AIRFLOW_BIN              airflow executable (default: next to this interpreter,
                                     else on PATH)
    AIRDOCK_S3_ENDPOINT_URL          endpoint for s3:// sources (e.g. a local S3 stand-in)
    AIRDOCK_WEB_BASE_PATH            path prefix of the environment's web server (path routing);
                                     Airflow 2's webserver scopes its session cookie to it
    AIRDOCK_ADMIN_PASSWORD           Airflow 2 (FAB): --migrate makes the `admin` user with it
    AIRDOCK_DRAIN_POLL_S             Celery workers on ECS: seconds between checks of the task's
                                     drain marker (airdock_runtime.drain); unset = none

Usage (`python -m airdock_runtime.entrypoint ...`):
    entrypoint.py [COMPONENT]   prepare, then run the component
    entrypoint.py --prepare     sync DAGs and plugins once, run nothing
    entrypoint.py --check       sync, then import every DAG and plugin in this throw-away process
                                and print a JSON report; exit 1 on any import error (the
                                pre-flight of an update: new code is loaded before it is rolled out)
    entrypoint.py --migrate     `airflow db migrate` (with the configuration options), then on
                                Airflow 2 the FAB `admin` user when AIRDOCK_ADMIN_PASSWORD is set
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from airdock_runtime.drain import MetadataDrainCheck

COMPONENT_COMMANDS: dict[str, list[str]] = {
    "scheduler": ["scheduler"],
    "api-server": ["api-server"],
    "webserver": ["webserver"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": ["celery", "worker"],
    "worker": ["celery", "worker"],
}

# MWAA's `/aws_mwaa/*` endpoints in front of the Airflow UI/API (web_front.py beside this file).
WEB_FRONT = "web-front"

# Variables a startup script may not change (MWAA reserves the platform's own settings too).
RESERVED_ENV = {
    "AIRFLOW_HOME", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__API_AUTH__JWT_SECRET",
}
# Bash's own bookkeeping differs after any `source`; not exports of the script.
_BASH_NOISE = {"SHLVL", "_", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"}
_SKIP_NAMES = {"__pycache__"}
_TMP_SUFFIX = ".airdock-tmp"


class EntrypointError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[airdock-entrypoint] {msg}", file=sys.stderr, flush=True)


# ---- sources (local path or s3://) ------------------------------------------------------------

def _s3_client() -> Any:
    try:
        import boto3  # optional: only S3 sources need it
    except ImportError as exc:  # pragma: no cover - depends on the image
        raise EntrypointError("an s3:// source needs boto3 installed") from exc
    return boto3.client("s3", endpoint_url=os.environ.get("AIRDOCK_S3_ENDPOINT_URL") or None)


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def fetch_file(source: str, dest_dir: Path, version: str | None = None) -> Path:
    """A local copy of a single file given as a path or s3:// URL; `version` pins the S3 object
    version (MWAA's *S3ObjectVersion parameters)."""
    if source.startswith("s3://"):
        bucket, key = _split_s3(source)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / Path(key).name
        extra = {"VersionId": version} if version else None
        _s3_client().download_file(bucket, key, str(target), ExtraArgs=extra)
        return target
    path = Path(source)
    if not path.is_file():
        raise EntrypointError(f"{source}: no such file")
    return path


def _atomic_copy(src: Path, dest: Path) -> None:
    # Write beside the target, then rename: a reader (the DAG processor) sees the old or the new
    # file, never half of one; the temporary name does not look like a DAG file.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}{_TMP_SUFFIX}")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def _walk_files(root: Path) -> dict[str, os.stat_result]:
    files: dict[str, os.stat_result] = {}
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_NAMES]
        for name in filenames:
            if name.endswith(_TMP_SUFFIX) or name.endswith(".pyc"):
                continue
            full = Path(dirpath) / name
            try:
                files[str(full.relative_to(root))] = full.stat()
            except FileNotFoundError:
                continue
    return files


def sync_local_dir(source: Path, dest: Path) -> int:
    """Mirror `source` into `dest` by size and mtime; returns the number of changes."""
    if not source.is_dir():
        raise EntrypointError(f"DAG source {source} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    src_files = _walk_files(source)
    dst_files = _walk_files(dest)
    changes = 0
    for rel, st in src_files.items():
        cur = dst_files.get(rel)
        if cur is None or cur.st_size != st.st_size or cur.st_mtime_ns != st.st_mtime_ns:
            try:
                _atomic_copy(source / rel, dest / rel)
                changes += 1
            except FileNotFoundError:
                continue  # deleted while we looked
    for rel in dst_files.keys() - src_files.keys():
        try:
            (dest / rel).unlink()
            changes += 1
        except FileNotFoundError:
            pass
    _remove_empty_dirs(dest)
    return changes


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        p = Path(dirpath)
        if p == root or p.name in _SKIP_NAMES:
            continue
        try:
            entries = list(p.iterdir())
            if not entries or all(e.name in _SKIP_NAMES for e in entries):
                shutil.rmtree(p, ignore_errors=True)
        except FileNotFoundError:
            pass


def sync_s3_prefix(url: str, dest: Path) -> int:
    """Mirror s3://bucket/prefix into `dest` by ETag; state kept beside the folder."""
    bucket, prefix = _split_s3(url)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = _s3_client()
    dest.mkdir(parents=True, exist_ok=True)
    state_file = dest.parent / f".{dest.name}.s3state.json"
    try:
        state: dict[str, str] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    seen: dict[str, str] = {}
    changes = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            if not rel or rel.endswith("/"):
                continue
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep):
                log(f"skipping S3 key escaping the DAG folder: {obj['Key']}")
                continue
            seen[rel] = obj["ETag"]
            if state.get(rel) != obj["ETag"] or not target.exists():
                tmp = target.with_name(f".{target.name}.{os.getpid()}{_TMP_SUFFIX}")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(tmp))
                os.replace(tmp, target)
                changes += 1
    for rel in state.keys() - seen.keys():
        (dest / rel).unlink(missing_ok=True)
        changes += 1
    _remove_empty_dirs(dest)
    state_file.write_text(json.dumps(seen))
    return changes


def sync_dags(source: str, dest: Path) -> int:
    if source.startswith("s3://"):
        return sync_s3_prefix(source, dest)
    return sync_local_dir(Path(source), dest)


class DagSyncer(threading.Thread):
    """Keeps the DAG folder in step with its source while the component runs."""

    def __init__(self, source: str, dest: Path, interval_s: float) -> None:
        super().__init__(name="dag-sync", daemon=True)
        self.source, self.dest, self.interval_s = source, dest, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                n = sync_dags(self.source, self.dest)
                if n:
                    log(f"DAG sync: {n} change(s) from {self.source}")
            except Exception as exc:  # a flaky source must not take the component down
                log(f"DAG sync failed (will retry): {exc}")


# ---- plugins ----------------------------------------------------------------------------------

def unpack_plugins(zip_path: Path, dest: Path) -> int:
    """Replace `dest` with the zip's content; refuse entries that would land outside it."""
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        for m in members:
            target = (root / m.filename).resolve()
            if m.filename.startswith("/") or (target != root and not str(target).startswith(str(root) + os.sep)):
                raise EntrypointError(
                    f"plugins.zip entry {m.filename!r} would be written outside the plugins folder; "
                    "refusing the archive")
        staging = Path(tempfile.mkdtemp(prefix=".plugins-", dir=root.parent))
        try:
            zf.extractall(staging)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(staging, root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return len(members)


# ---- configuration ----------------------------------------------------------------------------

def config_options_env(options_json: str | None) -> dict[str, str]:
    if not options_json:
        return {}
    try:
        options = json.loads(options_json)
    except ValueError as exc:
        raise EntrypointError(f"AIRDOCK_AIRFLOW_CONFIG_OPTIONS is not JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise EntrypointError("AIRDOCK_AIRFLOW_CONFIG_OPTIONS must be a JSON object")
    env: dict[str, str] = {}
    for key, value in options.items():
        section, dot, option = str(key).partition(".")
        if not dot or not section or not option:
            raise EntrypointError(f"configuration option {key!r} is not 'section.key'")
        env[f"AIRFLOW__{section.upper()}__{option.upper()}"] = str(value)
    return env


def run_startup_script(script: Path, env: dict[str, str], timeout_s: float) -> dict[str, str]:
    """Source the script in bash (as MWAA does) and return the variables it set or changed."""
    with tempfile.NamedTemporaryFile(prefix="airdock-env-", delete=False) as fh:
        env_file = fh.name
    try:
        # The script's own output goes to our log; its environment is dumped NUL-separated to a
        # file so nothing it prints can be mistaken for a variable.
        proc = subprocess.run(
            ["bash", "-c", 'source "$1" 1>&2 || exit $?; env -0 > "$2"', "airdock-startup",
             str(script), env_file],
            env=env, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise EntrypointError(f"startup script {script} failed with exit code {proc.returncode}")
        raw = Path(env_file).read_bytes()
    except subprocess.TimeoutExpired as exc:
        raise EntrypointError(f"startup script {script} did not finish within {timeout_s:.0f}s") from exc
    finally:
        Path(env_file).unlink(missing_ok=True)
    after: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.decode(errors="surrogateescape").partition("=")
            after[k] = v
    changed: dict[str, str] = {}
    for k, v in after.items():
        if k in _BASH_NOISE or env.get(k) == v:
            continue
        if k in RESERVED_ENV or k.startswith("AIRDOCK_"):
            log(f"startup script may not change {k}; ignored")
            continue
        changed[k] = v
    return changed


# ---- running ----------------------------------------------------------------------------------

def airflow_bin() -> str:
    explicit = os.environ.get("AIRDOCK_AIRFLOW_BIN")
    if explicit:
        return explicit
    sibling = Path(sys.executable).parent / "airflow"
    if sibling.exists():
        return str(sibling)
    found = shutil.which("airflow")
    if not found:
        raise EntrypointError("airflow executable not found")
    return found


def prepare(env: dict[str, str], *, once: bool = False) -> DagSyncer | None:
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    syncer: DagSyncer | None = None
    source = env.get("AIRDOCK_DAGS_SOURCE")
    if source:
        dags = home / "dags"
        t = time.monotonic()
        n = sync_dags(source, dags)
        log(f"synced DAGs from {source} into {dags}: {n} change(s) in {time.monotonic() - t:.2f}s")
        interval = float(env.get("AIRDOCK_DAGS_SYNC_INTERVAL", "5"))
        if interval > 0 and not once:
            syncer = DagSyncer(source, dags, interval)
    plugins = env.get("AIRDOCK_PLUGINS_ZIP")
    if plugins:
        with tempfile.TemporaryDirectory() as tmp:
            n = unpack_plugins(fetch_file(plugins, Path(tmp), env.get("AIRDOCK_PLUGINS_ZIP_VERSION")),
                               home / "plugins")
        log(f"unpacked {n} plugins.zip entries into {home / 'plugins'}")
    reqs = env.get("AIRDOCK_REQUIREMENTS")
    if reqs:
        with tempfile.TemporaryDirectory() as tmp:
            req_file = fetch_file(reqs, Path(tmp), env.get("AIRDOCK_REQUIREMENTS_VERSION"))
            cmd = [sys.executable, "-m", "pip", "install", "--no-input", "-r", str(req_file)]
            if env.get("AIRDOCK_CONSTRAINTS"):
                cmd += ["-c", env["AIRDOCK_CONSTRAINTS"]]
            log("installing requirements: " + " ".join(cmd))
            if subprocess.run(cmd, env=env).returncode != 0:
                raise EntrypointError("installing requirements.txt failed (see the log above)")
    return syncer


def configure(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    env.update(config_options_env(env.get("AIRDOCK_AIRFLOW_CONFIG_OPTIONS")))
    script = env.get("AIRDOCK_STARTUP_SCRIPT")
    if script:
        with tempfile.TemporaryDirectory() as tmp:
            local = fetch_file(script, Path(tmp), env.get("AIRDOCK_STARTUP_SCRIPT_VERSION"))
            timeout = float(env.get("AIRDOCK_STARTUP_TIMEOUT", "300"))
            changed = run_startup_script(local, env, timeout)
        if changed:
            log(f"startup script set: {', '.join(sorted(changed))}")
        env.update(changed)
    return env


def airflow2_webserver_config(base_path: str) -> str:
    """webserver_config.py for Airflow 2 under a path prefix: Airflow's default (FAB database
    auth, CSRF on), with Flask's session cookie scoped to the prefix. Flask scopes it to `/`
    whatever base_url says, so environments routed by path on one load balancer host would
    overwrite each other's sign-in; the web front signs browsers in with the same path."""
    return ("from flask_appbuilder.const import AUTH_DB\n\n"
            "WTF_CSRF_ENABLED = True\nWTF_CSRF_TIME_LIMIT = None\nAUTH_TYPE = AUTH_DB\n"
            f"SESSION_COOKIE_PATH = {base_path.rstrip('/') + '/'!r}\n")


def write_webserver_config(env: dict[str, str]) -> None:
    base = env.get("AIRDOCK_WEB_BASE_PATH", "").strip()
    if base:
        path = Path(env["AIRFLOW_HOME"]) / "webserver_config.py"
        path.write_text(airflow2_webserver_config(base))
        log(f"wrote {path} (session cookie path {base.rstrip('/')}/)")


ADMIN_USER = "admin"


def ensure_admin_user(env: dict[str, str], run: Any = subprocess.run) -> bool:
    """Airflow 2 with FAB auth: the `admin` user the control plane (InvokeRestApi as Admin, and
    making the users of the other roles) and the web front sign in with. Made once; its password
    is the environment's secret, which never changes. True when it was made now."""
    password = env.get("AIRDOCK_ADMIN_PASSWORD")
    if not password:
        return False
    airflow = airflow_bin()
    listed = run([airflow, "users", "list", "-o", "json"], env=env, capture_output=True, text=True)
    if listed.returncode != 0:
        raise EntrypointError(f"`airflow users list` failed: {(listed.stdout + listed.stderr).strip()[-1000:]}")
    if re.search(rf'"username":\s*"{ADMIN_USER}"', listed.stdout):
        return False
    made = run([airflow, "users", "create", "--role", "Admin", "--username", ADMIN_USER,
                f"--password={password}", "--email", "admin@airdock.invalid", "--firstname", "Airdock",
                "--lastname", "Admin"], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        # The output may echo the command line: never log the password.
        raise EntrypointError(f"`airflow users create` failed: "
                              f"{(made.stdout + made.stderr).replace(password, '***').strip()[-1000:]}")
    log(f"created the Airflow user {ADMIN_USER} (Admin)")
    return True


def migrate(env: dict[str, str]) -> int:
    """The metadata database schema, then the admin user: one step, the same locally and in the
    ECS migrate task, so both make the user the same way."""
    env = dict(env)
    env.update(config_options_env(env.get("AIRDOCK_AIRFLOW_CONFIG_OPTIONS")))
    cmd = [airflow_bin(), "db", "migrate"]
    log("running: " + " ".join(cmd))
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        raise EntrypointError(f"`airflow db migrate` failed with exit code {code}")
    ensure_admin_user(env)
    return 0


def run_web_front(env: dict[str, str]) -> int:
    """The web front serves in this process: it is Airdock code, not an Airflow command, and it
    runs Airflow CLI calls with the environment `configure` built (startup-script exports too)."""
    from airdock_runtime import web_front

    front = web_front.WebFront(web_front.Config(env))

    def stop(_signum: int, _frame: Any) -> None:
        front.shutdown()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    log("starting: web front")
    front.serve()
    log("web-front stopped")
    return 0


def run_component(component: str, env: dict[str, str]) -> int:
    if component == WEB_FRONT:
        return run_web_front(env)
    if component not in COMPONENT_COMMANDS:
        raise EntrypointError(f"unknown component {component!r}; one of {', '.join(COMPONENT_COMMANDS)}")
    if component == "webserver":  # Airflow 2's UI
        write_webserver_config(env)
    extra = json.loads(env.get("AIRDOCK_COMPONENT_ARGS") or "[]")
    cmd = [airflow_bin(), *COMPONENT_COMMANDS[component], *map(str, extra)]
    log("starting: " + " ".join(cmd))
    run = ComponentRun(cmd, env, drained=worker_drain_check(component, env),
                       poll_s=float(env.get("AIRDOCK_DRAIN_POLL_S") or 15),
                       drained_file=Path(env["AIRFLOW_HOME"]) / DRAINED_FILE)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: run.signal(signum))
    code = run.run()
    log(f"{component} exited with code {code}")
    return 128 - code if code < 0 else code


# The image's health check takes a drained worker (Celery stopped on purpose) as healthy.
DRAINED_FILE = ".airdock-drained"
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_drain_check(component: str, env: dict[str, str]) -> Any:
    """The drain marker check of a Celery worker on ECS (AIRDOCK_DRAIN_POLL_S is set by its task
    definition), or None: elsewhere workers are drained by whoever runs them (locally Airdock's
    supervisor, by SIGTERM)."""
    if COMPONENT_COMMANDS.get(component) != ["celery", "worker"] or not float(env.get("AIRDOCK_DRAIN_POLL_S") or 0):
        return None
    try:
        check = MetadataDrainCheck.from_environ(env)
    except Exception as exc:  # no task metadata endpoint, no database URL: run without
        log(f"no drain marker check ({exc}); this worker stops taking tasks only when its task stops")
        return None
    if check is None:
        log("no drain marker check (not on ECS); this worker stops taking tasks only when its task stops")
    return check


class ComponentRun:
    """The component's command as a child process, with stop signals forwarded to it only (not to
    our process group): the component decides how to shut down, and a Celery worker finishes its
    running tasks on SIGTERM.

    With `drained` (a Celery worker on ECS, airdock_runtime.drain) the worker's drain marker
    is polled every `poll_s`. Celery's remote control cannot reach a worker on SQS, so the drain
    happens here, in the worker's own task: once marked, Celery gets SIGTERM — its warm shutdown
    stops consuming at once and lets the running task instances finish — and this process stays
    up, drained, instead of exiting (an exit would end the ECS task and make the service start a
    replacement before the autoscaler has released the slot). It exits when it is stopped (the
    autoscaler's release stops the task) and starts Celery again when the marker is gone (the
    worker was taken back). A failing check changes nothing: never drained, or never resumed, on
    a database hiccup."""

    def __init__(self, cmd: list[str], env: dict[str, str], *, drained: Any = None, poll_s: float = 15.0,
                 drained_file: Path | None = None) -> None:
        self.cmd, self.env = cmd, env
        self.drained, self.poll_s, self.drained_file = drained, poll_s, drained_file
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []
        # Plain attributes, no locks: signal() runs as a signal handler on the main thread.
        self.stopping = False
        self.draining = False

    def signal(self, signum: int) -> None:
        if signum in _STOP_SIGNALS:
            self.stopping = True
        child = self.child
        if child is None:
            self.pending.append(signum)
            return
        if child.returncode is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        while True:
            self.child = subprocess.Popen(self.cmd, env=self.env)
            for signum in self.pending:
                self.child.send_signal(signum)
            self.pending.clear()
            code = self._wait()
            if self.stopping or not self.draining:
                return code
            if not self._stay_drained():
                return 0

    def _check(self) -> bool | None:
        try:
            return bool(self.drained())
        except Exception as exc:  # the database may be briefly unreachable
            log(f"drain marker check failed (will retry): {exc}")
            return None

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            watching = self.drained is not None and not self.draining and not self.stopping
            try:
                return self.child.wait(timeout=self.poll_s if watching else None)
            except subprocess.TimeoutExpired:
                if self._check():
                    log("drain marker found: Celery stops taking tasks (warm shutdown); running tasks finish")
                    self.draining = True
                    self.child.send_signal(signal.SIGTERM)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def _stay_drained(self) -> bool:
        """Drained until stopped (False) or taken back (True)."""
        log("drained: Celery finished its tasks; waiting to be released or taken back")
        if self.drained_file is not None:
            self.drained_file.write_text(f"{time.time():.0f}\n")
        try:
            while not self.stopping:
                self._sleep(self.poll_s)
                if not self.stopping and self._check() is False:
                    log("drain marker gone: the worker is taken back; starting Celery again")
                    self.draining = False
                    return True
            return False
        finally:
            if self.drained_file is not None:
                self.drained_file.unlink(missing_ok=True)


# ---- --check ----------------------------------------------------------------------------------

def check_imports(home: Path) -> dict[str, Any]:
    """Import every DAG file and plugin in this process, as the DAG processor would."""
    report: dict[str, Any] = {"dags": [], "import_errors": {}, "plugin_errors": {}}
    plugins_dir = home / "plugins"
    if plugins_dir.is_dir() and str(plugins_dir) not in sys.path:
        sys.path.append(str(plugins_dir))
    from airflow import plugins_manager
    try:
        if hasattr(plugins_manager, "_get_plugins"):  # Airflow 3
            _plugins, errors = plugins_manager._get_plugins()
        else:  # Airflow 2
            plugins_manager.ensure_plugins_loaded()
            errors = plugins_manager.import_errors
        report["plugin_errors"] = {str(k): str(v) for k, v in dict(errors).items()}
    except Exception as exc:
        report["plugin_errors"] = {"plugins": repr(exc)}
    from airflow.models.dagbag import DagBag
    try:
        bag = DagBag(dag_folder=str(home / "dags"), include_examples=False)
    except TypeError:  # Airflow 3 dropped include_examples
        bag = DagBag(dag_folder=str(home / "dags"))
    report["dags"] = sorted(bag.dag_ids)
    report["import_errors"] = {str(k): str(v) for k, v in bag.import_errors.items()}
    return report


# ---- main -------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    env = dict(os.environ)
    if "AIRFLOW_HOME" not in env:
        log("AIRFLOW_HOME is not set")
        return 2
    try:
        if "--check" in flags:
            prepare(env, once=True)
            env = configure(env)
            os.environ.clear()
            os.environ.update(env)
            os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            report = check_imports(Path(env["AIRFLOW_HOME"]))
            print(json.dumps(report, indent=1))
            return 1 if report["import_errors"] or report["plugin_errors"] else 0
        if "--prepare" in flags:
            prepare(env, once=True)
            return 0
        if "--migrate" in flags:
            return migrate(env)
        component = args[0] if args else env.get("AIRDOCK_COMPONENT", "")
        if not component:
            log("no component given (argument or AIRDOCK_COMPONENT)")
            return 2
        syncer = prepare(env)
        env = configure(env)
        if syncer is not None:
            syncer.start()
        return run_component(component, env)
    except EntrypointError as exc:
        log(f"error: {exc}")
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
