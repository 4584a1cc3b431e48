"""Names of the AWS resources Airdock creates per environment, within each service's limits.

An MWAA name may be 80 characters, more than several AWS names allow (SQS 80 with a prefix,
target groups 32, PostgreSQL identifiers 63). A name that does not fit is cut and suffixed with a
hash of the full name, so two long names sharing a prefix still get distinct resources, and the
same environment always gets the same names (every step can find what an earlier run created).
"""
from __future__ import annotations

import hashlib
import re

PREFIX = "airdock"


def fit(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def queue_name(env: str) -> str:
    return fit(f"{PREFIX}-{env}-celery", 80)


def service_name(env: str, component: str) -> str:
    return fit(f"{PREFIX}-{env}-{component}", 255)


def family(env: str, component: str) -> str:
    return fit(f"{PREFIX}-{env}-{component}", 255)


def target_group_name(env: str) -> str:
    # 32 characters, alphanumerics and hyphens, no leading/trailing hyphen.
    return fit(f"ad-{env.replace('_', '-')}", 32).strip("-")


def discovery_service_name(env: str, component: str) -> str:
    """A Cloud Map service name that is one DNS label (63 characters, [a-z0-9-]). An environment
    name with `_` or capitals is changed to fit, and then suffixed with a hash of the original, so
    `a_b` and `a-b` never share a name."""
    raw = f"{env}-{component}"
    label = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if label != raw:
        label = f"{label[:54]}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return fit(label, 63).strip("-")


def secret_name(env: str, kind: str) -> str:
    return f"{PREFIX}/{env}/{kind}"


def pg_identifier(env: str, kind: str) -> str:
    """A lower-case PostgreSQL identifier (63 bytes) safe to quote: [a-z0-9_] only."""
    return fit(f"{PREFIX}_{kind}_{re.sub(r'[^a-z0-9_]', '_', env.lower())}", 63).replace("-", "_")



def started_by(env: str) -> str:
    # ECS startedBy: 36 characters at most.
    return fit(f"adk-{env}", 36)
