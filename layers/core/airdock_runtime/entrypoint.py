"""Airdock's entrypoint for every Airflow component, in the container image and in local mode.

`python -P -m airdock_runtime.entrypoint COMPONENT [ARGS...]`, run with the Airflow runtime's
interpreter, does what MWAA's container entrypoint does, in MWAA's order:

1. bring the DAG folder from its source into $AIRFLOW_HOME/dags (and keep syncing it in the
   background while the component runs) and unpack plugins.zip into $AIRFLOW_HOME/plugins;
2. run the startup script with bash and take over what it exports (but protected variables);
3. install requirements.txt (container mode; locally the runtime venv already has them);
4. run the component's Airflow command as a child with ARGS, forward SIGTERM/SIGINT/SIGHUP to
   it, and exit with its code.

Everything else arrives as environment variables, from the environment's blueprint
(airdock.core.blueprint): Airflow's options as AIRFLOW__SECTION__KEY, MWAA's variables, and:
    AIRFLOW_HOME                     required; dags/ and plugins/ live under it
    AIRFLOW_VERSION                  the environment's Airflow version
    AIRDOCK_DAGS_SOURCE              local directory or s3://bucket/prefix; unset = no DAG sync
    AIRDOCK_DAGS_SYNC_INTERVAL       seconds between background syncs (default 5; 0 = once)
    AIRDOCK_PLUGINS_ZIP              path or s3://bucket/key of plugins.zip
    AIRDOCK_PLUGINS_ZIP_VERSION      S3 object version of it (PluginsS3ObjectVersion); likewise
                                     AIRDOCK_REQUIREMENTS_VERSION, AIRDOCK_STARTUP_SCRIPT_VERSION.
                                     Only for s3:// sources; unset = the latest version
    AIRDOCK_REQUIREMENTS             path or s3://bucket/key of requirements.txt, installed at
                                     start (unset when the runtime already has them)
    AIRDOCK_STARTUP_SCRIPT           path or s3://bucket/key of a bash startup script
    AIRDOCK_STARTUP_TIMEOUT          seconds (default 300, MWAA's limit)
    AIRDOCK_PROTECTED_VARIABLES      comma-separated variables the startup script may not change
    AIRDOCK_AIRFLOW_BIN              airflow executable (default: next to this interpreter,
                                     else on PATH)
    AIRDOCK_S3_ENDPOINT_URL          endpoint for s3:// sources (e.g. a local S3 stand-in)
    AIRDOCK_WEB_BASE_PATH            path prefix of the environment's web server (path routing);
                                     Airflow 2's webserver scopes its session cookie to it
    AIRDOCK_ADMIN_PASSWORD           Airflow 2 (FAB): --migrate makes the `admin` user with it
    AIRDOCK_DRAIN_POLL_S             Celery workers on ECS: seconds between checks of the task's
                                     drain marker (airdock_runtime.drain); unset = none
    AIRDOCK_SCHEMA_WAIT_S            wait up to so many seconds for the metadata database's
                                     schema to be this Airflow's before the component starts
                                     (ECS, where the migrate task runs beside the services);
                                     unset = no wait

COMPONENT: scheduler | api-server | webserver | dag-processor | triggerer | celery-worker |
web-front (airdock_runtime.web_front, which documents its own variables). Other modes:
    --prepare     sync DAGs and plugins once, run nothing
    --check       sync, then import every DAG and plugin in this throw-away process and print a
                  JSON report; exit 1 on any import error (the pre-flight of an update: new code
                  is loaded before it is rolled out)
    --migrate     `airflow db migrate`, then on Airflow 2 the FAB `admin` user
    --downgrade VERSION
                  `airflow db downgrade` to the schema of Airflow VERSION, run with the newer
                  Airflow (it alone knows how to undo its migrations), before the environment
                  moves back to VERSION (3.x -> 2.11, or a failed upgrade rolled back)
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
import time
from pathlib import Path
from typing import Any

from airdock_runtime.component import DRAINED_FILE, ComponentRun, worker_drain_check
from airdock_runtime.errors import EntrypointError, log
from airdock_runtime.requirements import plan_install
from airdock_runtime.sources import DagSyncer, fetch_file, sync_dags, unpack_plugins
from airdock_runtime.startup import protected_variables, run_startup_script

COMPONENT_COMMANDS: dict[str, list[str]] = {
    "scheduler": ["scheduler"],
    "api-server": ["api-server"],
    "webserver": ["webserver"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": ["celery", "worker"],
}

# MWAA's `/aws_mwaa/*` endpoints in front of the Airflow UI/API (airdock_runtime.web_front).
WEB_FRONT = "web-front"
MODES = ("--prepare", "--check", "--migrate", "--downgrade")


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


def airflow_major(env: dict[str, str]) -> int:
    version = env.get("AIRFLOW_VERSION", "")
    return int(version.split(".", 1)[0]) if version[:1].isdigit() else 3


def prepare(env: dict[str, str], *, once: bool = False) -> DagSyncer | None:
    """DAGs and plugins from their sources; the DAG syncer to start (unless `once`)."""
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
    return syncer


def configure(env: dict[str, str]) -> dict[str, str]:
    """The component's environment after the user's startup script."""
    env = dict(env)
    script = env.get("AIRDOCK_STARTUP_SCRIPT")
    if script:
        with tempfile.TemporaryDirectory() as tmp:
            local = fetch_file(script, Path(tmp), env.get("AIRDOCK_STARTUP_SCRIPT_VERSION"))
            timeout = float(env.get("AIRDOCK_STARTUP_TIMEOUT", "300"))
            changed = run_startup_script(local, env, timeout, protected_variables(env))
        if changed:
            log(f"startup script set: {', '.join(sorted(changed))}")
        env.update(changed)
    return env


def install_requirements(env: dict[str, str]) -> None:
    """requirements.txt as MWAA installs it (airdock_runtime.requirements): its constraints, or
    the bundled lock when it has none; Airflow's constraints URL read from the bundled lock;
    /usr/local/airflow/dags and /plugins meaning this container's folders."""
    reqs = env.get("AIRDOCK_REQUIREMENTS")
    if not reqs:
        return
    home = Path(env["AIRFLOW_HOME"])
    with tempfile.TemporaryDirectory() as tmp:
        req_file = fetch_file(reqs, Path(tmp), env.get("AIRDOCK_REQUIREMENTS_VERSION"))
        try:
            plan = plan_install(req_file.read_text(encoding="utf-8", errors="replace"), env.get("AIRFLOW_VERSION", ""),
                                dags_folder=home / "dags", plugins_folder=home / "plugins")
        except KeyError:
            raise EntrypointError(f"no bundled lock for Airflow {env.get('AIRFLOW_VERSION')!r} in this image") from None
        for change in plan.changes:
            log(f"requirements.txt: {change}")
        (Path(tmp) / "plan-requirements.txt").write_text(plan.requirements)
        (Path(tmp) / "plan-constraints.txt").write_text(plan.constraints)
        cmd = [sys.executable, "-m", "pip", "install", "--no-input", "-r", str(Path(tmp) / "plan-requirements.txt"),
               "-c", str(Path(tmp) / "plan-constraints.txt")]
        log("installing requirements: " + " ".join(cmd))
        if subprocess.run(cmd, env=env).returncode != 0:
            raise EntrypointError("installing requirements.txt failed (see the log above)")


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
    cmd = [airflow_bin(), "db", "migrate"]
    log("running: " + " ".join(cmd))
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        raise EntrypointError(f"`airflow db migrate` failed with exit code {code}")
    if airflow_major(env) < 3:
        ensure_admin_user(env)
    return 0


def schema_version_for(target: str, known: list[str]) -> str:
    """The newest Airflow version with its own schema (Airflow's _REVISION_HEADS_MAP) at or
    below `target`: 2.11 changed no table, so its schema is 2.10.3's."""
    def numbers(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split(".") if p.isdigit())

    candidates = [v for v in known if numbers(v) <= numbers(target)]
    if not candidates:
        raise EntrypointError(f"this Airflow cannot downgrade its database to {target}")
    return max(candidates, key=numbers)


def downgrade(env: dict[str, str], target: str) -> int:
    from airflow.utils.db import _REVISION_HEADS_MAP

    to_version = schema_version_for(target, list(_REVISION_HEADS_MAP))
    cmd = [airflow_bin(), "db", "downgrade", "--to-version", to_version, "--yes"]
    log(f"downgrading the metadata database to Airflow {target}'s schema: " + " ".join(cmd))
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        raise EntrypointError(f"`airflow db downgrade` failed with exit code {code}")
    return 0


def wait_for_schema(env: dict[str, str]) -> None:
    """Start on this Airflow's schema only: a component started while the migrate task still
    runs (or before it takes a failed upgrade back down) would fail on tables it does not know."""
    wait = env.get("AIRDOCK_SCHEMA_WAIT_S")
    if not wait:
        return
    cmd = [airflow_bin(), "db", "check-migrations", "--migration-wait-timeout", wait]
    log(f"waiting up to {wait} s for the metadata database to be Airflow {env.get('AIRFLOW_VERSION', '')}'s")
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        raise EntrypointError(
            f"the metadata database is not on Airflow {env.get('AIRFLOW_VERSION', '')}'s schema after {wait} s; "
            "the migrate task's output is in the scheduler's log group (SchedulerLogs)")


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


def run_component(component: str, args: list[str], env: dict[str, str]) -> int:
    if component == WEB_FRONT:
        return run_web_front(env)
    if component not in COMPONENT_COMMANDS:
        raise EntrypointError(f"unknown component {component!r}; one of {', '.join([*COMPONENT_COMMANDS, WEB_FRONT])}")
    if component == "webserver":  # Airflow 2's UI
        write_webserver_config(env)
    wait_for_schema(env)
    command = [*COMPONENT_COMMANDS[component], *args]
    cmd = [airflow_bin(), *command]
    log("starting: " + " ".join(cmd))
    run = ComponentRun(cmd, env, drained=worker_drain_check(command, env),
                       poll_s=float(env.get("AIRDOCK_DRAIN_POLL_S") or 15),
                       drained_file=Path(env["AIRFLOW_HOME"]) / DRAINED_FILE)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: run.signal(signum))
    code = run.run()
    log(f"{component} exited with code {code}")
    return 128 - code if code < 0 else code


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



def main(argv: list[str]) -> int:
    env = dict(os.environ)
    if "AIRFLOW_HOME" not in env:
        log("AIRFLOW_HOME is not set")
        return 2
    if not argv:
        log(f"no component given; one of {', '.join([*COMPONENT_COMMANDS, WEB_FRONT])}, or {', '.join(MODES)}")
        return 2
    try:
        if argv[0] == "--check":
            prepare(env, once=True)
            env = configure(env)
            os.environ.clear()
            os.environ.update(env)
            os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            report = check_imports(Path(env["AIRFLOW_HOME"]))
            print(json.dumps(report, indent=1))
            return 1 if report["import_errors"] or report["plugin_errors"] else 0
        if argv[0] == "--prepare":
            prepare(env, once=True)
            return 0
        if argv[0] == "--migrate":
            return migrate(env)
        if argv[0] == "--downgrade":
            if len(argv) != 2:
                log("--downgrade takes the Airflow version to go back to")
                return 2
            return downgrade(env, argv[1])
        syncer = prepare(env)
        env = configure(env)
        install_requirements(env)
        if syncer is not None:
            syncer.start()
        return run_component(argv[0], argv[1:], env)
    except EntrypointError as exc:
        log(f"error: {exc}")
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
