"""DynamoDB tables for moto, created from template.yaml's own resource definitions.

If the template's keys or indexes change, tables built here change with them, so adapter tests
break exactly when code and template disagree.
"""
from __future__ import annotations

import threading
from typing import Any

from support.template import resource

# Properties of AWS::DynamoDB::Table whose CloudFormation shape equals CreateTable's.
_SAME_SHAPE = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput",
               "LocalSecondaryIndexes", "StreamSpecification")


def create_table_request(logical_id: str, table_name: str) -> dict[str, Any]:
    """CreateTable parameters equivalent to the template's `logical_id` table."""
    definition = resource(logical_id)
    if definition["Type"] != "AWS::DynamoDB::Table":
        raise ValueError(f"{logical_id} is a {definition['Type']}, not an AWS::DynamoDB::Table")
    props = definition["Properties"]
    request: dict[str, Any] = {"TableName": table_name}
    for key in _SAME_SHAPE:
        if key in props:
            request[key] = props[key]
    if "GlobalSecondaryIndexes" in props:
        # Same shape too, minus CloudFormation-only members.
        request["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection",
                                                   "ProvisionedThroughput", "OnDemandThroughput")}
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    return request


def create_table_from_template(client: Any, logical_id: str, table_name: str) -> str:
    """Create (in moto or anywhere) the table `logical_id` of template.yaml; returns its name."""
    client.create_table(**create_table_request(logical_id, table_name))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
    props = resource(logical_id)["Properties"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        client.update_continuous_backups(
            TableName=table_name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return table_name


class AtomicRequests:
    """A boto3 client proxy that runs one request at a time.

    Real DynamoDB evaluates a condition and applies the write atomically; moto's in-memory backend
    has no lock, so two threads can both pass the same condition. Serializing whole requests gives
    moto DynamoDB's per-request atomicity without hiding races *between* requests (an adapter
    doing read-check-write in Python still loses the race tests).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions
        self.meta = client.meta

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call
