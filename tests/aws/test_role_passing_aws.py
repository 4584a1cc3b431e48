"""The confused-deputy check on AWS: IAM is asked whether the *caller* may pass the execution role.

IAM's API is stubbed with botocore's Stubber (moto has no policy simulator); the requests are
checked against botocore's model of IAM, so a wrong parameter fails here as it would on AWS.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from airdock.aws.iam import IamRolePassing
from airdock.core import role_passing
from airdock.core.errors import AccessDenied
from airdock.core.ports import Caller

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/airflow-execution"
CONTEXT = [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": ["ecs-tasks.amazonaws.com"],
            "ContextKeyType": "string"}]


def _iam() -> tuple[object, Stubber]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _simulated(decision: str) -> dict[str, object]:
    return {"EvaluationResults": [{"EvalActionName": "iam:PassRole", "EvalResourceName": ROLE, "EvalDecision": decision}]}


def test_a_role_session_is_simulated_as_its_role_found_with_its_path() -> None:
    client, stub = _iam()
    stub.add_response("get_role", {"Role": {"Path": "/team/", "RoleName": "deployer", "RoleId": "AROAEXAMPLEEXAMPLE12",
                                            "Arn": f"arn:aws:iam::{ACCOUNT}:role/team/deployer",
                                            "CreateDate": "2026-01-01T00:00:00Z"}}, {"RoleName": "deployer"})
    stub.add_response("simulate_principal_policy", _simulated("allowed"), {
        "PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:role/team/deployer", "ActionNames": ["iam:PassRole"],
        "ResourceArns": [ROLE], "ContextEntries": CONTEXT})
    stub.add_response("simulate_principal_policy", _simulated("implicitDeny"), {
        "PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:role/team/deployer", "ActionNames": ["iam:PassRole"],
        "ResourceArns": [ROLE], "ContextEntries": CONTEXT})
    passing = IamRolePassing(ACCOUNT, client)
    caller = Caller("ASIAEXAMPLE", f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice")
    with stub:
        assert passing.may_pass(caller, ROLE, "ecs-tasks.amazonaws.com")
        assert not passing.may_pass(caller, ROLE, "ecs-tasks.amazonaws.com")  # GetRole once: the path is cached
    stub.assert_no_pending_responses()


def test_an_iam_user_is_simulated_itself_and_denied_when_iam_says_so() -> None:
    client, stub = _iam()
    user = f"arn:aws:iam::{ACCOUNT}:user/ops/bob"
    stub.add_response("simulate_principal_policy", _simulated("explicitDeny"), {
        "PolicySourceArn": user, "ActionNames": ["iam:PassRole"], "ResourceArns": [ROLE], "ContextEntries": CONTEXT})
    with stub, pytest.raises(AccessDenied) as denied:
        role_passing.check(IamRolePassing(ACCOUNT, client), Caller("AKIAEXAMPLE", user), ROLE)
    assert denied.value.code == "AccessDeniedException"
    assert f"User: {user} is not authorized to perform: iam:PassRole on resource: {ROLE}" in denied.value.message


@pytest.mark.parametrize(("principal", "allowed"), [
    (f"arn:aws:iam::{ACCOUNT}:root", True),
    ("arn:aws:iam::210987654321:root", False),
    ("arn:aws:iam::210987654321:user/mallory", False),
    ("arn:aws:sts::210987654321:assumed-role/deployer/eve", False),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", False),
    ("anonymous", False),
])
def test_principals_iam_cannot_simulate_are_decided_without_asking(principal: str, allowed: bool) -> None:
    client, stub = _iam()
    with stub:  # no response queued: any IAM call would fail the test
        assert IamRolePassing(ACCOUNT, client).may_pass(Caller("AKIA", principal), ROLE, "ecs-tasks.amazonaws.com") is allowed


def test_a_deleted_role_passes_nothing() -> None:
    client, stub = _iam()
    stub.add_client_error("get_role", "NoSuchEntity", "The role with name gone cannot be found.", 404)
    with stub:
        assert not IamRolePassing(ACCOUNT, client).may_pass(
            Caller("ASIA", f"arn:aws:sts::{ACCOUNT}:assumed-role/gone/s"), ROLE, "ecs-tasks.amazonaws.com")


def test_without_a_port_nothing_is_checked_as_in_local_mode() -> None:
    role_passing.check(None, Caller("AKIA", "arn:aws:iam::000000000000:user/x"), ROLE)
