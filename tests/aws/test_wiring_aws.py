"""The deployed wiring, end to end on moto: each function runs with the environment variables
template.yaml gives it (intrinsics resolved to the moto stack's resources) and builds its adapters
through `airdock.wiring` itself, as on Lambda; requests arrive as API Gateway proxy events with an
IAM identity; the API starts real Step Functions executions (moto) whose input the test hands to the
same ASL definitions, run with the provisioner function (what Step Functions does on AWS);
asynchronous lifecycle invocations are taken from the Lambda API and delivered as Lambda would.

CreateEnvironment → execution → provisioner steps → ECS services → AVAILABLE → autoscaler tick →
lifecycle tick → pause → resume → delete. Every AWS call on the way is also checked against the
template's IAM policies of the role that makes it (support/iam_rehearsal.py, autouse).
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

import airdock.core.settings
import airdock.wiring
from airdock.aws import naming
from airdock.local.functions import load_function
from airdock.local.stepfunctions import substitute
from airdock.local.workflows import build_engine, statemachines_dir
from aws.conftest import ACCOUNT, REGION, Stack
from support.dynamodb import create_table_from_template
from support.iam_rehearsal import Resolver, stack_names
from support.sam import transformed_template

BUCKET = "airdock-wiring-dags"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-execution"
DEPLOYER = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice"
INTRUDER = f"arn:aws:sts::{ACCOUNT}:assumed-role/intruder/mallory"
FUNCTIONS = {"api": "ApiFunction", "provisioner": "ProvisionerFunction", "autoscaler": "AutoscalerFunction",
             "lifecycle": "LifecycleFunction"}


class Deployment:
    def __init__(self, stack: Stack, tmp_path: Path) -> None:
        self.stack = stack
        self.tmp_path = tmp_path
        self.invocations: list[dict[str, Any]] = []  # asynchronous Lambda invocations (the lifecycle's)
        template = transformed_template()
        self.state_machines = self._state_machines()
        names = {**stack_names(stack), **self.state_machines,
                 "InternalLoadBalancer.DNSName": stack.environ["AIRDOCK_PRIVATE_ALB_DNS"]}
        resolver = Resolver(template, names, {
            "VpcId": stack.vpc_id, "PrivateSubnetIds": ",".join(stack.subnets),
            "AirflowImageRepository": stack.environ["AIRDOCK_AIRFLOW_IMAGE_REPOSITORY"],
            "AirflowRolePolicy": json.dumps({DEPLOYER: "Admin"})})
        resources = template["Resources"]
        self.variables: dict[str, dict[str, str]] = {}
        for name, logical_id in FUNCTIONS.items():
            variables = resources[logical_id]["Properties"]["Environment"]["Variables"]
            self.variables[name] = {k: str(v) for k, v in resolver.resolve(variables).items()}
        self.base = {k: v for k, v in os.environ.items()}

    def _state_machines(self) -> dict[str, str]:
        sfn = self.stack.client("stepfunctions")
        arns: dict[str, str] = {}
        for kind in ("Create", "Update", "Delete"):
            definition = substitute((statemachines_dir() / f"{kind.lower()}_environment.asl.json").read_text(),
                                    {"ProvisionerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:airdock-provisioner"})
            arns[f"{kind}EnvironmentStateMachine"] = sfn.create_state_machine(
                name=f"airdock-{kind.lower()}-environment", definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/airdock-states")["stateMachineArn"]
        return arns

    @contextmanager
    def running(self, function: str) -> Iterator[Any]:
        """Inside: the process environment is the function's, as Lambda sets it, and the wiring
        builds its adapters from it afresh."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.base)
        os.environ.update(self.variables[function])
        for value in vars(airdock.wiring).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()
        airdock.core.settings.settings.cache_clear()
        try:
            yield load_function(function)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def call_api(self, method: str, resource: str, path_parameters: dict[str, str], body: dict[str, Any] | None = None,
                 principal: str = DEPLOYER) -> tuple[int, dict[str, Any], dict[str, str]]:
        path = resource
        for key, value in path_parameters.items():
            path = path.replace("{" + key + "}", value)
        event = {
            "resource": resource, "path": path, "httpMethod": method,
            "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {"Content-Type": ["application/json"]},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": path_parameters, "stageVariables": None, "isBase64Encoded": False,
            "body": json.dumps(body) if body is not None else None,
            "requestContext": {
                "resourcePath": resource, "httpMethod": method, "path": f"/dev{path}", "stage": "dev",
                "requestId": str(uuid.uuid4()), "accountId": ACCOUNT, "apiId": "abc123",
                "identity": {"accountId": ACCOUNT, "caller": "AROAEXAMPLE:" + principal.rsplit("/", 1)[-1],
                             "accessKey": "ASIAEXAMPLE", "userArn": principal, "user": "AROAEXAMPLE", "sourceIp": "10.1.1.10"},
            },
        }
        with self.running("api") as api:
            response = api.handler(event, None)
        headers = {**(response.get("headers") or {}),
                   **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}}
        return response["statusCode"], json.loads(response["body"] or "{}"), headers

    def run_workflow(self, kind: str) -> dict[str, Any]:
        """What Step Functions does with the execution the API started: run its state machine
        (the same ASL file) with the provisioner function."""
        sfn = self.stack.client("stepfunctions")
        machine = self.state_machines[f"{kind}EnvironmentStateMachine"]
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert len(executions) >= 1, f"the API started no {kind} execution on {machine}"
        described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
        with self.running("provisioner") as provisioner:
            engine = build_engine(self.tmp_path / f"{kind}-{uuid.uuid4().hex[:6]}.db", REGION, ACCOUNT, provisioner.handler)
            try:
                arn = engine.start_execution(f"{kind.lower()}_environment", json.loads(described["input"]))
                return dict(engine.wait(arn, timeout=120))
            finally:
                engine.close()

    def deliver_invocations(self) -> None:
        """The lifecycle function's asynchronous invocations, run as Lambda runs them."""
        while self.invocations:
            event = self.invocations.pop(0)
            with self.running("lifecycle") as lifecycle:
                lifecycle.handler(event, None)


@pytest.fixture
def deployment(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "25")  # moto's ECS then reports the tasks running
    boto3.setup_default_session()  # the functions' clients come from a session made inside moto
    create_table_from_template(stack.client("dynamodb"), "EnvironmentsTable", stack.environ["AIRDOCK_TABLE_NAME"])
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="dags/hello.py", Body=b"# a DAG\n")
    iam = stack.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for role in ("airflow-execution", "deployer", "intruder"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    deployment = Deployment(stack, tmp_path)
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]

    def simulate(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        # IAM's policy simulator (not in moto): the deployer may pass the execution role to ECS
        # tasks, nobody else may pass anything.
        query = params["body"]  # IAM's query protocol, as botocore serialized it
        allowed = (query["PolicySourceArn"] == f"arn:aws:iam::{ACCOUNT}:role/deployer"
                   and query["ResourceArns.member.1"] == EXECUTION_ROLE
                   and query["ContextEntries.member.1.ContextKeyName"] == "iam:PassedToService"
                   and query["ContextEntries.member.1.ContextKeyValues.member.1"] == "ecs-tasks.amazonaws.com")
        return _Http(), {"EvaluationResults": [{"EvalActionName": "iam:PassRole", "EvalResourceName": EXECUTION_ROLE,
                                                "EvalDecision": "allowed" if allowed else "implicitDeny"}],
                         "IsTruncated": False, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def invoke(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        # Lambda's asynchronous invocation: accepted (202); the test delivers the event later.
        assert params["headers"].get("X-Amz-Invocation-Type") == "Event"
        deployment.invocations.append(json.loads(params["body"]))
        return _Http(202), {"StatusCode": 202, "ResponseMetadata": {"HTTPStatusCode": 202}}

    def task_protection(params: dict[str, Any], model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        # Not in moto 5.2.5 (tests/aws/conftest.py answers it for the stack's own client alike).
        request = json.loads(params["body"])
        if model.name == "UpdateTaskProtection":
            stack.protection.update({arn: request["protectionEnabled"] for arn in request["tasks"]})
        tasks = [{"taskArn": arn, "protectionEnabled": stack.protection.get(arn, False)} for arn in request["tasks"]]
        return _Http(), {"protectedTasks": tasks, "failures": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

    events.register("before-call.ecs.UpdateTaskProtection", task_protection)
    events.register("before-call.ecs.GetTaskProtection", task_protection)
    events.register("before-call.iam.SimulatePrincipalPolicy", simulate)
    events.register("before-call.lambda.Invoke", invoke)
    return deployment


class _Http:
    def __init__(self, status_code: int = 200) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def _create_body() -> dict[str, Any]:
    return {"ExecutionRoleArn": EXECUTION_ROLE, "SourceBucketArn": f"arn:aws:s3:::{BUCKET}", "DagS3Path": "dags",
            "NetworkConfiguration": {"SubnetIds": [], "SecurityGroupIds": []},
            "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}, "MaxWorkers": 3}


def test_a_deployed_stack_creates_runs_scales_pauses_resumes_and_deletes_an_environment(deployment: Deployment) -> None:
    stack = deployment.stack
    body = _create_body()
    body["NetworkConfiguration"] = {"SubnetIds": stack.subnets, "SecurityGroupIds": [stack.security_group]}
    key = stack.client("kms").create_key(Description="analytics")["KeyMetadata"]
    body["KmsKey"] = key["Arn"]  # its data at rest, read by every role on the way
    name = {"Name": "analytics"}

    # A caller who may not pass the execution role is refused before anything exists.
    status, answer, headers = deployment.call_api("PUT", "/environments/{Name}", name, body, principal=INTRUDER)
    assert status == 403, f"CreateEnvironment by a caller who may not pass the role answered {status}: {answer}"
    assert headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert "iam:PassRole" in answer["message"] and EXECUTION_ROLE in answer["message"]
    assert deployment.call_api("GET", "/environments/{Name}", name)[0] == 404

    status, answer, _ = deployment.call_api("PUT", "/environments/{Name}", name, body)
    assert status == 200, answer
    assert answer["Arn"] == f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/analytics"
    assert deployment.call_api("GET", "/environments/{Name}", name)[1]["Environment"]["Status"] == "CREATING"

    result = deployment.run_workflow("Create")
    assert result["status"] == "SUCCEEDED", result
    environment = deployment.call_api("GET", "/environments/{Name}", name)[1]["Environment"]
    assert environment["Status"] == "AVAILABLE", environment
    services = stack.client("ecs").describe_services(
        cluster=stack.environ["AIRDOCK_ECS_CLUSTER"],
        services=[naming.service_name("analytics", c) for c in ("scheduler", "webserver", "web-front", "worker")])["services"]
    assert {s["status"] for s in services} == {"ACTIVE"}

    status, answer, _ = deployment.call_api("POST", "/clitoken/{Name}", name)
    assert status == 200 and answer["CliToken"], answer  # signed with the web front's key (a KMS-encrypted secret)
    assert stack.client("secretsmanager").describe_secret(SecretId="airdock/analytics/web-front")["KmsKeyId"] == key["Arn"]

    with deployment.running("autoscaler") as autoscaler:
        decisions = autoscaler.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)["decisions"]
    assert [d["environment"] for d in decisions] == ["analytics"]

    with deployment.running("lifecycle") as lifecycle:
        tick = lifecycle.handler({"source": "aws.events", "detail-type": "Scheduled Event",
                                  "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}, None)
    assert tick == {"started": []}

    status, answer, _ = deployment.call_api("POST", "/environments/{Name}/pause", name)
    assert status == 200, answer
    assert [e["detail"]["Operation"] for e in deployment.invocations] == ["pause"]
    deployment.deliver_invocations()
    paused = deployment.call_api("GET", "/environments/{Name}", name)[1]["Environment"]
    assert paused["Status"] == "PENDING", paused
    worker = stack.client("ecs").describe_services(cluster=stack.environ["AIRDOCK_ECS_CLUSTER"],
                                                   services=[naming.service_name("analytics", "worker")])["services"][0]
    assert worker["desiredCount"] == 0

    status, answer, _ = deployment.call_api("POST", "/environments/{Name}/resume", name)
    assert status == 200, answer
    deployment.deliver_invocations()
    assert deployment.call_api("GET", "/environments/{Name}", name)[1]["Environment"]["Status"] == "AVAILABLE"

    status, answer, _ = deployment.call_api("DELETE", "/environments/{Name}", name)
    assert status == 200, answer
    result = deployment.run_workflow("Delete")
    assert result["status"] == "SUCCEEDED", result
    status, answer, headers = deployment.call_api("GET", "/environments/{Name}", name)
    assert (status, headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException")
