"""Who may call which MWAA operation on which resource: IAM identity policies, evaluated here.

Policies are IAM JSON documents (the subset that matters for MWAA):

    {"Version": "2012-10-17",
     "Statement": [
       {"Effect": "Allow", "Action": "airflow:*",
        "Resource": "arn:aws:airflow:us-east-1:000000000000:environment/dev-*"},
       {"Effect": "Allow", "Action": ["airflow:CreateWebLoginToken", "airflow:InvokeRestApi"],
        "Resource": "arn:aws:airflow:us-east-1:000000000000:role/dev-*/Viewer"},
       {"Effect": "Deny", "Action": "airflow:DeleteEnvironment", "Resource": "*"}]}

Evaluation follows IAM's identity-policy logic: an explicit Deny wins; otherwise any Allow
allows; otherwise the request is denied (implicit deny). `Action`/`NotAction` match with IAM
wildcards (`*`, `?`) case-insensitively, `Resource`/`NotResource` case-sensitively. `Condition`
and `Principal` are refused when a policy is loaded rather than ignored: ignoring a condition on
an Allow would grant more than the author wrote.

Resources, as MWAA's IAM reference defines them:
- environment operations (and tags): `arn:aws:airflow:{region}:{account}:environment/{Name}`;
- CreateWebLoginToken and InvokeRestApi: the Airflow role the caller gets,
  `arn:aws:airflow:{region}:{account}:role/{Name}/{Role}` — the operation is allowed when at least
  one role is, and the data plane hands out the most privileged allowed role
  (`allowed_airflow_roles`);
- ListEnvironments: `*` (no resource-level permission, as in IAM).

Where it runs: locally the API handler calls `Authorizer.authorize` once per request (every route
of functions/api/app.py is registered through `_operation`, which does it) with the policies of
the signing access key (managed with `airdock keys`). On AWS, API Gateway's AWS_IAM authorization
makes IAM evaluate the caller's real policies before the Lambda runs, so the AWS wiring installs
no authorizer; a deployment that fronts Airdock differently can feed the same `Authorizer` from
its own `PolicySource`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError as PydanticValidationError, field_validator, model_validator

from airdock.core.airflow_access import NO_AIRFLOW_ROLE
from airdock.core.errors import AccessDenied, ValidationError
from airdock.core.paths import CACHED_LENGTH, percent_decode
from airdock.core.ports import Caller

SERVICE = "airflow"
# Operations whose resource is the Airflow role the caller is given (MWAA's `rbac-role` resource).
ROLE_SCOPED = frozenset({"CreateWebLoginToken", "InvokeRestApi"})
# Most privileged first: the data plane gives a caller the first role its policies allow.
ROLE_PRECEDENCE = ("Admin", "Op", "User", "Viewer", "Public")

Decision = Literal["Allow", "ExplicitDeny", "ImplicitDeny"]


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("must be a string or a non-empty list of strings")


class PolicyStatement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Sid: str | None = None
    Effect: Literal["Allow", "Deny"]
    Action: list[str] | None = None
    NotAction: list[str] | None = None
    Resource: list[str] | None = None
    NotResource: list[str] | None = None

    @field_validator("Action", "NotAction", "Resource", "NotResource", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> list[str] | None:
        return _strings(value)

    @model_validator(mode="after")
    def _one_of_each(self) -> "PolicyStatement":
        if (self.Action is None) == (self.NotAction is None):
            raise ValueError("a statement needs exactly one of Action or NotAction")
        if (self.Resource is None) == (self.NotResource is None):
            raise ValueError("a statement needs exactly one of Resource or NotResource")
        return self

    def applies(self, action: str, resource: str) -> bool:
        if self.Action is not None:
            action_ok = any(_match(p, action, ignore_case=True) for p in self.Action)
        else:
            action_ok = not any(_match(p, action, ignore_case=True) for p in self.NotAction or [])
        if not action_ok:
            return False
        if self.Resource is not None:
            return any(_match(p, resource) for p in self.Resource)
        return not any(_match(p, resource) for p in self.NotResource or [])


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Version: Literal["2012-10-17", "2008-10-17"] = "2012-10-17"
    Id: str | None = None
    Statement: list[PolicyStatement] = Field(min_length=1)

    @field_validator("Statement", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


def parse_policy(document: Any) -> Policy:
    """A policy document (already JSON-decoded), or ValidationError naming what is wrong."""
    try:
        return Policy.model_validate(document)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        hint = " (Condition and Principal are not supported)" if first["type"] == "extra_forbidden" else ""
        raise ValidationError(f"Invalid policy at {where}: {first['msg']}{hint}.") from None


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards only: `*` any run of characters (also across ':' and '/'), `?` one character.
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def evaluate(policies: Iterable[Policy], action: str, resource: str) -> Decision:
    """IAM's identity-policy decision for one (action, resource): explicit Deny > Allow > implicit deny."""
    allowed = False
    for policy in policies:
        for statement in policy.Statement:
            if statement.applies(action, resource):
                if statement.Effect == "Deny":
                    return "ExplicitDeny"
                allowed = True
    return "Allow" if allowed else "ImplicitDeny"


class PolicySource(Protocol):
    def __call__(self, caller: Caller) -> list[Policy] | None:
        """The identity policies of the caller; None = unrestricted (the account root)."""


@dataclass(frozen=True)
class Target:
    """What one request asks for: the operation and the name or ARN it acts on."""

    operation: str
    environment: str | None = None
    resource_arn: str | None = None


class Authorizer:
    def __init__(self, policies: PolicySource, partition: str, region: str, account_id: str) -> None:
        self.policies = policies
        self.partition = partition
        self.region = region
        self.account_id = account_id

    # ---- resources -----------------------------------------------------------------------------

    def environment_arn(self, name: str) -> str:
        return f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:environment/{name}"

    def role_arn(self, name: str, role: str) -> str:
        return f"arn:{self.partition}:airflow:{self.region}:{self.account_id}:role/{name}/{role}"

    def resource_of(self, target: Target) -> str:
        if target.resource_arn is not None:
            return target.resource_arn
        if target.environment is not None:
            return self.environment_arn(target.environment)
        return "*"

    # ---- decisions -----------------------------------------------------------------------------

    def allowed_airflow_roles(self, caller: Caller, environment: str,
                              operation: str = "CreateWebLoginToken") -> list[str] | None:
        """The Airflow roles `caller` may have in `environment` for `operation`, most privileged
        first; None when the caller is unrestricted (the root key: the data plane's own default)."""
        policies = self.policies(caller)
        if policies is None:
            return None
        action = f"{SERVICE}:{operation}"
        return [role for role in ROLE_PRECEDENCE
                if evaluate(policies, action, self.role_arn(environment, role)) == "Allow"]

    def denied_role(self, caller: Caller, environment: str, operation: str) -> AccessDenied:
        if operation == "InvokeRestApi":
            return AccessDenied(NO_AIRFLOW_ROLE)
        return access_denied(caller.principal_arn, f"{SERVICE}:{operation}", self.role_arn(environment, "*"),
                             "ImplicitDeny")

    def authorize(self, caller: Caller, target: Target) -> None:
        """Return if `caller` may perform `target`, else raise AccessDenied (AWS's wording)."""
        policies = self.policies(caller)
        if policies is None:
            return
        action = f"{SERVICE}:{target.operation}"
        if target.operation in ROLE_SCOPED and target.environment is not None:
            decisions = [evaluate(policies, action, self.role_arn(target.environment, r)) for r in ROLE_PRECEDENCE]
            if "Allow" in decisions:
                return
            if target.operation == "InvokeRestApi":
                raise AccessDenied(NO_AIRFLOW_ROLE)
            decision: Decision = "ExplicitDeny" if all(d == "ExplicitDeny" for d in decisions) else "ImplicitDeny"
            resource = self.role_arn(target.environment, "*")
        else:
            resource = self.resource_of(target)
            decision = evaluate(policies, action, resource)
            if decision == "Allow":
                return
        raise access_denied(caller.principal_arn, action, resource, decision)


def access_denied(principal: str, action: str, resource: str, decision: Decision) -> AccessDenied:
    why = ("with an explicit deny in an identity-based policy" if decision == "ExplicitDeny"
           else f"because no identity-based policy allows the {action} action")
    return AccessDenied(f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}")


# ---- which operation a request is --------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    params: tuple[str, ...]


@lru_cache(maxsize=1)
def _routes() -> tuple[_Route, ...]:
    from airdock.core.operations import ALL_OPERATIONS

    routes = []
    for op in ALL_OPERATIONS:
        params = tuple(re.findall(r"\{(\w+)\}", op.path))
        regex = re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(op.path))
        routes.append(_Route(op.name, op.method, re.compile(regex + "/?"), params))
    return tuple(routes)


def target_of(method: str, path: str) -> Target | None:
    """The operation a request path names (from the operations table), or None if none does."""
    # Cached like paths.percent_decode, and for the same reason (a Target is immutable).
    return _target_of(method, path) if len(path) <= CACHED_LENGTH else _target_of.__wrapped__(method, path)


@lru_cache(maxsize=4096)
def _target_of(method: str, path: str) -> Target | None:
    for route in _routes():
        if route.method != method.upper():
            continue
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        values = {p: percent_decode(v) for p, v in zip(route.params, found.groups())}
        return Target(route.operation, values.get("Name") or values.get("EnvironmentName"), values.get("ResourceArn"))
    return None

