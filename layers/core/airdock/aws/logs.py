"""CloudWatch log groups `airflow-{Name}-{Module}`, one per module enabled in the environment's
LoggingConfiguration (MWAA's names, so existing dashboards and queries keep working)."""
from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.core.logs import MODULE_NAMES, enabled_modules, log_group_name
from airdock.core.models import Environment


class CloudWatchLogGroups:
    def __init__(self, retention_days: int = 30, client: Any | None = None) -> None:
        self.retention_days = retention_days
        self.logs = client or boto3.client("logs")

    def ensure(self, env: Environment, kms_key: str | None = None) -> dict[str, str]:
        """Create the groups of the enabled modules (an existing group is kept: it may hold the
        environment's earlier logs); returns module -> group name. With `kms_key` (the key ARN of
        the environment's KmsKey; its key policy must let CloudWatch Logs use it) the groups are
        encrypted with it, an existing one too."""
        groups: dict[str, str] = {}
        for module in enabled_modules(env):
            name = log_group_name(env.Name, module)
            try:
                self.logs.create_log_group(logGroupName=name, tags={"airdock:environment": env.Name},
                                           **({"kmsKeyId": kms_key} if kms_key else {}))
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
                if kms_key:
                    self.logs.associate_kms_key(logGroupName=name, kmsKeyId=kms_key)
            self.logs.put_retention_policy(logGroupName=name, retentionInDays=self.retention_days)
            groups[module] = name
        return groups

    def existing(self, env_name: str) -> list[str]:
        prefix = f"airflow-{env_name}-"
        names: list[str] = []
        for page in self.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            names.extend(g["logGroupName"] for g in page["logGroups"] if g["logGroupName"][len(prefix):] in MODULE_NAMES)
        return names

    def delete(self, env_name: str) -> None:
        for name in self.existing(env_name):
            try:
                self.logs.delete_log_group(logGroupName=name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
