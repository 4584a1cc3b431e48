"""The AWS timing is one consistent story (core/timing.py): every bound below follows from a real
Fargate start — pull the image, install requirements.txt (10+ minutes), wait for `db migrate` —
and from the Lambda timeouts in template.yaml."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airdock.aws.task_definitions import HEALTH_RETRIES, SETUP_ALLOWANCE_S, ecs_health_timing
from airdock.core.blueprint import HealthCheck
from airdock.core.settings import Settings
from airdock.core.timing import LifecycleTimings, WorkflowTimings
from support.template import load_template

REPO = Path(__file__).resolve().parents[2]
# What a first start on Fargate may take: image pull and requirements install (10+ minutes), then
# Airflow's migration wait and start.
FARGATE_SETUP_S = 20 * 60


def settings_of(variables: dict[str, str]) -> Settings:
    """The settings a function with these AIRDOCK_* variables reads (core/settings.py)."""
    fields = {k[len("AIRDOCK_"):].lower(): v for k, v in variables.items() if k.startswith("AIRDOCK_")}
    return Settings(**{k: v for k, v in fields.items() if v and k in Settings.model_fields and k not in ("region", "account_id")})


def _function(name: str) -> dict[str, Any]:
    return load_template()["Resources"][name]["Properties"]


def _variables(name: str) -> dict[str, str]:
    template = load_template()
    params = {k: str(v.get("Default")) for k, v in template["Parameters"].items()}
    resolved = {}
    for key, value in _function(name)["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
            value = params[value["Ref"]]
        resolved[key] = value if isinstance(value, str) else ""
    return resolved


def _machine(kind: str) -> dict[str, Any]:
    return json.loads((REPO / "statemachines" / f"{kind}_environment.asl.json").read_text())


def _timeout(name: str) -> int:
    return int(_function(name).get("Timeout", load_template()["Globals"]["Function"]["Timeout"]))


def test_every_workflow_step_may_run_as_long_as_the_provisioner_function_and_not_longer_than_needed() -> None:
    aws = WorkflowTimings.from_settings(settings_of(_variables("ApiFunction")))
    provisioner = _timeout("ProvisionerFunction")
    for step in (aws.step_s, aws.build_s, aws.update_s):
        assert provisioner < step <= provisioner + 60
    for kind in ("create", "update", "delete"):
        for name, state in _machine(kind)["States"].items():
            if state["Type"] == "Task":
                assert "TimeoutSeconds" not in state and state["TimeoutSecondsPath"].startswith("$.Timeouts."), name


def test_the_health_budget_outlasts_a_fargate_start_and_the_containers_setup_allowance() -> None:
    aws = WorkflowTimings.from_settings(settings_of(_variables("ApiFunction")))
    # Every component's container health check, as the task definitions render the blueprint's: the
    # Airflow components' and the web front's timings.
    for check in (HealthCheck(("job", "SchedulerJob")), HealthCheck(("port", "8081"), start_period_s=120, interval_s=30)):
        timing = ecs_health_timing(check.start_period_s, check.interval_s)
        assert timing["startPeriod"] <= 300 and timing["retries"] <= 10 and timing["interval"] <= 300  # ECS's limits
        tolerated = timing["startPeriod"] + timing["interval"] * timing["retries"]
        assert tolerated >= SETUP_ALLOWANCE_S >= FARGATE_SETUP_S  # ECS does not replace a container still installing
    assert HEALTH_RETRIES == 10
    # ... and the workflow waits longer than that, so a crash loop is reported, not a timeout
    assert aws.health_s >= SETUP_ALLOWANCE_S + 10 * aws.poll_s
    assert aws.drain_s >= 12 * 3600  # a GRACEFUL update lets busy workers finish (the autoscaler's longest drain)
    assert 10 <= aws.poll_s <= 60  # a DescribeServices every poll: not more often than needed


def test_each_state_machine_outlasts_its_longest_path() -> None:
    aws = WorkflowTimings.from_settings(settings_of(_variables("ApiFunction")))
    template = load_template()
    longest_health = int(template["Parameters"]["EnvironmentStartTimeoutSeconds"]["MaxValue"])
    # Each Task may retry 4 times with back-off (the ASL's Retry) and runs at most a step's timeout.
    step_budget = aws.step_s * 5 + 2 + 4 + 8 + 16
    create = sum(1 for s in _machine("create")["States"].values() if s["Type"] == "Task")
    assert _machine("create")["TimeoutSeconds"] >= longest_health + create * step_budget
    update = sum(1 for s in _machine("update")["States"].values() if s["Type"] == "Task")
    assert _machine("update")["TimeoutSeconds"] >= 2 * longest_health + aws.drain_s + update * step_budget
    delete = sum(1 for s in _machine("delete")["States"].values() if s["Type"] == "Task")
    assert _machine("delete")["TimeoutSeconds"] >= delete * step_budget
    # The same files run locally, where steps block for longer (building runtimes, draining workers).
    local = WorkflowTimings()
    assert _machine("create")["TimeoutSeconds"] >= local.build_s + local.health_s + 4 * local.step_s // 4
    assert _machine("update")["TimeoutSeconds"] >= local.update_s + local.health_s


def test_a_lifecycle_wait_hands_over_before_the_lambda_timeout_and_keeps_the_start_budget() -> None:
    lifecycle = LifecycleTimings.from_settings(settings_of(_variables("LifecycleFunction")))
    timeout = _timeout("LifecycleFunction")
    assert lifecycle.per_run_s is not None
    # One more health check (a few DescribeServices) and the hand-over must fit after the last wait.
    assert lifecycle.per_run_s + lifecycle.poll_s + 60 <= timeout
    assert lifecycle.resume_s == lifecycle.maintenance_s == WorkflowTimings.from_settings(settings_of(_variables("ApiFunction"))).health_s
    assert lifecycle.resume_s >= SETUP_ALLOWANCE_S
