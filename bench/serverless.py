"""MWAA Serverless on the local engine: how fast runs start, how a fan-out finishes, what the
engine costs idle.

- start-to-first-task: on a warm engine, the time from StartWorkflowRun's answer to the first
  task's StartedAt (GetTaskInstance), median of RUNS runs (target ≤ 5 s; AWS starts a Fargate task
  per task: tens of seconds);
- 50-task fan-out: StartWorkflowRun to SUCCESS of a run of 50 parallel Bash tasks;
- idle engine: the proportional set size (PSS, shared pages split between the processes that map
  them) of every engine process, PostgreSQL included, after IDLE_S seconds without runs
  (target ≤ 600 MB).
Last line: `serverless: start-to-first-task p50 X s, 50-task fan-out Y s, idle engine rss Z MB`.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from airdock.core.settings import Settings
from airdock.local.serverless.engine_runtime import ensure_runtime  # noqa: E402
from airdock.local.processes import session_members, tagged_pids  # noqa: E402
from support.live_server import LiveServer  # noqa: E402
from support.serverless import BASH, ROLE, put, task_instances, wait_run  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "9"))
FAN_OUT = 50
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "60"))


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    ensure_runtime(Settings().runtime_cache)
    with tempfile.TemporaryDirectory(prefix="airdock-bench-serverless-") as tmp:
        server = LiveServer(Path(tmp) / "data", provision=True,
                            env={"AIRDOCK_AUTOSCALER": "off", "AIRDOCK_SERVERLESS_INTERVAL_S": "1",
                                 "AIRDOCK_SERVERLESS_PARALLELISM": "64"}).start()
        try:
            client = server.client("mwaa-serverless", read_timeout=300)
            bucket = server.bucket("bench")
            one = client.create_workflow(Name="one", RoleArn=ROLE, DefinitionS3Location=put(
                bucket, "one.yaml", f"one:\n  tasks:\n    t:\n      operator: {BASH}\n      bash_command: 'true'\n"))
            tasks = "".join(f"    t{i}:\n      operator: {BASH}\n      bash_command: 'sleep 1'\n" for i in range(FAN_OUT))
            fan = client.create_workflow(Name="fan", RoleArn=ROLE, DefinitionS3Location=put(
                bucket, "fan.yaml", f"fan:\n  tasks:\n{tasks}"))
            # Warm: the engine has started and parsed both DAGs once a run of each has finished.
            for arn in (one["WorkflowArn"], fan["WorkflowArn"]):
                wait_run(client, arn, client.start_workflow_run(WorkflowArn=arn)["RunId"], timeout=900)
            waits = []
            for _ in range(RUNS):
                asked = datetime.now(timezone.utc)
                run_id = client.start_workflow_run(WorkflowArn=one["WorkflowArn"])["RunId"]
                wait_run(client, one["WorkflowArn"], run_id, timeout=300)
                started = task_instances(client, one["WorkflowArn"], run_id)["t"]["StartedAt"]
                waits.append((started - asked).total_seconds())
                print(f"start-to-first-task {waits[-1]:.2f} s", flush=True)
            began = time.monotonic()
            run_id = client.start_workflow_run(WorkflowArn=fan["WorkflowArn"])["RunId"]
            state = wait_run(client, fan["WorkflowArn"], run_id, timeout=900)["RunDetail"]["RunState"]
            fan_out = time.monotonic() - began
            print(f"fan-out of {FAN_OUT}: {state} in {fan_out:.1f} s", flush=True)
            time.sleep(IDLE_S)
            engine = (server.data_dir / "serverless" / "engine").resolve()
            pids = set(tagged_pids(str(engine)))  # Airflow's processes rewrite their environ: add sessions
            for pidfile in (engine / "pids").glob("*.pid"):
                info = json.loads(pidfile.read_text())
                pids.update(session_members(int(info["pid"]), info.get("start_time")))
            idle = pss_mb(sorted(pids))
        finally:
            server.stop()
    print(f"serverless: start-to-first-task p50 {statistics.median(waits):.1f} s, {FAN_OUT}-task fan-out "
          f"{fan_out:.1f} s, idle engine rss {idle:.0f} MB")


if __name__ == "__main__":
    main()
