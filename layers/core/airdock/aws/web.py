"""Web access to an environment's Airflow UI/API through the deployment's shared load balancers.

WebserverAccessMode PUBLIC_ONLY (and PUBLIC_AND_PRIVATE) -> a rule on the internet-facing ALB's
listener; PRIVATE_ONLY -> a rule on the internal ALB's listener (reachable from the VPC only). Each
environment gets an `ip` target group (Fargate tasks are awsvpc) that its web front service
registers into (images/airflow/web_front.py: `/aws_mwaa/cli`, `/aws_mwaa/aws-console-sso`, and
everything else proxied to the Airflow webserver), and a listener rule routing to it: by host name
`{Name}.{domain}` when the deployment has a wildcard domain, else by path `/{Name}/*` (Airflow's
base_url carries the prefix, and the web front knows it as AIRDOCK_WEB_BASE_PATH: its sign-in page
posts, redirects and sets its cookie under it). With paths, `/{Name}/aws_mwaa/*` gets its own rule, ahead of the
environment's, to the same target group with a URL rewrite to `/aws_mwaa/*`: the web front serves
those endpoints at the root, where MWAA clients find them on a host of their own.

Idempotent: rules are found by the target group they forward to, so a re-run finds what an
earlier run created, and a change of access mode moves the rules to the other listener.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.core.errors import ProvisioningError
from airdock.core.models import Environment

WEB_PORT = 8080  # the Airflow API server / webserver in its task
WEB_FRONT_PORT = 8080  # the web front in its own task (awsvpc: its own address)
# The load balancer's health check: the web front's sign-in page, served without Airflow.
SSO_HEALTH_PATH = "/aws_mwaa/aws-console-sso"
FRONT_PATHS = "/aws_mwaa/*"


@dataclass(frozen=True)
class LoadBalancer:
    listener_arn: str
    dns_name: str
    https: bool = False


@dataclass(frozen=True)
class WebConfig:
    vpc_id: str
    private: LoadBalancer
    public: LoadBalancer | None = None
    domain: str | None = None  # environments are {Name}.{domain}; wildcard DNS points at the ALBs


class AlbWebAccess:
    def __init__(self, config: WebConfig, client: Any | None = None) -> None:
        self.config = config
        self.elb = client or boto3.client("elbv2")

    # ------------------------------------------------------------------ naming

    def load_balancer(self, env: Environment) -> LoadBalancer:
        if env.WebserverAccessMode in ("PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"):
            if self.config.public is None:
                raise ProvisioningError(
                    "PUBLIC_ACCESS_UNAVAILABLE",
                    "This Airdock deployment has no internet-facing load balancer. Redeploy it with the "
                    "PublicSubnetIds parameter set, or use WebserverAccessMode PRIVATE_ONLY.",
                )
            return self.config.public
        return self.config.private

    def base_path(self, env: Environment) -> str:
        return "" if self.config.domain else f"/{env.Name}"

    def hostname(self, env: Environment) -> str:
        if self.config.domain:
            return f"{env.Name}.{self.config.domain}"
        return f"{self.load_balancer(env).dns_name}{self.base_path(env)}"

    def base_url(self, env: Environment) -> str:
        scheme = "https" if self.load_balancer(env).https else "http"
        return f"{scheme}://{self.hostname(env)}"

    # ------------------------------------------------------------------ port-like operations

    def ensure(self, env: Environment, health_path: str) -> str:
        """Target group and listener rules; returns the target group ARN."""
        target_group = self._target_group(env, health_path)
        wanted = self.load_balancer(env)
        for other in self._listeners():
            if other.listener_arn != wanted.listener_arn:
                self._delete_rules(other.listener_arn, target_group)
        listener = wanted.listener_arn
        front_priority = 0
        if not self.config.domain:
            front = self._conditions(env, FRONT_PATHS)
            found = self._rules(listener, target_group, front)
            front_priority = (int(found[0]["Priority"]) if found else
                              self._create_rule(listener, front, target_group, env.Name, -1, self._front_transforms(env)))
        catch_all = self._conditions(env, "/*")
        for rule in self._rules(listener, target_group, catch_all):
            if int(rule["Priority"]) > front_priority:
                break
            # Lower number = evaluated first: the `/aws_mwaa/*` rule must come before this one.
            self._delete_rule(rule["RuleArn"])
        else:
            self._create_rule(listener, catch_all, target_group, env.Name, 0, after=front_priority)
        return target_group

    def delete(self, env_name: str) -> None:
        arn = self._find_target_group(env_name)
        for listener in self._listeners():
            if arn:
                self._delete_rules(listener.listener_arn, arn)
        if arn:
            try:
                self.elb.delete_target_group(TargetGroupArn=arn)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TargetGroupNotFound":
                    raise

    # ------------------------------------------------------------------ helpers

    def _front_transforms(self, env: Environment) -> list[dict[str, Any]]:
        # MWAA names are [a-zA-Z][0-9a-zA-Z-_]*: nothing to escape in the pattern.
        return [{"Type": "url-rewrite", "UrlRewriteConfig": {"Rewrites": [
            {"Regex": f"^/{env.Name}/aws_mwaa/(.*)$", "Replace": "/aws_mwaa/$1"}]}}]

    def _listeners(self) -> list[LoadBalancer]:
        return [lb for lb in (self.config.private, self.config.public) if lb is not None]

    def _conditions(self, env: Environment, suffix: str) -> list[dict[str, Any]]:
        if self.config.domain:
            host = [{"Field": "host-header", "HostHeaderConfig": {"Values": [f"{env.Name}.{self.config.domain}"]}}]
            paths = ["/aws_mwaa/*"] if suffix == "/aws_mwaa/*" else []
            return host + ([{"Field": "path-pattern", "PathPatternConfig": {"Values": paths}}] if paths else [])
        values = [f"/{env.Name}{suffix}"] + ([f"/{env.Name}"] if suffix == "/*" else [])
        return [{"Field": "path-pattern", "PathPatternConfig": {"Values": values}}]

    def _find_target_group(self, env_name: str) -> str | None:
        try:
            groups = self.elb.describe_target_groups(Names=[naming.target_group_name(env_name)])["TargetGroups"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TargetGroupNotFound":
                return None
            raise
        return groups[0]["TargetGroupArn"] if groups else None

    def _target_group(self, env: Environment, health_path: str) -> str:
        found = self._find_target_group(env.Name)
        if found:
            self.elb.modify_target_group(TargetGroupArn=found, HealthCheckPath=health_path)
            return found
        return str(self.elb.create_target_group(
            Name=naming.target_group_name(env.Name),
            Protocol="HTTP",
            Port=WEB_FRONT_PORT,
            VpcId=self.config.vpc_id,
            TargetType="ip",
            HealthCheckProtocol="HTTP",
            HealthCheckPath=health_path,
            HealthCheckIntervalSeconds=15,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=4,
            Matcher={"HttpCode": "200"},
            Tags=[{"Key": "airdock:environment", "Value": env.Name}],
        )["TargetGroups"][0]["TargetGroupArn"])

    def _rules(self, listener_arn: str, target_group: str, conditions: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for page in self.elb.get_paginator("describe_rules").paginate(ListenerArn=listener_arn):
            for rule in page["Rules"]:
                if any(a.get("TargetGroupArn") == target_group for a in rule.get("Actions", [])):
                    if conditions is None or _same_paths(rule["Conditions"], conditions):
                        rules.append(rule)
        return rules

    def _delete_rules(self, listener_arn: str, target_group: str) -> None:
        for rule in self._rules(listener_arn, target_group):
            if not rule.get("IsDefault"):
                self._delete_rule(rule["RuleArn"])

    def _delete_rule(self, arn: str) -> None:
        try:
            self.elb.delete_rule(RuleArn=arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "RuleNotFound":
                raise

    def _create_rule(self, listener_arn: str, conditions: list[dict[str, Any]], target_group: str, name: str,
                     slot: int, transforms: list[dict[str, Any]] | None = None, after: int = 0) -> int:
        """Create the rule; returns its priority. A stable priority per environment (rules are
        unique per priority), probing forward on a collision with another environment's, and
        always above `after`."""
        base = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 24000
        first = 0 if 2 * base + 2 + slot > after else (after - 2 * base - 2 - slot) // 2 + 1
        for attempt in range(first, first + 50):
            priority = 2 * (base + attempt) + 2 + slot
            request: dict[str, Any] = {
                "ListenerArn": listener_arn, "Priority": priority, "Conditions": conditions,
                "Actions": [{"Type": "forward", "TargetGroupArn": target_group}],
                "Tags": [{"Key": "airdock:environment", "Value": name}],
            }
            if transforms:
                request["Transforms"] = transforms
            try:
                self.elb.create_rule(**request)
                return priority
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "PriorityInUse":
                    raise
        raise ProvisioningError("WEB_ACCESS_FAILED", "No free listener rule priority was found on the load balancer.")


def _same_paths(actual: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    def paths(conditions: list[dict[str, Any]]) -> set[str]:
        out: set[str] = set()
        for c in conditions:
            out.update(c.get("PathPatternConfig", {}).get("Values", []) or c.get("Values", []) if c.get("Field") == "path-pattern" else [])
        return out

    return paths(actual) == paths(wanted)
