"""Specification of the MWAA control-plane API, driven through a live `airdock serve` with boto3.

Until provisioning workflows exist, a created environment stays in CREATING: updates and deletes
of it are refused as "another change is in progress", and Airflow access (tokens, InvokeRestApi)
is refused because the environment is not AVAILABLE.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from airdock.core.operations import ALL_OPERATIONS, OPERATIONS
from e2e.conftest import create_request

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name: str) -> str:
    return f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}"


def error_of(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def all_names(client: Any) -> list[str]:
    return [n for page in client.get_paginator("list_environments").paginate() for n in page["Environments"]]


def signed(server: Any, method: str, path: str, body: bytes = b"", *, host: str | None = None,
           key: tuple[str, str] | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """Sign a raw request with botocore's SigV4Auth (for `host`, default the endpoint) and send it."""
    key_id, secret = key or server.credentials()
    host = host or f"127.0.0.1:{server.port}"
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(key_id, secret), "airflow", REGION).add_auth(request)
    sent = {k: v for k, v in request.headers.items()}
    sent["Host"] = host
    return requests.request(method, f"{server.endpoint}{path}", data=body, headers=sent, timeout=10)


@pytest.fixture(scope="module")
def loose(server: Any) -> Any:
    """A client that leaves validation to the server (botocore checks required members and minimums)."""
    return server.client(parameter_validation=False)


@pytest.fixture(scope="module")
def stable(mwaa: Any) -> str:
    """One environment every test may read but none may change."""
    mwaa.create_environment(**create_request("stable", Tags={"team": "data"}))
    return "stable"


# ---------------------------------------------------------------- operations


def test_create_answers_an_arn_exactly_like_mwaa(mwaa: Any) -> None:
    # Given a valid request / When created / Then the ARN is MWAA's
    assert mwaa.create_environment(**create_request("arn-check"))["Arn"] == (
        "arn:aws:airflow:us-east-1:000000000000:environment/arn-check"
    )


def test_get_shows_mwaa_defaults_for_everything_not_given(mwaa: Any, stable: str) -> None:
    env = mwaa.get_environment(Name=stable)["Environment"]
    assert env["Name"] == stable and env["Arn"] == arn(stable)
    assert env["Status"] == "CREATING"
    assert env["AirflowVersion"] == "3.3.2"  # the newest supported
    assert env["EnvironmentClass"] == "mw1.small"
    assert (env["Schedulers"], env["MinWebservers"], env["MaxWebservers"]) == (2, 2, 2)
    assert (env["MinWorkers"], env["MaxWorkers"]) == (1, 10)
    assert env["WebserverAccessMode"] == "PRIVATE_ONLY"
    assert env["WeeklyMaintenanceWindowStart"] == "SUN:03:00"
    assert isinstance(env["CreatedAt"], datetime)
    assert abs((datetime.now(timezone.utc) - env["CreatedAt"]).total_seconds()) < 300
    assert env["NetworkConfiguration"] == {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}
    assert env["Tags"] == {"team": "data"}


def test_micro_environments_default_to_one_scheduler_and_one_web_server(mwaa: Any) -> None:
    mwaa.create_environment(**create_request("micro", EnvironmentClass="mw1.micro"))
    env = mwaa.get_environment(Name="micro")["Environment"]
    assert (env["Schedulers"], env["MinWebservers"], env["MaxWebservers"]) == (1, 1, 1)


def test_create_keeps_every_optional_member_given(mwaa: Any) -> None:
    request = create_request(
        "full", AirflowVersion="2.11.0", EnvironmentClass="mw1.medium", MinWorkers=2, MaxWorkers=25,
        Schedulers=5, MinWebservers=3, MaxWebservers=5, WeeklyMaintenanceWindowStart="MON:10:30",
        WebserverAccessMode="PUBLIC_ONLY", EndpointManagement="CUSTOMER",
        KmsKey="arn:aws:kms:us-east-1:000000000000:key/12345678-1234-1234-1234-123456789012",
        PluginsS3Path="plugins.zip", RequirementsS3Path="requirements.txt", StartupScriptS3Path="startup.sh",
        AirflowConfigurationOptions={"core.parallelism": "4"},
        LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "DEBUG"}},
    )
    mwaa.create_environment(**request)
    env = mwaa.get_environment(Name="full")["Environment"]
    for key in ("AirflowVersion", "EnvironmentClass", "MinWorkers", "MaxWorkers", "Schedulers", "MinWebservers",
                "MaxWebservers", "WeeklyMaintenanceWindowStart", "WebserverAccessMode", "EndpointManagement",
                "KmsKey", "PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path", "AirflowConfigurationOptions"):
        assert env[key] == request[key], key
    assert env["LoggingConfiguration"]["TaskLogs"]["Enabled"] is True
    assert env["LoggingConfiguration"]["TaskLogs"]["CloudWatchLogGroupArn"].endswith(":log-group:airflow-full-Task")


def test_creating_an_existing_name_is_refused_and_keeps_the_original(mwaa: Any, stable: str) -> None:
    before = mwaa.get_environment(Name=stable)["Environment"]
    status, code, message = error_of(mwaa.create_environment, **create_request(stable, MaxWorkers=3))
    assert (status, code) == (400, "ValidationException") and "already exists" in message
    assert mwaa.get_environment(Name=stable)["Environment"] == before


def test_list_pages_with_max_results_and_next_token_until_done(mwaa: Any) -> None:
    # Given 30 environments
    created = sorted(f"page-{i:02d}" for i in range(30))
    for name in created:
        mwaa.create_environment(**create_request(name))
    # When listed 7 at a time
    seen: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 7}
    pages = 0
    while True:
        page = mwaa.list_environments(**kwargs)
        pages += 1
        assert len(page["Environments"]) <= 7
        seen += page["Environments"]
        if "NextToken" not in page:
            break
        assert len(page["Environments"]) == 7
        kwargs["NextToken"] = page["NextToken"]
    # Then every environment comes exactly once, in order, and the page count is what 7 per page gives
    assert seen == sorted(set(seen))
    assert set(created) <= set(seen)
    assert pages == -(-len(seen) // 7)


def test_boto3_paginator_yields_every_environment_once(mwaa: Any) -> None:
    names = [n for page in mwaa.get_paginator("list_environments").paginate(PaginationConfig={"PageSize": 4})
             for n in page["Environments"]]
    assert len(names) == len(set(names)) and "stable" in names
    assert names == all_names(mwaa)


def test_list_without_max_results_answers_at_most_25(mwaa: Any) -> None:
    page = mwaa.list_environments()
    assert len(page["Environments"]) <= 25
    if len(all_names(mwaa)) > 25:
        assert "NextToken" in page


def test_update_of_a_creating_environment_is_refused_and_changes_nothing(mwaa: Any, stable: str) -> None:
    before = mwaa.get_environment(Name=stable)["Environment"]
    status, code, message = error_of(mwaa.update_environment, Name=stable, MaxWorkers=5)
    assert (status, code) == (400, "ValidationException")
    assert "CREATING" in message
    assert mwaa.get_environment(Name=stable)["Environment"] == before


def test_delete_of_a_creating_environment_is_refused_and_keeps_it(mwaa: Any, stable: str) -> None:
    status, code, message = error_of(mwaa.delete_environment, Name=stable)
    assert (status, code) == (400, "ValidationException") and "CREATING" in message
    assert mwaa.get_environment(Name=stable)["Environment"]["Status"] == "CREATING"


def test_tag_untag_and_list_tags_round_trip_on_the_environment_arn(mwaa: Any, loose: Any) -> None:
    mwaa.create_environment(**create_request("tagged", Tags={"a": "1"}))
    # An empty value is fine for MWAA (botocore's TagValue min 1 is checked client-side only).
    loose.tag_resource(ResourceArn=arn("tagged"), Tags={"b": "2", "c": "", "a": "one"})
    assert mwaa.list_tags_for_resource(ResourceArn=arn("tagged"))["Tags"] == {"a": "one", "b": "2", "c": ""}
    mwaa.untag_resource(ResourceArn=arn("tagged"), tagKeys=["a", "c", "absent"])
    assert mwaa.list_tags_for_resource(ResourceArn=arn("tagged"))["Tags"] == {"b": "2"}
    # GetEnvironment shows the same tags
    assert mwaa.get_environment(Name="tagged")["Environment"]["Tags"] == {"b": "2"}


def test_tags_beyond_fifty_in_total_are_refused(mwaa: Any) -> None:
    mwaa.create_environment(**create_request("many-tags", Tags={f"k{i}": "v" for i in range(40)}))
    status, code, message = error_of(mwaa.tag_resource, ResourceArn=arn("many-tags"),
                                     Tags={f"x{i}": "v" for i in range(11)})
    assert (status, code) == (400, "ValidationException") and "tags" in message.lower()
    assert len(mwaa.list_tags_for_resource(ResourceArn=arn("many-tags"))["Tags"]) == 40


@pytest.mark.parametrize("call", ["tag_resource", "untag_resource", "list_tags_for_resource"])
def test_tag_operations_on_a_missing_environment_answer_404(mwaa: Any, call: str) -> None:
    kwargs: dict[str, Any] = {"ResourceArn": arn("ghost")}
    kwargs.update({"tag_resource": {"Tags": {"a": "b"}}, "untag_resource": {"tagKeys": ["a"]}}.get(call, {}))
    status, code, _ = error_of(getattr(mwaa, call), **kwargs)
    assert (status, code) == (404, "ResourceNotFoundException")


def test_tag_operations_on_another_accounts_arn_answer_404(mwaa: Any, stable: str) -> None:
    status, code, _ = error_of(mwaa.list_tags_for_resource,
                               ResourceArn=f"arn:aws:airflow:us-east-1:111111111111:environment/{stable}")
    assert (status, code) == (404, "ResourceNotFoundException")


AIRFLOW_ACCESS = [
    ("create_cli_token", {}),
    ("create_web_login_token", {}),
    ("invoke_rest_api", {"Path": "/dags", "Method": "GET"}),
]


@pytest.mark.parametrize(("call", "extra"), AIRFLOW_ACCESS)
def test_airflow_access_to_a_creating_environment_is_refused_as_not_available(
    mwaa: Any, stable: str, call: str, extra: dict[str, Any]
) -> None:
    status, code, message = error_of(getattr(mwaa, call), Name=stable, **extra)
    assert (status, code) == (400, "ValidationException")
    assert "CREATING" in message and "AVAILABLE" in message


@pytest.mark.parametrize(("call", "extra"), AIRFLOW_ACCESS)
def test_airflow_access_to_a_missing_environment_answers_404(mwaa: Any, call: str, extra: dict[str, Any]) -> None:
    status, code, message = error_of(getattr(mwaa, call), Name="ghost", **extra)
    assert (status, code) == (404, "ResourceNotFoundException") and "ghost" in message


@pytest.mark.parametrize("call", ["get_environment", "update_environment", "delete_environment"])
def test_environment_operations_on_a_missing_environment_answer_404(mwaa: Any, call: str) -> None:
    status, code, message = error_of(getattr(mwaa, call), Name="ghost")
    assert (status, code) == (404, "ResourceNotFoundException")
    assert message == "Environment named ghost does not exist."


def test_publish_metrics_gives_a_clean_mwaa_shaped_answer(mwaa: Any, stable: str) -> None:
    metric = [{"MetricName": "m", "Timestamp": datetime.now(timezone.utc), "Value": 1.0}]
    try:
        mwaa.publish_metrics(EnvironmentName=stable, MetricData=metric)
    except ClientError as exc:
        # Whatever it answers, it is a named MWAA error, never an internal failure.
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500 or \
            exc.response["Error"]["Code"] == "ServiceUnavailableException"
        assert exc.response["Error"]["Code"] != "InternalServerException"
        assert exc.response["Error"]["Message"]
    status, code, _ = error_of(mwaa.publish_metrics, EnvironmentName="ghost", MetricData=metric)
    assert (status, code) == (404, "ResourceNotFoundException")


def test_every_response_carries_a_request_id(mwaa: Any, server: Any) -> None:
    assert mwaa.list_environments()["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as caught:
        mwaa.get_environment(Name="ghost")
    assert caught.value.response["ResponseMetadata"]["RequestId"]
    assert requests.get(f"{server.endpoint}/environments", timeout=5).headers.get("x-amzn-RequestId")


# ---------------------------------------------------------------- invalid input (CreateEnvironment)

NET = "NetworkConfiguration"
INVALID_CREATE: list[tuple[str, dict[str, Any], str]] = [
    ("name-pattern", {"Name": "9lives"}, "name"),
    ("name-length", {"Name": "a" * 81}, "name"),
    ("one-subnet", {NET: {"SubnetIds": ["subnet-a"], "SecurityGroupIds": ["sg-1"]}}, "subnetIds"),
    ("three-subnets", {NET: {"SubnetIds": ["subnet-a", "subnet-b", "subnet-c"], "SecurityGroupIds": ["sg-1"]}}, "subnetIds"),
    ("no-sg", {NET: {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": []}}, "securityGroupIds"),
    ("six-sg", {NET: {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": [f"sg-{i}" for i in range(6)]}}, "securityGroupIds"),
    ("bad-subnet-id", {NET: {"SubnetIds": ["subnet-a", "vpc-1"], "SecurityGroupIds": ["sg-1"]}}, "subnetIds"),
    ("bad-sg-id", {NET: {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["group-1"]}}, "securityGroupIds"),
    ("no-network", {NET: None}, "networkConfiguration"),
    ("role-arn", {"ExecutionRoleArn": "arn:aws:iam::123:role/short-account"}, "executionRoleArn"),
    ("bucket-arn", {"SourceBucketArn": "arn:aws:s3:::Bad_Bucket"}, "sourceBucketArn"),
    ("kms-key", {"KmsKey": "not-a-key"}, "kmsKey"),
    ("class", {"EnvironmentClass": "mw1.huge"}, "EnvironmentClass"),
    ("min-over-max-workers", {"MinWorkers": 5, "MaxWorkers": 3}, "MinWorkers"),
    ("max-workers-26", {"MaxWorkers": 26}, "MaxWorkers"),
    ("max-workers-0", {"MaxWorkers": 0}, "maxWorkers"),
    ("min-workers-0", {"MinWorkers": 0}, "minWorkers"),
    ("workers-as-text", {"MinWorkers": "2"}, "minWorkers"),
    ("one-scheduler-small", {"Schedulers": 1}, "Schedulers"),
    ("two-schedulers-micro", {"EnvironmentClass": "mw1.micro", "Schedulers": 2}, "Schedulers"),
    ("six-schedulers", {"Schedulers": 6}, "schedulers"),
    ("one-webserver-small", {"MinWebservers": 1, "MaxWebservers": 2}, "MinWebservers"),
    ("six-webservers", {"MaxWebservers": 6}, "MaxWebservers"),
    ("min-over-max-webservers", {"MinWebservers": 4, "MaxWebservers": 3}, "MinWebservers"),
    ("two-webservers-micro", {"EnvironmentClass": "mw1.micro", "Schedulers": 1, "MaxWebservers": 2}, "MaxWebservers"),
    ("window-quarter", {"WeeklyMaintenanceWindowStart": "MON:10:15"}, "weeklyMaintenanceWindowStart"),
    ("window-garbage", {"WeeklyMaintenanceWindowStart": "XYZ"}, "weeklyMaintenanceWindowStart"),
    ("51-tags", {"Tags": {f"k{i}": "v" for i in range(51)}}, "tags"),
    ("tag-key-129", {"Tags": {"k" * 129: "v"}}, "tags"),
    ("tag-value-257", {"Tags": {"k": "v" * 257}}, "tags"),
    ("tag-key-chars", {"Tags": {"bad#key": "v"}}, "tags"),
    ("tag-value-chars", {"Tags": {"k": "a<b"}}, "tags"),
    ("option-no-section", {"AirflowConfigurationOptions": {"parallelism": "4"}}, "AirflowConfigurationOptions"),
    ("option-blocked", {"AirflowConfigurationOptions": {"core.executor": "LocalExecutor"}}, "AirflowConfigurationOptions"),
    ("option-blocked-db", {"AirflowConfigurationOptions": {"database.sql_alchemy_conn": "sqlite://"}}, "AirflowConfigurationOptions"),
    ("option-key-chars", {"AirflowConfigurationOptions": {"Core.Parallelism!": "4"}}, "airflowConfigurationOptions"),
    ("option-value-type", {"AirflowConfigurationOptions": {"core.parallelism": 4}}, "airflowConfigurationOptions"),
    ("airflow-version", {"AirflowVersion": "1.10.12"}, "AirflowVersion"),
    ("missing-bucket", {"SourceBucketArn": "arn:aws:s3:::no-such-bucket"}, "SourceBucketArn"),
    ("missing-dags-folder", {"DagS3Path": "no-such-dags"}, "DagS3Path"),
    ("no-dag-path", {"DagS3Path": None}, "dagS3Path"),
    ("dag-path-escapes", {"DagS3Path": "../airdock-test-dags/dags"}, "DagS3Path"),
    ("dag-path-escapes-deep", {"DagS3Path": "dags/../../x"}, "DagS3Path"),
    ("missing-plugins", {"PluginsS3Path": "no-plugins.zip"}, "PluginsS3Path"),
    ("missing-plugins-version", {"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": "v9"}, "PluginsS3Path"),
    ("missing-requirements", {"RequirementsS3Path": "no-requirements.txt"}, "RequirementsS3Path"),
    ("missing-startup", {"StartupScriptS3Path": "no-startup.sh"}, "StartupScriptS3Path"),
    ("log-level", {"LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "LOUD"}}}, "logLevel"),
    ("access-mode", {"WebserverAccessMode": "OPEN"}, "webserverAccessMode"),
    ("endpoint-management", {"EndpointManagement": "NOBODY"}, "endpointManagement"),
    ("no-role", {"ExecutionRoleArn": None}, "executionRoleArn"),
]


@pytest.mark.parametrize(("case", "overrides", "field"), INVALID_CREATE, ids=[c[0] for c in INVALID_CREATE])
def test_invalid_create_is_a_400_validation_exception_naming_the_field_and_leaves_no_trace(
    loose: Any, case: str, overrides: dict[str, Any], field: str
) -> None:
    # Given a request that is valid except for one member
    request = create_request(f"bad-{case}", **overrides)
    request = {k: v for k, v in request.items() if v is not None}
    before = all_names(loose)
    # When it is sent
    status, code, message = error_of(loose.create_environment, **request)
    # Then MWAA's ValidationException names the member
    assert (status, code) == (400, "ValidationException"), message
    assert field.lower() in message.lower(), message
    # And nothing was stored
    assert all_names(loose) == before
    if 1 <= len(request["Name"]) <= 80:
        assert error_of(loose.get_environment, Name=request["Name"])[1] in ("ResourceNotFoundException", "ValidationException")


def test_configuration_option_values_are_never_echoed_in_errors(loose: Any) -> None:
    request = create_request("secret-opts", AirflowConfigurationOptions={"Bad.Key!": "hunter2-secret"})
    _, _, message = error_of(loose.create_environment, **request)
    assert "hunter2-secret" not in message


def test_unknown_members_are_ignored(server: Any, mwaa: Any) -> None:
    body = {**create_request("with-extras"), "Bogus": {"x": 1}, "AlsoUnknown": 5}
    del body["Name"]
    response = signed(server, "PUT", "/environments/with-extras", json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"Arn": arn("with-extras")}
    assert mwaa.get_environment(Name="with-extras")["Environment"]["Status"] == "CREATING"


@pytest.mark.parametrize("body", [b'{"ExecutionRoleArn": ', b"not json at all", b'["Name", "x"]', b'"a string"'],
                         ids=["truncated", "text", "array", "string"])
def test_a_body_that_is_not_a_json_object_is_a_400_and_creates_nothing(server: Any, mwaa: Any, body: bytes) -> None:
    response = signed(server, "PUT", "/environments/raw-body", body)
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.json()["message"]
    assert error_of(mwaa.get_environment, Name="raw-body")[1] == "ResourceNotFoundException"


# ---------------------------------------------------------------- invalid input (UpdateEnvironment)

INVALID_UPDATE: list[tuple[str, dict[str, Any], str]] = [
    ("six-schedulers", {"Schedulers": 6}, "schedulers"),
    ("max-workers-0", {"MaxWorkers": 0}, "maxWorkers"),
    ("window", {"WeeklyMaintenanceWindowStart": "XYZ"}, "weeklyMaintenanceWindowStart"),
    ("six-sg", {NET: {"SecurityGroupIds": [f"sg-{i}" for i in range(6)]}}, "securityGroupIds"),
    ("sg-missing", {NET: {}}, "securityGroupIds"),
    ("option-key", {"AirflowConfigurationOptions": {"Bad Key": "x"}}, "airflowConfigurationOptions"),
    ("role-arn", {"ExecutionRoleArn": "role"}, "executionRoleArn"),
    ("bucket-arn", {"SourceBucketArn": "bucket"}, "sourceBucketArn"),
    ("access-mode", {"WebserverAccessMode": "OPEN"}, "webserverAccessMode"),
    ("strategy", {"WorkerReplacementStrategy": "SOMETIMES"}, "workerReplacementStrategy"),
    ("name", {"Name": "9lives"}, "name"),
]


@pytest.mark.parametrize(("case", "overrides", "field"), INVALID_UPDATE, ids=[c[0] for c in INVALID_UPDATE])
def test_invalid_update_is_a_400_validation_exception_naming_the_field_and_changes_nothing(
    loose: Any, stable: str, case: str, overrides: dict[str, Any], field: str
) -> None:
    before = loose.get_environment(Name=stable)["Environment"]
    status, code, message = error_of(loose.update_environment, **{"Name": stable, **overrides})
    assert (status, code) == (400, "ValidationException"), message
    assert field.lower() in message.lower(), message
    assert loose.get_environment(Name=stable)["Environment"] == before


# ---------------------------------------------------------------- invalid input (ListEnvironments)


@pytest.mark.parametrize("max_results", [0, 26, -1])
def test_max_results_outside_1_to_25_is_refused(loose: Any, max_results: int) -> None:
    status, code, message = error_of(loose.list_environments, MaxResults=max_results)
    assert (status, code) == (400, "ValidationException") and "maxresults" in message.lower()


@pytest.mark.parametrize("token", ["%%%garbage%%%", "____", "x"])
def test_a_garbage_next_token_is_refused(loose: Any, token: str) -> None:
    status, code, message = error_of(loose.list_environments, NextToken=token)
    assert (status, code) == (400, "ValidationException") and "nexttoken" in message.lower()


def test_max_results_that_is_not_a_number_is_refused(server: Any) -> None:
    response = signed(server, "GET", "/environments?MaxResults=ten")
    assert response.status_code == 400 and response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "maxResults" in response.json()["message"]


# ---------------------------------------------------------------- authentication


def test_an_unsigned_request_is_403_missing_authentication_token(server: Any) -> None:
    response = requests.get(f"{server.endpoint}/environments", timeout=5)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json()["message"]


def test_an_unknown_access_key_is_403_unrecognized_client(server: Any) -> None:
    client = server.client(key=("AKIAUNKNOWNUNKNOWN00", "whatever"))
    assert error_of(client.list_environments)[:2] == (403, "UnrecognizedClientException")


def test_a_wrong_secret_is_403_invalid_signature(server: Any) -> None:
    key_id, secret = server.credentials()
    client = server.client(key=(key_id, secret[::-1]))
    assert error_of(client.list_environments)[:2] == (403, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [6, -6])
def test_a_request_signed_six_minutes_off_is_403_invalid_signature(server: Any, minutes: int) -> None:
    client = server.client()
    skewed = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=minutes)
    with mock.patch("botocore.auth.get_current_datetime", return_value=skewed):
        assert error_of(client.list_environments)[:2] == (403, "InvalidSignatureException")


def test_a_request_signed_four_minutes_off_is_accepted(server: Any) -> None:
    client = server.client()
    skewed = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=4)
    with mock.patch("botocore.auth.get_current_datetime", return_value=skewed):
        assert "Environments" in client.list_environments()


@pytest.mark.parametrize("prefix", ["api.", "env.", "ops."])
def test_a_host_header_with_botocores_prefix_is_accepted(server: Any, stable: str, prefix: str) -> None:
    # Given a request signed for http://api.127.0.0.1:PORT (what botocore's host prefix gives)
    response = signed(server, "GET", f"/environments/{stable}", host=f"{prefix}127.0.0.1:{server.port}")
    # Then it is verified against that Host and served
    assert response.status_code == 200, response.text
    assert response.json()["Environment"]["Name"] == stable


def test_a_request_whose_host_differs_from_the_signed_host_is_refused(server: Any, stable: str) -> None:
    key_id, secret = server.credentials()
    request = AWSRequest(method="GET", url=f"http://api.127.0.0.1:{server.port}/environments/{stable}")
    SigV4Auth(Credentials(key_id, secret), "airflow", REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = f"other.127.0.0.1:{server.port}"
    response = requests.get(f"{server.endpoint}/environments/{stable}", headers=headers, timeout=5)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


# ---------------------------------------------------------------- unsigned endpoints


def test_health_answers_unsigned_with_version_and_store(server: Any) -> None:
    response = requests.get(f"{server.endpoint}/_airdock/health", timeout=5)
    assert response.status_code == 200
    health = response.json()
    assert health["version"] and health["store"] == "ok"


def test_openapi_document_is_valid_and_lists_the_twelve_operations_and_the_extensions(server: Any) -> None:
    response = requests.get(f"{server.endpoint}/_airdock/openapi.json", timeout=5)
    assert response.status_code == 200
    document = response.json()
    from openapi_spec_validator import validate

    validate(document)
    assert document["openapi"].startswith("3.")
    methods = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert methods == {(op.method, op.path) for op in ALL_OPERATIONS}
    operation_ids = {spec["operationId"] for item in document["paths"].values() for spec in item.values()}
    assert operation_ids == {op.name for op in ALL_OPERATIONS}
    mwaa = {spec["operationId"] for item in document["paths"].values() for spec in item.values()
            if not spec.get("x-airdock-extension")}
    assert mwaa == {op.name for op in OPERATIONS}


def test_openapi_request_schema_states_the_limits_the_server_enforces(server: Any) -> None:
    document = requests.get(f"{server.endpoint}/_airdock/openapi.json", timeout=5).json()
    create = document["paths"]["/environments/{Name}"]["put"]
    name = next(p for p in create["parameters"] if p["name"] == "Name")
    assert name["schema"]["maxLength"] == 80
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"ExecutionRoleArn", "SourceBucketArn", "DagS3Path", "NetworkConfiguration"}
    listing = document["paths"]["/environments"]["get"]
    max_results = next(p for p in listing["parameters"] if p["name"] == "MaxResults")
    assert (max_results["schema"]["minimum"], max_results["schema"]["maximum"]) == (1, 25)


def test_unknown_paths_answer_a_json_error_not_a_crash(server: Any) -> None:
    response = signed(server, "GET", "/no/such/operation")
    assert 400 <= response.status_code < 500
    assert response.json()["message"]
