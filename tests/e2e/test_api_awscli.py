"""Specification: the unmodified AWS CLI (`aws mwaa ...`) works against a live `airdock serve`.

The CLI is configured only the documented way: `AWS_DISABLE_HOST_PREFIX_INJECTION=true`,
`--endpoint-url`, and the credentials file the server writes (`<data-dir>/credentials`, profile
`airdock`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import BUCKET

AWS = str(Path(sys.executable).parent / "aws")
NETWORK = json.dumps({"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})


def aws(server: Any, *args: str, credentials: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DISABLE_HOST_PREFIX_INJECTION="true",
        AWS_SHARED_CREDENTIALS_FILE=str(credentials or server.data_dir / "credentials"),
        AWS_CONFIG_FILE=str(server.data_dir / "no-such-aws-config"),
        AWS_MAX_ATTEMPTS="1",
    )
    return subprocess.run(
        [AWS, "mwaa", *args, "--profile", "airdock", "--region", "us-east-1",
         "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def create_args(name: str, *extra: str) -> list[str]:
    return ["create-environment", "--name", name,
            "--execution-role-arn", "arn:aws:iam::000000000000:role/airdock-test",
            "--source-bucket-arn", f"arn:aws:s3:::{BUCKET}", "--dag-s3-path", "dags",
            "--network-configuration", NETWORK, *extra]


@pytest.fixture(scope="module")
def cli_env(server: Any) -> str:
    answer = ok(aws(server, *create_args("cli-env", "--tags", "team=data", "--max-workers", "4")))
    assert answer["Arn"] == "arn:aws:airflow:us-east-1:000000000000:environment/cli-env"
    return "cli-env"


def test_the_cli_creates_and_gets_an_environment(server: Any, cli_env: str) -> None:
    env = ok(aws(server, "get-environment", "--name", cli_env))["Environment"]
    assert env["Status"] == "CREATING" and env["MaxWorkers"] == 4 and env["Tags"] == {"team": "data"}
    assert env["EnvironmentClass"] == "mw1.small" and env["AirflowVersion"] == "3.3.2"


def test_the_cli_lists_across_pages(server: Any, cli_env: str, mwaa: Any) -> None:
    # Given more environments than one page of 2 holds
    for i in range(4):
        mwaa.create_environment(
            Name=f"cli-page-{i}", ExecutionRoleArn="arn:aws:iam::000000000000:role/airdock-test",
            SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
            NetworkConfiguration=json.loads(NETWORK),
        )
    # When the CLI lists with a page size of 2 (it follows NextToken itself)
    names = ok(aws(server, "list-environments", "--page-size", "2"))["Environments"]
    # Then it sees every environment once
    assert {cli_env, *(f"cli-page-{i}" for i in range(4))} <= set(names)
    assert len(names) == len(set(names))


def test_the_cli_tags_untags_and_lists_tags_by_arn(server: Any, cli_env: str, mwaa: Any) -> None:
    # (each CLI call costs ~2 s of start-up, so the checks in between go through boto3)
    arn = f"arn:aws:airflow:us-east-1:000000000000:environment/{cli_env}"
    ok(aws(server, "tag-resource", "--resource-arn", arn, "--tags", "env=dev,owner=me"))
    assert mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "data", "env": "dev", "owner": "me"}
    ok(aws(server, "untag-resource", "--resource-arn", arn, "--tag-keys", "team", "owner"))
    assert ok(aws(server, "list-tags-for-resource", "--resource-arn", arn))["Tags"] == {"env": "dev"}


def test_the_cli_reports_an_update_of_a_creating_environment_as_validation_exception(
    server: Any, cli_env: str, mwaa: Any
) -> None:
    result = aws(server, "update-environment", "--name", cli_env, "--max-workers", "5")
    assert result.returncode != 0
    assert "ValidationException" in result.stderr and "CREATING" in result.stderr
    assert mwaa.get_environment(Name=cli_env)["Environment"]["MaxWorkers"] == 4


def test_the_cli_reports_invalid_input_naming_the_field(server: Any, mwaa: Any) -> None:
    result = aws(server, *create_args("cli-bad", "--max-workers", "26"))
    assert result.returncode != 0
    assert "ValidationException" in result.stderr and "MaxWorkers" in result.stderr
    assert "cli-bad" not in mwaa.list_environments(MaxResults=25)["Environments"]
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.get_environment(Name="cli-bad")


def test_the_cli_reports_a_missing_environment_as_resource_not_found(server: Any) -> None:
    result = aws(server, "delete-environment", "--name", "cli-ghost")
    assert result.returncode != 0 and "ResourceNotFoundException" in result.stderr


def test_the_cli_token_command_on_a_creating_environment_says_not_available(server: Any, cli_env: str) -> None:
    result = aws(server, "create-cli-token", "--name", cli_env)
    assert result.returncode != 0
    assert "ValidationException" in result.stderr and "AVAILABLE" in result.stderr


def test_the_cli_with_a_wrong_secret_gets_invalid_signature(server: Any, tmp_path: Path) -> None:
    key_id, secret = server.credentials()
    wrong = tmp_path / "credentials"
    wrong.write_text(f"[airdock]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret[::-1]}\n")
    result = aws(server, "list-environments", credentials=wrong)
    assert result.returncode != 0 and "InvalidSignatureException" in result.stderr
