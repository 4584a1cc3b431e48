"""How an environment's web front reaches its Airflow API server/webserver: AWS Cloud Map.

The deployment has one private DNS namespace in its VPC (template.yaml, `ServiceDiscoveryNamespace`).
Each environment's webserver ECS service registers its tasks there as A records
(`serviceRegistries`), under a Cloud Map service named `{Name}-webserver` (made a DNS label), so
the web front's upstream is `http://{Name}-webserver.{namespace}:8080`, resolved by the VPC's DNS.
ECS registers and deregisters the task IPs itself; with several webserver tasks the name answers
each of them (MULTIVALUE), and an unhealthy task is taken out by ECS (custom health check).

Why not the internal load balancer: its listener's rules for the environment now send everything
to the web front, so it would proxy to itself; a second listener or a header rule would be one more
moving part, and one more hop, for the same result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airdock.aws import naming
from airdock.aws.errors import TransientError

UPSTREAM_COMPONENT = "webserver"


@dataclass(frozen=True)
class DiscoveryConfig:
    namespace_id: str
    namespace_name: str  # the DNS domain, e.g. airdock.internal


class CloudMapDiscovery:
    def __init__(self, config: DiscoveryConfig, client: Any | None = None) -> None:
        self.config = config
        self.sd = client or boto3.client("servicediscovery")

    def service_name(self, env_name: str) -> str:
        return naming.discovery_service_name(env_name, UPSTREAM_COMPONENT)

    def hostname(self, env_name: str) -> str:
        return f"{self.service_name(env_name)}.{self.config.namespace_name}"

    def find(self, env_name: str) -> str | None:
        """The ARN of the environment's Cloud Map service, or None."""
        wanted = self.service_name(env_name)
        pages = self.sd.get_paginator("list_services").paginate(
            Filters=[{"Name": "NAMESPACE_ID", "Values": [self.config.namespace_id], "Condition": "EQ"}])
        for page in pages:
            for service in page.get("Services", []):
                # (Filtered again here: some emulators ignore the filter.)
                if service.get("Name") == wanted and service.get("NamespaceId", self.config.namespace_id) == self.config.namespace_id:
                    return str(service["Arn"])
        return None

    def ensure(self, env_name: str) -> str:
        """The Cloud Map service the webserver service registers into (created once)."""
        found = self.find(env_name)
        if found:
            return found
        try:
            created = self.sd.create_service(
                Name=self.service_name(env_name),
                NamespaceId=self.config.namespace_id,
                Description=f"Airflow web server of Airdock environment {env_name}",
                DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]},
                HealthCheckCustomConfig={"FailureThreshold": 1},
                Tags=[{"Key": "airdock:environment", "Value": env_name}],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ServiceAlreadyExists":  # a concurrent run won
                return self.find(env_name) or str(exc.response["Error"].get("ServiceArn", ""))
            raise
        return str(created["Service"]["Arn"])

    def delete(self, env_name: str) -> None:
        """Remove the Cloud Map service once ECS has deregistered the tasks (after the webserver
        service is deleted); until then a retryable TransientError."""
        arn = self.find(env_name)
        if not arn:
            return
        try:
            self.sd.delete_service(Id=arn.rsplit("/", 1)[-1])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ServiceNotFound":
                return
            if code == "ResourceInUse":
                raise TransientError(f"Cloud Map service {self.service_name(env_name)} still has registered tasks") from None
            raise
