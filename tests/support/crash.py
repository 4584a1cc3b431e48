"""Kill `airdock serve` (SIGKILL) at seeded random moments of a create, update or delete, start it
again on the same data dir, and check that the environment reaches the final state the request
asked for. Shared by tests/e2e/test_reliability.py (a few runs) and bench/crash.py (≥ 20)."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.environments import wait_gone, wait_status
from support.live_server import LiveServer
from support.processes import processes_under

BUCKET = "airdock-crash"
ROLE = "arn:aws:iam::000000000000:role/airdock-crash"
FINAL = {"AVAILABLE", "CREATE_FAILED", "UPDATE_FAILED"}


@dataclass
class CrashRun:
    operation: str
    name: str
    kill_after_s: float
    outcome: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        return f"{self.operation:<6} {self.name:<14} killed after {self.kill_after_s:5.2f}s -> {self.outcome} ({self.seconds:.0f}s)"


def prepare_bucket(server: LiveServer, dag: str) -> None:
    bucket = server.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    (bucket / "dags" / "example_hello.py").write_text(dag)


def create_args(name: str, **extra: Any) -> dict[str, Any]:
    return dict(Name=name, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
                NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
                EnvironmentClass="mw1.micro", AirflowVersion="3.3.2", MaxWorkers=2, **extra)


def wait_final(mwaa: Any, name: str, timeout: float = 900) -> dict[str, Any]:
    return wait_status(mwaa, name, FINAL, timeout)


class Crasher:
    """One data dir, one port; the server is killed and started again between steps."""

    def __init__(self, data_dir: Path, rng: random.Random, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.rng = rng
        self.env = env or {}
        self.server = LiveServer(data_dir, provision=True, env=self.env).start(timeout=180)

    @property
    def mwaa(self) -> Any:
        return self.server.client()

    def kill_and_restart(self, delay: float) -> None:
        """SIGKILL the server after `delay` seconds (its environments' processes survive it, as
        after a crash) and start a new one on the same data dir and port."""
        time.sleep(delay)
        self.server.kill()
        self.server = LiveServer(self.data_dir, provision=True, port=self.server.port, env=self.env).start(timeout=180)

    def create(self, name: str, max_delay: float, **extra: Any) -> CrashRun:
        run = CrashRun("create", name, round(self.rng.uniform(0, max_delay), 2))
        started = time.monotonic()
        self.mwaa.create_environment(**create_args(name, **extra))
        self.kill_and_restart(run.kill_after_s)
        env = wait_final(self.mwaa, name)
        run.outcome, run.seconds = env["Status"], time.monotonic() - started
        assert env["Status"] == "AVAILABLE", (run.line(), env.get("LastUpdate"))
        assert (env["MaxWorkers"], env["EnvironmentClass"], env["AirflowVersion"]) == (
            extra.get("MaxWorkers", 2), "mw1.micro", "3.3.2"), env
        return run

    def update(self, name: str, max_delay: float) -> CrashRun:
        current = self.mwaa.get_environment(Name=name)["Environment"]
        target_max = 2 if current["MaxWorkers"] != 2 else 3
        run = CrashRun("update", name, round(self.rng.uniform(0, max_delay), 2))
        started = time.monotonic()
        self.mwaa.update_environment(Name=name, MaxWorkers=target_max)
        self.kill_and_restart(run.kill_after_s)
        env = wait_final(self.mwaa, name)
        run.outcome, run.seconds = env["Status"], time.monotonic() - started
        assert env["Status"] == "AVAILABLE" and env["LastUpdate"]["Status"] == "SUCCESS", (run.line(), env.get("LastUpdate"))
        assert env["MaxWorkers"] == target_max, env
        return run

    def delete(self, name: str, max_delay: float) -> CrashRun:
        run = CrashRun("delete", name, round(self.rng.uniform(0, max_delay), 2))
        started = time.monotonic()
        self.mwaa.delete_environment(Name=name)
        self.kill_and_restart(run.kill_after_s)
        wait_gone(self.mwaa, name, timeout=600)
        run.outcome, run.seconds = "DELETED", time.monotonic() - started
        env_dir = self.data_dir / "envs" / name
        assert not env_dir.exists(), run.line()
        assert not processes_under(env_dir), run.line()
        return run

    def stop(self) -> None:
        self.server.stop(timeout=120)
