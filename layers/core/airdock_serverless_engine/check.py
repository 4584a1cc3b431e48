"""Throw-away check of a workflow version: does dag-factory build its DAG?

`python -m airdock_serverless_engine.check FOLDER` (FOLDER as the loader expects it) prints one
JSON line: {"ok": true, "tasks": {task_id: "module.Class"}} or {"ok": false, "error": "..."}.
"""
from __future__ import annotations

import io
import json
import logging
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path


def main(folder: str) -> int:
    captured = io.StringIO()
    namespace: dict[str, object] = {}
    try:
        with redirect_stdout(captured), redirect_stderr(captured):
            logging.disable(logging.WARNING)
            from airdock_serverless_engine.loader import load_version

            load_version(Path(folder), namespace)
        from airflow.sdk import BaseOperator

        dags = [v for v in namespace.values() if hasattr(v, "task_dict")]
        if len(dags) != 1:
            detail = captured.getvalue().strip().splitlines()
            raise RuntimeError("dag-factory built no DAG" + (f": {detail[-1]}" if detail else ""))
        tasks = {}
        for task_id, task in dags[0].task_dict.items():  # type: ignore[attr-defined]
            if not isinstance(task, BaseOperator):
                raise TypeError(f"task {task_id}: {type(task).__name__} is not an operator")
            tasks[task_id] = f"{type(task).__module__}.{type(task).__name__}"
        print(json.dumps({"ok": True, "tasks": tasks}))
    except BaseException as exc:  # noqa: BLE001 - the report is the point
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000] + where}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
