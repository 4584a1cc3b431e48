"""Specification: logs by LoggingConfiguration module — which component feeds which module, the
Airflow logging level each component gets, and the local router keeping only lines at or above a
module's LogLevel (airdock.core.logs, airdock.local.logs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from airdock.core.logs import at_least, component_module, log_group_name, module_for
from airdock.local.logs import LocalLogs, line_level


def test_components_map_to_mwaa_modules() -> None:
    assert component_module("scheduler-2") == "Scheduler"
    assert component_module("triggerer") == "Scheduler"
    assert component_module("dag-processor") == "DAGProcessing"
    assert component_module("api-server") == "WebServer"
    assert component_module("web-front") == "WebServer"
    assert component_module("worker-3") == "Worker"
    assert component_module("postgres") is None
    assert log_group_name("env1", "Task") == "airflow-env1-Task"
    assert module_for("task") == module_for("TaskLogs") == "Task"
    with pytest.raises(ValueError):
        module_for("Nope")


def test_levels_are_compared_like_python_logging() -> None:
    assert at_least("WARNING", "WARNING") and at_least("ERROR", "WARNING") and at_least("CRITICAL", "ERROR")
    assert not at_least("INFO", "WARNING") and not at_least("DEBUG", "INFO")
    assert at_least("warn", "WARNING")


@pytest.mark.parametrize("line, level", [
    ("[2026-03-04T10:00:00.000+0000] {scheduler_job_runner.py:12} WARNING - slow", "WARNING"),
    ("2026-03-04T10:00:00.000000Z [info     ] Starting the scheduler [airflow.cli]", "INFO"),
    ("[2026-03-04 10:00:00,000: ERROR/MainProcess] consumer: cannot connect", "ERROR"),
    ("INFO:     127.0.0.1:5000 - \"GET /api/v2/monitor/health HTTP/1.1\" 200 OK", "INFO"),
    ("Traceback (most recent call last):", None),
])
def test_the_level_of_a_text_line_is_read_from_the_line(line: str, level: str | None) -> None:
    assert line_level(line) == level



def _task_log(envs: Path, name: str) -> Path:
    path = (envs / name / "airflow_home" / "logs" / "dag_id=d" / "run_id=manual__1" / "task_id=t" / "attempt=1.log")
    path.parent.mkdir(parents=True)
    return path


def test_the_router_keeps_only_lines_at_or_above_each_modules_level(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    (envs / "e" / "logs").mkdir(parents=True)
    (envs / "e" / "logs" / "scheduler-1.log").write_text(
        "2026-03-04T10:00:00Z [debug    ] heartbeat\n"
        "2026-03-04T10:00:01Z [info     ] scheduling\n"
        "2026-03-04T10:00:02Z [error    ] boom\n"
        "Traceback (most recent call last):\n"
        "  File \"x.py\", line 1\n"
    )
    (envs / "e" / "logs" / "postgres.log").write_text("LOG:  database system is ready\n")
    task = _task_log(envs, "e")
    task.write_text("".join(json.dumps({"timestamp": f"2026-03-04T10:00:0{i}Z", "level": level, "event": f"{level} line",
                                         "logger": "airflow.task"}) + "\n"
                            for i, level in enumerate(["debug", "info", "warning", "error"])))
    logs = LocalLogs(envs)

    assert logs.route("e", {"Scheduler": "ERROR", "Task": "WARNING"}) == 5

    scheduler = logs.read("e", "Scheduler")
    assert [e.message.split("] ")[-1] if "]" in e.message else e.message for e in scheduler][0] == "boom"
    # the traceback lines take the level of the line before them
    assert [e.level for e in scheduler] == ["ERROR", "ERROR", "ERROR"]
    assert all(e.stream == "scheduler-1" for e in scheduler)
    task_lines = logs.read("e", "Task")
    assert [e.level for e in task_lines] == ["WARNING", "ERROR"]
    assert task_lines[0].stream == "dag_id=d/run_id=manual__1/task_id=t/attempt=1.log"
    assert "warning line" in task_lines[0].message
    assert not logs.module_file("e", "Worker").exists()  # not enabled: no file, as no log group


def test_routing_again_copies_only_new_whole_lines(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    (envs / "e" / "logs").mkdir(parents=True)
    source = envs / "e" / "logs" / "worker-1.log"
    source.write_text("[2026-03-04 10:00:00,000: WARNING/MainProcess] one\n[2026-03-04 10:00:01,000: WARNING/Main")
    logs = LocalLogs(envs)
    assert logs.route("e", {"Worker": "INFO"}) == 1
    assert logs.route("e", {"Worker": "INFO"}) == 0
    with open(source, "a") as handle:
        handle.write("Process] two\n")
    assert logs.route("e", {"Worker": "INFO"}) == 1
    assert [e.message[-3:] for e in logs.read("e", "Worker")] == ["one", "two"]
