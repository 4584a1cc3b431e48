"""An environment's secrets in Secrets Manager, `airdock/{Name}/{secret}`, with the keys the
blueprint names (core.blueprint.SECRET_KEYS): made once and never rotated (the Fernet key
encrypts stored connections); a key an older secret lacks is added, existing keys never change,
since an ECS task naming a missing JSON key would not start. The database secret is made with the
database (database.py)."""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.core.blueprint import DATABASE_SECRET, SECRET_KEYS, new_secret

DESCRIPTIONS = {
    "airflow": "Airflow keys of Airdock environment {name}",
    "web-front": "Token key of Airdock environment {name}'s web front",
}


class EnvironmentSecrets:
    def __init__(self, client: Any, *, region: str, account_id: str, partition: str = "aws") -> None:
        self.sm = client
        self.region, self.account_id, self.partition = region, account_id, partition

    def ensure(self, env_name: str, kms_key: str | None = None) -> dict[str, str]:
        """Every secret of the environment exists with every key: secret -> ARN. A secret made
        here is encrypted with `kms_key` (the environment's KmsKey, kms.py) when given."""
        return {secret: self._ensure(env_name, secret, kms_key) for secret in SECRET_KEYS}

    def arns(self, env_name: str) -> dict[str, str]:
        """secret -> ARN of every secret the components name, made or not (a pre-flight of a new
        configuration registers task definitions before anything exists)."""
        return {secret: self.arn(env_name, secret) for secret in (*SECRET_KEYS, DATABASE_SECRET)}

    def arn(self, env_name: str, secret: str) -> str:
        name = naming.secret_name(env_name, secret)
        try:
            return str(self.sm.describe_secret(SecretId=name)["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                # Not created yet: the name resolves at run time.
                return f"arn:{self.partition}:secretsmanager:{self.region}:{self.account_id}:secret:{name}"
            raise

    def _ensure(self, env_name: str, secret: str, kms_key: str | None = None) -> str:
        name = naming.secret_name(env_name, secret)
        try:
            arn = str(self.sm.describe_secret(SecretId=name)["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        else:
            current = json.loads(self.sm.get_secret_value(SecretId=arn)["SecretString"])
            missing = {k: make() for k, make in SECRET_KEYS[secret].items() if k not in current}
            if missing:
                self.sm.put_secret_value(SecretId=arn, SecretString=json.dumps({**current, **missing}))
            return arn
        try:
            return str(self.sm.create_secret(
                Name=name, SecretString=json.dumps(new_secret(secret)),
                Description=DESCRIPTIONS[secret].format(name=env_name),
                **({"KmsKeyId": kms_key} if kms_key else {}),
                Tags=[{"Key": "airdock:environment", "Value": env_name}],
            )["ARN"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceExistsException":
                return str(self.sm.describe_secret(SecretId=name)["ARN"])
            raise

    def delete(self, env_name: str) -> None:
        for secret in SECRET_KEYS:
            try:
                self.sm.delete_secret(SecretId=naming.secret_name(env_name, secret), ForceDeleteWithoutRecovery=True)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
