"""The code that runs inside an environment is one installable package, `airdock_runtime`.

It is installed with `--no-deps` into every local runtime virtualenv and into the image, where
Airdock's own dependencies are absent: so it must import with the standard library alone, and
never reach into the control plane (`airdock`)."""
from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

import airdock_runtime
from airdock.local.runtime import RUNTIME_PROJECT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(airdock_runtime.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
# Imported lazily, where they are used: every Airflow runtime has them.
LAZY = {"boto3", "botocore", "psycopg2", "airflow"}


def imported_roots(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


def test_the_runtime_package_imports_only_the_standard_library_itself_and_what_every_runtime_has() -> None:
    for module in PACKAGE.glob("*.py"):
        foreign = {n for n in imported_roots(module) if n not in sys.stdlib_module_names} - {"airdock_runtime"} - LAZY
        assert not foreign, f"{module.name} imports {sorted(foreign)}"


def test_installed_with_no_dependencies_every_module_imports(tmp_path: Path) -> None:
    uv = str(Path(sys.executable).with_name("uv"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), "--no-deps", str(RUNTIME_PROJECT)],
                   check=True)
    code = "import importlib\n" + "".join(f"importlib.import_module('airdock_runtime.{m}')\n" for m in MODULES)
    out = subprocess.run([str(venv / "bin" / "python"), "-P", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    found = subprocess.run([str(venv / "bin" / "python"), "-P", "-c", "import airdock_runtime; print(airdock_runtime.__file__)"],
                           capture_output=True, text=True, check=True).stdout
    assert found.startswith(str(venv)), "the package must come from the venv, not from the checkout"


def test_the_image_installs_the_same_distribution_and_runs_its_entrypoint() -> None:
    dockerfile = (ROOT / "images" / "airflow" / "Dockerfile").read_text()
    copies = {shlex.split(line)[-2]: shlex.split(line)[-1] for line in dockerfile.splitlines()
              if line.startswith("COPY ") and "<<" not in line}
    assert copies["runtime/pyproject.toml"].endswith("/runtime/pyproject.toml")
    assert copies["layers/core/airdock_runtime/"].endswith("/layers/core/airdock_runtime/")
    assert "uv pip install --system --no-deps /opt/airdock/src/runtime" in dockerfile
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "python", "-P", "-m", "airdock_runtime.entrypoint"]' in dockerfile
