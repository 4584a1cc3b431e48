"""RolePassing (core/role_passing.py) on IAM: the policy simulator, asked about the calling principal.

API Gateway's AWS_IAM authorization tells the function who signed the request
(`requestContext.identity.userArn`). IAM's SimulatePrincipalPolicy evaluates that principal's
identity policies, its permissions boundary and the organization's SCPs for `iam:PassRole` on the
role with the context key `iam:PassedToService`. It takes an IAM user or role ARN: a role session
(`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`) is simulated as its role, whose ARN (with its
path, which the session ARN leaves out) comes from GetRole. Not covered by the simulator, as IAM
documents: session policies and resource-based policies. The account's root user may pass any
role of its account; federated-user sessions and principals of other accounts are refused.
"""
from __future__ import annotations

import re
import threading
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.core.ports import Caller

_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/[^/]+$")
_USER_OR_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):(?:user|role)/.+$")
_ROOT = re.compile(r"^arn:[\w-]+:iam::(?P<account>\d{12}):root$")


class IamRolePassing:
    def __init__(self, account_id: str, client: Any | None = None) -> None:
        self.account_id = account_id
        self.iam = client or boto3.client("iam")
        # Role name -> ARN (with path): a role's path never changes, so one GetRole per role and sandbox.
        self._role_arns: dict[str, str] = {}
        self._lock = threading.Lock()

    def may_pass(self, caller: Caller, role_arn: str, service: str) -> bool:
        principal = caller.principal_arn
        root = _ROOT.match(principal)
        if root:
            return root["account"] == self.account_id
        source = self._policy_source(principal)
        if source is None:
            return False
        response = self.iam.simulate_principal_policy(
            PolicySourceArn=source,
            ActionNames=["iam:PassRole"],
            ResourceArns=[role_arn],
            ContextEntries=[{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": [service],
                             "ContextKeyType": "string"}],
        )
        results = response.get("EvaluationResults", [])
        return bool(results) and all(r.get("EvalDecision") == "allowed" for r in results)

    def _policy_source(self, principal: str) -> str | None:
        user_or_role = _USER_OR_ROLE.match(principal)
        if user_or_role:
            return principal if user_or_role["account"] == self.account_id else None
        session = _ASSUMED_ROLE.match(principal)
        if not session or session["account"] != self.account_id:
            return None
        name = session["role"]
        with self._lock:
            known = self._role_arns.get(name)
        if known:
            return known
        try:
            arn = str(self.iam.get_role(RoleName=name)["Role"]["Arn"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                return None  # deleted since it signed: it passes nothing
            raise
        with self._lock:
            self._role_arns[name] = arn
        return arn
