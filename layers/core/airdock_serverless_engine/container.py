"""Entrypoint of the MWAA Serverless engine image on AWS (images/serverless-engine).

`engine`: sync the version folders from the artifacts bucket (every few seconds, in a thread),
migrate the database, then run the API server, scheduler and DAG processor, exiting when one
does (ECS restarts the task). Any other command is a task container of Airflow's ECS executor
(`python -m airflow.sdk.execution_time.execute_workload --json-string ...`): it fetches the one
version folder its workload names, then runs the command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PREFIX = "serverless/versions/"
HOME = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow"))
DAGS = HOME / "dags"
VERSIONS = HOME / "versions"
DAG_FILE = """# Airflow DAG of an MWAA Serverless workflow version (written by Airdock; do not edit).
from airdock_serverless_engine.loader import load_version

load_version({folder!r}, globals())
"""


def fetch_version(s3: Any, bucket: str, dag_id: str) -> Path:
    """Download one version folder (dag.yaml, env.json, meta.json, code/ unpacked)."""
    import zipfile

    folder = VERSIONS / dag_id
    tmp = folder.with_name(folder.name + ".tmp")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}{dag_id}/"):
        for item in page.get("Contents", []):
            relative = item["Key"][len(f"{PREFIX}{dag_id}/"):]
            if not relative or ".." in relative.split("/"):
                continue
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            if relative.startswith("code/") and relative.endswith(".zip"):
                with zipfile.ZipFile(target) as archive:  # checked when it was snapshotted
                    archive.extractall(target.parent)
                target.unlink()
    if (tmp / "env.json").is_file():
        os.chmod(tmp / "env.json", 0o600)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def sync_once(s3: Any, bucket: str) -> set[str]:
    """Make the DAGs folder hold exactly the versions in the bucket; returns their dag_ids."""
    wanted: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX, Delimiter="/"):
        wanted.update(p["Prefix"][len(PREFIX):].rstrip("/") for p in page.get("CommonPrefixes", []))
    DAGS.mkdir(parents=True, exist_ok=True)
    VERSIONS.mkdir(parents=True, exist_ok=True)
    for dag_id in sorted(wanted):
        if not (DAGS / f"{dag_id}.py").is_file():
            folder = fetch_version(s3, bucket, dag_id)
            (DAGS / f"{dag_id}.py").write_text(DAG_FILE.format(folder=str(folder)))
    for dag_file in DAGS.glob("*.py"):
        if dag_file.stem not in wanted:
            dag_file.unlink()
    return wanted


def dag_id_of(argv: list[str]) -> str | None:
    """The dag_id an ECS executor command runs (its workload JSON), if any."""
    if "--json-string" in argv:
        workload = json.loads(argv[argv.index("--json-string") + 1])
        return str(workload.get("ti", {}).get("dag_id")) or None
    return None


def main(argv: list[str]) -> int:
    import boto3

    bucket = os.environ["AIRDOCK_SERVERLESS_BUCKET"]
    s3 = boto3.client("s3")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    if argv[:1] == ["engine"]:
        def loop() -> None:
            while True:
                try:
                    sync_once(s3, bucket)
                except Exception as exc:  # noqa: BLE001 - keep syncing; the next pass retries
                    print(f"version sync failed: {exc}", file=sys.stderr, flush=True)
                time.sleep(3)

        sync_once(s3, bucket)
        threading.Thread(target=loop, daemon=True).start()
        subprocess.run(["airflow", "db", "migrate"], check=True)
        processes = [subprocess.Popen(["airflow", *args]) for args in
                     (["api-server", "--port", "8080", "--host", "0.0.0.0"], ["scheduler"], ["dag-processor"])]
        while all(p.poll() is None for p in processes):
            time.sleep(2)
        for process in processes:
            process.terminate()
        return 1
    dag_id = dag_id_of(argv)
    if dag_id:
        folder = fetch_version(s3, bucket, dag_id)
        DAGS.mkdir(parents=True, exist_ok=True)
        (DAGS / f"{dag_id}.py").write_text(DAG_FILE.format(folder=str(folder)))
    os.execvp(argv[0], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
