"""Create environments through boto3 and wait for them, as the e2e tests do."""
from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from support.airflow_rest import AirflowRest
from support.live_server import LiveServer

BUCKET = "airdock-e2e"
ROLE = "arn:aws:iam::000000000000:role/airdock-e2e"


def wait_status(mwaa: Any, name: str, done: set[str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    env: dict[str, Any] = {}
    while time.monotonic() < deadline:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] in done:
            return env
        time.sleep(2)
    raise TimeoutError(f"{name} stayed {env.get('Status')}")


def wait_gone(mwaa: Any, name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            mwaa.get_environment(Name=name)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            return
        time.sleep(1)
    raise TimeoutError(f"{name} was never deleted")


def create(mwaa: Any, name: str, version: str, **extra: Any) -> None:
    mwaa.create_environment(
        Name=name, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        EnvironmentClass="mw1.micro", AirflowVersion=version, MaxWorkers=2, **extra,
    )


def rest(server: LiveServer, env: dict[str, Any]) -> AirflowRest:
    return AirflowRest(server.data_dir / "envs" / env["Name"], env["WebserverUrl"], env["AirflowVersion"])
