"""The Airflow image ships every module its entrypoint loads at run time.

entrypoint.py and web_front.py are standard library only, except what the image installs
(boto3, airflow) and Airdock's own modules, which must be COPYed beside the entrypoint: a plain
`import x` of a module in images/airflow/, and files loaded by name (web_front.py loads
`airdock_tokens.py` with importlib, from layers/core/airdock/core/tokens.py)."""
from __future__ import annotations

import ast
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "images" / "airflow"
RUNTIME_DIR = "/opt/airdock"
# pip-installed in the image (psycopg2: Airflow's PostgreSQL driver), or the fallback import.
INSTALLED = {"boto3", "botocore", "airflow", "airdock", "psycopg2"}


def copies() -> dict[str, str]:
    """Destination -> source of every COPY of a single file in the Dockerfile."""
    found: dict[str, str] = {}
    for line in (IMAGE / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY ") or "<<" in line:
            continue
        words = [w for w in shlex.split(line)[1:] if not w.startswith("--")]
        *sources, dest = words
        for source in sources:
            found[dest.rstrip("/") + "/" + Path(source).name if dest.endswith("/") else dest] = source
    return found


def local_modules(path: Path) -> set[str]:
    """Modules `path` imports that are neither standard library nor installed packages, plus
    files it loads by name (a `with_name("x.py")` literal)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "with_name"
              and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).endswith(".py")):
            names.add(str(node.args[0].value)[:-3])
    return {n for n in names if n not in sys.stdlib_module_names and n not in INSTALLED and n != "__future__"}


def test_every_local_module_of_the_entrypoint_and_web_front_is_copied_beside_them() -> None:
    copied = copies()
    assert copied[f"{RUNTIME_DIR}/entrypoint.py"] == "images/airflow/entrypoint.py"
    pending = [IMAGE / "entrypoint.py"]
    checked: set[str] = set()
    while pending:
        module = pending.pop()
        for name in local_modules(module) - checked:
            checked.add(name)
            dest = f"{RUNTIME_DIR}/{name}.py"
            assert dest in copied, f"{module.name} imports {name}, which the Dockerfile does not copy to {dest}"
            source = ROOT / copied[dest]
            assert source.is_file(), f"{copied[dest]} (copied to {dest}) does not exist"
            pending.append(source)
    assert {"web_front", "airdock_tokens", "airdock_worker_drain"} <= checked
    assert copied[f"{RUNTIME_DIR}/airdock_worker_drain.py"] == "layers/core/airdock/aws/worker_drain.py"
    assert copied[f"{RUNTIME_DIR}/airdock_tokens.py"] == "layers/core/airdock/core/tokens.py"


def test_the_copied_token_module_is_standard_library_only() -> None:
    # It runs with the image's interpreter outside the airdock package.
    assert local_modules(ROOT / "layers/core/airdock/core/tokens.py") == set()
