"""The local Step Functions engine runs our ASL files in-process, durably (airdock.local.stepfunctions,
with its execution store in airdock.local.executions and its hold on moto in airdock.local.moto_lambda_hook)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airdock.local.executions import ExecutionAlreadyExists, SqliteExecutionStore
from airdock.local.stepfunctions import LocalStepFunctions, StateMachineDoesNotExist, local_function_arn, substitute

ASL_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "asl"
PROVISIONER = "airdock-provisioner"
WAIT = 10.0  # generous upper bound; every test finishes far sooner


class TransientError(Exception):
    """Raised by a step that succeeds when tried again."""


class Provisioner:
    """One Lambda-style callable dispatching on event["step"], like the real provisioner."""

    def __init__(self, **steps: Callable[[dict], Any]) -> None:
        self.steps = steps
        self.calls: Counter[str] = Counter()
        self.events: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict, context: Any) -> Any:
        with self._lock:
            self.calls[event["step"]] += 1
            self.events.append(event)
        return self.steps[event["step"]](event)


def definitions() -> dict[str, str]:
    subs = {"ProvisionerArn": local_function_arn(PROVISIONER)}
    return {
        p.name.removesuffix(".asl.json"): substitute(p.read_text(), subs)
        for p in ASL_DIR.glob("*.asl.json")
    }


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def make_engine(db_path: Path) -> Iterator[Callable[[Provisioner], LocalStepFunctions]]:
    engines: list[LocalStepFunctions] = []

    def _make(provisioner: Provisioner) -> LocalStepFunctions:
        engine = LocalStepFunctions(
            definitions(), {PROVISIONER: provisioner}, SqliteExecutionStore(db_path)
        )
        engines.append(engine)
        return engine

    yield _make
    for engine in engines:
        engine.close(join_timeout=0.1)


def test_given_parameters_and_result_paths_when_run_then_both_lambda_task_forms_shape_the_output(
    make_engine,
) -> None:
    prov = Provisioner(
        prepare=lambda e: {"environment": e["environment"], "execution": e["execution"]},
        finish=lambda e: {"seen": e["prepared"]},
    )
    engine = make_engine(prov)

    arn = engine.start_execution("params_resultpath", {"name": "env1"}, name="run-1")
    result = engine.wait(arn, WAIT)

    assert result["status"] == "SUCCEEDED"
    prepared = {"environment": "env1", "execution": "run-1"}
    assert json.loads(result["output"]) == {
        "name": "env1",
        "prepared": prepared,  # bare function-ARN resource: the state result is the return value
        "finished": {"result": {"seen": prepared}, "status": 200},  # lambda:invoke + ResultSelector
    }
    assert arn == "arn:aws:states:us-east-1:000000000000:execution:params_resultpath:run-1"


def test_given_a_step_raising_a_named_exception_when_retried_then_it_succeeds(make_engine) -> None:
    def flaky(event: dict) -> str:
        if prov.calls["flaky"] == 1:
            raise TransientError("not yet")
        return "done"

    prov = Provisioner(flaky=flaky)
    engine = make_engine(prov)

    result = engine.wait(engine.start_execution("retry", {}), WAIT)

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == "done"
    assert prov.calls["flaky"] == 2


def test_given_a_failing_step_when_caught_then_mark_failed_gets_error_and_cause(
    make_engine,
) -> None:
    def create(event: dict) -> None:
        raise ValueError("subnet-123 does not exist")

    prov = Provisioner(create=create, mark_failed=lambda e: {"marked": True})
    engine = make_engine(prov)

    result = engine.wait(engine.start_execution("catch", {"name": "env1"}), WAIT)

    assert result["status"] == "FAILED"
    assert (result["error"], result["cause"]) == (
        "CreateFailed",
        "see the environment's LastUpdate.Error",
    )
    [marked] = [e for e in prov.events if e["step"] == "mark_failed"]
    assert marked["environment"] == "env1"
    assert marked["error"] == "ValueError"  # the error name is the exception class name
    cause = json.loads(marked["cause"])  # the Cause is Lambda's error payload, as on AWS
    assert cause["errorType"] == "ValueError"
    assert cause["errorMessage"] == "subnet-123 does not exist"
    assert any("create" in line for line in cause["stackTrace"])


def test_given_an_uncaught_error_when_run_then_the_execution_fails_and_the_engine_keeps_working(
    make_engine,
) -> None:
    prov = Provisioner(
        flaky=lambda e: object()
    )  # not JSON-serialisable, like a Lambda MarshalError
    engine = make_engine(prov)

    failed = engine.wait(engine.start_execution("retry", {}), WAIT)
    prov.steps["flaky"] = lambda e: "ok"
    succeeded = engine.wait(engine.start_execution("retry", {}), WAIT)

    assert (failed["status"], failed["error"]) == ("FAILED", "Runtime.MarshalError")
    assert succeeded["status"] == "SUCCEEDED"


def test_given_an_environment_not_ready_when_polling_then_it_waits_and_checks_again(
    make_engine,
) -> None:
    prov = Provisioner(check_health=lambda e: {"ready": prov.calls["check_health"] >= 2})
    engine = make_engine(prov)

    started = time.monotonic()
    result = engine.wait(engine.start_execution("poll", {"name": "env1", "poll_seconds": 1}), WAIT)

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["status"] == "AVAILABLE"
    assert prov.calls["check_health"] == 2
    assert time.monotonic() - started >= 1.0  # the Wait state really waited


def test_given_map_and_parallel_when_run_then_every_item_and_branch_calls_the_function(
    make_engine,
) -> None:
    prov = Provisioner(double=lambda e: e["value"] * 2)
    engine = make_engine(prov)

    result = engine.wait(engine.start_execution("map_parallel", {"items": [1, 2, 3]}), WAIT)

    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["doubled"] == [2, 4, 6]
    assert output["parallel"] == ["a", 42]


def test_given_a_crash_mid_execution_when_a_new_engine_resumes_then_the_execution_completes(
    db_path: Path, make_engine
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_until_released(event: dict) -> str:
        entered.set()
        release.wait(WAIT)
        return "stale"

    old = Provisioner(slow=slow_until_released, after=lambda e: "stale")
    first = make_engine(old)
    arn = first.start_execution("blocking", {"name": "env1"}, name="create-env1")
    assert entered.wait(WAIT)

    first.close(join_timeout=0.1)  # the "crash": the step is still running, nothing is recorded
    assert SqliteExecutionStore(db_path).get(arn).status == "RUNNING"
    new = Provisioner(slow=lambda e: "fresh", after=lambda e: "fresh")
    second = make_engine(new)  # a new boot: new engine, new connection to the same SQLite file
    resumed = second.resume_unfinished()
    result = second.wait(arn, WAIT)

    assert resumed == [arn]
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"name": "env1", "slow": "fresh", "after": "fresh"}
    assert new.calls == Counter(slow=1, after=1)  # re-run from the first state
    release.set()  # the stale step now returns: its engine is closed, so nothing more happens
    time.sleep(0.2)
    assert old.calls["after"] == 0
    assert second.describe_execution(arn)["status"] == "SUCCEEDED"
    assert second.resume_unfinished() == []


def test_given_a_running_execution_when_started_again_then_it_is_idempotent_like_aws(
    make_engine,
) -> None:
    release = threading.Event()
    prov = Provisioner(slow=lambda e: release.wait(WAIT), after=lambda e: "ok")
    engine = make_engine(prov)

    arn = engine.start_execution("blocking", {"name": "env1"}, name="same")
    again = engine.start_execution("blocking", {"name": "env1"}, name="same")
    with pytest.raises(ExecutionAlreadyExists):
        engine.start_execution("blocking", {"name": "other"}, name="same")
    release.set()
    engine.wait(arn, WAIT)

    assert again == arn
    assert prov.calls["slow"] == 1
    with pytest.raises(ExecutionAlreadyExists):  # closed executions keep their name
        engine.start_execution("blocking", {"name": "env1"}, name="same")


def test_given_twenty_executions_when_started_at_once_then_they_run_concurrently(
    make_engine,
) -> None:
    count = 20
    barrier = threading.Barrier(count, timeout=5)  # breaks unless all 20 steps run at the same time
    prov = Provisioner(slow=lambda e: barrier.wait(), after=lambda e: e["environment"])
    engine = make_engine(prov)

    arns = [engine.start_execution("blocking", {"name": f"env{i}"}) for i in range(count)]
    results = [engine.wait(arn, WAIT) for arn in arns]

    assert [r["status"] for r in results] == ["SUCCEEDED"] * count
    assert [json.loads(r["output"])["after"] for r in results] == [f"env{i}" for i in range(count)]


def test_given_unknown_names_when_used_then_errors_are_explicit(make_engine) -> None:
    engine = make_engine(Provisioner())

    with pytest.raises(StateMachineDoesNotExist):
        engine.start_execution("nope", {})
    with pytest.raises(ValueError, match="invalid ASL"):
        LocalStepFunctions(
            {"bad": '{"StartAt": "X", "States": {}}'}, {}, SqliteExecutionStore(":memory:")
        )


def test_given_sam_placeholders_when_substituted_then_all_are_replaced_or_reported() -> None:
    text = '{"Resource": "${ProvisionerArn}", "Comment": "${Stage}-${Stage}"}'

    assert (
        substitute(text, {"ProvisionerArn": "arn:x", "Stage": "dev"})
        == '{"Resource": "arn:x", "Comment": "dev-dev"}'
    )
    with pytest.raises(ValueError, match="Stage"):
        substitute(text, {"ProvisionerArn": "arn:x"})
