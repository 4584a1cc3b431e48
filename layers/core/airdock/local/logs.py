"""Logs port, locally: one file per LoggingConfiguration module, the stand-in for CloudWatch's
`airflow-{Name}-{Module}` log groups.

`LocalLogs.route(env)` plays the CloudWatch agent: it reads what each component wrote to
`<env_dir>/logs/<component>.log` and what each task attempt wrote to Airflow's task log files
(`airflow_home/logs/dag_id=…/attempt=N.log`, which the Airflow UI keeps reading: nothing moves
them), and appends every line at or above the module's LogLevel to
`<env_dir>/logs/modules/<Module>.log` as `<stream> <LEVEL> <message>`. Only enabled modules get a
file, as only enabled modules get a log group in MWAA. Offsets are kept in the same folder
under a file lock, so the server's loop and an `airdock logs` command never copy a line twice.

The level of a line is read from the line (JSON `level` of Airflow 3 task logs; `INFO`/`[info ]`
words in text logs); lines without one (tracebacks, banners) take the level of the line before.
"""
from __future__ import annotations

import fcntl
import json
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from airdock.core.logs import LogEvent, at_least, component_module, normalise_level

# `[2025-01-01 10:00:00,000] {file.py:12} WARNING - …`, `… [warning  ] …`, `… level=warning …`,
# Celery's `[… WARNING/MainProcess] …`, uvicorn's `WARNING:  …`.
_LEVEL = re.compile(r"(?:^|[\s\[{(|])(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)(?=[\s\]:/|,-]|$)", re.IGNORECASE)
_KV_LEVEL = re.compile(r"\blevel=(\w+)", re.IGNORECASE)
_OFFSETS = ".offsets.json"


def line_level(line: str) -> str | None:
    match = _LEVEL.search(line[:200])
    if match:
        return normalise_level(match.group(1))
    match = _KV_LEVEL.search(line)
    return normalise_level(match.group(1)) if match else None


def render_task_line(raw: str) -> tuple[str | None, str]:
    """An Airflow 3 task log line is JSON; Airflow 2's is text. → (level, readable text)."""
    text = raw.rstrip("\n")
    if text.startswith("{"):
        try:
            record: dict[str, Any] = json.loads(text)
        except ValueError:
            return line_level(text), text
        level = normalise_level(str(record.get("level", ""))) if record.get("level") else None
        # The level is not repeated: the module file puts it in front of every line.
        parts = [str(record.get("timestamp", "")), str(record.get("logger", "")), "-", str(record.get("event", ""))]
        extra = {k: v for k, v in record.items() if k not in ("timestamp", "level", "logger", "event")}
        if extra:
            parts.append(json.dumps(extra, default=str, sort_keys=True))
        return level, " ".join(p for p in parts if p)
    return line_level(text), text


class LocalLogs:
    def __init__(self, envs_dir: Path) -> None:
        self.envs_dir = envs_dir

    def module_dir(self, environment: str) -> Path:
        return self.envs_dir / environment / "logs" / "modules"

    def module_file(self, environment: str, module: str) -> Path:
        return self.module_dir(environment) / f"{module}.log"

    # ------------------------------------------------------------------ routing

    def route(self, environment: str, modules: dict[str, str]) -> int:
        """Copy new lines of `environment` into its module files; `modules`: enabled module →
        LogLevel. Returns the number of lines written."""
        env_dir = self.envs_dir / environment
        if not (env_dir / "logs").is_dir() or not modules:
            return 0
        out_dir = self.module_dir(environment)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = 0
        with self._locked_offsets(out_dir) as offsets:
            sinks: dict[str, Any] = {}
            try:
                for source, stream, module, is_task in self._sources(env_dir):
                    if module not in modules:
                        continue
                    written += self._copy(source, stream, modules[module], is_task, offsets,
                                          lambda: sinks.setdefault(module, open(out_dir / f"{module}.log", "a", encoding="utf-8")))
            finally:
                for sink in sinks.values():
                    sink.close()
        return written

    def _sources(self, env_dir: Path) -> Iterator[tuple[Path, str, str, bool]]:
        for path in sorted((env_dir / "logs").glob("*.log")):
            module = component_module(path.stem)
            if module is not None:
                yield path, path.stem, module, False
        task_root = env_dir / "airflow_home" / "logs"
        for path in sorted(task_root.glob("dag_id=*/run_id=*/task_id=*/**/*.log")):
            yield path, str(path.relative_to(task_root)), "Task", True

    def _copy(self, source: Path, stream: str, threshold: str, is_task: bool, offsets: dict[str, Any],
              sink: Any) -> int:
        key = str(source)
        state = offsets.get(key) or {"offset": 0, "level": None}
        try:
            size = source.stat().st_size
        except OSError:
            return 0
        if size < state["offset"]:  # truncated or replaced: start over
            state = {"offset": 0, "level": None}
        if size == state["offset"]:
            return 0
        written = 0
        with open(source, "rb") as handle:
            handle.seek(state["offset"])
            data = handle.read(size - state["offset"])
        # Only whole lines; a line still being written is taken next time.
        end = data.rfind(b"\n") + 1
        level = state["level"]
        lines = []
        for raw in data[:end].decode("utf-8", errors="replace").splitlines():
            if not raw.strip():
                continue
            found, text = render_task_line(raw) if is_task else (line_level(raw), raw)
            level = found or level or "INFO"
            if at_least(level, threshold):
                lines.append(f"{stream} {level} {text}\n")
        if lines:
            sink().writelines(lines)
            written = len(lines)
        offsets[key] = {"offset": state["offset"] + end, "level": level}
        return written

    @contextmanager
    def _locked_offsets(self, out_dir: Path) -> Iterator[dict[str, Any]]:
        path = out_dir / _OFFSETS
        with open(out_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                offsets: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
            except ValueError:
                offsets = {}
            try:
                yield offsets
            finally:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(offsets))
                tmp.replace(path)
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading (the Logs port)

    def read(self, environment: str, module: str, *, limit: int = 100) -> list[LogEvent]:
        path = self.module_file(environment, module)
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-limit:] if limit else []
        stamp = path.stat().st_mtime
        return [_event(line, stamp) for line in lines if line]

    def follow(self, environment: str, module: str, *, poll_s: float = 1.0,
               modules: dict[str, str] | None = None) -> Iterator[LogEvent]:
        """New lines from now on; with `modules`, routes before each read (no server needed)."""
        path = self.module_file(environment, module)
        offset = path.stat().st_size if path.exists() else 0
        while True:
            if modules is not None:
                self.route(environment, modules)
            if path.exists():
                size = path.stat().st_size
                if size < offset:
                    offset = 0
                if size > offset:
                    with open(path, "rb") as handle:
                        handle.seek(offset)
                        data = handle.read(size - offset)
                    end = data.rfind(b"\n") + 1
                    offset += end
                    for line in data[:end].decode("utf-8", errors="replace").splitlines():
                        if line:
                            yield _event(line, time.time())
            time.sleep(poll_s)


def _event(line: str, stamp: float) -> LogEvent:
    stream, _, rest = line.partition(" ")
    level, _, message = rest.partition(" ")
    return LogEvent(timestamp=stamp, stream=stream, level=level, message=message)


class LogRouterLoop:
    """Routes every environment's logs every `interval_s` (the server's CloudWatch agent)."""

    def __init__(self, logs: LocalLogs, repository: Any, interval_s: float = 1.0) -> None:
        self.logs = logs
        self.repository = repository
        self.interval_s = interval_s

    def route_all(self) -> int:
        from airdock.core.logs import enabled_modules
        from airdock.core.ports import all_records

        written = 0
        for record in all_records(self.repository):
            written += self.logs.route(record.name, enabled_modules(record.environment))
        return written
