"""Pause and resume timings of one environment through the signed API extensions.

pause: POST /environments/{Name}/pause until every process of the environment is gone;
resume: POST /environments/{Name}/resume until GetEnvironment reports AVAILABLE again.
Target (issue 8): resume ≤ 30 s locally. Last line: `pause/resume: pause P s, resume R s`
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import requests  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from airdock.local.sample import EXAMPLE_DAG  # noqa: E402
from support.environments import BUCKET, create, wait_status  # noqa: E402
from support.live_server import LiveServer  # noqa: E402
from support.processes import processes_under  # noqa: E402


def signed_post(server: LiveServer, path: str) -> requests.Response:
    key, secret = server.credentials()
    request = AWSRequest(method="POST", url=server.endpoint + path, data=b"")
    SigV4Auth(Credentials(key, secret), "airflow", "us-east-1").add_auth(request)
    return requests.post(server.endpoint + path, headers=dict(request.headers.items()), data=b"", timeout=60)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="airdock-pause-") as tmp:
        server = LiveServer(Path(tmp) / "data", provision=True, env={"AIRDOCK_AUTOSCALER": "off"}).start()
        try:
            dags = server.bucket(BUCKET) / "dags"
            dags.mkdir(parents=True, exist_ok=True)
            (dags / "example_hello.py").write_text(EXAMPLE_DAG)
            mwaa = server.client()
            create(mwaa, "paused", "3.3.2")
            wait_status(mwaa, "paused", {"AVAILABLE"})
            env_dir = server.data_dir / "envs" / "paused"

            start = time.monotonic()
            assert signed_post(server, "/environments/paused/pause").status_code == 200
            while processes_under(env_dir):
                time.sleep(0.2)
            pause = time.monotonic() - start
            print(f"pause: every process gone after {pause:.1f} s", flush=True)

            start = time.monotonic()
            assert signed_post(server, "/environments/paused/resume").status_code == 200
            wait_status(mwaa, "paused", {"AVAILABLE", "UNAVAILABLE"})
            resume = time.monotonic() - start
            print(f"resume: AVAILABLE after {resume:.1f} s", flush=True)
        finally:
            server.stop()
    print(f"pause/resume: pause {pause:.1f} s, resume {resume:.1f} s")


if __name__ == "__main__":
    main()
