"""The sample that `make run` starts with: a bucket holding an example DAG, and an environment."""
from __future__ import annotations

import logging

from airdock.core.errors import ValidationError
from airdock.core.models import CreateEnvironmentInput
from airdock.local.context import LocalContext

log = logging.getLogger(__name__)

SAMPLE_BUCKET = "airdock-samples"
SAMPLE_ENVIRONMENT = "sample"
EXAMPLE_DAG = '''\
"""An example DAG: one task that says hello, one that retries once before it succeeds."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def hello() -> str:
    print("hello from Airdock")
    return "hello"


def flaky(ti=None) -> None:
    if ti is not None and ti.try_number < 2:
        raise RuntimeError("first try fails on purpose; the retry succeeds")


with DAG(
    dag_id="example_hello",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
) as dag:
    PythonOperator(task_id="hello", python_callable=hello) >> PythonOperator(task_id="flaky", python_callable=flaky)
'''


def seed_bucket(context: LocalContext) -> None:
    dags = context.data_dir / "buckets" / SAMPLE_BUCKET / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "example_hello.py").write_text(EXAMPLE_DAG, encoding="utf-8")


def seed_sample(context: LocalContext) -> None:
    seed_bucket(context)
    if context.repository.get(SAMPLE_ENVIRONMENT) is not None:
        return
    request = CreateEnvironmentInput.model_validate({
        "Name": SAMPLE_ENVIRONMENT,
        "ExecutionRoleArn": f"arn:aws:iam::{context.settings.account_id}:role/airdock-sample",
        "SourceBucketArn": f"arn:aws:s3:::{SAMPLE_BUCKET}",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-local-a", "subnet-local-b"], "SecurityGroupIds": ["sg-local"]},
        "EnvironmentClass": "mw1.micro",
        "MaxWorkers": 2,
    })
    try:
        context.service.create_environment(request)
        log.info("sample environment %r created", SAMPLE_ENVIRONMENT)
    except ValidationError as exc:
        log.warning("sample environment not created: %s", exc.message)
