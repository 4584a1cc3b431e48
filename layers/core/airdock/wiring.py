"""Composition root: which adapters back the domain in this process.

Lambda functions call `environment_service()`; its adapters are chosen once from the environment
(`AIRDOCK_BACKEND=aws`, the default inside Lambda). The local server does not go through here: it
builds its own service and hands it to the handlers with Powertools' `dependency_overrides`, so
no module state is patched.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

from airdock.core.service import EnvironmentService
from airdock.core.settings import settings

if TYPE_CHECKING:
    from airdock.core.provisioning import Provisioner


@lru_cache(maxsize=1)
def environment_service() -> EnvironmentService:
    backend = os.environ.get("AIRDOCK_BACKEND", "aws")
    if backend == "aws":
        from airdock.aws.factory import build_service

        return build_service(settings())
    # Local mode never gets here: `airdock serve` builds its LocalContext and overrides this
    # dependency, so there is no second way to assemble the local adapters.
    raise RuntimeError(f"AIRDOCK_BACKEND must be 'aws' here (local mode injects its own service), not {backend!r}")


@lru_cache(maxsize=1)
def provisioner() -> "Provisioner":
    from airdock.aws.factory import build_compute
    from airdock.core.provisioning import Provisioner

    return Provisioner(environment_service(), build_compute(settings()))
