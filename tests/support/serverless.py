"""Helpers for MWAA Serverless tests: definitions in a bucket folder, waits on runs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ROLE = "arn:aws:iam::000000000000:role/airdock-serverless"
FINAL = ("SUCCESS", "FAILED", "TIMEOUT", "STOPPED")
EMPTY = "airflow.providers.standard.operators.empty.EmptyOperator"
BASH = "airflow.providers.standard.operators.bash.BashOperator"
PYTHON = "airflow.providers.standard.operators.python.PythonOperator"


def put(bucket: Path, key: str, text: str) -> dict[str, str]:
    path = bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return {"Bucket": bucket.name, "ObjectKey": key}


def wait_run(client: Any, arn: str, run_id: str, states: tuple[str, ...] = FINAL, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_workflow_run(WorkflowArn=arn, RunId=run_id)
        if run["RunDetail"]["RunState"] in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is still {run['RunDetail']['RunState']} after {timeout:.0f} s")
        time.sleep(0.5)


def task_instances(client: Any, arn: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Every task instance of a run by task id, with GetTaskInstance's detail."""
    found = {}
    for summary in client.list_task_instances(WorkflowArn=arn, RunId=run_id)["TaskInstances"]:
        detail = client.get_task_instance(WorkflowArn=arn, RunId=run_id, TaskInstanceId=summary["TaskInstanceId"])
        found[detail["TaskId"]] = detail
    return found
