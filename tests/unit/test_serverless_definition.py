"""Specification: MWAA Serverless's rules for a workflow definition (dag-factory YAML), checked
without running anything of the user's."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from airdock.core.serverless.definition import DefinitionError, check_definition
from airdock.core.serverless.schedule import ScheduleError, parse_schedule

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "serverless"
BASH = "airflow.providers.standard.operators.bash.BashOperator"


def definition(tasks: str = f"    t:\n      operator: {BASH}\n      bash_command: echo hi\n", head: str = "") -> bytes:
    return f"wf:\n  dag_id: wf\n{head}  tasks:\n{tasks}".encode()


def rejects(text: bytes, *words: str) -> str:
    with pytest.raises(DefinitionError) as caught:
        check_definition(text, now=NOW)
    for word in words:
        assert word in str(caught.value)
    return str(caught.value)


def test_the_aws_converters_output_is_accepted_with_its_ignored_attributes_as_warnings() -> None:
    checked = check_definition((FIXTURES / "converter_mini_dag.yaml").read_bytes(), now=NOW)
    assert [t.task_id for t in checked.tasks] == ["start", "ls"]
    assert checked.schedule_expression == "30 2 * * *"
    assert "DAG mini_dag ignored attributes: catchup, dag_display_name, owner_links, tags" in checked.warnings
    assert ("Task ls ignored attributes: aws_conn_id, outlets, priority_weight, retry_exponential_backoff, "
            "start_date, trigger_rule, wait_for_downstream") in checked.warnings
    task = checked.for_dag("x__v")["x__v"]["tasks"]["ls"]
    assert "aws_conn_id" not in task and "trigger_rule" not in task and task["retries"] == 1


def test_the_dag_dag_factory_builds_is_the_versions_own_and_never_scheduled_by_airflow() -> None:
    built = check_definition(definition(head="  schedule: '@daily'\n"), now=NOW).for_dag("wf-abc__123")
    assert list(built) == ["wf-abc__123"]
    assert built["wf-abc__123"]["dag_id"] == "wf-abc__123" and built["wf-abc__123"]["schedule"] is None


@pytest.mark.parametrize(("task", "words"), [
    ("      retries: 4\n", ("tasks.t.retries", "0 to 3")),
    ("      retries: '1'\n", ("tasks.t.retries",)),
    ("      retry_delay: 30\n", ("tasks.t.retry_delay", "datetime.timedelta")),
    ("      retry_delay: {__type__: datetime.timedelta, seconds: 301}\n", ("retry_delay", "300")),
    ("      execution_timeout: {__type__: datetime.timedelta, hours: 2}\n", ("execution_timeout", "3600")),
    ("      dependencies: [nope]\n", ("dependencies", "nope")),
    ("      expand: {x: [1]}\n", ("expand",)),
    ("      x: {__type__: os.system, __args__: [id]}\n", ("__type__", "os.system")),
])
def test_a_task_breaking_a_documented_bound_is_refused_naming_where(task: str, words: tuple[str, ...]) -> None:
    rejects(definition(f"    t:\n      operator: {BASH}\n      bash_command: echo\n{task}"), *words)


@pytest.mark.parametrize(("operator", "word"), [
    ("BashOperator", "short name"), ("airflow.providers.standard.operators.python.BranchPythonOperator", "not a supported"),
    ("airflow.providers.google.cloud.operators.gcs.GCSListObjectsOperator", "not a supported"),
])
def test_operators_must_be_fully_qualified_and_on_the_allow_list(operator: str, word: str) -> None:
    rejects(definition(f"    t:\n      operator: {operator}\n"), "tasks.t.operator", word)


def test_a_python_task_names_its_callable_as_module_dot_function() -> None:
    python = "airflow.providers.standard.operators.python.PythonOperator"
    rejects(definition(f"    t:\n      operator: {python}\n      python_callable: hello\n"), "python_callable")
    ok = check_definition(definition(f"    t:\n      operator: {python}\n      python_callable: mod.hello\n"), now=NOW)
    assert ok.python_callables == ["mod.hello"]


@pytest.mark.parametrize(("text", "words"), [
    (b"wf: [", ("not valid YAML",)),
    (b"- a\n- b\n", ("mapping",)),
    (b"a:\n  tasks: {t: {operator: airflow.operators.empty.EmptyOperator}}\nb:\n  tasks: {}\n", ("exactly one DAG",)),
    (b"wf:\n  dag_id: wf\n  tasks: {}\n", ("at least one task",)),
    (b"wf:\n  dag_id: ''\n  tasks: {t: {operator: airflow.operators.empty.EmptyOperator}}\n", ("dag_id",)),
    (b"wf: !!python/name:os.system\n", ("not valid YAML",)),
    (b"x" * (50 * 1024 + 1), ("51201 bytes",)),
])
def test_malformed_definitions_are_refused(text: bytes, words: tuple[str, ...]) -> None:
    rejects(text, *words)


def test_a_schedule_that_is_not_cron_is_refused_and_null_means_manual_only() -> None:
    rejects(definition(head="  schedule: every day\n"), "wf.schedule")
    assert check_definition(definition(head="  schedule: null\n"), now=NOW).schedule is None
    assert check_definition(definition(head="  schedule: None\n"), now=NOW).schedule is None


def test_an_end_date_before_the_start_date_or_past_every_fire_time_is_refused() -> None:
    rejects(definition(head="  schedule: '@daily'\n  start_date: '2027-01-02'\n  end_date: '2027-01-01'\n"),
            "end_date", "before start_date")
    rejects(definition(head="  schedule: '@daily'\n  end_date: '2026-01-01'\n"), "end_date", "never fires")
    # Without a schedule any start date is fine.
    check_definition(definition(head="  schedule: null\n  start_date: '2020-01-01'\n"), now=NOW)


@pytest.mark.parametrize("expression", ["30 2 * * *", "@hourly", "@annually", "rate(5 minutes)", "rate(1 day)",
                                        "cron(0 12 ? * MON-FRI *)"])
def test_schedule_forms_mwaa_serverless_accepts(expression: str) -> None:
    schedule = parse_schedule(expression)
    assert schedule is not None and schedule.next_after(NOW, NOW) is not None


@pytest.mark.parametrize("expression", ["@once", "rate(0 minutes)", "rate(1 minutes)", "cron(0 12 * * * *)",
                                        "61 * * * *"])
def test_schedule_forms_it_refuses(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_a_missed_schedule_is_made_up_once_with_its_newest_occurrence() -> None:
    schedule = parse_schedule("0 * * * *")
    assert schedule is not None
    last = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
    assert schedule.latest_due(last, NOW, last) == datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    assert schedule.latest_due(NOW, NOW, last) is None


def test_mwaa_serverless_defaults_apply_where_the_definition_is_silent() -> None:
    built = check_definition(definition(head="  default_args: {retries: 0}\n"), now=NOW).for_dag("d")["d"]
    assert built["default_args"]["retries"] == 0  # the definition's own value wins
    assert built["default_args"]["retry_delay"] == {"__type__": "datetime.timedelta", "seconds": 300}
    assert built["default_args"]["execution_timeout"] == {"__type__": "datetime.timedelta", "seconds": 3600}
    assert check_definition(definition(), now=NOW).for_dag("d")["d"]["default_args"]["retries"] == 1
