"""Specification of IAM-style authorization (core/authorization.py): policy model, evaluation,
request → (action, resource), and the Airflow roles a policy grants."""
from __future__ import annotations

from typing import Any

import pytest

from airdock.core.authorization import (
    Authorizer,
    Policy,
    Target,
    evaluate,
    parse_policy,
    target_of,
)
from airdock.core.errors import AccessDenied, ValidationError
from airdock.core.ports import Caller

ENV = "arn:aws:airflow:us-east-1:000000000000:environment/"
ROLE = "arn:aws:airflow:us-east-1:000000000000:role/"
ALICE = Caller(access_key_id="AKIAALICE", principal_arn="arn:aws:iam::000000000000:user/alice")
ROOT = Caller(access_key_id="AKIAROOT", principal_arn="arn:aws:iam::000000000000:root")


def policy(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def authorizer(*policies: Policy) -> Authorizer:
    return Authorizer(lambda c: None if c is ROOT else list(policies), "aws", "us-east-1", "000000000000")


def test_given_no_statement_that_applies_then_implicit_deny() -> None:
    p = policy({"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV + "dev"})
    assert evaluate([p], "airflow:GetEnvironment", ENV + "dev") == "Allow"
    assert evaluate([p], "airflow:GetEnvironment", ENV + "prod") == "ImplicitDeny"
    assert evaluate([p], "airflow:UpdateEnvironment", ENV + "dev") == "ImplicitDeny"
    assert evaluate([], "airflow:GetEnvironment", ENV + "dev") == "ImplicitDeny"


def test_given_allow_and_deny_that_both_apply_then_explicit_deny_wins_whatever_the_order() -> None:
    allow = {"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "airflow:DeleteEnvironment", "Resource": ENV + "prod"}
    for p in (policy(allow, deny), policy(deny, allow)):
        assert evaluate([p], "airflow:DeleteEnvironment", ENV + "prod") == "ExplicitDeny"
        assert evaluate([p], "airflow:DeleteEnvironment", ENV + "dev") == "Allow"
    assert evaluate([policy(allow), policy(deny)], "airflow:DeleteEnvironment", ENV + "prod") == "ExplicitDeny"


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("airflow:*", "airflow:CreateEnvironment", True),
    ("AIRFLOW:get*", "airflow:GetEnvironment", True),  # actions are case-insensitive
    ("airflow:Get?nvironment", "airflow:GetEnvironment", True),
    ("airflow:Get", "airflow:GetEnvironment", False),  # whole-string match, not prefix
    ("*", "airflow:TagResource", True),
    ("s3:*", "airflow:GetEnvironment", False),
])
def test_action_patterns_use_iam_wildcards_case_insensitively(pattern: str, value: str, matches: bool) -> None:
    p = policy({"Effect": "Allow", "Action": pattern, "Resource": "*"})
    assert (evaluate([p], value, ENV + "x") == "Allow") is matches


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    (ENV + "dev-*", ENV + "dev-1", True),
    (ENV + "dev-?", ENV + "dev-12", False),
    (ENV + "Dev", ENV + "dev", False),  # resources are case-sensitive
    ("arn:aws:airflow:*:*:environment/*", ENV + "anything", True),
    (ENV + "a.b", ENV + "aXb", False),  # '.' is literal, not a regex
])
def test_resource_patterns_are_case_sensitive_globs(pattern: str, value: str, matches: bool) -> None:
    p = policy({"Effect": "Allow", "Action": "airflow:*", "Resource": pattern})
    assert (evaluate([p], "airflow:GetEnvironment", value) == "Allow") is matches


def test_not_action_and_not_resource_invert_the_match() -> None:
    p = policy({"Effect": "Allow", "NotAction": "airflow:Delete*", "NotResource": ENV + "prod"})
    assert evaluate([p], "airflow:UpdateEnvironment", ENV + "dev") == "Allow"
    assert evaluate([p], "airflow:DeleteEnvironment", ENV + "dev") == "ImplicitDeny"
    assert evaluate([p], "airflow:UpdateEnvironment", ENV + "prod") == "ImplicitDeny"


@pytest.mark.parametrize("document", [
    {"Statement": []},
    {"Statement": [{"Effect": "Maybe", "Action": "airflow:*", "Resource": "*"}]},
    {"Statement": [{"Effect": "Allow", "Resource": "*"}]},  # no Action
    {"Statement": [{"Effect": "Allow", "Action": "a", "NotAction": "b", "Resource": "*"}]},
    {"Statement": [{"Effect": "Allow", "Action": "airflow:*", "Resource": "*", "Condition": {"Bool": {}}}]},
    {"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
    {"Version": "2099-01-01", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    ["not", "an", "object"],
])
def test_given_a_malformed_or_unsupported_policy_then_it_is_refused_not_half_applied(document: Any) -> None:
    with pytest.raises(ValidationError, match="Invalid policy"):
        parse_policy(document)


def test_a_single_statement_object_is_accepted_as_in_iam() -> None:
    p = parse_policy({"Statement": {"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}})
    assert len(p.Statement) == 1


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("PUT", "/environments/dev", Target("CreateEnvironment", "dev")),
    ("PATCH", "/environments/dev", Target("UpdateEnvironment", "dev")),
    ("GET", "/environments", Target("ListEnvironments")),
    ("POST", "/environments/dev/pause", Target("PauseEnvironment", "dev")),
    ("POST", "/webtoken/dev", Target("CreateWebLoginToken", "dev")),
    ("POST", "/metrics/environments/dev", Target("PublishMetrics", "dev")),
    ("POST", "/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2Fdev",
     Target("TagResource", None, ENV + "dev")),
    ("GET", "/nowhere", None),
])
def test_a_request_path_names_its_operation_and_resource(method: str, path: str, expected: Target | None) -> None:
    assert target_of(method, path) == expected


def test_given_a_denied_request_then_access_denied_uses_aws_wording() -> None:
    auth = authorizer(policy({"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": "*"}))
    auth.authorize(ALICE, Target("GetEnvironment", "dev"))
    with pytest.raises(AccessDenied) as denied:
        auth.authorize(ALICE, Target("UpdateEnvironment", "dev"))
    assert denied.value.status == 403 and denied.value.code == "AccessDeniedException"
    assert denied.value.message == (
        "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: airflow:UpdateEnvironment "
        f"on resource: {ENV}dev because no identity-based policy allows the airflow:UpdateEnvironment action")
    deny = authorizer(policy({"Effect": "Deny", "Action": "*", "Resource": "*"}))
    with pytest.raises(AccessDenied, match="with an explicit deny in an identity-based policy"):
        deny.authorize(ALICE, Target("ListEnvironments"))


def test_given_the_root_key_then_everything_is_allowed_and_roles_are_left_to_the_data_plane() -> None:
    auth = authorizer()  # non-root callers have no policy at all: default deny
    auth.authorize(ROOT, Target("DeleteEnvironment", "prod"))
    assert auth.allowed_airflow_roles(ROOT, "prod") is None
    with pytest.raises(AccessDenied):
        auth.authorize(ALICE, Target("GetEnvironment", "prod"))


def test_web_login_roles_come_from_role_resources_most_privileged_first_with_deny_winning() -> None:
    auth = authorizer(policy(
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken", "Resource": ROLE + "dev/*"},
        {"Effect": "Deny", "Action": "airflow:CreateWebLoginToken", "Resource": ROLE + "dev/Admin"},
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken", "Resource": ROLE + "prod/Viewer"},
    ))
    assert auth.allowed_airflow_roles(ALICE, "dev") == ["Op", "User", "Viewer", "Public"]
    assert auth.allowed_airflow_roles(ALICE, "prod") == ["Viewer"]
    assert auth.allowed_airflow_roles(ALICE, "other") == []
    assert auth.allowed_airflow_roles(ALICE, "prod", "InvokeRestApi") == []
    auth.authorize(ALICE, Target("CreateWebLoginToken", "prod"))
    with pytest.raises(AccessDenied, match=f"on resource: {ROLE}other/\\*"):
        auth.authorize(ALICE, Target("CreateWebLoginToken", "other"))


def test_invoke_rest_api_without_a_role_says_so_in_mwaas_words_which_the_provider_falls_back_on() -> None:
    auth = authorizer(policy(
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken", "Resource": ROLE + "prod/Op"},
        {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": ROLE + "dev/Viewer"},
        {"Effect": "Deny", "Action": "airflow:InvokeRestApi", "Resource": ROLE + "stage/*"},
    ))
    auth.authorize(ALICE, Target("InvokeRestApi", "dev"))
    for environment in ("prod", "stage"):
        with pytest.raises(AccessDenied) as denied:
            auth.authorize(ALICE, Target("InvokeRestApi", environment))
        assert denied.value.message == "No Airflow role granted in IAM."
    assert auth.denied_role(ALICE, "prod", "InvokeRestApi").message == "No Airflow role granted in IAM."


def test_the_data_plane_gives_a_restricted_key_its_most_privileged_allowed_role(tmp_path: Any) -> None:
    from airdock.airflow_http import UrllibAirflowHttp
    from airdock.core.data_plane import AirflowDataPlane
    from airdock.core.models import Environment
    from airdock.core.ports import EnvironmentRecord
    from airdock.local.airflow_targets import FileRolePolicy, LocalAirflowTargets

    plane = AirflowDataPlane(LocalAirflowTargets(tmp_path, lambda: None), FileRolePolicy(tmp_path / "airflow-roles.json"),  # type: ignore[arg-type]
                             UrllibAirflowHttp(), authorizer=authorizer(policy(
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken", "Resource": [ROLE + "dev/User", ROLE + "dev/Viewer"]},
        {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": ROLE + "dev/Viewer"})))
    env = Environment.model_construct(Name="dev")
    record = EnvironmentRecord.model_construct(environment=env, version=1, internal={})
    assert plane._role(record, ALICE) == "User"
    assert plane._role(record, ALICE, "InvokeRestApi") == "Viewer"
    assert plane._role(record, ROOT) == "Admin"  # root: the airflow-roles.json default
    other = EnvironmentRecord.model_construct(environment=Environment.model_construct(Name="prod"), version=1, internal={})
    with pytest.raises(AccessDenied, match="airflow:CreateWebLoginToken on resource: .*role/prod/\\*"):
        plane._role(other, ALICE)
