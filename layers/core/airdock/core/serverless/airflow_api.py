"""The engine's run operations in terms of Airflow 3's REST API (v2), over a transport the
adapter gives (`Transport`: method, path under /api/v2, JSON body → status, JSON answer). The same
engine answers locally (supervised processes) and on AWS (an ECS service); only how a request
reaches it differs."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote

from airdock.core.serverless.errors import DefinitionRejected, EngineUnavailable
from airdock.core.serverless.ports import EngineRun, EngineTask

Transport = Callable[[str, str, Any], tuple[int, Any]]
MAX_XCOM_VALUE = 255
MAX_XCOM_KEYS = 50


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


class AirflowEngineApi:
    def __init__(self, transport: Transport) -> None:
        self.call = transport

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        status, body = self.call("POST", f"/dags/{quote(dag_id)}/dagRuns",
                                 {"dag_run_id": run_id, "logical_date": None, "conf": conf})
        if status in (200, 409):  # 409: triggered before (a retry after a crash)
            return
        if status == 404:
            failure = self.import_error(dag_id)
            if failure is not None:
                raise DefinitionRejected(failure)
            raise EngineUnavailable(f"DAG {dag_id} is not parsed yet")
        raise EngineUnavailable(f"triggering {dag_id} answered {status}: {body}")

    def import_error(self, dag_id: str) -> str | None:
        """What the DAG processor said when the DAG file of `dag_id` did not load, if it failed."""
        status, body = self.call("GET", "/importErrors?limit=1000", None)
        if status != 200 or not isinstance(body, dict):
            return None
        for error in body.get("import_errors", []):
            if dag_id in str(error.get("filename", "")):
                lines = [line for line in str(error.get("stack_trace", "")).strip().splitlines() if line.strip()]
                return lines[-1][:255] if lines else "the definition did not load"
        return None

    def stop(self, dag_id: str, run_id: str) -> None:
        status, body = self.call("PATCH", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}", {"state": "failed"})
        if status not in (200, 404):
            raise EngineUnavailable(f"stopping {dag_id}/{run_id} answered {status}: {body}")

    def delete_dag(self, dag_id: str) -> bool:
        """True once Airflow has no DAG of that id (deleted now or before)."""
        status, _ = self.call("DELETE", f"/dags/{quote(dag_id)}", None)
        return status in (200, 204, 404)

    def observe(self, dag_id: str, run_id: str) -> EngineRun | None:
        status, run = self.call("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}", None)
        if status == 404:
            return None
        if status != 200 or not isinstance(run, dict):
            raise EngineUnavailable(f"reading run {run_id} answered {status}")
        status, body = self.call("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances?limit=1000", None)
        if status != 200 or not isinstance(body, dict):
            raise EngineUnavailable(f"reading the tasks of {run_id} answered {status}")
        tasks = [EngineTask(task_id=t["task_id"], state=t.get("state"), try_number=int(t.get("try_number") or 0),
                            operator=t.get("operator"), started_at=_time(t.get("start_date")),
                            ended_at=_time(t.get("end_date")), duration=t.get("duration"))
                 for t in body.get("task_instances", []) if t.get("map_index", -1) == -1]
        return EngineRun(state=str(run.get("state")), started_at=_time(run.get("start_date")),
                         ended_at=_time(run.get("end_date")), tasks=tasks)

    def task_xcom(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
        """A task's XComs, values as text cut to the model's 255 characters."""
        base = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/xcomEntries"
        status, body = self.call("GET", base, None)
        if status != 200 or not isinstance(body, dict):
            return {}
        values: dict[str, str] = {}
        for entry in body.get("xcom_entries", [])[:MAX_XCOM_KEYS]:
            key = str(entry.get("key"))
            status, item = self.call("GET", f"{base}/{quote(key, safe='')}?stringify=true", None)
            if status == 200 and isinstance(item, dict):
                value = item.get("value")
                text = value if isinstance(value, str) else json.dumps(value)
                values[key[:255]] = text[:MAX_XCOM_VALUE]
        return values

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        """An attempt's log through the API (`content` is Airflow's structured log)."""
        status, body = self.call("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/"
                                        f"{quote(task_id)}/logs/{try_number}?full_content=true", None)
        if status != 200 or not isinstance(body, dict):
            return []
        return [log_event(record) for record in body.get("content") or [] if isinstance(record, dict)]


def log_event(record: dict[str, Any]) -> dict[str, Any]:
    """One record of Airflow 3's structured task log as a log event; its exceptions' types and
    values joined to the message, where GetTaskInstance's error is looked for (`error_of`)."""
    message = str(record.get("event", ""))
    for error in record.get("error_detail") or []:
        if isinstance(error, dict):
            message += f"\n{error.get('exc_type')}: {error.get('exc_value')}"
    return {"timestamp": record.get("timestamp"), "level": record.get("level", "info"), "message": message}


class RunsThroughApi:
    """An engine's runs, driven through its Airflow's REST API (both engines: the API is where
    Airflow takes triggers and reports states). `rest` is the engine's API client."""

    @property
    def rest(self) -> AirflowEngineApi:
        raise NotImplementedError

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        self.rest.trigger(dag_id, run_id, conf)

    def stop(self, dag_id: str, run_id: str) -> None:
        self.rest.stop(dag_id, run_id)

    def observe(self, dag_id: str, run_id: str) -> EngineRun | None:
        return self.rest.observe(dag_id, run_id)

    def task_xcom(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
        return self.rest.task_xcom(dag_id, run_id, task_id)


def error_of(events: list[dict[str, Any]]) -> str | None:
    """The last exception of an attempt's log ("ExcType: value"), cut to 255 characters."""
    for event in reversed(events):
        lines = str(event.get("message", "")).splitlines()
        if len(lines) > 1 and ": " in lines[-1]:
            return lines[-1][:255]
    return None
