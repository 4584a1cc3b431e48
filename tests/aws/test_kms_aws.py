"""KmsKey, under moto: the environment's secrets, its Celery queue and its log groups are encrypted
with the key it names (resolved to the key's ARN, since CloudWatch Logs takes no alias), and a key
that cannot do that fails the create with an error saying why, before anything is made."""
from __future__ import annotations

import pytest

from airdock.aws import naming
from airdock.core.errors import ProvisioningError
from aws.conftest import REGION, Stack
from aws.test_adapters import _up, environment


def _key(stack: Stack, **kwargs: object) -> dict[str, str]:
    return stack.client("kms").create_key(Description="airdock environment", **kwargs)["KeyMetadata"]


def test_an_environment_with_a_kms_key_encrypts_its_secrets_queue_and_log_groups_with_it(stack: Stack) -> None:
    key = _key(stack)
    stack.client("kms").create_alias(AliasName="alias/airflow", TargetKeyId=key["KeyId"])
    env = environment(stack, KmsKey="alias/airflow",
                      LoggingConfiguration={"WorkerLogs": {"Enabled": True, "LogLevel": "INFO"},
                                            "TaskLogs": {"Enabled": True, "LogLevel": "INFO"}})
    _up(stack, env)

    sm = stack.client("secretsmanager")
    for kind in ("database", "airflow", "web-front"):
        assert sm.describe_secret(SecretId=naming.secret_name(env.Name, kind))["KmsKeyId"] == key["Arn"], kind
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=naming.queue_name(env.Name))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == key["Arn"]
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=f"airflow-{env.Name}-")["logGroups"]
    assert {g["logGroupName"]: g.get("kmsKeyId") for g in groups} == {
        f"airflow-{env.Name}-Worker": key["Arn"], f"airflow-{env.Name}-Task": key["Arn"]}


def test_without_a_kms_key_sqs_and_secrets_manager_use_their_own_keys(stack: Stack) -> None:
    env = environment(stack)
    _up(stack, env)
    assert "KmsKeyId" not in stack.client("secretsmanager").describe_secret(SecretId=naming.secret_name(env.Name, "airflow"))
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=naming.queue_name(env.Name))["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["SqsManagedSseEnabled"] == "true"


@pytest.mark.parametrize(("setup", "why"), [
    ("missing", "was not found"),
    ("disabled", "its state is Disabled"),
    ("asymmetric", "not a symmetric encryption key"),
    ("elsewhere", "not in us-east-1"),
])
def test_a_key_that_cannot_encrypt_the_environment_fails_before_anything_is_made(stack: Stack, setup: str, why: str) -> None:
    kms = stack.client("kms")
    if setup == "missing":
        key = f"arn:aws:kms:{REGION}:123456789012:key/0b0b0b0b-0b0b-0b0b-0b0b-0b0b0b0b0b0b"
    elif setup == "disabled":
        created = _key(stack)
        kms.disable_key(KeyId=created["KeyId"])
        key = created["Arn"]
    elif setup == "asymmetric":
        key = _key(stack, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["Arn"]
    else:
        import boto3

        key = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
    env = environment(stack, KmsKey=key)
    with pytest.raises(ProvisioningError) as failed:
        stack.compute().prepare(env, lambda _m: None)
    assert failed.value.code == "INCOMPATIBLE_KMS_KEY"
    assert why in failed.value.message and "KmsKey" in failed.value.message
    assert not stack.client("sqs").list_queues().get("QueueUrls")
    assert not [s for s in stack.client("secretsmanager").list_secrets()["SecretList"] if s["Name"].startswith("airdock/")]
