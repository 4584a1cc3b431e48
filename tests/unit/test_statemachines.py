"""The workflow definitions are valid ASL, and every task names a real provisioner step."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airdock.core.provisioning import Provisioner
from airdock.local.workflows import STATE_MACHINES, load_definitions

STATELINT = Path(sys.executable).parent / "statelint"


@pytest.mark.parametrize("name", sorted(STATE_MACHINES.values()))
def test_given_a_state_machine_when_linted_after_substitution_then_statelint_finds_nothing(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.asl.json"
    path.write_text(load_definitions("us-east-1", "000000000000")[name])
    result = subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(STATE_MACHINES.values()))
def test_given_a_state_machine_then_each_task_calls_a_known_provisioner_step(name: str) -> None:
    definition = json.loads(load_definitions("us-east-1", "000000000000")[name])
    steps = Provisioner.__new__(Provisioner)
    Provisioner.__init__(steps, service=None, compute=None)  # type: ignore[arg-type]
    tasks = [s for s in definition["States"].values() if s["Type"] == "Task"]
    assert tasks
    for task in tasks:
        assert task["Resource"].endswith(":function:airdock-provisioner")
        assert task["Parameters"]["step"] in steps.steps


@pytest.mark.parametrize("name", sorted(STATE_MACHINES.values()))
def test_given_a_state_machine_then_every_failure_is_caught_into_a_final_status(name: str) -> None:
    definition = json.loads(load_definitions("us-east-1", "000000000000")[name])
    for state_name, state in definition["States"].items():
        if state["Type"] != "Task" or state["Parameters"]["step"].startswith("mark_") or state.get("End"):
            continue
        catchers = state.get("Catch", [])
        assert any("States.ALL" in c["ErrorEquals"] for c in catchers), f"{state_name} lets failures escape"
