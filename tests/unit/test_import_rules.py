"""The import rules of the architecture (README, "Architecture"), read from the source with ast, so
a violation anywhere, even an import inside a function, fails here:

- the domain (`airdock.core`) imports no adapter and no composition root;
- AWS adapters (`airdock.aws`) and local adapters (`airdock.local`) never import each other;
- the Lambda handlers (`functions/*/app.py`) import only the domain and `airdock.wiring`;
- the code that runs inside environments (`airdock_runtime`) imports nothing of the control plane.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "airdock"
RUNTIME = ROOT / "layers" / "core" / "airdock_runtime"
FUNCTIONS = sorted((ROOT / "functions").glob("*/app.py"))


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    package = module_name(path).rsplit(".", 1)[0] if path.is_relative_to(PACKAGE.parent) else ""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:  # `from airdock import wiring` imports airdock.wiring
                yield node.lineno, module if alias.name == "*" else f"{module}.{alias.name}"


def violations(paths: list[Path], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in paths:
        for line, module in imports(path):
            hit = any(module == f or module.startswith(f + ".") for f in forbidden)
            if hit and not any(module == a or module.startswith(a + ".") for a in allowed):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


ADAPTERS = ("airdock.aws", "airdock.local", "airdock.wiring", "airdock.airflow_http", "airdock.cli",
            "airdock.client", "airdock.openapi")


def test_the_domain_imports_no_adapter_and_no_composition_root() -> None:
    assert violations(files(PACKAGE / "core"), ADAPTERS) == []


def test_aws_and_local_adapters_never_import_each_other() -> None:
    assert violations(files(PACKAGE / "aws"), ("airdock.local",)) == []
    assert violations(files(PACKAGE / "local"), ("airdock.aws", "airdock.wiring")) == []


@pytest.mark.parametrize("handler", FUNCTIONS, ids=lambda p: p.parent.name)
def test_handlers_import_only_the_domain_and_wiring(handler: Path) -> None:
    assert violations([handler], ("airdock",), ("airdock.core", "airdock.wiring")) == []


def test_the_runtime_package_imports_nothing_of_the_control_plane() -> None:
    assert violations(files(RUNTIME), ("airdock",)) == []


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    # A rule that cannot fail proves nothing: each kind of import is seen.
    core = PACKAGE / "core" / "service.py"
    sample = tmp_path / "sample.py"
    sample.write_text("import airdock.local.compute\nfrom airdock import wiring\n"
                      "def f():\n    from airdock.aws.compute import EcsCompute\n")
    found = [module for _line, module in imports(sample)]
    assert {"airdock.local.compute", "airdock.wiring", "airdock.aws.compute.EcsCompute"} <= set(found)
    assert any(m.startswith("airdock.core") for _l, m in imports(core))
