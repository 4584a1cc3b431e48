"""Whether the caller may hand an environment its execution role.

An environment runs DAG code as its `ExecutionRoleArn`. MWAA therefore requires the caller of
CreateEnvironment (and of an UpdateEnvironment that changes the role) to be allowed `iam:PassRole`
on that role itself; otherwise any caller of the API could run code as any role the service may
pass (a confused deputy). Airdock passes the role to ECS tasks, so the question asked is: may the
caller `iam:PassRole` this role with `iam:PassedToService` = `ecs-tasks.amazonaws.com`?

The answer comes from the `RolePassing` port (on AWS: IAM's policy simulator on the calling
principal, airdock/aws/iam.py). A deployment without one (local mode, whose roles are names only)
does not check, as before.
"""
from __future__ import annotations

from typing import Protocol

from airdock.core.errors import AccessDenied
from airdock.core.ports import Caller

PASSED_TO_SERVICE = "ecs-tasks.amazonaws.com"


class RolePassing(Protocol):
    def may_pass(self, caller: Caller, role_arn: str, service: str) -> bool:
        """True when `caller` may `iam:PassRole` `role_arn` to `service`."""


def check(passing: RolePassing | None, caller: Caller | None, role_arn: str) -> None:
    """Raise MWAA's AccessDeniedException unless `caller` may pass `role_arn` to the tasks."""
    if passing is None or caller is None:
        return
    if not passing.may_pass(caller, role_arn, PASSED_TO_SERVICE):
        raise AccessDenied(
            f"User: {caller.principal_arn} is not authorized to perform: iam:PassRole on resource: {role_arn} "
            f"(with iam:PassedToService {PASSED_TO_SERVICE}): the environment's execution role must be one the caller "
            "may pass."
        )
