"""Environment lifecycle timings and idle memory, through boto3 against a live `airdock serve`.

- cold create: a fresh runtime cache AND a fresh uv download cache, so Airflow is downloaded and
  installed (what a first `make run` on a new machine pays);
- warm create: a second environment of the same Airflow version (runtime reused);
- update: an AirflowConfigurationOptions change (every component restarts on the new config);
- delete: DeleteEnvironment until GetEnvironment answers 404;
- idle rss: proportional set size (PSS, so shared pages are not counted twice) of every process of
  one idle environment (PostgreSQL, api-server, scheduler, dag-processor, triggerer, 1 worker).

Targets (issue 4): warm create ≤ 30 s, update ≤ 30 s, idle RSS ≤ 1.5 GB. Last line:
`lifecycle: cold create A s, warm create B s, update C s, delete D s, idle rss E MB`
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from botocore.exceptions import ClientError  # noqa: E402

from airdock.local.sample import EXAMPLE_DAG  # noqa: E402
from support.live_server import LiveServer  # noqa: E402
from support.processes import processes_under, pss_mb  # noqa: E402

BUCKET = "bench"


def wait(mwaa: Any, name: str, statuses: set[str], timeout: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] in statuses:
            return env
        time.sleep(0.5)
    raise TimeoutError(name)


def create(mwaa: Any, name: str) -> float:
    start = time.monotonic()
    mwaa.create_environment(
        Name=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/bench", SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags", EnvironmentClass="mw1.micro", MaxWorkers=1,
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    )
    env = wait(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})
    if env["Status"] != "AVAILABLE":
        raise RuntimeError(f"{name}: {env.get('LastUpdate')}")
    return time.monotonic() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="airdock-bench-") as tmp:
        root = Path(tmp)
        server = LiveServer(root / "data", provision=True, env={
            "AIRDOCK_RUNTIME_CACHE": str(root / "runtimes"), "UV_CACHE_DIR": str(root / "uv-cache"),
        }).start()
        try:
            dags = server.bucket(BUCKET) / "dags"
            dags.mkdir(parents=True, exist_ok=True)
            (dags / "example_hello.py").write_text(EXAMPLE_DAG)
            mwaa = server.client()

            cold = create(mwaa, "cold")
            print(f"cold create (download + install Airflow): {cold:.1f} s", flush=True)
            warm = create(mwaa, "warm")
            print(f"warm create (runtime cached): {warm:.1f} s", flush=True)

            time.sleep(15)  # let start-up work (DAG parsing, first heartbeats) settle
            pids = processes_under(server.data_dir / "envs" / "warm")
            rss = pss_mb(pids)
            print(f"idle environment PSS: {rss:.0f} MB over {len(pids)} processes", flush=True)

            start = time.monotonic()
            mwaa.update_environment(Name="warm", AirflowConfigurationOptions={"core.default_task_retries": "1"})
            wait(mwaa, "warm", {"AVAILABLE", "UPDATE_FAILED"})
            update = time.monotonic() - start
            print(f"update (config change, all components restarted): {update:.1f} s", flush=True)

            start = time.monotonic()
            mwaa.delete_environment(Name="warm")
            while True:
                try:
                    mwaa.get_environment(Name="warm")
                except ClientError:
                    break
                time.sleep(0.2)
            delete = time.monotonic() - start
            print(f"delete: {delete:.1f} s", flush=True)
            mwaa.delete_environment(Name="cold")
            wait_gone_deadline = time.monotonic() + 120
            while time.monotonic() < wait_gone_deadline:
                try:
                    mwaa.get_environment(Name="cold")
                except ClientError:
                    break
                time.sleep(0.5)
        finally:
            server.stop()
    print(f"lifecycle: cold create {cold:.1f} s, warm create {warm:.1f} s, update {update:.1f} s, "
          f"delete {delete:.1f} s, idle rss {rss:.0f} MB")


if __name__ == "__main__":
    main()
