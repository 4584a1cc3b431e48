"""MWAA Serverless quotas and knobs, read once from the environment."""
from __future__ import annotations

import os

from pydantic import BaseModel, Field


class ServerlessSettings(BaseModel):
    # MWAA Serverless's default quotas (mwaa-serverless-quotas).
    max_workflows: int = Field(100, ge=1)
    max_versions: int = Field(50, ge=1)
    max_concurrent_runs: int = Field(100, ge=1)
    max_runs_per_workflow: int = Field(20, ge=1)

    @classmethod
    def from_environ(cls) -> "ServerlessSettings":
        def number(name: str, default: int) -> int:
            return int(os.environ.get(f"AIRDOCK_SERVERLESS_{name}", default))

        return cls(max_workflows=number("MAX_WORKFLOWS", 100), max_versions=number("MAX_VERSIONS", 50),
                   max_concurrent_runs=number("MAX_CONCURRENT_RUNS", 100),
                   max_runs_per_workflow=number("MAX_RUNS_PER_WORKFLOW", 20))
