"""The container health check of every component (the image's HEALTHCHECK and the ECS task
definitions run `python -m airdock_runtime.healthcheck`), chosen by AIRDOCK_COMPONENT.

The web components answer their health endpoint; job components must have a live heartbeat in
the metadata database; a worker's Celery process must be alive (`celery inspect ping` needs
remote control, which the SQS broker does not support).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from airdock_runtime.entrypoint import DRAINED_FILE

JOBS = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob", "dag-processor": "DagProcessorJob"}


def web_healthy(component: str, environ: dict[str, str]) -> bool:
    path = "/api/v2/monitor/health" if component == "api-server" else "/health"
    base = environ.get("AIRFLOW__API__BASE_URL") or environ.get("AIRFLOW__WEBSERVER__BASE_URL") or ""
    prefix = base.split("://", 1)[-1].partition("/")[2]
    url = "http://127.0.0.1:8080" + ("/" + prefix.strip("/") if prefix.strip("/") else "") + path
    with urllib.request.urlopen(url, timeout=20) as reply:
        report = json.load(reply)
    # The endpoint answers 200 even when components are unhealthy: read the JSON.
    return bool(report.get("metadatabase", {}).get("status") == "healthy")


def worker_healthy(environ: dict[str, str]) -> bool:
    # Drained on purpose (entrypoint.ComponentRun): Celery is stopped, the task waits for the
    # autoscaler to release it; replacing it would undo the drain.
    if os.path.exists(os.path.join(environ.get("AIRFLOW_HOME", ""), DRAINED_FILE)):
        return True
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if b"celery" in argv and b"worker" in argv:
            return True
    return False


def main(environ: dict[str, str]) -> int:
    component = environ.get("AIRDOCK_COMPONENT", "")
    if component in ("api-server", "webserver"):
        return 0 if web_healthy(component, environ) else 1
    if component in JOBS:
        return subprocess.call(["airflow", "jobs", "check", "--job-type", JOBS[component], "--local"], timeout=25)
    if component in ("celery-worker", "worker"):
        return 0 if worker_healthy(environ) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
