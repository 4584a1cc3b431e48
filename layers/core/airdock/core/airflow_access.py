"""Who a caller is inside Airflow: the Airflow role and user name behind a signed MWAA request.

MWAA decides the role from IAM: `airflow:CreateWebLoginToken` on
`arn:aws:airflow:{region}:{account}:role/{environment}/{role}`. Airdock has access keys, not IAM
policies, so the role comes from a small per-key policy instead:

    {"<access key id or principal ARN>": "Viewer"}                       every environment
    {"<access key id or principal ARN>": {"prod": "Viewer", "*": "Op"}}  per environment

The account root is Admin unless the policy says otherwise; any other caller without an entry
gets no Airflow access. A later authorization layer can replace `airflow_role` wholesale.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airdock.core.errors import AccessDenied, ValidationError
from airdock.core.ports import Caller
from airdock_runtime.tokens import AIRFLOW_ROLES

RolePolicy = Mapping[str, Any]

# Airflow user names are at most 64 characters (CreateWebLoginToken's AirflowIdentity limit).
_AIRFLOW_NAME_MAX = 64

# MWAA's whole AccessDeniedException message when InvokeRestApi finds no Airflow role for the
# caller. The Amazon provider's MwaaHook looks for "Airflow role" in it to fall back to a web
# login session, so the wording is part of the contract.
NO_AIRFLOW_ROLE = "No Airflow role granted in IAM."


def iam_identity(principal_arn: str) -> str:
    """The identity part of an ARN, as MWAA reports it: `assumed-role/Admin/your-name`,
    `user/alice`, `root`."""
    if principal_arn.startswith("arn:"):
        parts = principal_arn.split(":", 5)
        if len(parts) == 6 and parts[5]:
            return parts[5]
    return principal_arn or "anonymous"


def airflow_identity(principal_arn: str) -> str:
    """The Airflow user name MWAA gives an IAM identity: the identity itself, within 64 chars."""
    return iam_identity(principal_arn)[:_AIRFLOW_NAME_MAX]


def _is_root(caller: Caller) -> bool:
    return caller.principal_arn.endswith(":root")


def _normalise(role: Any, where: str) -> str:
    for known in AIRFLOW_ROLES:
        if isinstance(role, str) and role.lower() == known.lower():
            return known
    raise ValidationError(f"The Airflow role policy names an unknown role {role!r} for {where}; "
                          f"use one of {', '.join(AIRFLOW_ROLES)}.")


def airflow_role(caller: Caller, environment: str, policy: RolePolicy | None = None,
                 operation: str = "CreateWebLoginToken") -> str:
    """The Airflow role `caller` gets in `environment` for `operation`, or AccessDenied."""
    policy = policy or {}
    for subject in (caller.access_key_id, caller.principal_arn):
        entry = policy.get(subject)
        if entry is None:
            continue
        if isinstance(entry, Mapping):
            entry = entry.get(environment, entry.get("*"))
            if entry is None:
                continue
        return _normalise(entry, subject)
    if _is_root(caller):
        return "Admin"
    if operation == "InvokeRestApi":
        raise AccessDenied(NO_AIRFLOW_ROLE)
    raise AccessDenied(
        f"User: {caller.principal_arn} is not authorized to access Airflow in environment {environment}.")
