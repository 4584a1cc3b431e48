"""The workflow definition (a dag-factory YAML file) and MWAA Serverless's rules for it.

Checked here, without importing anything of the user's: the YAML itself, one DAG, operators on
the allow-list (fully-qualified names only), the documented bounds (retries 0-3, retry_delay
0-300 s, execution_timeout up to 3600 s, max_active_runs), the schedule and start/end dates,
task dependencies, and the `__type__` values dag-factory would instantiate (only datetime and
builtin containers: anything else would run code of the user's choosing while the DAG is parsed).
Documented-but-ignored attributes are removed and reported as warnings, never errors: the AWS
converter writes many of them. Whether dag-factory really builds the DAG is checked afterwards in
a throw-away process by the engine (`Engine.check_definition`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import yaml

from airdock.core.serverless.schedule import Schedule, ScheduleError, parse_schedule

MAX_DEFINITION_BYTES = 50 * 1024
MAX_RETRIES = 3
MAX_RETRY_DELAY_S = 300
MAX_EXECUTION_TIMEOUT_S = 3600
MAX_ACTIVE_RUNS = 16
DEFAULTS_KEY = "default"
# MWAA Serverless's defaults where the definition says nothing (supported-airflow-parameters).
SERVICE_DEFAULTS: dict[str, Any] = {
    "retries": 1,
    "retry_delay": {"__type__": "datetime.timedelta", "seconds": MAX_RETRY_DELAY_S},
    "execution_timeout": {"__type__": "datetime.timedelta", "seconds": MAX_EXECUTION_TIMEOUT_S},
}

ALLOWED_OPERATORS = frozenset({
    "airflow.providers.standard.operators.empty.EmptyOperator", "airflow.operators.empty.EmptyOperator",
    "airflow.providers.standard.operators.python.PythonOperator", "airflow.operators.python.PythonOperator",
    "airflow.providers.standard.operators.bash.BashOperator", "airflow.operators.bash.BashOperator",
})
# The Amazon provider's operators, sensors and transfers are supported (about 200 classes);
# that the class exists is checked when the engine loads the DAG.
ALLOWED_OPERATOR_MODULES = ("airflow.providers.amazon.aws.operators.", "airflow.providers.amazon.aws.sensors.",
                            "airflow.providers.amazon.aws.transfers.")
PYTHON_OPERATORS = frozenset(o for o in ALLOWED_OPERATORS if o.endswith(".PythonOperator"))
BASH_OPERATORS = frozenset(o for o in ALLOWED_OPERATORS if o.endswith(".BashOperator"))

# `__type__` values dag-factory may instantiate from the YAML.
ALLOWED_TYPES = frozenset({"datetime.timedelta", "datetime.datetime", "datetime.date", "builtins.list",
                           "builtins.dict", "builtins.set", "builtins.tuple", "builtins.str", "builtins.int",
                           "builtins.float", "builtins.bool"})

_CALLBACKS = ("on_success_callback", "on_failure_callback", "on_retry_callback", "on_execute_callback",
              "on_skipped_callback", "sla_miss_callback")
IGNORED_DAG_KEYS = frozenset({
    "catchup", "tags", "description", "dagrun_timeout", "template_searchpath", "template_undefined",
    "user_defined_macros", "user_defined_filters", "render_template_as_native_obj", "jinja_environment_kwargs",
    "dag_display_name", "owner_links", "doc_md", "access_control", "is_paused_upon_creation", "fail_stop",
    "fail_fast", "max_consecutive_failed_dag_runs", "default_view", "orientation", "max_active_tasks",
    "concurrency",
    *_CALLBACKS, *(f"{c}_name" for c in _CALLBACKS), *(f"{c}_file" for c in _CALLBACKS),
})
IGNORED_TASK_KEYS = frozenset({
    "trigger_rule", "pool", "pool_slots", "queue", "priority_weight", "weight_rule", "start_date", "end_date",
    "outlets", "inlets", "owner", "email", "email_on_failure", "email_on_retry", "retry_exponential_backoff",
    "max_retry_delay", "wait_for_downstream", "depends_on_past", "ignore_first_depends_on_past", "sla",
    "executor_config", "executor", "run_as_user", "task_display_name", "doc", "doc_md", "doc_json", "doc_yaml",
    "doc_rst", "resources", "max_active_tis_per_dag", "max_active_tis_per_dagrun", "deferrable",
    "aws_conn_id", "verify", "botocore_config", "region_name",
    "on_success_callback", "on_failure_callback", "on_retry_callback", "on_execute_callback",
    "on_skipped_callback",
    *(f"{c}_name" for c in _CALLBACKS), *(f"{c}_file" for c in _CALLBACKS),
})
# Keys the converter writes that equal what dag-factory derives anyway: dropped without a word.
_SILENT_TASK_KEYS = frozenset({"task_id"})
_BOUNDED_KEYS = ("retries", "retry_delay", "execution_timeout")


class DefinitionError(ValueError):
    """The definition breaks a rule; the message names where (`my_dag.tasks.load.retries`)."""


@dataclass
class TaskInfo:
    task_id: str
    operator: str


@dataclass
class CheckedDefinition:
    """A definition that passed the rules: what to schedule and the DAG dag-factory will build."""

    dag_key: str
    schedule: Schedule | None
    start_date: datetime | None
    end_date: datetime | None
    tasks: list[TaskInfo]
    warnings: list[str]
    dag: dict[str, Any]  # the DAG's dag-factory config, ignored attributes removed
    python_callables: list[str] = field(default_factory=list)

    @property
    def schedule_expression(self) -> str | None:
        return self.schedule.expression if self.schedule is not None else None

    def for_dag(self, dag_id: str, description: str | None = None) -> dict[str, Any]:
        """The dag-factory document of one workflow version: this DAG under Airflow's `dag_id`,
        never scheduled by Airflow itself (Airdock fires schedules)."""
        dag = copy.deepcopy(self.dag)
        dag["dag_id"] = dag_id
        defaults = dag.setdefault("default_args", {})
        for key, value in SERVICE_DEFAULTS.items():
            defaults.setdefault(key, copy.deepcopy(value))
        dag["schedule"] = None
        dag["catchup"] = False
        if description:
            dag["description"] = description
        return {dag_id: dag}


def _where(*parts: object) -> str:
    return ".".join(str(p) for p in parts)


def _check_types(value: Any, where: str) -> None:
    if isinstance(value, dict):
        kind = value.get("__type__")
        if kind is not None and kind not in ALLOWED_TYPES:
            raise DefinitionError(f"{where}: __type__ {kind!r} is not allowed (use one of "
                                  f"{', '.join(sorted(ALLOWED_TYPES))})")
        for key, item in value.items():
            _check_types(item, _where(where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_types(item, f"{where}[{index}]")


def _seconds(value: Any, where: str) -> float:
    """A timedelta written as dag-factory's `{__type__: datetime.timedelta, seconds: N}`."""
    if not isinstance(value, dict) or value.get("__type__") != "datetime.timedelta":
        raise DefinitionError(f"{where}: write a duration as {{__type__: datetime.timedelta, seconds: N}}, "
                              f"not {value!r}")
    parts = {k: v for k, v in value.items() if k != "__type__"}
    try:
        return timedelta(**parts).total_seconds()
    except (TypeError, ValueError, OverflowError) as exc:
        raise DefinitionError(f"{where}: not a valid datetime.timedelta ({exc})") from None


def _datetime(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, dict) and value.get("__type__") in ("datetime.datetime", "datetime.date"):
            parts = {k: v for k, v in value.items() if k not in ("__type__", "tzinfo")}
            if value["__type__"] == "datetime.date":
                result = datetime(**parts)
            else:
                result = datetime(**parts)
        elif isinstance(value, datetime):
            result = value
        elif isinstance(value, date):
            result = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            result = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise TypeError(f"unsupported value {value!r}")
    except (TypeError, ValueError, OverflowError) as exc:
        raise DefinitionError(f"{where}: not a date ({exc})") from None
    return result if result.tzinfo else result.replace(tzinfo=timezone.utc)


def _check_bounds(args: dict[str, Any], where: str) -> None:
    if "retries" in args:
        retries = args["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise DefinitionError(f"{_where(where, 'retries')}: must be an integer from 0 to {MAX_RETRIES}, "
                                  f"not {retries!r}")
    if "retry_delay" in args:
        seconds = _seconds(args["retry_delay"], _where(where, "retry_delay"))
        if not 0 <= seconds <= MAX_RETRY_DELAY_S:
            raise DefinitionError(f"{_where(where, 'retry_delay')}: must be 0 to {MAX_RETRY_DELAY_S} seconds, "
                                  f"not {seconds:g}")
    if "execution_timeout" in args and args["execution_timeout"] is not None:
        seconds = _seconds(args["execution_timeout"], _where(where, "execution_timeout"))
        if not 0 < seconds <= MAX_EXECUTION_TIMEOUT_S:
            raise DefinitionError(f"{_where(where, 'execution_timeout')}: must be more than 0 and at most "
                                  f"{MAX_EXECUTION_TIMEOUT_S} seconds, not {seconds:g}")


def _strip(args: dict[str, Any], ignored: frozenset[str], silent: frozenset[str] = frozenset()) -> list[str]:
    dropped = sorted(k for k in args if k in ignored)
    for key in [*dropped, *(k for k in args if k in silent)]:
        args.pop(key, None)
    return dropped


def _tasks(dag: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    tasks = dag.get("tasks")
    if isinstance(tasks, list):  # dag-factory also takes a list of {task_id: ..., ...}
        converted: dict[str, dict[str, Any]] = {}
        for index, entry in enumerate(tasks):
            if not isinstance(entry, dict) or not isinstance(entry.get("task_id"), str):
                raise DefinitionError(f"{where}.tasks[{index}]: each task in a list needs a task_id")
            converted[entry["task_id"]] = {k: v for k, v in entry.items() if k != "task_id"}
        tasks = converted
    if not isinstance(tasks, dict) or not tasks:
        raise DefinitionError(f"{where}.tasks: a workflow needs at least one task")
    return tasks


def _check_operator(task: dict[str, Any], where: str, callables: list[str]) -> str:
    if "decorator" in task:
        raise DefinitionError(f"{where}: TaskFlow (decorator) tasks are not supported; use an operator")
    if "expand" in task or "partial" in task:
        raise DefinitionError(f"{where}: dynamic task mapping (expand/partial) is not supported")
    operator = task.get("operator")
    if not isinstance(operator, str) or not operator:
        raise DefinitionError(f"{where}.operator: every task needs an operator")
    if "." not in operator:
        raise DefinitionError(f"{where}.operator: {operator!r} is a short name; write the fully-qualified class "
                              f"name (e.g. airflow.providers.standard.operators.bash.BashOperator)")
    if operator not in ALLOWED_OPERATORS and not operator.startswith(ALLOWED_OPERATOR_MODULES):
        raise DefinitionError(f"{where}.operator: {operator} is not a supported operator (EmptyOperator, "
                              f"PythonOperator, BashOperator and the Amazon provider's operators, sensors and "
                              f"transfers are)")
    if operator in PYTHON_OPERATORS:
        if "python_callable_name" in task or "python_callable_file" in task:
            raise DefinitionError(f"{where}: write python_callable: module.function (the module comes from Code)")
        name = task.get("python_callable")
        if not isinstance(name, str) or "." not in name.strip(".") or " " in name:
            raise DefinitionError(f"{where}.python_callable: must be 'module.function' (a function of your Code), "
                                  f"not {name!r}")
        callables.append(name)
    return operator


def check_definition(text: bytes, *, now: datetime) -> CheckedDefinition:
    """Parse and check a definition; DefinitionError names the first broken rule."""
    if len(text) > MAX_DEFINITION_BYTES:
        raise DefinitionError(f"the definition is {len(text)} bytes; at most {MAX_DEFINITION_BYTES} are allowed")
    try:
        document = yaml.safe_load(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise DefinitionError("the definition is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise DefinitionError(f"the definition is not valid YAML: {str(exc).splitlines()[0]}"
                              + (f" ({exc.problem_mark})" if getattr(exc, "problem_mark", None) else "")) from None
    if not isinstance(document, dict):
        raise DefinitionError("the definition must be a mapping of a DAG name to its configuration")
    defaults = document.get(DEFAULTS_KEY) or {}
    if not isinstance(defaults, dict):
        raise DefinitionError(f"{DEFAULTS_KEY}: must be a mapping")
    dags = [k for k in document if k != DEFAULTS_KEY]
    if len(dags) != 1:
        raise DefinitionError(f"the definition must hold exactly one DAG, not {len(dags)} ({', '.join(map(str, dags))})")
    key = dags[0]
    if not isinstance(document[key], dict):
        raise DefinitionError(f"{key}: must be a mapping (dag_id, schedule, tasks, ...)")
    _check_types(document, "definition")
    dag = copy.deepcopy(defaults)
    for name, value in document[key].items():
        if name == "default_args" and isinstance(value, dict) and isinstance(dag.get("default_args"), dict):
            dag["default_args"] = {**dag["default_args"], **value}
        else:
            dag[name] = copy.deepcopy(value)
    where = str(key)
    warnings: list[str] = []
    if "dag_id" in dag and (not isinstance(dag["dag_id"], str) or not dag["dag_id"].strip()):
        raise DefinitionError(f"{where}.dag_id: must be a non-empty string")
    if "schedule_interval" in dag:
        raise DefinitionError(f"{where}.schedule_interval: Airflow 3 takes `schedule`")
    try:
        schedule = parse_schedule(dag.get("schedule"))
    except ScheduleError as exc:
        raise DefinitionError(f"{where}.schedule: {exc}") from None
    default_args = dag.get("default_args") or {}
    if not isinstance(default_args, dict):
        raise DefinitionError(f"{where}.default_args: must be a mapping")
    start = _datetime(dag.get("start_date", default_args.get("start_date")), f"{where}.start_date")
    end = _datetime(dag.get("end_date", default_args.get("end_date")), f"{where}.end_date")
    if start is not None and end is not None and end < start:
        raise DefinitionError(f"{where}.end_date: {end.isoformat()} is before start_date {start.isoformat()}")
    if schedule is not None and end is not None:
        first = schedule.next_after(max(now, start or now), start or now)
        if first is None or first > end:
            raise DefinitionError(f"{where}.end_date: the schedule never fires again before {end.isoformat()}")
    if "max_active_runs" in dag:
        runs = dag["max_active_runs"]
        if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_ACTIVE_RUNS:
            raise DefinitionError(f"{where}.max_active_runs: must be 1 to {MAX_ACTIVE_RUNS}, not {runs!r}")
    if "params" in dag and dag["params"] is not None and not isinstance(dag["params"], dict):
        raise DefinitionError(f"{where}.params: must be a mapping")
    dropped = _strip(dag, IGNORED_DAG_KEYS)
    for name in ("start_date", "end_date", "schedule"):
        dag.pop(name, None)
    if dropped:
        warnings.append(f"DAG {key} ignored attributes: {', '.join(dropped)}")
    _check_bounds(default_args, f"{where}.default_args")
    dropped = _strip(default_args, IGNORED_TASK_KEYS | {"start_date", "end_date"}, _SILENT_TASK_KEYS)
    if dropped:
        warnings.append(f"default_args ignored attributes: {', '.join(dropped)}")
    if default_args:
        dag["default_args"] = default_args
    else:
        dag.pop("default_args", None)
    tasks = _tasks(dag, where)
    infos: list[TaskInfo] = []
    callables: list[str] = []
    for task_id, task in tasks.items():
        here = f"{where}.tasks.{task_id}"
        if not isinstance(task_id, str) or not task_id or not all(c.isalnum() or c in "-._" for c in task_id):
            raise DefinitionError(f"{where}.tasks: task id {task_id!r} may only hold letters, digits, '-', '.', '_'")
        if not isinstance(task, dict):
            raise DefinitionError(f"{here}: must be a mapping with an operator")
        operator = _check_operator(task, here, callables)
        _check_bounds(task, here)
        dependencies = task.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
            raise DefinitionError(f"{here}.dependencies: must be a list of task ids")
        for dependency in dependencies:
            if dependency not in tasks:
                raise DefinitionError(f"{here}.dependencies: no task named {dependency!r}")
        dropped = _strip(task, IGNORED_TASK_KEYS, _SILENT_TASK_KEYS)
        if dropped:
            warnings.append(f"Task {task_id} ignored attributes: {', '.join(dropped)}")
        infos.append(TaskInfo(task_id, operator))
    dag["tasks"] = tasks
    return CheckedDefinition(dag_key=str(key), schedule=schedule, start_date=start, end_date=end, tasks=infos,
                             warnings=warnings, dag=dag, python_callables=callables)
