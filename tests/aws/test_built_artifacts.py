"""What `sam build` produces runs where Lambda runs it.

Lambda starts a function with its runtime's Python, the function's folder (/var/task) and its
layers (/opt/python) on the path, and boto3 from the runtime: nothing from this project's venv.
So each built function is imported in a fresh interpreter of its runtime (`.venv-lambda`: the
runtime's Python with boto3 only), with its own build folder and its layers' build folders on
the path and the template's environment variables set, as Lambda would. Every module of the
packages the functions reach (`airdock.core`, `airdock.aws`, `airdock.wiring`, `airdock_runtime`)
is imported as well, since handlers import some of them only when a request needs them.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.sam import LAMBDA_PYTHON, sam_build
from support.template import CfnLoader, load_template

LAYER_SOURCE = Path(__file__).resolve().parents[2] / "layers" / "core"
# Packages a function may import (local mode's adapters and the CLI are not in the layer's scope);
# the runtime package once the layer has it.
REACHABLE_PACKAGES = ("airdock.core", "airdock.aws", "airdock.wiring") + (
    ("airdock_runtime",) if (LAYER_SOURCE / "airdock_runtime").is_dir() else ())

_IMPORT = r"""
import importlib, json, os, pkgutil, sys, traceback
paths, handler, packages = json.loads(sys.argv[1])
sys.path[:0] = paths
failures = {}
module_name, _, function = handler.rpartition(".")
try:
    module = importlib.import_module(module_name)
    if not callable(getattr(module, function, None)):
        failures[handler] = "not callable"
except BaseException:
    failures[handler] = traceback.format_exc(limit=-3)
for package in packages:
    try:
        root = importlib.import_module(package)
    except BaseException:
        failures[package] = traceback.format_exc(limit=-3)
        continue
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), package + "."):
        try:
            importlib.import_module(info.name)
        except BaseException:
            failures[info.name] = traceback.format_exc(limit=-3)
print(json.dumps({"failures": failures, "version": list(sys.version_info[:2]),
                  "boto3": sys.modules.get("boto3") is not None}))
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_build(tmp_path_factory.mktemp("sam") / "build")


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def _placeholder(value: Any, parameters: dict[str, Any]) -> str:
    """An environment variable's value as a deployed stack would give it: a parameter's default,
    or a stand-in for the ARNs, names and flags that exist only in an account."""
    if isinstance(value, dict) and "Default" in parameters.get(str(value.get("Ref")), {}):
        return str(parameters[value["Ref"]]["Default"])
    return value if isinstance(value, str) else ("30" if isinstance(value, int) else "placeholder")


def test_the_functions_run_on_one_python_runtime_that_the_build_venv_has() -> None:
    template = load_template()
    runtime = template["Globals"]["Function"]["Runtime"]
    layer = template["Resources"]["CoreLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Metadata"]["BuildMethod"] == runtime
    assert all("Runtime" not in f["Properties"] for f in _functions(template).values()), "one runtime for all"
    version = subprocess.run([str(LAMBDA_PYTHON), "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == runtime


@pytest.mark.parametrize("function", sorted(_functions(load_template())))
def test_each_built_function_imports_with_only_boto3_its_folder_and_its_layers(build: Path, function: str) -> None:
    built = yaml.load((build / "template.yaml").read_text(), Loader=CfnLoader)  # noqa: S506
    resources = built["Resources"]
    props = resources[function]["Properties"]
    globals_ = built.get("Globals", {}).get("Function", {})
    layers = props.get("Layers", globals_.get("Layers", []))
    layer_paths = []
    for layer in layers:
        assert isinstance(layer, dict) and "Ref" in layer, f"{function}: layer {layer} is not built by this template"
        content = build / resources[layer["Ref"]]["Properties"]["ContentUri"]
        layer_paths.append(str(content / "python"))  # /opt/python on Lambda
    environment = {**globals_.get("Environment", {}).get("Variables", {}),
                   **props.get("Environment", {}).get("Variables", {})}
    env = {key: _placeholder(value, load_template()["Parameters"]) for key, value in environment.items()}
    env.update({
        # What Lambda sets for every function (Powertools decides from them that it runs in Lambda).
        "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_" + load_template()["Globals"]["Function"]["Runtime"],
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "LAMBDA_TASK_ROOT": str(build / function),
        "PATH": "/usr/bin:/bin",
    })
    code = build / props["CodeUri"]
    paths = [str(code), *layer_paths]
    # -I: no PYTHONPATH, no user site, no current folder; the venv's site-packages is boto3 only.
    result = subprocess.run([str(LAMBDA_PYTHON), "-I", "-c", _IMPORT,
                             json.dumps([paths, props.get("Handler", globals_.get("Handler")), list(REACHABLE_PACKAGES)])],
                            capture_output=True, text=True, env=env, cwd=str(code), timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == {}, f"{function} cannot import, as Lambda would run it:\n" + "\n".join(
        f"--- {name}\n{trace}" for name, trace in report["failures"].items())
