"""SAM CLI and samtranslator as the tests use them, offline.

SAM CLI lives in its own tool venv (`.venv-sam`, made by `make test-tools`) because its pins conflict
with the project's; a missing SAM CLI is a failure, not a skip. `sam build` without a container needs
the functions' runtime (Python 3.13) on PATH as `python`/`python3`: `make test-tools` puts small
scripts for it in `.venv-sam/lambda-bin`, and `SAM_ENV` puts that folder first on PATH.

`.venv-lambda` is a venv of that Python holding only boto3 (what the Lambda runtime provides besides
the standard library): built handlers are imported with it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAM_VENV = REPO / ".venv-sam"
SAM = SAM_VENV / "bin" / "sam"
SAM_PYTHON = SAM_VENV / "bin" / "python"
LAMBDA_BIN = SAM_VENV / "lambda-bin"
LAMBDA_PYTHON = REPO / ".venv-lambda" / "bin" / "python"
# Offline: no telemetry, no update checks; the runtime's Python first on PATH.
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "SAM_CLI_DISABLE_UPDATE_CHECK": "1", "AWS_DEFAULT_REGION": "us-east-1",
           "PATH": f"{LAMBDA_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(cmd: list[str], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)


def require_sam() -> None:
    assert SAM.exists(), f"SAM CLI missing at {SAM}: run `make test-tools` (it creates .venv-sam)"
    assert (LAMBDA_BIN / "python3").exists() and LAMBDA_PYTHON.exists(), \
        "the Lambda runtime's Python is missing: run `make test-tools` (it creates .venv-sam/lambda-bin and .venv-lambda)"


def sam_build(build_dir: Path) -> Path:
    """`sam build` of template.yaml into `build_dir`; returns it (with the built template.yaml)."""
    require_sam()
    result = run([str(SAM), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir)], env=SAM_ENV, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


_TRANSFORM = r"""
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies(ManagedPolicyLoader):
    # Offline: the template names no managed policies, so nothing needs looking up in IAM.
    def __init__(self):
        pass
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
# What `sam package` does first: local code/definition paths become S3 locations.
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri", "DefinitionUri"):
        if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = "s3://airdock-artifacts/" + props[key]
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


@lru_cache(maxsize=4)
def _transform(digest: str) -> str:
    cache = SAM_VENV / "transformed" / f"{digest}.json"
    if cache.is_file():
        return cache.read_text()
    require_sam()
    result = run([str(SAM_PYTHON), "-c", _TRANSFORM, str(TEMPLATE)], env=SAM_ENV)
    assert result.returncode == 0, result.stderr
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(result.stdout)
    partial.replace(cache)  # atomic: parallel test workers may write it at once
    return result.stdout


def transformed_template() -> dict[str, Any]:
    """template.yaml as CloudFormation sees it after the SAM transform (policy templates such as
    DynamoDBCrudPolicy expanded into statements, the API's OpenAPI body generated). Cached per
    template text, since several test files and every AWS test's permission check read it."""
    digest = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()[:24]
    return json.loads(_transform(digest))
