"""template.yaml is deployable: cfn-lint and `sam validate --lint` are clean, `sam build` succeeds,
and no IAM policy (SAM policy templates expanded by samtranslator) allows a wildcard action on a
wildcard resource.

SAM CLI and the runtime's Python come from `make test-tools` (support/sam.py); a missing SAM CLI is a
failure, not a skip.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from support.sam import SAM, SAM_ENV, TEMPLATE, require_sam, run, sam_build, transformed_template

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def test_cfn_lint_is_clean() -> None:
    result = run([str(CFN_LINT), str(TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean() -> None:
    require_sam()
    result = run([str(SAM), "validate", "--lint", "--template-file", str(TEMPLATE)], env=SAM_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_bundles_the_functions_and_the_core_layer(tmp_path: Path) -> None:
    build = sam_build(tmp_path / "build")
    layer = build / "CoreLayer" / "python"
    assert (layer / "airdock" / "aws" / "compute.py").is_file()
    assert (layer / "pydantic").is_dir() and (layer / "aws_lambda_powertools").is_dir()
    assert (build / "ProvisionerFunction" / "app.py").is_file()
    assert (build / "ApiFunction" / "app.py").is_file()


# ---------------------------------------------------------------------------- IAM


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    """template.yaml as CloudFormation sees it after the SAM transform (support/sam.py)."""
    return transformed_template()


# AWS managed policies SAM attaches, with their documented content (checked like the others;
# any other managed policy fails the test, since it cannot be read offline).
KNOWN_MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": "*"}],
    },
    # SAM adds it to a function with Tracing: Active (the Tracing parameter).
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries"], "Resource": "*"}],
    },
    # API Gateway's account-wide logging role (ApiGatewayLoggingRole=Create).
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
            "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"], "Resource": "*"}],
    },
    # SAM adds it to a function with VpcConfig (the API function): its network interfaces.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], "Resource": "*"}],
    },
}


def _policies(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found.append((f"{logical_id}/{policy['PolicyName']}", policy["PolicyDocument"]))
            for arn in props.get("ManagedPolicyArns", []):
                if isinstance(arn, dict) and "Fn::Sub" in arn:  # arn:${AWS::Partition}:... of an AWS managed policy
                    arn = str(arn["Fn::Sub"]).replace("${AWS::Partition}", "aws")
                assert arn in KNOWN_MANAGED_POLICIES, f"{logical_id} uses {arn}, which cannot be checked offline"
                found.append((f"{logical_id}/{arn}", KNOWN_MANAGED_POLICIES[arn]))
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append((logical_id, props["PolicyDocument"]))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_wildcard_action(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def test_every_function_and_state_machine_has_a_role_with_inline_policies(transformed: dict[str, Any]) -> None:
    roles = {k for k, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    for expected in ("ApiFunctionRole", "ProvisionerFunctionRole", "CreateEnvironmentStateMachineRole",
                     "UpdateEnvironmentStateMachineRole", "DeleteEnvironmentStateMachineRole", "TaskExecutionRole"):
        assert expected in roles


def test_no_policy_allows_a_wildcard_action_on_a_wildcard_resource(transformed: dict[str, Any]) -> None:
    policies = _policies(transformed)
    assert len(policies) >= 6
    offenders: list[str] = []
    for name, document in policies:
        for statement in _as_list(document["Statement"]):
            if statement.get("Effect") != "Allow":
                continue
            actions = _as_list(statement.get("Action", []))
            resources = _as_list(statement.get("Resource", []))
            if any(_is_wildcard_action(a) for a in actions) and any(r == "*" for r in resources):
                offenders.append(f"{name}: {actions} on {resources}")
            assert "NotAction" not in statement and "NotResource" not in statement, name
    assert not offenders, offenders


def test_state_machines_may_only_invoke_the_provisioner(transformed: dict[str, Any]) -> None:
    for kind in ("Create", "Update", "Delete"):
        role = transformed["Resources"][f"{kind}EnvironmentStateMachineRole"]["Properties"]
        statements = [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"])]
        assert {a for s in statements for a in _as_list(s["Action"])} == {"lambda:InvokeFunction"}
        for statement in statements:
            for resource in _as_list(statement["Resource"]):
                assert "ProvisionerFunction" in json.dumps(resource), resource


def test_state_machines_use_the_asl_files_with_the_provisioner_substituted(transformed: dict[str, Any]) -> None:
    from support.template import load_template

    raw = load_template()["Resources"]
    for kind, file in (("Create", "create"), ("Update", "update"), ("Delete", "delete")):
        props = raw[f"{kind}EnvironmentStateMachine"]["Properties"]
        assert props["DefinitionUri"] == f"statemachines/{file}_environment.asl.json"
        assert props["DefinitionSubstitutions"] == {"ProvisionerFunctionArn": {"Fn::GetAtt": ["ProvisionerFunction", "Arn"]}}


def test_functions_get_the_account_region_and_workflow_arns(transformed: dict[str, Any]) -> None:
    from support.template import load_template

    template = load_template()
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    assert common["AIRDOCK_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}
    assert common["AIRDOCK_REGION"] == {"Ref": "AWS::Region"}
    api = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert {"AIRDOCK_CREATE_SM_ARN", "AIRDOCK_UPDATE_SM_ARN", "AIRDOCK_DELETE_SM_ARN"} <= set(api)


def test_every_variable_the_template_gives_a_function_is_one_of_its_settings() -> None:
    from airdock.core.settings import Settings
    from support.template import load_template

    template = load_template()
    known = {f"AIRDOCK_{name.upper()}" for name in Settings.model_fields}
    given = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            given |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    assert {name for name in given if name.startswith("AIRDOCK_")} - known == set()


def test_every_api_route_requires_iam_auth(transformed: dict[str, Any]) -> None:
    api = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    paths = api["Properties"]["Body"]["paths"]
    assert len(paths) >= 7
    for path, methods in paths.items():
        for method, operation in methods.items():
            assert operation.get("security") == [{"AWS_IAM": []}], f"{method.upper()} {path} is not IAM-authorized"


def test_log_groups_have_retention(transformed: dict[str, Any]) -> None:
    groups = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) >= 2
    assert all("RetentionInDays" in g["Properties"] for g in groups)


def test_the_dynamodb_table_is_on_demand_with_point_in_time_recovery(transformed: dict[str, Any]) -> None:
    table = transformed["Resources"]["EnvironmentsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_api_function_runs_in_the_private_subnets_and_may_reach_the_load_balancers(transformed: dict[str, Any]) -> None:
    """InvokeRestApi reaches PRIVATE_ONLY environments only through the internal load balancer,
    which is reachable from the VPC only."""
    resources = transformed["Resources"]
    vpc = resources["ApiFunction"]["Properties"]["VpcConfig"]
    assert vpc["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    assert vpc["SecurityGroupIds"] == [{"Ref": "ApiFunctionSecurityGroup"}]
    group = resources["ApiFunctionSecurityGroup"]
    assert group["Type"] == "AWS::EC2::SecurityGroup" and group["Properties"]["VpcId"] == {"Ref": "VpcId"}
    # The load balancers' group lets the function in on the listeners' port, HTTP or HTTPS.
    ingress = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
               and r["Properties"].get("SourceSecurityGroupId") == {"Ref": "ApiFunctionSecurityGroup"}]
    assert len(ingress) == 1
    assert ingress[0]["GroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    for listener in ("InternalListener", "PublicListener"):
        port = resources[listener]["Properties"]["Port"]
        assert ingress[0]["FromPort"] == port == ingress[0]["ToPort"], listener
    internal = resources["InternalLoadBalancer"]["Properties"]
    assert internal["Scheme"] == "internal"
    assert internal["SecurityGroups"] == [{"Ref": "LoadBalancerSecurityGroup"}]
    assert "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole" in \
        resources["ApiFunctionRole"]["Properties"]["ManagedPolicyArns"]
