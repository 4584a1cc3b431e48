"""Celery broker on SQS: one queue per environment; its ARN is the environment's
`CeleryExecutorQueue`, as in MWAA."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.core.errors import ProvisioningError

# Celery acknowledges late on SQS: a message invisible for less than the longest task would be
# delivered twice. MWAA uses 12 h (SQS's maximum) for the same reason.
VISIBILITY_TIMEOUT_S = 43200
RETENTION_S = 1209600  # 14 days, SQS's maximum: queued tasks survive a long outage
# With a customer managed key, SQS asks KMS for a data key at most this often (its maximum, 24 h):
# every KMS request is billed, and Celery polls the queue all the time.
DATA_KEY_REUSE_S = 86400


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    arn: str


class SqsBroker:
    def __init__(self, client: Any | None = None) -> None:
        self.sqs = client or boto3.client("sqs")

    def ensure(self, env_name: str, tags: dict[str, str] | None = None, kms_key: str | None = None) -> Queue:
        """Create the queue, or return it when an earlier run created it (CreateQueue is
        idempotent for identical attributes; different attributes mean someone else's queue).
        Encrypted with `kms_key` (the environment's KmsKey) when given, else with SQS's own keys."""
        name = naming.queue_name(env_name)
        encryption = ({"KmsMasterKeyId": kms_key, "KmsDataKeyReusePeriodSeconds": str(DATA_KEY_REUSE_S)} if kms_key
                      else {"SqsManagedSseEnabled": "true"})
        try:
            url = self.sqs.create_queue(
                QueueName=name,
                Attributes={
                    "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
                    "MessageRetentionPeriod": str(RETENTION_S),
                    **encryption,
                },
                tags={"airdock:environment": env_name, **(tags or {})},
            )["QueueUrl"]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("QueueAlreadyExists", "QueueNameExists"):
                raise ProvisioningError(
                    "BROKER_QUEUE_CONFLICT",
                    f"An SQS queue named {name} already exists with other settings; delete it or rename the environment.",
                ) from None
            if code in ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"):
                # SQS refuses a name for 60 s after a delete: the step's retry gets past it.
                from airdock.aws.errors import TransientError

                raise TransientError(f"queue {name} was deleted less than a minute ago") from None
            raise
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Queue(name=name, url=url, arn=arn)

    def find(self, env_name: str) -> Queue | None:
        name = naming.queue_name(env_name)
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                return None
            raise
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Queue(name=name, url=url, arn=arn)

    def depth(self, env_name: str) -> int:
        """Messages waiting plus in flight (queued Celery tasks); 0 when there is no queue."""
        queue = self.find(env_name)
        if queue is None:
            return 0
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))

    def delete(self, env_name: str) -> None:
        queue = self.find(env_name)
        if queue is None:
            return
        try:
            self.sqs.delete_queue(QueueUrl=queue.url)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise

    @staticmethod
    def celery_environment(queue: Queue, region: str) -> dict[str, str]:
        """Airflow settings that point Celery at this queue (the task role grants access)."""
        import json

        return {
            "AIRFLOW__CELERY__BROKER_URL": "sqs://",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION": region,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES": json.dumps({"default": {"url": queue.url}}),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        }
