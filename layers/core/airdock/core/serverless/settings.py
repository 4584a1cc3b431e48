"""MWAA Serverless quotas, from the settings (core/settings.py)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from airdock.core.settings import Settings


class ServerlessSettings(BaseModel):
    # MWAA Serverless's default quotas (mwaa-serverless-quotas).
    max_workflows: int = Field(100, ge=1)
    max_versions: int = Field(50, ge=1)
    max_concurrent_runs: int = Field(100, ge=1)
    max_runs_per_workflow: int = Field(20, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ServerlessSettings":
        return cls(max_workflows=settings.serverless_max_workflows, max_versions=settings.serverless_max_versions,
                   max_concurrent_runs=settings.serverless_max_concurrent_runs,
                   max_runs_per_workflow=settings.serverless_max_runs_per_workflow)
