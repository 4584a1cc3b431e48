"""Reliability on real Airflow: a server SIGKILLed mid-change and between changes, a Celery worker
and a scheduler SIGKILLed, and 50 racing updates. One environment for the module (plus one created
and deleted by the crash run), on one provisioning server that the crash runs kill and start again."""
from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from airdock.local.sample import EXAMPLE_DAG
from e2e.test_concurrency import PARALLEL, clients, race
from support.airflow_rest import AirflowRest
from support.crash import Crasher, create_args, wait_final
from support.processes import processes_under

pytestmark = pytest.mark.airflow

SEED = 20261129
NAME = "rel"
# First start of the task sleeps (long enough to be killed); any later start finishes at once.
KILLABLE_DAG = '''\
from __future__ import annotations
from datetime import datetime, timedelta
from pathlib import Path
import time
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:
    from airflow.operators.python import PythonOperator

MARKER = Path({marker!r})

def work():
    MARKER.parent.mkdir(parents=True, exist_ok=True)
    with MARKER.open("a") as f:
        f.write("start\\n")
    if MARKER.read_text().count("start") == 1:
        time.sleep(600)

with DAG("killable", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
         default_args={{"retries": 3, "retry_delay": timedelta(seconds=3)}}) as dag:
    PythonOperator(task_id="work", python_callable=work)
'''


@pytest.fixture(scope="module")
def crasher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crasher]:
    data = tmp_path_factory.mktemp("airdock-rel") / "data"
    marker = data.parent / "markers" / "killable.txt"
    bucket = data / "buckets" / "airdock-crash" / "dags"
    bucket.mkdir(parents=True)
    (bucket / "example_hello.py").write_text(EXAMPLE_DAG)
    (bucket / "killable.py").write_text(KILLABLE_DAG.format(marker=str(marker)))
    crasher = Crasher(data, random.Random(SEED), env={"AIRDOCK_AUTOSCALER": "off"})
    crasher.mwaa.create_environment(**create_args(NAME))
    env = wait_final(crasher.mwaa, NAME)
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    yield crasher
    crasher.stop()
    assert not processes_under(data), "environment processes outlived the server"


def _pid(crasher: Crasher, component: str) -> int:
    return int(json.loads((crasher.data_dir / "envs" / NAME / "pids" / f"{component}.pid").read_text())["pid"])


def _wait_running(crasher: Crasher) -> None:
    """After a server restart the environment is UNAVAILABLE until its components run again."""
    env = wait_final(crasher.mwaa, NAME)
    assert env["Status"] == "AVAILABLE", env.get("StatusReason")


def _marker(crasher: Crasher) -> Path:
    """Where the killable task notes each start (see KILLABLE_DAG)."""
    return crasher.data_dir.parent / "markers" / "killable.txt"


def _rest(crasher: Crasher) -> AirflowRest:
    env = crasher.mwaa.get_environment(Name=NAME)["Environment"]
    return AirflowRest(crasher.data_dir / "envs" / NAME, env["WebserverUrl"], env["AirflowVersion"])


def test_given_50_parallel_updates_of_a_real_available_environment_then_exactly_one_is_accepted(crasher: Crasher) -> None:
    # A configuration change restarts the components (seconds), so every request arrives while
    # the accepted one is in progress. (A worker-count-only change is applied in milliseconds:
    # requests handled after it has finished are new updates, rightly accepted one after another.)
    outcomes = race([lambda c=c: c.update_environment(Name=NAME, AirflowConfigurationOptions={"core.parallelism": "48"})
                     for c in clients(crasher.server, PARALLEL)])
    assert Counter(kind for kind, _ in outcomes) == {"ok": 1, "ValidationException": PARALLEL - 1}
    env = wait_final(crasher.mwaa, NAME)
    assert env["Status"] == "AVAILABLE" and env["LastUpdate"]["Status"] == "SUCCESS"
    assert env["AirflowConfigurationOptions"] == {"core.parallelism": "48"}


def test_given_the_server_killed_at_random_points_of_updates_then_each_update_completes(crasher: Crasher) -> None:
    runs = [crasher.update(NAME, max_delay=4.0) for _ in range(2)]
    print("\n".join(r.line() for r in runs))


def test_given_a_server_killed_between_changes_then_the_environment_is_unavailable_until_its_components_run_again(crasher: Crasher) -> None:
    _wait_running(crasher)
    before = _pid(crasher, "scheduler-1")
    # When the server dies (its environment's processes survive it) and a new one starts
    crasher.kill_and_restart(0)
    # Then from its first answer on the environment is UNAVAILABLE, not AVAILABLE with nothing behind it
    env = crasher.mwaa.get_environment(Name=NAME)["Environment"]
    assert env["Status"] == "UNAVAILABLE", env
    # and Airflow access answers MWAA's error meanwhile
    with pytest.raises(ClientError) as caught:
        crasher.mwaa.create_cli_token(Name=NAME)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    # When its components are back / Then it is AVAILABLE, on new processes, and Airflow answers at once
    env = wait_final(crasher.mwaa, NAME)
    assert env["Status"] == "AVAILABLE", env.get("StatusReason")
    assert _pid(crasher, "scheduler-1") != before
    assert _rest(crasher).call("GET", "/dags")[0] == 200
    assert crasher.mwaa.create_cli_token(Name=NAME)["CliToken"]


def test_given_a_celery_worker_killed_mid_task_then_the_task_is_retried_and_succeeds(crasher: Crasher) -> None:
    _wait_running(crasher)
    airflow = _rest(crasher)
    airflow.wait_for_dag("killable")
    assert airflow.call("PATCH", "/dags/killable", {"is_paused": False})[0] == 200
    status, run = airflow.call("POST", "/dags/killable/dagRuns", {"logical_date": None})
    assert status == 200, run
    # Mid-task means inside the task's code: the instance is `running` a moment before that (the
    # worker still parses the DAG), and a try killed there would leave the sleep to the retry.
    marker = _marker(crasher)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text().count("start") == 1:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError("the task never started")
    worker = _pid(crasher, "worker-1")
    os.killpg(worker, signal.SIGKILL)  # the worker and its pool (the task runner has a group of its own)
    killed = time.monotonic()
    # Airdock's heartbeat timeout (60 s) plus detection and retry delay; generous for a busy machine.
    finished, instances = airflow.wait_run("killable", run["dag_run_id"], killed + 300 - time.monotonic())
    task = instances[0]
    assert (finished.get("state"), task["state"]) == ("success", "success"), (finished, task)
    assert task["try_number"] >= 2 and marker.read_text().count("start") >= 2  # the retry ran the code again
    assert _pid(crasher, "worker-1") != worker  # the supervisor started a new worker
    print(f"the killed task succeeded on try {task['try_number']} {time.monotonic() - killed:.0f}s after the kill")


def test_given_a_scheduler_killed_then_the_supervisor_restarts_it_and_dags_still_run(crasher: Crasher) -> None:
    _wait_running(crasher)
    before = _pid(crasher, "scheduler-1")
    os.killpg(before, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            after = _pid(crasher, "scheduler-1")
        except (OSError, ValueError):
            after = before
        if after != before:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError("the scheduler was not restarted")
    assert crasher.mwaa.get_environment(Name=NAME)["Environment"]["Status"] == "AVAILABLE"
    assert _rest(crasher).run_dag("example_hello", timeout=300)["state"] == "success"


def test_given_the_server_killed_at_random_points_of_a_create_and_a_delete_then_both_complete(crasher: Crasher) -> None:
    runs = [crasher.create("rel-crash", max_delay=30.0), crasher.delete("rel-crash", max_delay=4.0)]
    print("\n".join(r.line() for r in runs))


def test_secrets_are_0600_and_never_in_the_server_log_or_events(crasher: Crasher) -> None:
    """After everything above (creates, updates, crashes, restarts, a delete): no secret in the
    server's log, the status events, or Airdock's own logs of the environment."""
    import configparser
    import stat

    from airdock.local.keys import KeysFile

    managed = KeysFile(crasher.data_dir, "000000000000").create("secret-check")
    crasher.server.client(key=(managed.access_key_id, managed.secret_access_key))
    env_dir = crasher.data_dir / "envs" / NAME
    env_secrets = json.loads((env_dir / "secrets.json").read_text())
    credentials = configparser.ConfigParser()
    credentials.read(crasher.data_dir / "credentials")
    secrets = {f"env:{k}": v for k, v in env_secrets.items() if isinstance(v, str) and len(v) >= 12}
    secrets["root"] = credentials["airdock"]["aws_secret_access_key"]
    secrets["managed"] = managed.secret_access_key
    assert {"env:fernet_key", "env:jwt_secret"} <= set(secrets), sorted(secrets)
    for path in (crasher.data_dir / "credentials", crasher.data_dir / "keys.json", env_dir / "secrets.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    haystacks = [crasher.server.log_path, crasher.data_dir / "events.jsonl",
                 *sorted((env_dir / "logs").glob("*.log"))]
    for path in haystacks:
        if path is None or not Path(path).is_file():
            continue
        text = Path(path).read_text(errors="replace")
        leaked = [name for name, value in secrets.items() if value in text]
        assert not leaked, f"{path} contains {leaked}"
