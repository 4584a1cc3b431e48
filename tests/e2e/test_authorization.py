"""Per-access-key IAM policies through the real API: keys made with `airdock keys` on the data dir
of a running server, requests signed by boto3 with those keys."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from e2e.conftest import create_request
from support.live_server import LiveServer

ACCOUNT = "000000000000"
ENV_ARN = f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/"
ROLE_ARN = f"arn:aws:airflow:us-east-1:{ACCOUNT}:role/"


def airdock_keys(server: LiveServer, *args: str, policy: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    extra: list[str] = []
    if policy is not None:
        path = server.data_dir.parent / f"policy-{abs(hash(json.dumps(policy, sort_keys=True)))}.json"
        path.write_text(json.dumps(policy))
        extra = ["--policy", str(path)]
    return subprocess.run([sys.executable, "-m", "airdock.cli", "keys", *args, *extra, "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=120)


def new_key(server: LiveServer, user: str, policy: dict[str, Any] | None = None) -> tuple[str, str]:
    out = airdock_keys(server, "create", user, "--json", policy=policy)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    return created["AccessKeyId"], created["SecretAccessKey"]


def denied(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    assert response["Error"]["Code"] == "AccessDeniedException", response
    return str(response["Error"]["Message"])


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_given_a_key_allowed_only_to_read_dev_environments_then_writes_and_other_environments_are_denied(
        server: LiveServer, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("authz-dev-1"))
    mwaa.create_environment(**create_request("authz-prod"))
    reader = server.client(key=new_key(server, "reader", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["airflow:GetEnvironment", "airflow:ListTagsForResource"],
         "Resource": ENV_ARN + "authz-dev-*"}]}))

    assert reader.get_environment(Name="authz-dev-1")["Environment"]["Name"] == "authz-dev-1"
    assert reader.list_tags_for_resource(ResourceArn=ENV_ARN + "authz-dev-1")["Tags"] == {}
    # Allowed, so the domain answers: a missing environment is still 404, not 403.
    assert code_of(reader.get_environment, Name="authz-dev-9") == "ResourceNotFoundException"
    message = denied(reader.update_environment, Name="authz-dev-1", MaxWorkers=3)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: "
                       f"airflow:UpdateEnvironment on resource: {ENV_ARN}authz-dev-1 because no identity-based "
                       "policy allows the airflow:UpdateEnvironment action")
    denied(reader.get_environment, Name="authz-prod")
    denied(reader.list_environments)  # ListEnvironments has resource "*", not matched by environment/authz-dev-*
    denied(reader.create_environment, **create_request("authz-dev-2"))
    denied(reader.delete_environment, Name="authz-dev-1")
    denied(reader.tag_resource, ResourceArn=ENV_ARN + "authz-dev-1", Tags={"a": "b"})
    # Authorization comes before validation, as IAM comes before the service: no hint leaks.
    denied(reader.create_environment, **create_request("authz-dev-3", EnvironmentClass="mw1.huge"))
    assert mwaa.get_environment(Name="authz-dev-1")["Environment"]["MaxWorkers"] != 3


def test_given_allow_all_with_a_deny_then_the_explicit_deny_wins(server: LiveServer, mwaa: Any) -> None:
    operator = server.client(key=new_key(server, "operator", {"Statement": [
        {"Effect": "Allow", "Action": "airflow:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "airflow:DeleteEnvironment", "Resource": ENV_ARN + "authz-keep-*"}]}))
    operator.create_environment(**create_request("authz-keep-1"))
    assert "authz-keep-1" in operator.list_environments()["Environments"]
    operator.tag_resource(ResourceArn=ENV_ARN + "authz-keep-1", Tags={"team": "data"})
    assert "with an explicit deny" in denied(operator.delete_environment, Name="authz-keep-1")


def test_given_a_key_without_policy_then_everything_is_denied_while_root_may_do_anything(
        server: LiveServer, mwaa: Any) -> None:
    nobody = server.client(key=new_key(server, "nobody"))
    for call, kwargs in ((nobody.list_environments, {}), (nobody.get_environment, {"Name": "x"}),
                         (nobody.create_cli_token, {"Name": "x"}), (nobody.create_web_login_token, {"Name": "x"})):
        denied(call, **kwargs)
    assert isinstance(mwaa.list_environments()["Environments"], list)


def test_web_login_needs_a_role_resource_of_that_environment(server: LiveServer, mwaa: Any) -> None:
    mwaa.create_environment(**create_request("authz-web"))
    viewer = server.client(key=new_key(server, "viewer", {"Statement": [
        {"Effect": "Allow", "Action": "airflow:CreateWebLoginToken", "Resource": ROLE_ARN + "authz-web/Viewer"}]}))
    # Authorized (a role is allowed): the service answers, here that the environment is not AVAILABLE yet.
    assert code_of(viewer.create_web_login_token, Name="authz-web") == "ValidationException"
    message = denied(viewer.create_web_login_token, Name="authz-other")
    assert f"on resource: {ROLE_ARN}authz-other/*" in message
    # MWAA's words, which the Amazon provider's MwaaHook looks for to fall back to a web login.
    assert denied(viewer.invoke_rest_api, Name="authz-web", Path="/dags", Method="GET") == "No Airflow role granted in IAM."


def test_keys_are_listed_without_secrets_stored_0600_and_deleted_keys_stop_working(server: LiveServer) -> None:
    key_id, secret = new_key(server, "temp", {"Statement": [{"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}]})
    client = server.client(key=(key_id, secret))
    client.list_environments()
    listing = airdock_keys(server, "list")
    assert key_id in listing.stdout and secret not in listing.stdout
    keys_file = server.data_dir / "keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert airdock_keys(server, "delete", key_id).returncode == 0
    assert code_of(client.list_environments) == "UnrecognizedClientException"
    assert airdock_keys(server, "delete", key_id).returncode == 1
    assert secret not in server.log()


def test_a_policy_with_a_condition_is_refused_at_key_creation(server: LiveServer) -> None:
    out = airdock_keys(server, "create", "conditional", policy={"Statement": [
        {"Effect": "Allow", "Action": "airflow:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]})
    assert out.returncode == 2 and "Condition and Principal are not supported" in out.stderr


def test_given_concurrent_requests_from_different_keys_then_each_is_judged_by_its_own_identity(
        server: LiveServer, mwaa: Any) -> None:
    """The local server runs requests on several threads; Powertools keeps the current event on
    its resolver, so a shared resolver let one request read another's identity (found by the soak)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    nobody_key = new_key(server, "nobody2")
    barrier = threading.Barrier(40)

    def one(i: int) -> tuple[bool, str]:
        client = server.client(key=None if i % 2 else nobody_key)
        barrier.wait()
        results = []
        for _ in range(10):
            try:
                client.list_environments()
                results.append("ok")
            except ClientError as error:
                results.append(error.response["Error"]["Code"])
        return bool(i % 2), ",".join(sorted(set(results)))

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(one, range(40)))
    assert {o for root, o in outcomes if root} == {"ok"}
    assert {o for root, o in outcomes if not root} == {"AccessDeniedException"}


def test_airdock_read_extensions_are_authorized_as_get_environment(server: LiveServer, mwaa: Any) -> None:
    from e2e.test_api_boto3 import signed

    mwaa.create_environment(**create_request("authz-ext"))
    reader = new_key(server, "ext-reader", {"Statement": [
        {"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV_ARN + "authz-ext"}]})
    nobody = new_key(server, "ext-nobody")
    for route in ("workers", "events"):
        allowed = signed(server, "GET", f"/_airdock/environments/authz-ext/{route}", key=reader)
        assert allowed.status_code == 200, (route, allowed.text)
        refused = signed(server, "GET", f"/_airdock/environments/authz-ext/{route}", key=nobody)
        assert refused.status_code == 403 and refused.headers["x-amzn-ErrorType"] == "AccessDeniedException", refused.text
        assert "airflow:GetEnvironment" in refused.json()["message"]
