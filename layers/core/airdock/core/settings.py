"""Settings read once from the environment and checked at start (bad values fail fast)."""
from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    account_id: str = Field(default="000000000000", pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    partition: str = "aws"

    @classmethod
    def from_environ(cls) -> "Settings":
        return cls(
            account_id=os.environ.get("AIRDOCK_ACCOUNT_ID", "000000000000"),
            region=os.environ.get("AIRDOCK_REGION", os.environ.get("AWS_REGION", "us-east-1")),
        )

    def environment_arn(self, name: str) -> str:
        return f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:environment/{name}"

    def name_from_arn(self, arn: str) -> str | None:
        prefix = f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:environment/"
        return arn[len(prefix):] if arn.startswith(prefix) else None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_environ()
