"""An environment's KmsKey: checked once, then used for its data at rest.

MWAA encrypts an environment's data with the customer managed key given as `KmsKey` (a key id, key
ARN, alias name or alias ARN). Airdock uses it for the environment's secrets (Secrets Manager), its
Celery queue (SQS) and its log groups (CloudWatch Logs). CloudWatch Logs takes only a key ARN, and an
alias may later point elsewhere, so the key is resolved once to its ARN with DescribeKey, and
refused, with an error naming the field, unless it is an enabled symmetric encryption key in the
deployment's region (SQS, Secrets Manager and CloudWatch Logs take no other kind).
"""
from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.core.errors import ProvisioningError

INCOMPATIBLE_KMS_KEY = "INCOMPATIBLE_KMS_KEY"


class KmsKeys:
    def __init__(self, region: str, client: Any | None = None) -> None:
        self.region = region
        self.kms = client or boto3.client("kms", region_name=region)

    def resolve(self, key: str | None) -> str | None:
        """The key's ARN (None without a key), or ProvisioningError saying what is wrong with it."""
        if not key:
            return None
        if key.startswith("arn:") and key.split(":")[3] != self.region:
            raise ProvisioningError(INCOMPATIBLE_KMS_KEY, f"KmsKey {key} is in {key.split(':')[3]}, not in {self.region}, "
                                    "where the environment runs: give a key of this region.")
        try:
            metadata = self.kms.describe_key(KeyId=key)["KeyMetadata"]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NotFoundException", "AccessDeniedException", "InvalidArnException"):
                raise ProvisioningError(INCOMPATIBLE_KMS_KEY, (
                    f"KmsKey {key} was not found, or Airdock may not use it ({code}): give a key in {self.region} whose "
                    "key policy lets this account use it.")) from None
            raise
        arn = str(metadata["Arn"])
        problems = []
        if metadata.get("KeyState") != "Enabled":
            problems.append(f"its state is {metadata.get('KeyState')}, not Enabled")
        spec, usage = metadata.get("KeySpec") or "SYMMETRIC_DEFAULT", metadata.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            problems.append(f"it is a {spec} key for {usage}, not a symmetric "
                            "encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)")
        if problems:
            raise ProvisioningError(INCOMPATIBLE_KMS_KEY, f"KmsKey {key} ({arn}) cannot encrypt the environment: "
                                    + "; ".join(problems) + ".")
        return arn
