"""airdock.client.mwaa_client signs MWAA calls the way API Gateway's AWS_IAM auth accepts them."""
from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest

from airdock.client import mwaa_client

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


class Captured(Exception):
    pass


def _capture(client: Any) -> list[AWSPreparedRequest]:
    sent: list[AWSPreparedRequest] = []

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        sent.append(request)
        raise Captured()

    client.meta.events.register("before-send.mwaa", stop)
    return sent


def test_requests_are_signed_for_execute_api_on_the_endpoint_host_with_the_stage_path() -> None:
    client = mwaa_client(ENDPOINT, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    sent = _capture(client)
    with pytest.raises(Captured):
        client.get_environment(Name="analytics")
    request = sent[0]
    authorization = request.headers["Authorization"].decode() if isinstance(request.headers["Authorization"], bytes) else request.headers["Authorization"]
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert request.url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/environments/analytics"


@pytest.mark.parametrize("call", [
    lambda c: c.list_environments(),  # host prefix "api."
    lambda c: c.create_cli_token(Name="analytics"),  # host prefix "env."
    lambda c: c.publish_metrics(EnvironmentName="analytics", MetricData=[]),  # host prefix "ops."
])
def test_no_operation_gets_a_host_prefix(call: Any) -> None:
    client = mwaa_client(ENDPOINT, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    sent = _capture(client)
    with pytest.raises(Captured):
        call(client)
    assert sent[0].url.startswith("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/")


def test_a_plain_mwaa_client_would_sign_for_airflow_so_the_override_is_needed() -> None:
    import boto3

    plain = boto3.client("mwaa", endpoint_url=ENDPOINT, region_name="eu-west-1",
                         aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    sent = _capture(plain)
    with pytest.raises(Captured):
        plain.get_environment(Name="analytics")
    assert "/eu-west-1/airflow/aws4_request" in str(sent[0].headers["Authorization"])
