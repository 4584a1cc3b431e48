"""The local compute layer against real Apache Airflow, plus fast checks of its building blocks.

The `airflow` tests build (or reuse) a runtime under $AIRDOCK_RUNTIME_CACHE (default
~/.cache/airdock/runtimes), so only the first run pays for the install.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airdock.local.airflow_env import LocalAirflowEnvironment, entrypoint_argv
from airdock.local.runtime import RuntimeBuildError, RuntimeCache
from support.records import local_spec
from airdock.local.processes import reap_orphans, session_members, tagged_pids
from airdock.local.supervisor import ComponentSpec, ComponentState, Supervisor, SupervisorClosed

RETRY_DAG = textwrap.dedent('''
    from datetime import datetime, timedelta
    import time

    try:  # Airflow 3
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.python import PythonOperator
    except ImportError:  # Airflow 2
        from airflow import DAG
        from airflow.operators.python import PythonOperator


    def flaky(ti=None, **_):
        print(f"try_number={ti.try_number}")
        if ti.try_number < 2:
            raise RuntimeError("failing on purpose on the first try")


    def slow(**_):
        time.sleep(12)


    with DAG(dag_id="retry_once", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
             default_args={"retries": 1, "retry_delay": timedelta(seconds=2)}):
        PythonOperator(task_id="flaky", python_callable=flaky)

    with DAG(dag_id="slow_task", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
        PythonOperator(task_id="slow", python_callable=slow)
''')


# ---- helpers ------------------------------------------------------------------------------------

def _wait(predicate: Any, timeout_s: float, what: str, poll_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last_error: OSError | None = None
    while True:
        try:
            value = predicate()
        except OSError as exc:  # an API call timing out on a busy machine: ask again
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last error: {last_error})")
        time.sleep(poll_s)


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (e.g. an environment's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _env_pids(env_dir: Path) -> list[int]:
    pids = set(tagged_pids(str(env_dir.resolve()))) | set(_pids_mentioning(str(env_dir)))
    pid_dir = env_dir / "pids"
    if pid_dir.is_dir():
        for f in pid_dir.glob("*.pid"):
            info = json.loads(f.read_text())
            pids.update(session_members(info["pid"], info.get("start_time")))
    return sorted(pids)


@pytest.fixture(scope="session")
def runtime_cache() -> RuntimeCache:
    cache = Path(os.environ.get("AIRDOCK_RUNTIME_CACHE", "~/.cache/airdock/runtimes")).expanduser()
    return RuntimeCache(cache)


def _trigger_and_wait(env: LocalAirflowEnvironment, dag_id: str, timeout_s: float = 120) -> dict[str, Any]:
    status, _ = env.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    assert status == 200
    # Airflow 3.3 answers 422 unless logical_date is present (null is fine).
    body: dict[str, Any] = {"logical_date": None} if env.airflow3 else {}
    status, run = env.api("POST", f"/dags/{dag_id}/dagRuns", body)
    assert status == 200, run
    return run


def _run_state(env: LocalAirflowEnvironment, dag_id: str, run_id: str) -> str:
    status, run = env.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    assert status == 200, run
    return str(run["state"])


# ---- real Airflow ---------------------------------------------------------------------------------

@pytest.mark.airflow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("airflow_version", ["3.3.2", "2.11.0"])
def test_environment_lifecycle(tmp_path: Path, runtime_cache: RuntimeCache, airflow_version: str) -> None:
    progress: list[str] = []
    runtime = runtime_cache.ensure(airflow_version, None, progress.append)
    assert runtime.airflow.exists()
    t0 = time.monotonic()
    again = runtime_cache.ensure(airflow_version, None)
    assert again == runtime and time.monotonic() - t0 < 1.0, "a cached runtime must be instant"

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "test_dags.py").write_text(RETRY_DAG)
    env_dir = tmp_path / "env"
    spec = local_spec(f"it-{airflow_version.replace('.', '-')}", dags, airflow_version,
                      **{"core.default_task_retries": "0", "celery.worker_concurrency": "2"})
    env = LocalAirflowEnvironment(env_dir, runtime, spec)
    try:
        t0 = time.monotonic()
        env.create()
        env.start()
        health = env.wait_healthy(timeout_s=180)
        print(f"\n[{airflow_version}] create -> healthy in {time.monotonic() - t0:.1f}s")
        assert health["airflow"]["scheduler"]["status"] == "healthy"
        secrets_file = env_dir / "secrets.json"
        assert secrets_file.stat().st_mode & 0o777 == 0o600

        _wait(lambda: env.api("GET", "/dags/retry_once")[0] == 200, 90, "the DAG to be parsed")

        # A task that fails once and succeeds on its retry, run by a Celery worker.
        run = _trigger_and_wait(env, "retry_once")
        state = _wait(lambda: (s := _run_state(env, "retry_once", run["dag_run_id"])) in ("success", "failed") and s,
                      240, "the retry_once run to finish", poll_s=2)
        assert state == "success"
        status, ti = env.api("GET", f"/dags/retry_once/dagRuns/{run['dag_run_id']}/taskInstances/flaky")
        assert status == 200 and ti["try_number"] == 2, ti

        # Scale out: a second worker process joins.
        env.set_workers(2)
        assert env.worker_names() == ["worker-1", "worker-2"]
        _wait(lambda: "ready" in (env_dir / "logs" / "worker-2.log").read_text(), 60, "worker-2 to be ready")

        # Scale in while a task runs: the removed worker shuts down warm, nothing is killed.
        run = _trigger_and_wait(env, "slow_task")
        _wait(lambda: _run_state(env, "slow_task", run["dag_run_id"]) == "running", 60, "slow_task to run")
        _wait(lambda: env.api("GET", f"/dags/slow_task/dagRuns/{run['dag_run_id']}/taskInstances/slow")[1]
              .get("state") == "running", 60, "the slow task to start")
        env.set_workers(1, drain_timeout_s=120)
        assert env.worker_names() == ["worker-1"]
        assert env.supervisor.status("worker-2") is None  # drained and forgotten
        state = _wait(lambda: (s := _run_state(env, "slow_task", run["dag_run_id"])) in ("success", "failed") and s,
                      120, "slow_task to finish", poll_s=2)
        assert state == "success", "scale-in must let the running task finish"
        status, ti = env.api("GET", f"/dags/slow_task/dagRuns/{run['dag_run_id']}/taskInstances/slow")
        assert ti["try_number"] == 1, ti

        # Nothing crashed along the way.
        statuses = env.supervisor.statuses()
        assert all(s.state == ComponentState.RUNNING for s in statuses.values()), statuses
    finally:
        env.destroy()
    assert not env_dir.exists()
    _wait(lambda: not _env_pids(env_dir), 10, "every process of the environment to exit", poll_s=0.5)


@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_controller_sigkill_then_restart_reaps_and_resumes(tmp_path: Path, runtime_cache: RuntimeCache) -> None:
    """The server dies hard; the next one kills the leftovers and brings the environment back."""
    runtime = runtime_cache.ensure("3.3.2", None)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "test_dags.py").write_text(RETRY_DAG)
    env_dir = tmp_path / "env"
    controller = textwrap.dedent(f'''
        import time
        from pathlib import Path
        from airdock.local.runtime import RuntimeCache
        from airdock.local.airflow_env import LocalAirflowEnvironment
        from support.records import local_spec
        runtime = RuntimeCache(Path({str(runtime_cache.cache_dir)!r})).ensure("3.3.2", None)
        env = LocalAirflowEnvironment(Path({str(env_dir)!r}), runtime,
                                      local_spec("crashy", {str(dags)!r}, **{{"celery.worker_concurrency": "1"}}))
        env.create()
        env.start()
        env.wait_healthy(180)
        print("healthy", flush=True)
        time.sleep(600)
    ''')
    proc = subprocess.Popen([sys.executable, "-c", controller], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    env: LocalAirflowEnvironment | None = None
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "healthy"
        old = [p for p in _env_pids(env_dir) if p != proc.pid]
        proc.kill()
        proc.wait()
        assert all(Path(f"/proc/{p}").exists() for p in old)
        web_port = json.loads((env_dir / "ports.json").read_text())["web"]

        env = LocalAirflowEnvironment(env_dir, runtime, local_spec("crashy", dags, **{"celery.worker_concurrency": "1"}))
        env.start()  # reaps the orphans first: their ports and pid files are in the way otherwise
        assert not [p for p in old if Path(f"/proc/{p}").exists()
                    and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert env.ports.web == web_port  # same ports after the restart
        env.wait_healthy(180)
        _wait(lambda: env.api("GET", "/dags/retry_once")[0] == 200, 90, "the DAG")
        run = _trigger_and_wait(env, "retry_once")
        state = _wait(lambda: (s := _run_state(env, "retry_once", run["dag_run_id"])) in ("success", "failed") and s,
                      240, "the run to finish", poll_s=2)
        assert state == "success"
    finally:
        proc.kill()
        if env is not None:
            env.destroy()
        else:
            reap_orphans(env_dir)
    _wait(lambda: not _env_pids(env_dir), 10, "every process to exit", poll_s=0.5)


@pytest.mark.airflow
def test_concurrent_builds_of_one_key_share_the_result(tmp_path: Path) -> None:
    import threading
    cache = RuntimeCache(tmp_path / "runtimes")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.ensure("3.3.2", "six\n"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert [p.name for p in (tmp_path / "runtimes").iterdir() if not p.name.startswith(".")] == [results[0].key]
    assert subprocess.run([str(results[0].python), "-c", "import airflow, six"]).returncode == 0


@pytest.mark.airflow
def test_runtime_build_error_names_the_bad_requirement(runtime_cache: RuntimeCache) -> None:
    with pytest.raises(RuntimeBuildError) as err:
        runtime_cache.ensure("3.3.2", "nonexistent-pkg-airdock-test==1.0\n")
    assert "nonexistent-pkg-airdock-test" in err.value.message
    assert "not found in the package registry" in err.value.message


@pytest.mark.airflow
def test_check_mode_reports_import_errors(tmp_path: Path, runtime_cache: RuntimeCache) -> None:
    runtime = runtime_cache.ensure("3.3.2", None)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "good.py").write_text(RETRY_DAG)
    # Mentions "airflow" and "DAG": Airflow's safe mode skips files that don't.
    (dags / "broken.py").write_text("from airflow.sdk import DAG\nimport this_module_does_not_exist\n")
    env = LocalAirflowEnvironment(tmp_path / "env", runtime, local_spec("chk", dags))
    report = env.check_dags()
    assert not report["ok"]
    assert "retry_once" in report["dags"]
    assert any("broken.py" in k and "this_module_does_not_exist" in v for k, v in report["import_errors"].items())
    (dags / "broken.py").unlink()
    assert env.check_dags()["ok"]


# ---- supervisor (no Airflow) --------------------------------------------------------------------

@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(tmp_path / "env", poll_interval_s=0.1)
    yield sup
    sup.close(grace_s=2)
    reap_orphans(tmp_path / "env", grace_s=1)


def test_supervisor_logs_pidfiles_and_stop(supervisor: Supervisor) -> None:
    supervisor.start(ComponentSpec(name="echo", argv=["bash", "-c", "echo hello; sleep 30 & wait"]))
    st = supervisor.status("echo")
    assert st is not None and st.state == ComponentState.RUNNING
    assert (supervisor.pids_dir / "echo.pid").is_file()
    _wait(lambda: "hello" in supervisor.log_path("echo").read_text(), 5, "log output", 0.1)
    members = _wait(lambda: m if len(m := session_members(st.pid)) >= 2 else None, 5,
                    "bash and its sleep child", 0.05)
    assert supervisor.stop("echo", grace_s=5) is not None
    assert supervisor.status("echo").state == ComponentState.STOPPED
    assert not (supervisor.pids_dir / "echo.pid").exists()
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in members), 5, "the group to exit", 0.1)


def test_supervisor_sigkills_after_grace(supervisor: Supervisor) -> None:
    supervisor.start(ComponentSpec(name="stubborn", argv=["bash", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"]))
    time.sleep(0.3)
    t0 = time.monotonic()
    code = supervisor.stop("stubborn", grace_s=1)
    assert time.monotonic() - t0 < 8
    assert code == -signal.SIGKILL


def test_supervisor_restarts_with_backoff_then_gives_up(supervisor: Supervisor) -> None:
    supervisor.start(ComponentSpec(name="crasher", argv=["bash", "-c", "exit 7"], max_restarts=2,
                                   backoff_initial_s=0.1))
    st = _wait(lambda: (s := supervisor.status("crasher")) and s.state == ComponentState.FATAL and s,
               10, "FATAL", 0.1)
    assert st.restarts == 2 and st.last_exit_code == 7
    assert "not restarting" in st.message


def test_supervisor_leader_stop_target_signals_only_the_leader(supervisor: Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "child-finished"
    # The child ignores nothing; if it got SIGTERM it would die before writing the marker.
    script = f"(sleep 1; echo done > {marker}) & trap 'wait; exit 0' TERM; wait"
    supervisor.start(ComponentSpec(name="leader", argv=["bash", "-c", script], stop_target="leader"))
    time.sleep(0.3)
    assert supervisor.stop("leader", grace_s=10) == 0
    assert marker.read_text().strip() == "done"


def test_reap_orphans_after_controller_is_sigkilled(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    controller = textwrap.dedent(f'''
        import time
        from pathlib import Path
        from airdock.local.supervisor import Supervisor, ComponentSpec
        sup = Supervisor(Path({str(env_dir)!r}))
        # One component that forks a child which leaves the group, one plain.
        sup.start(ComponentSpec(name="a", argv=["bash", "-c", "setsid sleep 300 & sleep 300 & wait"]))
        sup.start(ComponentSpec(name="b", argv=["sleep", "300"]))
        print("started", flush=True)
        time.sleep(300)
    ''')
    proc = subprocess.Popen([sys.executable, "-c", controller], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    time.sleep(0.5)
    before = [p for p in _env_pids(env_dir) if p != proc.pid]
    assert len(before) >= 4  # bash, its two sleeps (one in a session of its own), sleep
    proc.kill()  # the controlling server dies without cleaning up
    proc.wait()
    assert all(Path(f"/proc/{p}").exists() for p in before), "children outlive their supervisor"
    killed = reap_orphans(env_dir, grace_s=2)
    assert set(before) <= set(killed)
    _wait(lambda: not [p for p in before if Path(f"/proc/{p}/stat").exists()
                       and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"],
          5, "orphans to die", 0.1)
    assert not list((env_dir / "pids").glob("*.pid"))


def test_given_a_closing_supervisor_then_starts_are_refused_and_no_component_outlives_it(supervisor: Supervisor) -> None:
    # Given a running component / When the supervisor closes
    supervisor.start(ComponentSpec(name="a", argv=["sleep", "300"]))
    pid = supervisor.status("a").pid
    supervisor.close(grace_s=2)
    # Then it is stopped, and a start racing the shutdown (a recovery thread) is refused
    with pytest.raises(SupervisorClosed):
        supervisor.start(ComponentSpec(name="late", argv=["sleep", "300"]))
    assert supervisor.status("late") is None
    assert not session_members(pid)


def test_given_a_helper_that_dies_with_its_caller_when_the_controller_is_sigkilled_then_the_helper_dies_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "helper.pid"
    controller = textwrap.dedent(f'''
        import subprocess
        from airdock.local.processes import dies_with_caller
        subprocess.run(dies_with_caller(["bash", "-c", "echo $$ > {pidfile}; exec sleep 300"]))
    ''')
    proc = subprocess.Popen([sys.executable, "-c", controller],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    helper = int(_wait(lambda: pidfile.is_file() and pidfile.read_text().strip(), 10, "the helper", 0.05))
    proc.kill()  # the server dies in the middle of, say, `airflow db migrate`
    proc.wait()
    _wait(lambda: not Path(f"/proc/{helper}/stat").exists()
          or Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 5, "the helper to die", 0.05)


# ---- entrypoint (no Airflow: a fake `airflow` executable) ----------------------------------------

def _entrypoint_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    fake = tmp_path / "fake-airflow"
    # Records its arguments and environment, then waits; exits 0 on SIGTERM like a warm shutdown.
    fake.write_text(textwrap.dedent(f'''\
        #!/bin/bash
        echo "$@" > {tmp_path}/args
        env > {tmp_path}/env
        trap 'echo got-term > {tmp_path}/term; exit 0' TERM
        touch {tmp_path}/running
        while true; do sleep 0.1; done
    '''))
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRDOCK_"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "home"), "AIRDOCK_AIRFLOW_BIN": str(fake), **extra})
    return env


def test_entrypoint_prepares_configures_runs_and_forwards_sigterm(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.py").write_text("A = 1\n")
    (src / "sub" / "b.py").write_text("B = 1\n")
    plugins = tmp_path / "plugins.zip"
    with zipfile.ZipFile(plugins, "w") as zf:
        zf.writestr("my_plugin/__init__.py", "X = 1\n")
    startup = tmp_path / "startup.sh"
    startup.write_text("export FROM_STARTUP=yes\nexport AIRFLOW_HOME=/nope\necho hi from startup\n")
    env = _entrypoint_env(
        tmp_path, AIRDOCK_DAGS_SOURCE=str(src), AIRDOCK_DAGS_SYNC_INTERVAL="0.3",
        AIRDOCK_PLUGINS_ZIP=str(plugins), AIRDOCK_STARTUP_SCRIPT=str(startup),
        AIRFLOW__CORE__DAG_CONCURRENCY="7", AIRFLOW__CELERY__WORKER_AUTOSCALE="5,5",
        AIRDOCK_PROTECTED_VARIABLES="AIRFLOW_HOME,AIRFLOW__CELERY__WORKER_AUTOSCALE",
    )
    startup.write_text(startup.read_text() + "export AIRFLOW__CELERY__WORKER_AUTOSCALE=9,9\n")
    proc = subprocess.Popen(entrypoint_argv(Path(sys.executable), "celery-worker", "--concurrency", "3"), env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: (tmp_path / "running").exists(), 15, "the component to start", 0.1)
        home = tmp_path / "home"
        assert (home / "dags" / "sub" / "b.py").read_text() == "B = 1\n"
        assert (home / "plugins" / "my_plugin" / "__init__.py").is_file()
        assert (tmp_path / "args").read_text().split() == ["celery", "worker", "--concurrency", "3"]
        child_env = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
        assert child_env["AIRFLOW__CORE__DAG_CONCURRENCY"] == "7"
        assert child_env["AIRFLOW__CELERY__WORKER_AUTOSCALE"] == "5,5"
        assert child_env["FROM_STARTUP"] == "yes"
        assert child_env["AIRFLOW_HOME"] == str(home)  # protected: the script may not move it
        assert child_env["AIRFLOW__CELERY__WORKER_AUTOSCALE"] == "5,5"  # the user's option wins, as on MWAA
        # Changes in the source reach the DAG folder within seconds; removed files go away.
        (src / "c.py").write_text("C = 1\n")
        (src / "sub" / "b.py").unlink()
        _wait(lambda: (home / "dags" / "c.py").exists() and not (home / "dags" / "sub").exists(), 5,
              "the background sync", 0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert (tmp_path / "term").read_text().strip() == "got-term"
    finally:
        proc.kill()
        proc.wait()


def test_entrypoint_refuses_zip_slip(tmp_path: Path) -> None:
    plugins = tmp_path / "evil.zip"
    with zipfile.ZipFile(plugins, "w") as zf:
        zf.writestr("ok.py", "")
        zf.writestr("../../escaped.py", "")
    env = _entrypoint_env(tmp_path, AIRDOCK_PLUGINS_ZIP=str(plugins))
    out = subprocess.run(entrypoint_argv(Path(sys.executable), "scheduler"), env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "outside the plugins folder" in out.stderr
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path.parent / "escaped.py").exists()
    assert not (tmp_path / "running").exists()


def test_entrypoint_failing_startup_script_stops_the_start(tmp_path: Path) -> None:
    startup = tmp_path / "startup.sh"
    startup.write_text("echo about to fail\nreturn 4\n")
    env = _entrypoint_env(tmp_path, AIRDOCK_STARTUP_SCRIPT=str(startup))
    out = subprocess.run(entrypoint_argv(Path(sys.executable), "triggerer"), env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "startup script" in out.stderr
    assert not (tmp_path / "running").exists()
