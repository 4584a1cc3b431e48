"""Start a real `airdock serve` process for tests and give out real boto3 clients for it."""
from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    # API-level tests run without Airflow (environments stay CREATING); tests that need real
    # environments pass provision=True.
    provision: bool = False
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "LiveServer":
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = open(self.log_path, "ab")
        environ = {**os.environ, "AIRDOCK_DATA_DIR": str(self.data_dir), **self.env}
        environ["AIRDOCK_CONTROL_PLANE_ONLY"] = "0" if self.provision else "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airdock.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=REPO, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airdock serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.endpoint}/_airdock/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"airdock serve did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the server alone (its environments' processes survive, as after a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def credentials(self) -> tuple[str, str]:
        if "AIRDOCK_ACCESS_KEY_ID" in self.env:
            return self.env["AIRDOCK_ACCESS_KEY_ID"], self.env["AIRDOCK_SECRET_ACCESS_KEY"]
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        return parser["airdock"]["aws_access_key_id"], parser["airdock"]["aws_secret_access_key"]

    def client(self, service: str = "mwaa", *, key: tuple[str, str] | None = None, **config: Any) -> Any:
        key_id, secret = key or self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, **config),
        )

    def bucket(self, name: str) -> Path:
        path = self.data_dir / "buckets" / name
        path.mkdir(parents=True, exist_ok=True)
        return path
