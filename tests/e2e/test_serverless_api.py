"""Specification: the `mwaa-serverless` API through unmodified boto3 and the AWS CLI, against a
control-plane-only `airdock serve` (records and rules, no engine: runs stay STARTING)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from support.live_server import LiveServer
from support.serverless import EMPTY, ROLE, put

BUCKET = "serverless-api"
DEFINITION = f"flow:\n  dag_id: flow\n  schedule: '@daily'\n  catchup: false\n  tasks:\n    t:\n      operator: {EMPTY}\n"
QUOTAS = {"AIRDOCK_SERVERLESS_MAX_VERSIONS": "3", "AIRDOCK_SERVERLESS_MAX_RUNS_PER_WORKFLOW": "2",
          "AIRDOCK_SERVERLESS_MAX_CONCURRENT_RUNS": "8"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("serverless-api") / "data", env=QUOTAS).start()
    put(live.bucket(BUCKET), "flow.yaml", DEFINITION)
    put(live.bucket(BUCKET), "code/tools.py", "def f():\n    return 1\n")
    put(live.bucket(BUCKET), "code/notes.txt", "not code\n")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Any:
    return server.client("mwaa-serverless")


def location(key: str = "flow.yaml") -> dict[str, str]:
    return {"Bucket": BUCKET, "ObjectKey": key}


def create(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    return client.create_workflow(Name=name, DefinitionS3Location=location(), RoleArn=ROLE, **extra)


def error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def test_create_get_list_and_delete_a_workflow(client: Any) -> None:
    created = create(client, "roundtrip", Description="first", Tags={"team": "data"}, TriggerMode="manual_only")
    arn = created["WorkflowArn"]
    assert arn.startswith("arn:aws:airflow-serverless:us-east-1:000000000000:workflow/roundtrip-")
    assert len(arn.rsplit("-", 1)[1]) == 10 and len(created["WorkflowVersion"]) == 32
    assert created["WorkflowStatus"] == "READY" and created["IsLatestVersion"] is True
    assert created["Warnings"] == ["DAG flow ignored attributes: catchup"]
    got = client.get_workflow(WorkflowArn=arn)
    assert got["Name"] == "roundtrip" and got["Description"] == "first" and got["RoleArn"] == ROLE
    assert got["ScheduleConfiguration"] == {"CronExpression": "@daily"}
    assert got["DefinitionS3Location"] == location() and got["TriggerMode"] == "manual_only"
    assert got["LoggingConfiguration"] == {"LogGroupName": f"/aws/mwaa-serverless/{arn.rsplit('/', 1)[1]}/"}
    assert arn in [w["WorkflowArn"] for w in client.list_workflows()["Workflows"]]
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "data"}
    client.delete_workflow(WorkflowArn=arn)
    missing = error(client.get_workflow, WorkflowArn=arn)
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    assert missing["ResourceId"] == arn.rsplit("/", 1)[1] and missing["ResourceType"] == "Workflow"


def test_a_client_token_replays_the_create_and_a_taken_name_is_a_conflict_naming_the_workflow(client: Any) -> None:
    first = create(client, "tokened", ClientToken="token-1")
    again = create(client, "tokened", ClientToken="token-1")
    assert again["WorkflowArn"] == first["WorkflowArn"]
    conflict = error(create, client=client, name="tokened")
    assert conflict["Error"]["Code"] == "ConflictException"
    assert conflict["ResourceId"] == first["WorkflowArn"].rsplit("/", 1)[1]
    different = error(create, client=client, name="tokened", ClientToken="token-1", Description="other")
    assert different["Error"]["Code"] == "ConflictException"


def test_updates_make_immutable_versions_up_to_the_quota(client: Any) -> None:
    arn = create(client, "versions")["WorkflowArn"]
    first = client.get_workflow(WorkflowArn=arn)
    second = client.update_workflow(WorkflowArn=arn, DefinitionS3Location=location(), RoleArn=ROLE,
                                    Environment={"Variables": {"A": "1"}})
    third = client.update_workflow(WorkflowArn=arn, DefinitionS3Location=location(), RoleArn=ROLE)
    assert client.get_workflow(WorkflowArn=arn)["WorkflowVersion"] == third["WorkflowVersion"]
    # Environment is replaced, not merged; old versions keep theirs.
    assert "Environment" not in client.get_workflow(WorkflowArn=arn)
    assert client.get_workflow(WorkflowArn=arn, WorkflowVersion=second["WorkflowVersion"])["Environment"] == {
        "Variables": {"A": "1"}}
    assert client.get_workflow(WorkflowArn=arn, WorkflowVersion=first["WorkflowVersion"])["WorkflowVersion"] == \
        first["WorkflowVersion"]
    pages = client.get_paginator("list_workflow_versions").paginate(WorkflowArn=arn, PaginationConfig={"PageSize": 2})
    listed = [v["WorkflowVersion"] for page in pages for v in page["WorkflowVersions"]]
    assert listed == [third["WorkflowVersion"], second["WorkflowVersion"], first["WorkflowVersion"]]
    quota = error(client.update_workflow, WorkflowArn=arn, DefinitionS3Location=location(), RoleArn=ROLE)
    assert quota["Error"]["Code"] == "ServiceQuotaExceededException"
    assert quota["QuotaCode"] == "VersionsPerWorkflow" and quota["ServiceCode"] == "airflow-serverless"


def test_runs_are_recorded_with_their_client_token_and_limited_per_workflow(client: Any) -> None:
    arn = create(client, "runs")["WorkflowArn"]
    first = client.start_workflow_run(WorkflowArn=arn, ClientToken="run-1", OverrideParameters={"x": [1, 2]})
    assert first["Status"] == "STARTING"
    assert client.start_workflow_run(WorkflowArn=arn, ClientToken="run-1",
                                     OverrideParameters={"x": [1, 2]})["RunId"] == first["RunId"]
    run = client.get_workflow_run(WorkflowArn=arn, RunId=first["RunId"])
    assert run["RunDetail"]["RunState"] == "STARTING" and run["OverrideParameters"] == {"x": [1, 2]}
    assert len(run["RunDetail"]["TaskInstances"]) == 1
    client.start_workflow_run(WorkflowArn=arn)
    quota = error(client.start_workflow_run, WorkflowArn=arn)
    assert quota["Error"]["Code"] == "ServiceQuotaExceededException" and quota["QuotaCode"] == "ConcurrentRunsPerWorkflow"
    assert client.stop_workflow_run(WorkflowArn=arn, RunId=first["RunId"])["Status"] == "STOPPED"
    summaries = client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]
    assert {s["RunId"]: s["RunDetailSummary"]["Status"] for s in summaries}[first["RunId"]] == "STOPPED"
    missing = error(client.get_workflow_run, WorkflowArn=arn, RunId="nosuchrun")
    assert (missing["Error"]["Code"], missing["ResourceType"]) == ("ResourceNotFoundException", "WorkflowRun")
    version = error(client.start_workflow_run, WorkflowArn=arn, WorkflowVersion="0" * 32)
    assert (version["Error"]["Code"], version["ResourceType"]) == ("ResourceNotFoundException", "WorkflowVersion")


def test_list_workflows_pages_with_the_paginator(client: Any) -> None:
    for index in range(3):
        create(client, f"paged-{index}")
    pages = list(client.get_paginator("list_workflows").paginate(PaginationConfig={"PageSize": 2}))
    names = [w["Name"] for page in pages for w in page["Workflows"]]
    assert len(pages) >= 2 and names == sorted(names) and {"paged-0", "paged-1", "paged-2"} <= set(names)


def test_tags_are_added_and_removed(client: Any) -> None:
    arn = create(client, "tagged", Tags={"a": "1"})["WorkflowArn"]
    client.tag_resource(ResourceArn=arn, Tags={"b": "2"})
    client.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}


ARN = "arn:aws:airflow-serverless:us-east-1:000000000000:workflow/none-abcdefghij"
# One case per invalid input class of the facts sheet: (operation, parameters, the field named).
INVALID = [
    ("create_workflow", {"Name": "-starts-with-dash"}, "Name"),
    ("create_workflow", {"Name": "n" * 256}, "Name"),
    ("create_workflow", {"Description": "d" * 1025}, "Description"),
    ("create_workflow", {"RoleArn": "arn:aws:iam::000000000000:user/bob"}, "RoleArn"),
    ("create_workflow", {"Tags": {f"k{i}": "v" for i in range(51)}}, "Tags"),
    ("create_workflow", {"Tags": {"k" * 129: "v"}}, "Tags"),
    ("create_workflow", {"Tags": {"k": "v" * 257}}, "Tags.k"),
    ("create_workflow", {"Environment": {"Variables": {f"V{i}": "x" for i in range(51)}}}, "Environment.Variables"),
    ("create_workflow", {"Environment": {"Variables": {"1BAD": "x"}}}, "Environment.Variables"),
    ("create_workflow", {"Environment": {"Variables": {"LONG": "x" * 256}}}, "Environment.Variables.LONG"),
    ("create_workflow", {"Environment": {"Variables": {"AWS_REGION": "x"}}}, "Environment.Variables"),
    ("create_workflow", {"Environment": {"Variables": {"AIRFLOW__CORE__EXECUTOR": "x"}}}, "Environment.Variables"),
    ("create_workflow", {"NetworkConfiguration": {"SubnetIds": ["net-1"]}}, "NetworkConfiguration.SubnetIds[0]"),
    ("create_workflow", {"NetworkConfiguration": {"SecurityGroupIds": ["group"]}},
     "NetworkConfiguration.SecurityGroupIds[0]"),
    ("create_workflow", {"EncryptionConfiguration": {"Type": "CUSTOMER_MANAGED_KEY"}}, "EncryptionConfiguration.KmsKeyId"),
    ("create_workflow", {"EngineVersion": 7}, "EngineVersion"),
    ("create_workflow", {"DefinitionS3Location": location("missing.yaml")}, "DefinitionS3Location"),
    ("create_workflow", {"DefinitionS3Location": {"Bucket": "no-such-bucket", "ObjectKey": "x.yaml"}},
     "DefinitionS3Location"),
    ("create_workflow", {"Code": {"S3Location": {"Bucket": BUCKET, "ObjectKey": "code/notes.txt"}}}, "Code.S3Location"),
    ("create_workflow", {"LoggingConfiguration": {"LogGroupName": "bad group"}}, "LoggingConfiguration.LogGroupName"),
    ("create_airflow_ui_url", {"ExpiresInSeconds": 4}, "ExpiresInSeconds"),
    ("create_airflow_ui_url", {"SessionDurationInSeconds": 43201}, "SessionDurationInSeconds"),
    ("list_workflows", {"MaxResults": 101}, "MaxResults"),
    ("list_workflows", {"NextToken": "not-a-token"}, "NextToken"),
    ("get_workflow", {"WorkflowArn": "arn:aws:airflow:us-east-1:000000000000:environment/x"}, "WorkflowArn"),
    ("get_workflow", {"WorkflowArn": ARN, "WorkflowVersion": "V1"}, "WorkflowVersion"),
    ("untag_resource", {"ResourceArn": ARN, "TagKeys": []}, "TagKeys"),
]


@pytest.mark.parametrize(("operation", "parameters", "field"), INVALID, ids=[f"{o}:{f}" for o, _, f in INVALID])
def test_each_invalid_input_answers_a_validation_exception_naming_the_field(
        server: LiveServer, operation: str, parameters: dict[str, Any], field: str) -> None:
    client = server.client("mwaa-serverless", parameter_validation=False)
    if operation == "create_workflow":
        parameters = {"Name": "valid", "DefinitionS3Location": location(), "RoleArn": ROLE, **parameters}
    answer = error(getattr(client, operation), **parameters)
    assert answer["Error"]["Code"] == "ValidationException"
    assert answer["Reason"] == "fieldValidationFailed"
    assert field in [f["Name"] for f in answer["FieldList"]], answer
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_definition_breaking_the_rules_is_refused_naming_the_definition(server: LiveServer, client: Any) -> None:
    put(server.bucket(BUCKET), "bad.yaml", f"bad:\n  tasks:\n    t:\n      operator: {EMPTY}\n      retries: 9\n")
    answer = error(client.create_workflow, Name="bad", DefinitionS3Location=location("bad.yaml"), RoleArn=ROLE)
    assert answer["FieldList"][0]["Name"] == "DefinitionS3Location"
    assert "bad.tasks.t.retries" in answer["Error"]["Message"]


def signed(server: LiveServer, target: str | None, body: bytes) -> requests.Response:
    key, secret = server.credentials()
    credentials = botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)._request_signer._credentials
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=headers)
    SigV4Auth(credentials, "airflow-serverless", "us-east-1").add_auth(request)
    return requests.post(server.endpoint + "/", data=body, headers=dict(request.headers), timeout=30)


def test_an_unknown_operation_and_a_body_that_is_not_json_are_validation_errors(server: LiveServer) -> None:
    unknown = signed(server, "AmazonMWAAServerless.LaunchRockets", b"{}")
    assert unknown.status_code == 400 and unknown.json()["Reason"] == "unknownOperation"
    garbled = signed(server, "AmazonMWAAServerless.ListWorkflows", b"{not json")
    assert garbled.status_code == 400 and garbled.json()["Reason"] == "cannotParse"
    assert garbled.json()["__type"] == "ValidationException"


def test_a_request_signed_for_another_service_is_refused(server: LiveServer) -> None:
    mwaa_signed = server.client("mwaa")
    assert mwaa_signed.list_environments()["Environments"] == []  # MWAA's routes are untouched
    client = server.client("mwaa-serverless")
    client.meta.events.register("before-sign.mwaa-serverless.*", lambda request, **_: request.context.setdefault(
        "signing", {}).update(signing_name="airflow"))
    answer = error(client.list_workflows)
    assert answer["Error"]["Code"] == "InvalidSignatureException"


def airdock_keys(server: LiveServer, user: str, policy: dict[str, Any]) -> tuple[str, str]:
    path = server.data_dir.parent / f"{user}-policy.json"
    path.write_text(json.dumps(policy))
    out = subprocess.run([sys.executable, "-m", "airdock.cli", "keys", "create", user, "--json", "--policy", str(path),
                          "--data-dir", str(server.data_dir)], capture_output=True, text=True, check=True)
    made = json.loads(out.stdout)
    return made["AccessKeyId"], made["SecretAccessKey"]


def test_per_key_policies_allow_and_deny_airflow_serverless_actions_on_workflow_arns(server: LiveServer) -> None:
    prefix = "arn:aws:airflow-serverless:us-east-1:000000000000:workflow"
    key = airdock_keys(server, "dev", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "airflow-serverless:*", "Resource": f"{prefix}/dev-*"},
        {"Effect": "Allow", "Action": "airflow-serverless:ListWorkflows", "Resource": "*"},
        {"Effect": "Deny", "Action": "airflow-serverless:DeleteWorkflow", "Resource": "*"}]})
    dev = server.client("mwaa-serverless", key=key)
    arn = create(dev, "dev-flow")["WorkflowArn"]
    assert dev.get_workflow(WorkflowArn=arn)["Name"] == "dev-flow"
    denied = error(create, client=dev, name="prod-flow")
    assert denied["Error"]["Code"] == "AccessDeniedException"
    assert "airflow-serverless:CreateWorkflow" in denied["Error"]["Message"] and "user/dev" in denied["Error"]["Message"]
    explicit = error(dev.delete_workflow, WorkflowArn=arn)
    assert "explicit deny" in explicit["Error"]["Message"]
    assert dev.list_workflows()["Workflows"]


def test_the_aws_cli_drives_the_api_unchanged(server: LiveServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"),
               AWS_CONFIG_FILE=str(server.data_dir / "no-such-aws-config"), AWS_MAX_ATTEMPTS="1")

    def aws(*args: str) -> Any:
        out = subprocess.run([str(Path(sys.executable).parent / "aws"), "mwaa-serverless", *args, "--profile", "airdock",
                              "--region", "us-east-1", "--endpoint-url", server.endpoint, "--output", "json"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    created = aws("create-workflow", "--name", "cli-flow", "--role-arn", ROLE, "--definition-s3-location",
                  json.dumps(location()))
    assert created["WorkflowArn"].split("/")[-1].startswith("cli-flow-")
    assert aws("get-workflow", "--workflow-arn", created["WorkflowArn"])["Name"] == "cli-flow"
    run = aws("start-workflow-run", "--workflow-arn", created["WorkflowArn"])
    assert run["Status"] == "STARTING"
    assert "cli-flow" in [w["Name"] for w in aws("list-workflows")["Workflows"]]


def test_the_workflow_quota_of_the_account(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", env={"AIRDOCK_SERVERLESS_MAX_WORKFLOWS": "1"}).start()
    try:
        put(live.bucket(BUCKET), "flow.yaml", DEFINITION)
        client = live.client("mwaa-serverless")
        create(client, "only")
        quota = error(create, client=client, name="one-too-many")
        assert quota["Error"]["Code"] == "ServiceQuotaExceededException" and quota["QuotaCode"] == "WorkflowsPerAccount"
    finally:
        live.stop()
