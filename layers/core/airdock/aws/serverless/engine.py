"""The MWAA Serverless engine on AWS: one ECS service (`ServerlessEngineService`: the Airflow 3
API server, scheduler and DAG processor of `images/serverless-engine`) whose tasks run through
Airflow's Amazon ECS executor, one Fargate task per task with the workflow's RoleArn as task role
(`airdock_serverless_engine.loader` puts it in each task's `executor_config`).

Versions travel through Airdock's artifacts bucket: `serverless/versions/{dag_id}/` holds
`dag.yaml`, `env.json`, `meta.json` (role, network, log group) and the code; the engine's
sync loop turns each folder into a DAG file, and a task's container fetches its version's folder
before it runs. The control plane reaches the API server by its Cloud Map name inside the VPC,
with a JWT signed by the engine's secret (Secrets Manager).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import cached_property
from typing import Any

from airdock.core.serverless.airflow_api import AirflowEngineApi, RunsThroughApi, error_of
from airdock.core.serverless.errors import EngineUnavailable
from airdock.core.serverless.ports import Deployment
from airdock_runtime.airflow_auth import mint_airflow_jwt

VERSIONS = "serverless/versions"


class EcsEngine(RunsThroughApi):
    def __init__(self, *, artifacts_bucket: str, api_url: str, secret_arn: str, s3: Any = None,
                 secrets: Any = None) -> None:
        import boto3

        self.bucket = artifacts_bucket
        self.api_url = api_url.rstrip("/")
        self.secret_arn = secret_arn
        self.s3 = s3 or boto3.client("s3")
        self.secrets_client = secrets or boto3.client("secretsmanager")

    @cached_property
    def _secrets(self) -> dict[str, str]:
        return dict(json.loads(self.secrets_client.get_secret_value(SecretId=self.secret_arn)["SecretString"]))

    def _api(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        token = mint_airflow_jwt(self._secrets["jwt_secret"], sub="admin", role="admin", ttl_s=300)
        request = urllib.request.Request(f"{self.api_url}/api/v2{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except (urllib.error.URLError, OSError) as exc:
            raise EngineUnavailable(f"the engine's API did not answer: {exc}") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    @property
    def rest(self) -> AirflowEngineApi:
        return AirflowEngineApi(self._api)

    # ---- versions ------------------------------------------------------------------------------------

    def _put_version(self, prefix: str, dag_yaml: str, code_ref: str | None, environment: dict[str, str],
                     meta: dict[str, Any]) -> None:
        for name, body in (("dag.yaml", dag_yaml), ("env.json", json.dumps(environment)), ("meta.json", json.dumps(meta))):
            self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/{name}", Body=body.encode(),
                               ServerSideEncryption="aws:kms" if name == "env.json" else "AES256")
        if code_ref:
            key = code_ref.split("/", 3)[3]
            self.s3.copy_object(Bucket=self.bucket, Key=f"{prefix}/code/{key.rsplit('/', 1)[1]}",
                                CopySource={"Bucket": self.bucket, "Key": key}, ServerSideEncryption="AES256")

    def check_definition(self, dag_yaml: str, dag_id: str, code_ref: str | None,
                         environment: dict[str, str]) -> list[str]:
        """Nothing more than the rules here: API Gateway gives a call 29 s, less than a Fargate
        task takes to start. As on AWS, a definition dag-factory cannot load fails its runs with
        the loader's error (AirflowEngineApi.trigger reads the engine's import errors)."""
        return []

    def deploy(self, deployment: Deployment) -> None:
        self._put_version(f"{VERSIONS}/{deployment.dag_id}", deployment.dag_yaml, deployment.code_ref,
                          deployment.environment, {
                              "dag_id": deployment.dag_id, "workflow_id": deployment.workflow_id,
                              "workflow_arn": deployment.workflow_arn, "version": deployment.version,
                              "role_arn": deployment.role_arn, "network": deployment.network or {},
                              "log_group": deployment.log_group})

    def _delete_prefix(self, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{prefix}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def undeploy(self, dag_id: str, workflow_id: str, version: str) -> None:
        self._delete_prefix(f"{VERSIONS}/{dag_id}")
        try:
            self.rest.delete_dag(dag_id)
        except EngineUnavailable:
            pass  # the DAG processor retires a DAG whose file is gone; its history goes with the next delete

    # ---- runs ----------------------------------------------------------------------------------------

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[dict[str, Any]]:
        return self.rest.task_log(dag_id, run_id, task_id, try_number)

    def task_error(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
        return error_of(self.task_log(dag_id, run_id, task_id, try_number))

    def log_stream(self, workflow_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return f"workflow_id={workflow_id}/run_id={run_id}/task_id={task_id}/attempt={try_number}.log"
