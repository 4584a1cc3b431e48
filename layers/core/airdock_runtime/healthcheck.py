"""Is this container's component healthy? `python -m airdock_runtime.healthcheck CHECK [ARG]`,
exit 0 when it is: the image's HEALTHCHECK and the ECS task definitions run it with the check the
environment's blueprint names for the component (airdock.core.blueprint).

    http URL          the web server's health endpoint answers and reports the metadata database
                      healthy (it answers 200 even when components are not: read the JSON)
    job JOB_TYPE      the component's job (SchedulerJob, TriggererJob, DagProcessorJob) has a live
                      heartbeat in the metadata database
    port PORT         something accepts connections on 127.0.0.1:PORT (the web front)
    celery-worker     a Celery worker process is alive, or the worker was drained on purpose
                      (`celery inspect ping` needs remote control, which SQS does not support)
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

from airdock_runtime.component import DRAINED_FILE


def web_healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=20) as reply:
        report = json.load(reply)
    return bool(report.get("metadatabase", {}).get("status") == "healthy")


def job_healthy(job_type: str) -> bool:
    return subprocess.call(["airflow", "jobs", "check", "--job-type", job_type, "--local"], timeout=25) == 0


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 5).close()
    except OSError:
        return False
    return True


def worker_healthy(environ: dict[str, str]) -> bool:
    # Drained on purpose (component.ComponentRun): Celery is stopped, the task waits for the
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


def healthy(args: list[str], environ: dict[str, str]) -> bool:
    check, *rest = args or [""]
    if check == "http" and rest:
        return web_healthy(rest[0])
    if check == "job" and rest:
        return job_healthy(rest[0])
    if check == "port" and rest:
        return port_open(int(rest[0]))
    if check == "celery-worker":
        return worker_healthy(environ)
    raise SystemExit(f"unknown health check {' '.join(args)!r}")


if __name__ == "__main__":
    try:
        ok = healthy(sys.argv[1:], dict(os.environ))
    except OSError:
        ok = False
    sys.exit(0 if ok else 1)
