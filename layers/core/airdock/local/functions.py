"""Load the Lambda handlers in `functions/*/app.py` so local mode runs the very same code."""
from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import airdock


def functions_dir() -> Path:
    # layers/core/airdock/__init__.py → the repository root is three levels above the package.
    return Path(airdock.__file__).resolve().parents[3] / "functions"


@lru_cache(maxsize=None)
def load_function(name: str) -> ModuleType:
    path = functions_dir() / name / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"Lambda function source not found: {path}")
    module_name = f"airdock_functions.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_function_instance(name: str, instance: str) -> ModuleType:
    """A separate copy of a function module (its own Powertools resolver and state).

    Powertools keeps the current event on the resolver object, as Lambda runs one request per
    process at a time; the local server runs requests on several threads, so each thread needs
    its own copy or requests would read each other's event (identity, body, route arguments)."""
    path = functions_dir() / name / "app.py"
    module_name = f"airdock_functions.{name}.{instance}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
