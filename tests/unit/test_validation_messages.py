"""Specification: ValidationException messages read like AWS's, and never echo secrets."""
from __future__ import annotations

import re

import pytest

from airdock.core import constraints as c
from airdock.core.errors import ValidationError
from airdock.core.models import CreateEnvironmentInput, ListEnvironmentsInput, TagResourceInput, UpdateEnvironmentInput
from airdock.core.validation import parse

ARN = "arn:aws:airflow:us-east-1:000000000000:environment/env"


def valid_create(**overrides):
    request = {
        "Name": "env",
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
        "SourceBucketArn": "arn:aws:s3:::bucket",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    }
    request.update(overrides)
    return request


def message(model, data) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(model, data)
    assert caught.value.code == "ValidationException" and caught.value.status == 400
    return caught.value.message


def test_a_bad_name_is_reported_in_aws_wording_with_value_member_and_pattern() -> None:
    # Given a name that starts with a digit / When parsed
    text = message(CreateEnvironmentInput, valid_create(Name="9lives"))
    # Then the message is exactly AWS's phrasing
    assert text == (
        "1 validation error detected: Value '9lives' at 'name' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {c.ENVIRONMENT_NAME}"
    )


def test_lengths_and_ranges_use_aws_member_must_phrases() -> None:
    assert message(CreateEnvironmentInput, valid_create(Name="a" * 81)).endswith(
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80"
    )
    assert message(ListEnvironmentsInput, {"MaxResults": 26}) == (
        "1 validation error detected: Value '26' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 25"
    )
    assert "Member must have value greater than or equal to 1" in message(ListEnvironmentsInput, {"MaxResults": 0})


def test_nested_members_are_located_with_camel_case_paths_and_one_based_indexes() -> None:
    text = message(CreateEnvironmentInput, valid_create(
        NetworkConfiguration={"SubnetIds": ["subnet-a", "nope"], "SecurityGroupIds": ["sg-1"]}))
    assert "Value 'nope' at 'networkConfiguration.subnetIds.2' failed to satisfy constraint" in text
    text = message(CreateEnvironmentInput, valid_create(NetworkConfiguration={"SubnetIds": ["subnet-a"], "SecurityGroupIds": ["sg-1"]}))
    assert "at 'networkConfiguration.subnetIds' failed to satisfy constraint: Member must have length greater than or equal to 2" in text


def test_several_errors_are_counted_and_joined_with_semicolons() -> None:
    text = message(CreateEnvironmentInput, valid_create(Name="9", ExecutionRoleArn="role"))
    assert text.startswith("2 validation errors detected: ")
    assert text.count("; ") == 1 and "'name'" in text and "'executionRoleArn'" in text


def test_missing_required_members_say_member_must_not_be_null() -> None:
    data = valid_create()
    del data["DagS3Path"]
    assert message(CreateEnvironmentInput, data) == (
        "1 validation error detected: Value null at 'dagS3Path' failed to satisfy constraint: Member must not be null"
    )


def test_enum_violations_list_the_allowed_values() -> None:
    text = message(CreateEnvironmentInput, valid_create(WebserverAccessMode="OPEN"))
    assert "Value 'OPEN' at 'webserverAccessMode'" in text
    assert "Member must satisfy enum value set: [PRIVATE_ONLY, PUBLIC_ONLY, PUBLIC_AND_PRIVATE]" in text


def test_tag_map_keys_are_the_users_own_words_and_key_errors_say_map_keys() -> None:
    text = message(TagResourceInput, {"ResourceArn": ARN, "Tags": {"Good": "x" * 257}})
    assert "at 'tags.Good' failed to satisfy constraint: Member must have length less than or equal to 256" in text
    text = message(TagResourceInput, {"ResourceArn": ARN, "Tags": {"k" * 129: "v"}})
    assert "at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128]" in text


def test_types_are_never_coerced() -> None:
    text = message(UpdateEnvironmentInput, {"Name": "env", "MaxWorkers": "5"})
    assert "at 'maxWorkers' failed to satisfy constraint: Member must be an integer" in text


@pytest.mark.parametrize("options", [
    {"core.parallelism": "top-secret\n"},           # value breaks the ConfigValue pattern
    {"core.parallelism": "s" * 65537},              # value too long
    {"Core.Secret": "top-secret"},                  # key breaks the ConfigKey pattern
])
def test_airflow_configuration_option_values_are_never_echoed(options) -> None:
    # Given AirflowConfigurationOptions (sensitive in the service model) that fail validation
    text = message(CreateEnvironmentInput, valid_create(AirflowConfigurationOptions=options))
    # Then the message names the member but does not contain the value
    assert "airflowConfigurationOptions" in text
    assert "top-secret" not in text and "s" * 100 not in text
    assert re.search(r"Value at 'airflowConfigurationOptions", text)


def test_request_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse(CreateEnvironmentInput, ["Name", "env"])


def test_unknown_members_are_ignored() -> None:
    assert parse(CreateEnvironmentInput, valid_create(Bogus=1)).Name == "env"


@pytest.mark.parametrize(("current", "target"), [
    ("2.9.2", "2.10.3"), ("2.10.1", "2.11.0"), ("2.11.0", "2.11.2"), ("3.0.6", "3.3.2"),   # upgrades in place
    ("2.11.0", "3.0.6"), ("2.11.2", "3.3.2"),                                              # 2.11 -> Airflow 3
    ("3.3.2", "2.11.0"), ("3.0.6", "2.11.2"),                                              # Airflow 3 -> 2.11
])
def test_the_version_changes_mwaa_makes_in_place_are_accepted(current: str, target: str) -> None:
    from airdock.core.rules import check_version_change

    check_version_change(current, target)


@pytest.mark.parametrize(("current", "target", "hint"), [
    ("2.10.3", "3.0.6", "Upgrade to Apache Airflow 2.11 first"),
    ("2.11.0", "2.10.3", "only upgrades"),
    ("3.3.2", "3.0.6", "only upgrades"),
    ("3.3.2", "2.10.3", "back to 2.11 only"),
])
def test_other_version_changes_are_refused_as_mwaa_refuses_them(current: str, target: str, hint: str) -> None:
    from airdock.core.errors import ValidationError
    from airdock.core.rules import check_version_change

    with pytest.raises(ValidationError, match=f"Airflow version {current} does not support updates to version {target}"
                                              f"\\..*{hint}"):
        check_version_change(current, target)
