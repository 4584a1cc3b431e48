"""Rehearsal of MWAA Serverless on AWS without AWS: the template's route and permissions against
the handler and the adapters' calls, the handlers' imports with only the core layer and boto3, and
the adapters on moto (DynamoDB's contract suite is tests/contract/test_workflow_repository.py)."""
from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from support.sam import transformed_template
from support.template import load_template

REPO = Path(__file__).resolve().parents[2]
ADAPTERS = REPO / "layers" / "core" / "airdock" / "aws" / "serverless"


def serverless_functions() -> list[str]:
    return ["ServerlessApiFunction", "ServerlessReconcileFunction"]


def test_the_api_route_is_post_slash_to_the_serverless_function_which_serves_every_operation() -> None:
    resources = load_template()["Resources"]
    events = resources["ServerlessApiFunction"]["Properties"]["Events"]
    assert [e["Properties"] for e in events.values()] == [{"RestApiId": {"Ref": "MwaaApi"}, "Path": "/", "Method": "POST"}]
    others = [(name, e["Properties"]) for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"
              and name != "ServerlessApiFunction" for e in r["Properties"].get("Events", {}).values()
              if e["Type"] == "Api"]
    assert all(p["Path"] != "/" for _, p in others)
    from airdock.local.functions import load_function

    model = json.loads(json.dumps(boto3.client("mwaa-serverless", region_name="us-east-1").meta.service_model
                                  .operation_names))
    assert set(load_function("serverless_api").OPERATIONS) == set(model)


_IMPORT_CHECK = r"""
import builtins, importlib.util, os, sys
allowed = set(sys.argv[1].split(","))
real_import = builtins.__import__
def guarded(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split(".")[0]
    if level == 0 and top not in allowed and top not in sys.stdlib_module_names and not top.startswith("_"):
        raise ImportError(f"{top} is neither in the core layer nor boto3")
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = guarded
os.environ.update(AWS_DEFAULT_REGION="us-east-1")
for function in ("serverless_api", "serverless_reconcile"):
    spec = importlib.util.spec_from_file_location(f"fn_{function}", f"functions/{function}/app.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
import airdock.aws.serverless.factory  # what workflow_service() builds on Lambda
print("ok")
"""


def _distributions(requirement_names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(requirement_names)
    while todo:
        name = re.split(r"[\s\[<>=!;]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [r for r in requires if "extra ==" not in r]
    return seen


def test_the_handlers_import_with_only_the_core_layer_and_boto3() -> None:
    layer = [line.strip() for line in (REPO / "layers" / "core" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    distributions = _distributions(layer + ["boto3"])
    tops = {top for top, dists in importlib.metadata.packages_distributions().items()
            if any(d.lower().replace("_", "-") in distributions for d in dists)}
    allowed = tops | {"airdock", "airdock_runtime", "airdock_serverless_engine"}
    result = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, ",".join(sorted(allowed))], cwd=REPO,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                 "PYTHONPATH": str(REPO / "layers" / "core")})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# boto3 client method → the IAM action it needs (what the adapters call).
ACTIONS = {
    ("dynamodb", "get_item"): ["dynamodb:GetItem"], ("dynamodb", "query"): ["dynamodb:Query"],
    ("dynamodb", "transact_write_items"): ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
    ("dynamodb", "batch_write_item"): ["dynamodb:BatchWriteItem"], ("dynamodb", "delete_item"): ["dynamodb:DeleteItem"],
    ("s3", "head_object"): ["s3:GetObject"], ("s3", "get_object"): ["s3:GetObject"], ("s3", "put_object"): ["s3:PutObject"],
    ("s3", "copy_object"): ["s3:GetObject", "s3:PutObject"], ("s3", "get_paginator"): ["s3:ListBucket"],
    ("s3", "delete_objects"): ["s3:DeleteObject"], ("secretsmanager", "get_secret_value"): ["secretsmanager:GetSecretValue"],
}
CLIENTS = {"client": "dynamodb", "s3": "s3", "secrets_client": "secretsmanager"}


def adapter_calls() -> set[tuple[str, str]]:
    calls = set()
    for path in ADAPTERS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) and owner.value.id == "self" \
                        and owner.attr in CLIENTS:
                    calls.add((CLIENTS[owner.attr], node.func.attr))
    return calls


def test_the_serverless_functions_may_make_every_call_their_adapters_make() -> None:
    template = transformed_template()
    calls = adapter_calls() | {("events", "put_events")}
    assert ("dynamodb", "transact_write_items") in calls and ("s3", "copy_object") in calls
    needed = {a for call in calls for a in ACTIONS.get(call, [f"{call[0]}:{''.join(p.title() for p in call[1].split('_'))}"])}
    for function in serverless_functions():
        role = template["Resources"][f"{function}Role"]["Properties"]
        statements = [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"]) if s["Effect"] == "Allow"]
        allowed = [a for s in statements for a in _as_list(s["Action"])]
        missing = {a for a in needed if not any(re.fullmatch(p.replace("*", ".*"), a, re.I) for p in allowed)}
        assert not missing, f"{function} may not {sorted(missing)}"




def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_engine_runs_tasks_with_the_ecs_executor_in_the_task_definition_it_names() -> None:
    resources = load_template()["Resources"]
    engine = resources["ServerlessEngineTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in engine["Environment"]}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"
    assert env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"] == {"Ref": "ServerlessTaskDefinition"}
    task = resources["ServerlessTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert [c["Name"] for c in task] == [env["AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME"]]
    statements = resources["ServerlessEngineTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "iam:PassRole"} <= actions
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_each_task_runs_as_the_workflows_role_in_its_network() -> None:
    from airdock_serverless_engine.loader import executor_config

    assert executor_config({"role_arn": "arn:aws:iam::1:role/wf", "network": {"SubnetIds": ["subnet-1"]}}) == {
        "overrides": {"taskRoleArn": "arn:aws:iam::1:role/wf"},
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("users-flows", "airdock-artifacts"):
            s3.create_bucket(Bucket=bucket)
        yield s3


def test_sources_snapshot_code_and_the_engine_publishes_version_folders_for_its_sync(aws: Any, tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import zipfile

    from airdock.aws.serverless.engine import EcsEngine
    from airdock.aws.serverless.sources import S3Sources
    from airdock.core.serverless.ports import Deployment, SourceError
    from airdock_serverless_engine import container

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tools.py", "X = 1\n")
    aws.put_object(Bucket="users-flows", Key="code.zip", Body=buffer.getvalue())
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.py", "x")
    aws.put_object(Bucket="users-flows", Key="evil.zip", Body=evil.getvalue())
    aws.put_object(Bucket="users-flows", Key="flow.yaml", Body=b"flow: {}")
    sources = S3Sources("airdock-artifacts", client=aws)
    assert sources.read_definition("users-flows", "flow.yaml", None, 100) == b"flow: {}"
    with pytest.raises(SourceError, match="does not exist"):
        sources.read_definition("users-flows", "missing.yaml", None, 100)
    with pytest.raises(SourceError, match="outside its folder"):
        sources.snapshot_code("users-flows", "evil.zip", None, "wf-abcdefghij", "v1")
    ref = sources.snapshot_code("users-flows", "code.zip", None, "wf-abcdefghij", "v1")
    assert ref == "s3://airdock-artifacts/serverless/snapshots/wf-abcdefghij/v1/code.zip"
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secret = secrets.create_secret(Name="airdock/test/serverless-engine", SecretString='{"jwt_secret": "s"}')["ARN"]
    # Nothing listens on port 9: the engine's API is unreachable, as while it starts.
    engine = EcsEngine(artifacts_bucket="airdock-artifacts", api_url="http://127.0.0.1:9", secret_arn=secret, s3=aws,
                       secrets=secrets)
    engine.deploy(Deployment(dag_id="wf-abcdefghij__v1", workflow_id="wf-abcdefghij", workflow_arn="arn", version="v1",
                             dag_yaml="wf: {}", code_ref=ref, environment={"A": "1"}, role_arn="arn:aws:iam::1:role/r"))
    # The engine container's sync turns the folder into a DAG file with the code unpacked.
    monkeypatch.setattr(container, "DAGS", tmp_path / "dags")
    monkeypatch.setattr(container, "VERSIONS", tmp_path / "versions")
    assert container.sync_once(aws, "airdock-artifacts") == {"wf-abcdefghij__v1"}
    folder = tmp_path / "versions" / "wf-abcdefghij__v1"
    assert (folder / "code" / "tools.py").read_text() == "X = 1\n"
    assert json.loads((folder / "meta.json").read_text())["role_arn"] == "arn:aws:iam::1:role/r"
    assert "load_version" in (tmp_path / "dags" / "wf-abcdefghij__v1.py").read_text()
    engine.undeploy("wf-abcdefghij__v1", "wf-abcdefghij", "v1")
    assert container.sync_once(aws, "airdock-artifacts") == set()
    assert not (tmp_path / "dags" / "wf-abcdefghij__v1.py").exists()
